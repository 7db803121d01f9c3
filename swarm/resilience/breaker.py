"""A circuit breaker per deployment (sans-IO).

When a deployment is failing, sending it more calls only makes the caller wait for
errors and the deployment recover later. The breaker watches the outcomes and,
past a threshold, refuses calls for a while so the scheduler can fall back at once.

States and transitions (``TRANSITIONS``; anything else is illegal)::

               trip: failure rate or slow-call rate over the window >= threshold,
                     with at least ``minimum_calls`` calls in the window
     CLOSED ──────────────────────────────────────────────────────────────► OPEN
       ▲                                                                   │  ▲
       │ probes_passed: ``half_open_probes`` probes succeeded               │  │
       │                                    cool_down_elapsed: the first   │  │ probe_failed:
       │                                    acquire() at or after          │  │ a probe failed
       │                                    ``open_until``                 ▼  │ or was slow
       └─────────────────────────────────────────────────────────────── HALF_OPEN

Choices, and why:

* **A time-based sliding window** (``window`` seconds in ``window_buckets``
  buckets), not a count-based one. LLM traffic to one deployment is bursty; a
  window of the last N calls would, after a quiet hour, still hold the failures
  from before it and trip on stale news. A time window bounds how old the evidence
  is; ``minimum_calls`` keeps a quiet deployment from tripping on two calls.
  Buckets keep memory constant at any rate. A bucket spans
  ``[k * width, (k + 1) * width)`` on the caller's clock (``width = window /
  window_buckets``); the window at ``now`` is the current bucket and the
  ``window_buckets - 1`` before it, so it covers between ``window - width`` and
  ``window`` seconds of history.
* **Which errors count** is explicit (:data:`FAILURE_VERDICTS`,
  :func:`counts_as_failure`): errors that say the deployment is unhealthy
  (overloaded, 5xx, timeouts, broken connections, corrupt streams) count; errors
  that are the caller's or the account's (bad request, auth, not found, content
  filter, quota) and rate limits (429: the deployment is healthy and told us when
  to come back; the rate-limit actor owns that) are ignored: neither failure nor
  success. So are timeouts of the call's own deadline and of the local connection
  pool, which say nothing about the deployment.
* **Slow calls** (``duration > slow_call_duration``) count towards a separate
  rate, failures and successes alike. For streaming calls pass the time to first
  token as the duration: the total grows with the output length, so it says more
  about the prompt than about the deployment.
* **Half-open** lets exactly ``half_open_probes`` calls through. Any probe that
  fails (a counted failure) or is slow reopens at once; when all have succeeded,
  the breaker closes with an empty window. A probe that ends without a verdict
  (cancelled: :meth:`CircuitBreaker.release`; or an ignored error) gives its slot
  back, so a cancelled probe cannot wedge the breaker half-open.
* **Open duration** is ``open_duration`` for the first opening and grows by
  ``open_duration_multiplier`` for each reopening from half-open in a row, up to
  ``max_open_duration``; closing resets it.
* **Late results.** Every transition starts a new generation; a permit from an
  older generation (issued before the breaker opened) is accounted for but does not
  move the breaker: its call started under conditions that no longer hold.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import NamedTuple

import msgspec

from providers.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RequestError,
    ServerError,
    StreamDecodeError,
    TransportError,
)
from providers.errors import TimeoutError as PhaseTimeoutError

__all__ = [
    "DEFAULT_FAILURE_RATE_THRESHOLD",
    "DEFAULT_HALF_OPEN_PROBES",
    "DEFAULT_MINIMUM_CALLS",
    "DEFAULT_OPEN_DURATION",
    "DEFAULT_SLOW_CALL_RATE_THRESHOLD",
    "DEFAULT_WINDOW",
    "DEFAULT_WINDOW_BUCKETS",
    "FAILURE_VERDICTS",
    "TRANSITIONS",
    "BreakerState",
    "BreakerStatistics",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "Permit",
    "PermitError",
    "Rejected",
    "Transition",
    "Trigger",
    "counts_as_failure",
]

DEFAULT_FAILURE_RATE_THRESHOLD = 50.0
DEFAULT_MINIMUM_CALLS = 20
DEFAULT_WINDOW = 60.0
DEFAULT_WINDOW_BUCKETS = 10
DEFAULT_SLOW_CALL_RATE_THRESHOLD = 100.0
DEFAULT_OPEN_DURATION = 30.0
DEFAULT_HALF_OPEN_PROBES = 3

_HISTORY = 64  # transitions kept for inspection

# -- which errors count ---------------------------------------------------------------------

# Looked up along the error's MRO, most specific class first. Every concrete class
# of providers.errors resolves to an entry below APIError/ProviderError (a test
# checks it), so a new error class must be given a verdict here on purpose.
FAILURE_VERDICTS: Mapping[type[ProviderError], bool] = {
    # The deployment is unhealthy: count.
    OverloadedError: True,
    ServerError: True,
    APITimeoutError: True,
    TransportError: True,  # ConnectError, ReadError, TimeoutError (see below)
    StreamDecodeError: True,
    # Not about the deployment's health: ignore.
    RateLimitError: False,
    QuotaExceededError: False,
    AuthenticationError: False,
    NotFoundError: False,
    BadRequestError: False,
    ContentFilterError: False,
    RequestError: False,
}

# Phase timeouts that say nothing about the deployment: the call's own deadline
# (the caller's choice) and the local connection pool (our own saturation).
_IGNORED_TIMEOUT_PHASES = frozenset({"deadline", "pool"})


def counts_as_failure(error: BaseException) -> bool:
    """Whether ``error`` is evidence that the deployment is unhealthy.

    Errors that are not :class:`~providers.errors.ProviderError` (a bug in our own
    code) never count. See :data:`FAILURE_VERDICTS` for the rest.
    """
    if isinstance(error, PhaseTimeoutError) and error.phase in _IGNORED_TIMEOUT_PHASES:
        return False
    for cls in type(error).__mro__:
        verdict = FAILURE_VERDICTS.get(cls)
        if verdict is not None:
            return verdict
    return False


# -- configuration --------------------------------------------------------------------------


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class CircuitBreakerPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """When a breaker opens and how it recovers.

    Attributes:
        failure_rate_threshold: Open when this percentage (0-100] of the calls in
            the window failed.
        minimum_calls: Calls the window must hold before any rate is judged.
        window: Seconds of history the rates are computed over.
        window_buckets: Buckets the window is kept in (its time resolution).
        slow_call_duration: Calls longer than this (seconds) are slow; None
            disables slow-call tracking (there is no duration that suits every
            model, so it is off unless set).
        slow_call_rate_threshold: Open when this percentage (0-100] of the calls in
            the window were slow.
        open_duration: Seconds an open breaker refuses calls before probing.
        open_duration_multiplier: Growth of the open duration for each reopening in
            a row (1 keeps it fixed).
        max_open_duration: Cap of the grown open duration; required when the
            multiplier is above 1 (no unbounded growth by default).
        half_open_probes: Probe calls let through while half-open.

    Raises:
        ValueError: a field is out of range or the combination is ambiguous; the
            message names the field and the fix.
    """

    failure_rate_threshold: float = DEFAULT_FAILURE_RATE_THRESHOLD
    minimum_calls: int = DEFAULT_MINIMUM_CALLS
    window: float = DEFAULT_WINDOW
    window_buckets: int = DEFAULT_WINDOW_BUCKETS
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = DEFAULT_SLOW_CALL_RATE_THRESHOLD
    open_duration: float = DEFAULT_OPEN_DURATION
    open_duration_multiplier: float = 1.0
    max_open_duration: float | None = None
    half_open_probes: int = DEFAULT_HALF_OPEN_PROBES

    def __post_init__(self) -> None:
        name = "CircuitBreakerPolicy"
        for field in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, field)
            if not _number(value) or not 0 < value <= 100:
                raise ValueError(
                    f"{name}.{field} must be a percentage above 0 and at most 100, got {value!r}"
                )
        for field in ("minimum_calls", "window_buckets", "half_open_probes"):
            value = getattr(self, field)
            if not _integer(value) or value < 1:
                raise ValueError(f"{name}.{field} must be an integer >= 1, got {value!r}")
        for field in ("window", "open_duration"):
            value = getattr(self, field)
            if not _number(value) or value <= 0:
                raise ValueError(
                    f"{name}.{field} must be a positive number of seconds, got {value!r}"
                )
        slow = self.slow_call_duration
        if slow is not None and (not _number(slow) or slow <= 0):
            raise ValueError(
                f"{name}.slow_call_duration must be a positive number of seconds or None "
                f"(disabled), got {slow!r}"
            )
        mult = self.open_duration_multiplier
        if not _number(mult) or mult < 1:
            raise ValueError(
                f"{name}.open_duration_multiplier must be a number >= 1 (1 = fixed), got {mult!r}"
            )
        cap = self.max_open_duration
        if mult > 1 and cap is None:
            raise ValueError(
                f"{name}.open_duration_multiplier is {mult} but max_open_duration is not set; "
                "set max_open_duration to bound how long the breaker can stay open"
            )
        if cap is not None:
            if mult == 1:
                raise ValueError(
                    f"{name}.max_open_duration only applies when open_duration_multiplier > 1; "
                    "remove it or set the multiplier"
                )
            if not _number(cap) or cap < self.open_duration:
                raise ValueError(
                    f"{name}.max_open_duration must be a number of seconds >= open_duration "
                    f"({self.open_duration}), got {cap!r}"
                )

    def open_duration_for(self, opens_in_a_row: int) -> float:
        """How long the breaker stays open the ``opens_in_a_row``-th time (0 first)."""
        if self.open_duration_multiplier == 1 or self.max_open_duration is None:
            return self.open_duration
        try:
            grown = self.open_duration * self.open_duration_multiplier**opens_in_a_row
        except OverflowError:
            return self.max_open_duration
        return min(self.max_open_duration, grown)


# -- states, events, results ----------------------------------------------------------------


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Trigger(enum.Enum):
    TRIP = "trip"
    COOL_DOWN_ELAPSED = "cool_down_elapsed"
    PROBE_FAILED = "probe_failed"
    PROBES_PASSED = "probes_passed"


_CLOSED, _OPEN, _HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# (state, trigger) -> next state. Any pair missing here is illegal.
TRANSITIONS: Mapping[tuple[BreakerState, Trigger], BreakerState] = {
    (_CLOSED, Trigger.TRIP): _OPEN,
    (_OPEN, Trigger.COOL_DOWN_ELAPSED): _HALF,
    (_HALF, Trigger.PROBE_FAILED): _OPEN,
    (_HALF, Trigger.PROBES_PASSED): _CLOSED,
}


class Transition(NamedTuple):
    """One state change: when, from, to, and why in words."""

    at: float
    source: BreakerState
    target: BreakerState
    reason: str


class Rejected(msgspec.Struct, kw_only=True, frozen=True):
    """The breaker refused a call.

    Attributes:
        state: OPEN, or HALF_OPEN with every probe slot taken.
        retry_in: Seconds until the breaker will let a probe through (OPEN), or
            None when that depends on probes in flight (HALF_OPEN).
        reason: For the user.
    """

    state: BreakerState
    retry_in: float | None
    reason: str


class PermitError(RuntimeError):
    """A permit was recorded twice, or on a breaker that did not issue it (a runtime
    bug). Nothing changed."""


class Permit:
    """Leave to make one call, from :meth:`CircuitBreaker.acquire`.

    Exactly one of ``record_success``, ``record_failure`` or ``release`` must follow.
    There is no public constructor.
    """

    __slots__ = ("_breaker", "_done", "_generation", "issued_at", "probe")

    _breaker: CircuitBreaker
    _done: bool
    _generation: int
    issued_at: float
    probe: bool

    def __init__(self) -> None:
        raise TypeError("permits come from CircuitBreaker.acquire()")

    @classmethod
    def _issue(cls, breaker: CircuitBreaker, generation: int, *, probe: bool, now: float) -> Permit:
        permit = object.__new__(cls)
        permit._breaker = breaker
        permit._generation = generation
        permit._done = False
        permit.probe = probe
        permit.issued_at = now
        return permit

    @property
    def done(self) -> bool:
        return self._done

    def __repr__(self) -> str:
        kind = "probe" if self.probe else "call"
        return f"<Permit {kind} issued_at={self.issued_at} done={self._done}>"


class BreakerStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of a :class:`CircuitBreaker` at some ``now``.

    Attributes:
        state: The current state.
        window_calls: Calls that counted in the window (ignored errors excluded).
        window_failures: Of those, failures.
        window_slow_calls: Of those, slow ones.
        probes_in_flight: Half-open probes not yet recorded.
        probes_passed: Half-open probes that succeeded.
        open_until: When an open breaker starts probing, or None.
        times_opened: Openings since creation.
        transitions: State changes since creation.
        permitted: Permits issued since creation.
        rejected: Calls refused since creation.
        late_results: Results of permits from before a transition (not counted).
    """

    state: BreakerState
    window_calls: int
    window_failures: int
    window_slow_calls: int
    probes_in_flight: int
    probes_passed: int
    open_until: float | None
    times_opened: int
    transitions: int
    permitted: int
    rejected: int
    late_results: int


