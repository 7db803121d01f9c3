"""Rate limiting of LLM calls: sans-IO cores fed events and ``now``, and the backend seam.

One :class:`RateLimiter` per (provider, key, model) combines a requests-per-minute and
a tokens-per-minute :class:`TokenBucket`, a concurrency limit (fixed, or adapted from
time to first token), and an AIMD controller that cuts the allowed rate on a 429 and
recovers it gradually; every response's rate-limit headers correct the buckets. A
rate-limit actor reaches it through a :class:`RateLimitBackend` (:class:`LocalBackend`
today), so state shared across machines can replace it later.
"""

from __future__ import annotations

from .adaptive import AIMDConfig as AIMDConfig
from .adaptive import AIMDController as AIMDController
from .backend import AcquireRequest as AcquireRequest
from .backend import Feedback as Feedback
from .backend import HeadersFeedback as HeadersFeedback
from .backend import LocalBackend as LocalBackend
from .backend import RateLimitBackend as RateLimitBackend
from .backend import RateLimitedFeedback as RateLimitedFeedback
from .backend import ReleaseRequest as ReleaseRequest
from .bucket import TokenBucket as TokenBucket
from .concurrency import ConcurrencyLimit as ConcurrencyLimit
from .concurrency import FixedConcurrency as FixedConcurrency
from .concurrency import FixedConcurrencyLimit as FixedConcurrencyLimit
from .concurrency import GradientConcurrency as GradientConcurrency
from .concurrency import GradientConcurrencyLimit as GradientConcurrencyLimit
from .concurrency import concurrency_limit as concurrency_limit
from .limiter import LimitKind as LimitKind
from .limiter import Outcome as Outcome
from .limiter import Permit as Permit
from .limiter import RateLimitConfig as RateLimitConfig
from .limiter import RateLimiter as RateLimiter
from .limiter import RateLimiterStatistics as RateLimiterStatistics
from .limiter import RateLimitPermitError as RateLimitPermitError
from .limiter import TokenCost as TokenCost
from .limiter import Wait as Wait
from .limiter import WaitReason as WaitReason

__all__ = [
    "AIMDConfig",
    "AIMDController",
    "AcquireRequest",
    "ConcurrencyLimit",
    "Feedback",
    "FixedConcurrency",
    "FixedConcurrencyLimit",
    "GradientConcurrency",
    "GradientConcurrencyLimit",
    "HeadersFeedback",
    "LimitKind",
    "LocalBackend",
    "Outcome",
    "Permit",
    "RateLimitBackend",
    "RateLimitConfig",
    "RateLimitPermitError",
    "RateLimitedFeedback",
    "RateLimiter",
    "RateLimiterStatistics",
    "ReleaseRequest",
    "TokenBucket",
    "TokenCost",
    "Wait",
    "WaitReason",
    "concurrency_limit",
]
