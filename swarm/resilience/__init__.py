"""The resilience cores of the runtime: retries, retry budget, circuit breaker, timeouts.

Each is a sans-IO state machine: fed events and ``now`` (seconds on a monotonic
clock), given a ``random.Random`` where it needs chance, never sleeping or reading
a clock. The provider actor drives them:

* :mod:`~swarm.resilience.retry` -- what follows a failed attempt: :class:`Retry`
  (invisible, before the commit point), :class:`Restart` (after it, when the
  request allows) or :class:`GiveUp`, with backoff, ``Retry-After`` and one deadline.
* :mod:`~swarm.resilience.budget` -- :class:`RetryBudget` caps retries in flight at
  a share of calls in flight, so an outage cannot become a retry storm.
* :mod:`~swarm.resilience.breaker` -- :class:`CircuitBreaker` per deployment:
  closed, open, half-open with a fixed number of probes.
* :mod:`~swarm.resilience.timeouts` -- :class:`Timeouts` by phase and the
  :class:`PhaseClock` of one attempt.
"""

from __future__ import annotations

from .breaker import (
    DEFAULT_FAILURE_RATE_THRESHOLD,
    DEFAULT_HALF_OPEN_PROBES,
    DEFAULT_MINIMUM_CALLS,
    DEFAULT_OPEN_DURATION,
    DEFAULT_SLOW_CALL_RATE_THRESHOLD,
    DEFAULT_WINDOW,
    DEFAULT_WINDOW_BUCKETS,
    FAILURE_VERDICTS,
    BreakerState,
    BreakerStatistics,
    CircuitBreaker,
    CircuitBreakerPolicy,
    Permit,
    PermitError,
    Rejected,
    Transition,
    Trigger,
    counts_as_failure,
)
from .budget import (
    DEFAULT_BUDGET_PERCENT,
    DEFAULT_MIN_RETRY_CONCURRENCY,
    BudgetAccountingError,
    RetryBudget,
    RetryBudgetPolicy,
    RetryBudgetStatistics,
)
from .retry import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MULTIPLIER,
    Decision,
    GiveUp,
    Restart,
    Retry,
    RetryPolicy,
    RetryState,
    RetryStateError,
    backoff_cap,
    decide,
    retry_message,
)
from .timeouts import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    ClockState,
    Deadline,
    Phase,
    PhaseClock,
    PhaseOrderError,
    Timeouts,
    is_content,
)

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_BUDGET_PERCENT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_FAILURE_RATE_THRESHOLD",
    "DEFAULT_FIRST_TOKEN_TIMEOUT",
    "DEFAULT_HALF_OPEN_PROBES",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_MINIMUM_CALLS",
    "DEFAULT_MIN_RETRY_CONCURRENCY",
    "DEFAULT_MULTIPLIER",
    "DEFAULT_OPEN_DURATION",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_SLOW_CALL_RATE_THRESHOLD",
    "DEFAULT_TOTAL_TIMEOUT",
    "DEFAULT_WINDOW",
    "DEFAULT_WINDOW_BUCKETS",
    "DEFAULT_WRITE_TIMEOUT",
    "FAILURE_VERDICTS",
    "BreakerState",
    "BreakerStatistics",
    "BudgetAccountingError",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "ClockState",
    "Deadline",
    "Decision",
    "GiveUp",
    "Permit",
    "PermitError",
    "Phase",
    "PhaseClock",
    "PhaseOrderError",
    "Rejected",
    "Restart",
    "Retry",
    "RetryBudget",
    "RetryBudgetPolicy",
    "RetryBudgetStatistics",
    "RetryPolicy",
    "RetryState",
    "RetryStateError",
    "Timeouts",
    "Transition",
    "Trigger",
    "backoff_cap",
    "counts_as_failure",
    "decide",
    "is_content",
    "retry_message",
]
