"""Retry decisions for one call (sans-IO).

A call makes attempts; when one fails, :func:`decide` says what happens next:

* :class:`Retry` -- wait ``delay`` seconds, then make attempt ``attempt``. Only
  before the commit point (the first response byte): the caller never sees the
  failed attempt.
* :class:`Restart` -- the failed attempt had committed (bytes reached the caller)
  and the request allows restarts: the caller gets a ``Restart`` event, discards
  what it had, and attempt ``attempt`` starts over after ``delay`` seconds.
* :class:`GiveUp` -- the call ends ``Failed``; ``reason`` says why in words.

The rules, checked in this order (the first that applies decides):

1. an error that is not a :class:`providers.errors.ProviderError`, or whose
   ``retryable`` is false, is not retried (a bug or a bad request does not get
   better by asking again);
2. no attempt beyond ``max_attempts``;
3. a committed attempt is restarted only when the policy allows restarts; output
   is never spliced;
4. the delay is the provider's ``Retry-After`` when it sent one (capped at
   ``max_retry_after``), else exponential backoff with full jitter:
   ``uniform(0, min(max_delay, base_delay * multiplier ** (attempt - 1)))``;
5. one deadline covers every attempt: when ``now + delay`` reaches it, give up at
   once rather than sleep into a certain timeout;
6. a :class:`~swarm.resilience.budget.RetryBudget`, when given, must grant a slot
   (so an outage cannot become a retry storm); it is asked last, so a slot is only
   taken for a retry that will happen. A 429's retry that a local rate limiter paces
   (``paced=True``: it waits for a permit of a bucket the 429 just emptied) takes
   none: it cannot storm, and failing it instead turns the limiter's first overshoot
   (limits configured above the provider's) into failed calls.

Nothing here sleeps or reads a clock: ``now`` and the deadline are seconds on the
caller's monotonic clock, and the jitter comes from an injected ``random.Random``.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import msgspec

from providers.errors import ProviderError, RateLimitError, scrub

from .budget import RetryBudget

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_MULTIPLIER",
    "Decision",
    "GiveUp",
    "Restart",
    "Retry",
    "RetryPolicy",
    "RetryState",
    "RetryStateError",
    "backoff_cap",
    "decide",
    "retry_message",
]

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BASE_DELAY = 0.5
DEFAULT_MAX_DELAY = 30.0
DEFAULT_MULTIPLIER = 2.0
# A provider asking for more than a minute is usually telling us to go elsewhere;
# waiting longer than this is the scheduler's call (fallback), not the retry loop's.
DEFAULT_MAX_RETRY_AFTER = 60.0


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a call retries. Shared by every call that uses it.

    Attributes:
        max_attempts: Attempts in all, the first included (1 means never retry).
        base_delay: Backoff cap of the first retry, in seconds.
        max_delay: Upper bound of the backoff cap, in seconds.
        multiplier: Growth of the cap per attempt (``>= 1``).
        jitter: ``"full"`` draws the delay uniformly from ``[0, cap]`` (spreads a
            herd of callers that failed together); ``"none"`` waits exactly the cap.
        respect_retry_after: Use the provider's ``Retry-After`` instead of the
            computed backoff when the error carries one.
        max_retry_after: The longest ``Retry-After`` honoured; a longer one is cut
            to this (the deadline still applies).
        restarts_allowed: Whether an attempt that had committed (its first byte
            reached the caller) may be restarted. Off by default: a restart makes
            the caller discard output, which only a caller that asked can handle.

    Raises:
        ValueError: a field is out of range; the message names it and the fix.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: Literal["full", "none"] = "full"
    respect_retry_after: bool = True
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    restarts_allowed: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_attempts, int)
            or isinstance(self.max_attempts, bool)
            or self.max_attempts < 1
        ):
            raise ValueError(
                f"RetryPolicy.max_attempts must be an integer >= 1 (1 disables retries), "
                f"got {self.max_attempts!r}"
            )
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not _finite_number(value) or value < 0:
                raise ValueError(
                    f"RetryPolicy.{name} must be a finite number of seconds >= 0, got {value!r}"
                )
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"RetryPolicy.max_delay ({self.max_delay!r}) is below base_delay "
                f"({self.base_delay!r}); raise max_delay or lower base_delay"
            )
        if not _finite_number(self.multiplier) or self.multiplier < 1:
            raise ValueError(
                f"RetryPolicy.multiplier must be a finite number >= 1 (1 = constant backoff), "
                f"got {self.multiplier!r}"
            )
        if self.jitter not in ("full", "none"):
            raise ValueError(f"RetryPolicy.jitter must be 'full' or 'none', got {self.jitter!r}")


class Retry(msgspec.Struct, kw_only=True, frozen=True):
    """Wait ``delay`` seconds, then make attempt number ``attempt`` (invisibly)."""

    delay: float
    attempt: int


class Restart(msgspec.Struct, kw_only=True, frozen=True):
    """Tell the caller to discard its output, wait ``delay`` seconds, then make
    attempt number ``attempt`` from the beginning."""

    delay: float
    attempt: int


class GiveUp(msgspec.Struct, kw_only=True, frozen=True):
    """No further attempt; ``reason`` says why, for the user."""

    reason: str


Decision = Retry | Restart | GiveUp


class RetryStateError(RuntimeError):
    """A :class:`RetryState` was used out of order (a runtime bug)."""


def backoff_cap(policy: RetryPolicy, attempt: int) -> float:
    """The backoff cap after attempt number ``attempt`` failed:
    ``min(max_delay, base_delay * multiplier ** (attempt - 1))``.

    Raises:
        ValueError: ``attempt`` is below 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    try:
        grown = policy.base_delay * policy.multiplier ** (attempt - 1)
    except OverflowError:  # a huge attempt number: the cap has long since saturated
        return policy.max_delay
    return min(policy.max_delay, grown)