# -- the sliding window ---------------------------------------------------------------------


class _Window:
    """Counts of calls, failures and slow calls per time bucket (ring buffer)."""

    __slots__ = ("_calls", "_failures", "_index", "_latest", "_n", "_slow", "_width")

    def __init__(self, span: float, buckets: int) -> None:
        self._n = buckets
        self._width = span / buckets
        # Invariant: slot i holds the counts of absolute bucket _index[i] (None: empty).
        self._index: list[int | None] = [None] * buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._latest = -math.inf

    def _bucket(self, now: float) -> int:
        # Time never runs backwards for the window: a result computed a moment
        # earlier by another task lands in the current bucket instead.
        self._latest = max(self._latest, now)
        return math.floor(self._latest / self._width)

    def add(self, now: float, *, failed: bool, slow: bool) -> None:
        k = self._bucket(now)
        i = k % self._n
        if self._index[i] != k:
            self._index[i] = k
            self._calls[i] = self._failures[i] = self._slow[i] = 0
        self._calls[i] += 1
        self._failures[i] += failed
        self._slow[i] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        k = self._bucket(now)
        calls = failures = slow = 0
        for i, index in enumerate(self._index):
            if index is not None and k - self._n < index <= k:
                calls += self._calls[i]
                failures += self._failures[i]
                slow += self._slow[i]
        return calls, failures, slow

    def clear(self) -> None:
        self._index = [None] * self._n


