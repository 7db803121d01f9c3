"""A retry budget in Envoy's manner (sans-IO).

Retries multiply load exactly when a deployment can least take it: in a full
outage every call retries up to ``max_attempts`` times. A budget caps the retries
in flight at a share of the calls in flight, so the load an outage adds is bounded
by a constant factor instead of by ``max_attempts`` (Envoy's
``retry_budget {budget_percent, min_retry_concurrency}``)::

    limit = max(min_retry_concurrency, floor(budget_percent / 100 * active_requests))
    a retry may start  <=>  active_retries < limit

Definitions (what the counters count):

* an *active request* is a call of this deployment that has started and not
  ended; its retries do not count again (a call with three retries is one request);
* an *active retry* is a retry from the moment the budget grants it (its backoff
  sleep included, so a herd sleeping in backoff is already counted) until its
  attempt ends, however it ends.

Invariant: every granted retry was granted while ``active_retries < limit``, so
right after a grant ``active_retries <= limit``. The budget never revokes a grant:
when calls without retries end and the limit falls below the retries already in
flight, no new retry is granted until enough of those end.
"""

from __future__ import annotations

import math

import msgspec

__all__ = [
    "DEFAULT_BUDGET_PERCENT",
    "DEFAULT_MIN_RETRY_CONCURRENCY",
    "BudgetAccountingError",
    "RetryBudget",
    "RetryBudgetPolicy",
    "RetryBudgetStatistics",
]

# Envoy's defaults: retries may be a fifth of the traffic, and at least 3 at once
# so a quiet deployment can still retry.
DEFAULT_BUDGET_PERCENT = 20.0
DEFAULT_MIN_RETRY_CONCURRENCY = 3

# floor() of a product like 0.2 * 15 must not lose a whole retry to rounding.
_EPSILON = 1e-9


class RetryBudgetPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The size of a retry budget.

    Attributes:
        budget_percent: Retries in flight allowed, as a percentage of the calls in
            flight (0 to 100).
        min_retry_concurrency: Retries in flight allowed whatever the percentage
            gives (so a deployment with few calls can still retry).

    Raises:
        ValueError: a field is out of range; the message names it and the fix.
    """

    budget_percent: float = DEFAULT_BUDGET_PERCENT
    min_retry_concurrency: int = DEFAULT_MIN_RETRY_CONCURRENCY

    def __post_init__(self) -> None:
        pct = self.budget_percent
        if (
            not isinstance(pct, int | float)
            or isinstance(pct, bool)
            or not math.isfinite(pct)
            or not 0 <= pct <= 100
        ):
            raise ValueError(
                f"RetryBudgetPolicy.budget_percent must be a percentage from 0 to 100, got {pct!r}"
            )
        low = self.min_retry_concurrency
        if not isinstance(low, int) or isinstance(low, bool) or low < 0:
            raise ValueError(
                f"RetryBudgetPolicy.min_retry_concurrency must be an integer >= 0, got {low!r}"
            )


class RetryBudgetStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of a :class:`RetryBudget`.

    Attributes:
        active_requests: Calls in flight.
        active_retries: Retries in flight (granted and not ended).
        retry_limit: The limit at this moment.
        retries_granted: Retries granted since creation.
        retries_refused: Retries refused since creation.
    """

    active_requests: int
    active_retries: int
    retry_limit: int
    retries_granted: int
    retries_refused: int


class BudgetAccountingError(RuntimeError):
    """An end was reported without a matching start (a runtime bug)."""


class RetryBudget:
    """The retry budget of one deployment: counters fed by the provider actor.

    Args:
        policy: The budget's size.
    """

    __slots__ = ("_active_requests", "_active_retries", "_granted", "_refused", "policy")

    def __init__(self, policy: RetryBudgetPolicy) -> None:
        self.policy = policy
        # Invariant: both counters are >= 0; they move only through the methods below.
        self._active_requests = 0
        self._active_retries = 0
        self._granted = 0
        self._refused = 0

    @property
    def active_requests(self) -> int:
        """Calls in flight."""
        return self._active_requests

    @property
    def active_retries(self) -> int:
        """Retries granted and not yet ended."""
        return self._active_retries

    @property
    def retry_limit(self) -> int:
        """``max(min_retry_concurrency, floor(budget_percent / 100 * active_requests))``."""
        share = math.floor(self.policy.budget_percent * self._active_requests / 100.0 + _EPSILON)
        return max(self.policy.min_retry_concurrency, share)

    def on_request_start(self) -> None:
        """A call started on this deployment."""
        self._active_requests += 1

    def on_request_end(self) -> None:
        """A call ended (any outcome).

        Raises:
            BudgetAccountingError: no call is active; nothing changes.
        """
        if self._active_requests <= 0:
            raise BudgetAccountingError("on_request_end() without a matching on_request_start()")
        self._active_requests -= 1

    def try_start_retry(self) -> bool:
        """Take a retry slot if the budget allows one now.

        Returns:
            True when granted: the caller must call :meth:`on_retry_end` when the
            retry attempt ends. False when the budget is exhausted.
        """
        if self._active_retries < self.retry_limit:
            self._active_retries += 1
            self._granted += 1
            return True
        self._refused += 1
        return False

    def on_retry_end(self) -> None:
        """A granted retry's attempt ended (any outcome): its slot is free.

        Raises:
            BudgetAccountingError: no retry is active; nothing changes.
        """
        if self._active_retries <= 0:
            raise BudgetAccountingError("on_retry_end() without a granted try_start_retry()")
        self._active_retries -= 1

    def statistics(self) -> RetryBudgetStatistics:
        return RetryBudgetStatistics(
            active_requests=self.active_requests,
            active_retries=self.active_retries,
            retry_limit=self.retry_limit,
            retries_granted=self._granted,
            retries_refused=self._refused,
        )

    def __repr__(self) -> str:
        return (
            f"RetryBudget(active_requests={self.active_requests}, "
            f"active_retries={self.active_retries}, limit={self.retry_limit})"
        )