def _seconds(delay: float) -> str:
    return f"{delay * 1000:.0f} ms" if delay < 1.0 else f"{delay:.1f} s"


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    error: BaseException,
    committed: bool,
    now: float,
    deadline: float | None,
    rng: random.Random,
    budget: RetryBudget | None = None,
) -> Decision:
    """Decide what follows the failure of attempt number ``attempt``.

    Args:
        policy: The retry policy.
        attempt: The number of the attempt that failed (1 for the first).
        error: What it failed with.
        committed: Whether the attempt had passed the commit point (the first
            response byte was seen).
        now: The current time (seconds, monotonic).
        deadline: When the whole call must be over (same clock), or None.
        rng: The jitter source (seeded in tests).
        budget: The retry budget of the deployment, or None for no budget. When
            the decision is Retry or Restart, one retry slot has been taken from
            it; the caller returns it with ``budget.on_retry_end()`` when the
            retry attempt ends (:class:`RetryState` does this for you).

    Returns:
        Retry, Restart or GiveUp (see the module docstring for the rules).

    Raises:
        TypeError: ``error`` is a cancellation or another BaseException that is not
            an Exception: those must propagate, never be retried or swallowed.
        ValueError: ``attempt`` is below 1.
    """
    if not isinstance(error, Exception):
        raise TypeError(
            f"{type(error).__name__} is not an attempt failure; re-raise it instead of "
            "asking whether to retry"
        )
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if not isinstance(error, ProviderError):
        return GiveUp(reason=f"not retryable: {type(error).__name__} is not a provider error")
    if not error.retryable:
        return GiveUp(reason=f"not retryable: {type(error).__name__}")
    if attempt >= policy.max_attempts:
        return GiveUp(reason=f"attempts exhausted ({attempt} of {policy.max_attempts})")
    if committed and not policy.restarts_allowed:
        return GiveUp(
            reason="the response had already started and this request does not allow restarts"
        )
    retry_after = error.retry_after
    if policy.respect_retry_after and retry_after is not None and retry_after >= 0:
        delay = min(retry_after, policy.max_retry_after)
    else:
        cap = backoff_cap(policy, attempt)
        # Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
        # the whole interval, so callers that failed together spread out.
        delay = rng.uniform(0.0, cap) if policy.jitter == "full" else cap
    # Invariant: no attempt starts at or after the deadline. Sleeping into a
    # deadline that has certainly passed only delays the caller's Failed.
    if deadline is not None and now + delay >= deadline:
        left = max(0.0, deadline - now)
        return GiveUp(
            reason=(
                "deadline would pass before the next attempt "
                f"(next attempt in {_seconds(delay)}, {_seconds(left)} left)"
            )
        )
    if budget is not None and not budget.try_start_retry():
        stats = budget.statistics()
        return GiveUp(
            reason=(
                f"retry budget exhausted ({stats.active_retries} retries in flight, "
                f"limit {stats.retry_limit} for {stats.active_requests} calls)"
            )
        )
    if committed:
        return Restart(delay=delay, attempt=attempt + 1)
    return Retry(delay=delay, attempt=attempt + 1)


