"""The interface between a rate-limit actor and the state of its limits.

A rate-limit actor does not touch its buckets directly: it sends three kinds of message
to a :class:`RateLimitBackend`. Today that is :class:`LocalBackend`, the sans-IO
:class:`~swarm.ratelimit.limiter.RateLimiter` in the actor's own memory. A swarm that
spans machines shares one key's limits across processes, and replaces it with a backend
that keeps the same state in Redis or in a Ray actor; nothing else changes.

So the API is small and message-oriented: every argument and result is a msgspec
Struct (``AcquireRequest`` → ``Permit | Wait``, ``ReleaseRequest``, ``Feedback``)
that encodes to JSON or MessagePack as is, and a permit is a plain record whose
authoritative state lives in the backend. Each message carries the actor's ``now``
(monotonic seconds); a backend shared across machines, whose callers' monotonic clocks
do not agree, should use its own clock (Redis ``TIME``) and may ignore it.

Cancellation: ``acquire`` is atomic under cancellation, as a trio primitive is: it is
granted or it raises ``Cancelled`` with nothing taken. ``release`` and ``feedback`` are
not cancellation points: they always happen, so a cancelled call's permit is released
exactly once (a remote backend must shield them, and bound them with a timeout).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import anyio.lowlevel
import msgspec

from providers.ratelimits import RateLimitInfo

from .limiter import (
    LimitKind,
    Outcome,
    Permit,
    RateLimiter,
    RateLimiterStatistics,
    TokenCost,
    Wait,
)

__all__ = [
    "AcquireRequest",
    "Feedback",
    "HeadersFeedback",
    "LocalBackend",
    "RateLimitBackend",
    "RateLimitedFeedback",
    "ReleaseRequest",
]


class AcquireRequest(msgspec.Struct, kw_only=True, frozen=True, tag="acquire"):
    """Ask for a permit for a call costing ``cost``."""

    cost: TokenCost
    now: float


class ReleaseRequest(msgspec.Struct, kw_only=True, frozen=True, tag="release"):
    """Settle a permit (``RateLimiter.release`` describes each field)."""

    permit: Permit
    now: float
    outcome: Outcome
    usage_tokens: int | None = None
    ttft: float | None = None
    retry_after: float | None = None
    limit: LimitKind | None = None
    usage_input_tokens: int | None = None
    usage_output_tokens: int | None = None


class HeadersFeedback(msgspec.Struct, kw_only=True, frozen=True, tag="headers"):
    """The rate-limit headers of one response (and the permit it answers, if any)."""

    info: RateLimitInfo
    now: float
    permit: Permit | None = None


class RateLimitedFeedback(msgspec.Struct, kw_only=True, frozen=True, tag="rate_limited"):
    """A 429 seen outside a permit's release."""

    now: float
    retry_after: float | None = None
    limit: LimitKind | None = None
    sent_at: float | None = None


Feedback = HeadersFeedback | RateLimitedFeedback


@runtime_checkable
class RateLimitBackend(Protocol):
    """Where the state of one (provider, key, model)'s limits lives."""

    async def acquire(self, request: AcquireRequest) -> Permit | Wait:
        """A permit, or how long to wait and why. Atomic under cancellation."""
        ...

    async def release(self, request: ReleaseRequest) -> None:
        """Settle a permit. Always happens, even in a cancelled scope.

        Raises:
            RateLimitPermitError: The permit was already released or is unknown.
        """
        ...

    async def feedback(self, message: Feedback) -> None:
        """Apply headers or a 429. Always happens, even in a cancelled scope."""
        ...

    async def statistics(self, now: float) -> RateLimiterStatistics:
        """A snapshot of the limits, levels and counts."""
        ...


class LocalBackend:
    """A backend in the actor's own memory: a :class:`RateLimiter` behind the interface.

    Args:
        limiter: The sans-IO limiter it owns from now on (no one else may call it).
    """

    __slots__ = ("_limiter",)

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    @property
    def probing(self) -> bool:
        """The limiter is in its slow start (see ``RateLimiter.probing``)."""
        return self._limiter.probing

    # The methods never wait, and do not yield either: each yield was a pass of the
    # event loop on the path of every call (three per call: ~40 us of added time to
    # first token). The actor yields when its inbox is empty.

    async def acquire(self, request: AcquireRequest) -> Permit | Wait:
        await anyio.lowlevel.checkpoint_if_cancelled()
        # Invariant: nothing below can raise Cancelled, so a permit taken is returned.
        return self._limiter.try_acquire(request.cost, request.now)

    def try_acquire(self, request: AcquireRequest) -> Permit | Wait:
        """:meth:`acquire` without the await (the rate-limit actor's fast path)."""
        return self._limiter.try_acquire(request.cost, request.now)

    async def release(self, request: ReleaseRequest) -> None:
        self.release_now(request)

    def release_now(self, request: ReleaseRequest) -> None:
        """:meth:`release` without the await (the rate-limit actor's fast path)."""
        self._limiter.release(
            request.permit,
            request.now,
            request.outcome,
            usage_tokens=request.usage_tokens,
            ttft=request.ttft,
            retry_after=request.retry_after,
            limit=request.limit,
            usage_input_tokens=request.usage_input_tokens,
            usage_output_tokens=request.usage_output_tokens,
        )

    async def feedback(self, message: Feedback) -> None:
        self.feedback_now(message)

    def feedback_now(self, message: Feedback) -> None:
        """:meth:`feedback` without the await (the rate-limit actor's fast path)."""
        if isinstance(message, HeadersFeedback):
            self._limiter.on_response_headers(message.info, message.now, permit=message.permit)
        else:
            self._limiter.on_rate_limited(
                message.retry_after, message.now, limit=message.limit, sent_at=message.sent_at
            )

    async def statistics(self, now: float) -> RateLimiterStatistics:
        await anyio.lowlevel.checkpoint()
        return self._limiter.statistics(now)

    def __repr__(self) -> str:
        return f"LocalBackend({self._limiter!r})"