# -- the breaker ----------------------------------------------------------------------------


class CircuitBreaker:
    """The circuit breaker of one deployment. Not thread-safe; one owner actor.

    Args:
        policy: Thresholds and durations.
        name: The deployment, for messages (``"openai (gpt-4o-mini)"``).
        counts: Decides whether an error counts as a failure; defaults to
            :func:`counts_as_failure`.

    Usage::

        match breaker.acquire(now):
            case Rejected() as r: ...  # fall back, or fail with r.reason
            case permit:
                try: ...call...
                except ProviderError as exc:
                    breaker.record_failure(permit, elapsed, now, exc)
                except BaseException:
                    breaker.release(permit)  # cancelled: no verdict
                    raise
                else:
                    breaker.record_success(permit, elapsed, now)
    """

    def __init__(
        self,
        policy: CircuitBreakerPolicy,
        *,
        name: str = "deployment",
        counts: Callable[[BaseException], bool] = counts_as_failure,
    ) -> None:
        self.policy = policy
        self.name = name
        self._counts = counts
        self._state = BreakerState.CLOSED
        self._window = _Window(policy.window, policy.window_buckets)
        # Bumped on every transition (so it counts them); permits carry the generation
        # they were issued in.
        self._generation = 0
        self._open_until: float | None = None
        self._opens_in_a_row = 0
        # Invariant (HALF_OPEN): _probes_in_flight + _probes_passed <= half_open_probes.
        self._probes_in_flight = 0
        self._probes_passed = 0
        self._times_opened = 0
        self._permitted = 0
        self._rejected = 0
        self._late = 0
        self._history: deque[Transition] = deque(maxlen=_HISTORY)

    # -- queries ----------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The stored state. An OPEN breaker whose duration has passed turns
        HALF_OPEN at the next :meth:`acquire` (nothing runs on a timer here)."""
        return self._state

    @property
    def open_until(self) -> float | None:
        """When an OPEN breaker lets the first probe through; None otherwise."""
        return self._open_until

    @property
    def history(self) -> tuple[Transition, ...]:
        """The most recent transitions, oldest first (at most 64)."""
        return tuple(self._history)

    def allow(self, now: float) -> bool:
        """Whether :meth:`acquire` at ``now`` would issue a permit. Changes nothing."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            assert self._open_until is not None
            return now >= self._open_until
        return self._probe_slots_left() > 0

    def statistics(self, now: float) -> BreakerStatistics:
        calls, failures, slow = self._window.totals(now)
        return BreakerStatistics(
            state=self._state,
            window_calls=calls,
            window_failures=failures,
            window_slow_calls=slow,
            probes_in_flight=self._probes_in_flight,
            probes_passed=self._probes_passed,
            open_until=self._open_until,
            times_opened=self._times_opened,
            transitions=self._generation,
            permitted=self._permitted,
            rejected=self._rejected,
            late_results=self._late,
        )

    # -- events -----------------------------------------------------------------------------

    def acquire(self, now: float) -> Permit | Rejected:
        """Ask to make a call at ``now``.

        Returns:
            A Permit (record its outcome later), or Rejected with when to come back.
        """
        if self._state is BreakerState.OPEN:
            assert self._open_until is not None
            if now < self._open_until:
                self._rejected += 1
                retry_in = self._open_until - now
                return Rejected(
                    state=BreakerState.OPEN,
                    retry_in=retry_in,
                    reason=(
                        f"circuit open for {self.name} ({self._last_reason()}); "
                        f"next probe in {retry_in:.1f} s"
                    ),
                )
            self._transition(
                Trigger.COOL_DOWN_ELAPSED,
                now,
                f"open for {self.policy.open_duration_for(self._opens_in_a_row - 1):g} s",
            )
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_slots_left() <= 0:
                self._rejected += 1
                return Rejected(
                    state=BreakerState.HALF_OPEN,
                    retry_in=None,
                    reason=(
                        f"circuit half-open for {self.name}: all {self.policy.half_open_probes} "
                        "probe calls are in flight"
                    ),
                )
            self._probes_in_flight += 1
            self._permitted += 1
            return Permit._issue(self, self._generation, probe=True, now=now)
        self._permitted += 1
        return Permit._issue(self, self._generation, probe=False, now=now)

    def record_success(self, permit: Permit, duration: float, now: float) -> Transition | None:
        """The call of ``permit`` succeeded after ``duration`` seconds.

        Returns:
            The transition it caused, if any.

        Raises:
            PermitError: the permit was already used or is not from this breaker.
            ValueError: ``duration`` is negative or not finite. Nothing changes.
        """
        self._check(permit, duration)
        return self._outcome(permit, duration, now, failed=False, counted=True, error=None)

    def record_failure(
        self, permit: Permit, duration: float, now: float, error: BaseException
    ) -> Transition | None:
        """The call of ``permit`` failed with ``error`` after ``duration`` seconds.

        Only errors for which the ``counts`` predicate is true count (see the module
        docstring); others are treated as :meth:`release`.

        Returns:
            The transition it caused, if any.

        Raises:
            PermitError: the permit was already used or is not from this breaker.
            ValueError: ``duration`` is negative or not finite. Nothing changes.
        """
        self._check(permit, duration)
        counted = self._counts(error)
        return self._outcome(permit, duration, now, failed=True, counted=counted, error=error)

    def release(self, permit: Permit) -> None:
        """The call of ``permit`` ended without a verdict (cancelled): a probe's slot
        is given back, nothing is counted.

        Raises:
            PermitError: the permit was already used or is not from this breaker.
        """
        self._check(permit, 0.0)
        permit._done = True
        if permit._generation == self._generation and permit.probe:
            self._probes_in_flight -= 1

    # -- internals --------------------------------------------------------------------------

    def _probe_slots_left(self) -> int:
        return self.policy.half_open_probes - self._probes_in_flight - self._probes_passed

    def _check(self, permit: Permit, duration: float) -> None:
        if not isinstance(permit, Permit) or permit._breaker is not self:
            raise PermitError(f"this permit was not issued by the breaker of {self.name}")
        if permit._done:
            raise PermitError("this permit's outcome was already recorded")
        if not _number(duration) or duration < 0:
            raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration!r}")

    def _is_slow(self, duration: float) -> bool:
        limit = self.policy.slow_call_duration
        return limit is not None and duration > limit

    def _outcome(
        self,
        permit: Permit,
        duration: float,
        now: float,
        *,
        failed: bool,
        counted: bool,
        error: BaseException | None,
    ) -> Transition | None:
        permit._done = True
        if permit._generation != self._generation:
            self._late += 1
            return None
        slow = self._is_slow(duration)
        if self._state is BreakerState.HALF_OPEN:
            # Invariant: a current-generation permit in HALF_OPEN is a probe.
            self._probes_in_flight -= 1
            if not counted:
                return None  # no verdict: the slot is free again
            if failed:
                return self._transition(
                    Trigger.PROBE_FAILED, now, f"a probe call failed: {type(error).__name__}"
                )
            if slow:
                return self._transition(
                    Trigger.PROBE_FAILED,
                    now,
                    f"a probe call took {duration:g} s "
                    f"(slow above {self.policy.slow_call_duration:g} s)",
                )
            self._probes_passed += 1
            if self._probes_passed >= self.policy.half_open_probes:
                return self._transition(
                    Trigger.PROBES_PASSED,
                    now,
                    f"{self._probes_passed} probe calls succeeded",
                )
            return None
        # CLOSED (permits are never issued while OPEN, and every transition bumps
        # the generation, so an OPEN-state result is always late).
        if not counted:
            return None
        self._window.add(now, failed=failed, slow=slow)
        return self._maybe_trip(now)

    def _maybe_trip(self, now: float) -> Transition | None:
        p = self.policy
        calls, failures, slow = self._window.totals(now)
        if calls < p.minimum_calls:
            return None
        # Compared in integers-times-100 to keep 10 of 20 at exactly 50 %.
        if failures * 100 >= p.failure_rate_threshold * calls:
            return self._transition(
                Trigger.TRIP,
                now,
                f"{failures} of {calls} calls failed in the last {p.window:g} s",
            )
        if p.slow_call_duration is not None and slow * 100 >= p.slow_call_rate_threshold * calls:
            return self._transition(
                Trigger.TRIP,
                now,
                f"{slow} of {calls} calls took longer than {p.slow_call_duration:g} s "
                f"in the last {p.window:g} s",
            )
        return None

    def _transition(self, trigger: Trigger, now: float, reason: str) -> Transition:
        source = self._state
        target = TRANSITIONS.get((source, trigger))
        if target is None:  # unreachable through the public API; guards the table
            raise RuntimeError(f"illegal breaker transition {trigger.value} from {source.value}")
        self._state = target
        self._generation += 1
        self._probes_in_flight = 0
        self._probes_passed = 0
        if target is BreakerState.OPEN:
            self._open_until = now + self.policy.open_duration_for(self._opens_in_a_row)
            self._opens_in_a_row += 1
            self._times_opened += 1
        elif target is BreakerState.HALF_OPEN:
            self._open_until = None
        else:  # CLOSED: a fresh start; old failures must not trip it again at once
            self._open_until = None
            self._opens_in_a_row = 0
            self._window.clear()
        transition = Transition(now, source, target, reason)
        self._history.append(transition)
        return transition

    def _last_reason(self) -> str:
        return self._history[-1].reason if self._history else "opened"

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value})"