def retry_message(error: BaseException, decision: Decision, *, max_attempts: int) -> str:
    """The line a user reads about a failed attempt and what happens next.

    Example: ``429 from openai (gpt-4o-mini): rate limit on tokens per min;
    retrying in 1.2 s (attempt 2 of 5)``.
    """
    if isinstance(error, ProviderError):
        what = str(error)
    else:
        # Foreign messages are scrubbed too: they may echo a request with a key in it.
        what = scrub(f"{type(error).__name__}: {error}") if str(error) else type(error).__name__
    if isinstance(decision, Retry):
        return (
            f"{what}; retrying in {_seconds(decision.delay)} "
            f"(attempt {decision.attempt} of {max_attempts})"
        )
    if isinstance(decision, Restart):
        return (
            f"{what}; restarting from the beginning in {_seconds(decision.delay)} "
            f"(attempt {decision.attempt} of {max_attempts}); discard the partial response"
        )
    return f"{what}; giving up: {decision.reason}"


class RetryState:
    """The retry bookkeeping of one call: which attempt it is on, and its budget slot.

    Feed it each failed attempt with :meth:`on_failure`; call :meth:`close` when the
    call ends (success, failure, cancellation) so a held budget slot is returned.
    After a :class:`GiveUp` or :meth:`close` the state is final: further failures
    raise :class:`RetryStateError`.

    Args:
        policy: The retry policy.
        rng: The jitter source.
        deadline: When the whole call must be over, or None.
        budget: The deployment's retry budget, or None.
    """

    __slots__ = (
        "_attempt",
        "_budget",
        "_closed",
        "_holds_slot",
        "_last",
        "_rng",
        "deadline",
        "policy",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        rng: random.Random,
        deadline: float | None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        self._rng = rng
        self._budget = budget
        self._attempt = 1
        # Invariant: True exactly while a slot taken from the budget by this call
        # has not been returned (the retry attempt it paid for has not ended).
        self._holds_slot = False
        self._closed = False
        self._last: Decision | None = None

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress, or of the last one made (from 1)."""
        return self._attempt

    @property
    def done(self) -> bool:
        """True once the call gave up or was closed."""
        return self._closed

    @property
    def last_decision(self) -> Decision | None:
        return self._last

    def on_failure(
        self, error: BaseException, *, committed: bool, now: float, paced: bool = False
    ) -> Decision:
        """Attempt number :attr:`attempt` failed with ``error``: decide what follows.

        ``paced``: the next attempt waits for a local rate limiter's permit, so the
        retry of a rate-limit error takes no budget slot (rule 6 of the module).

        A Retry or Restart moves :attr:`attempt` to the next number. The budget slot
        the failed attempt held (if it was a retry) is returned before deciding, so
        a call never holds two.

        Raises:
            RetryStateError: the call already gave up or was closed.
            TypeError: ``error`` is a cancellation (it must propagate).
        """
        if self._closed:
            raise RetryStateError(
                f"this call already ended ({self._describe_end()}); start a new RetryState"
            )
        if not isinstance(error, Exception):
            raise TypeError(
                f"{type(error).__name__} is not an attempt failure; re-raise it instead of "
                "asking whether to retry"
            )
        self._release_slot()
        budget = None if paced and isinstance(error, RateLimitError) else self._budget
        decision = decide(
            self.policy,
            attempt=self._attempt,
            error=error,
            committed=committed,
            now=now,
            deadline=self.deadline,
            rng=self._rng,
            budget=budget,
        )
        self._last = decision
        if isinstance(decision, GiveUp):
            self._closed = True
        else:
            self._attempt = decision.attempt
            self._holds_slot = budget is not None
        return decision

    def message(self, error: BaseException, decision: Decision) -> str:
        """:func:`retry_message` with this policy's ``max_attempts``."""
        return retry_message(error, decision, max_attempts=self.policy.max_attempts)

    def close(self) -> None:
        """The call ended: return a held budget slot. Idempotent."""
        self._release_slot()
        self._closed = True

    def _release_slot(self) -> None:
        if self._holds_slot and self._budget is not None:
            self._holds_slot = False
            self._budget.on_retry_end()

    def _describe_end(self) -> str:
        if isinstance(self._last, GiveUp):
            return f"gave up: {self._last.reason}"
        return "closed"

    def __repr__(self) -> str:
        return (
            f"RetryState(attempt={self.attempt} of {self.policy.max_attempts}, "
            f"done={self._closed}, deadline={self.deadline!r})"
        )
