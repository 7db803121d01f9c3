"""The circuit breaker: exact transitions on virtual time, which errors count, and a
state-machine property test against a reference model."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import providers.errors as errors_module
from providers.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    ContentFilterError,
    ContextLengthExceededError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ReadError,
    RequestError,
    ServerError,
    SSEError,
    ToolArgumentsError,
)
from providers.errors import TimeoutError as PhaseTimeoutError
from swarm.resilience import (
    FAILURE_VERDICTS,
    BreakerState,
    CircuitBreaker,
    CircuitBreakerPolicy,
    Permit,
    PermitError,
    Rejected,
    counts_as_failure,
)
from swarm.resilience.breaker import TRANSITIONS

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def api(cls: type[APIError], status: int = 500) -> APIError:
    return cls("boom", provider="openai", model="gpt-4o", status=status)


def server() -> APIError:
    return api(ServerError)


def permit_of(breaker: CircuitBreaker, now: float) -> Permit:
    result = breaker.acquire(now)
    assert isinstance(result, Permit), result
    return result


def call(breaker: CircuitBreaker, now: float, *, fail: bool, duration: float = 0.1) -> None:
    permit = permit_of(breaker, now)
    if fail:
        breaker.record_failure(permit, duration, now, server())
    else:
        breaker.record_success(permit, duration, now)


SMALL = CircuitBreakerPolicy(
    failure_rate_threshold=50.0,
    minimum_calls=4,
    window=10.0,
    window_buckets=10,
    open_duration=30.0,
    half_open_probes=2,
)


# -- closed -> open --------------------------------------------------------------------------


def test_opens_when_the_failure_rate_reaches_the_threshold_with_enough_calls() -> None:
    breaker = CircuitBreaker(SMALL, name="openai (gpt-4o)")
    call(breaker, 0.0, fail=True)
    call(breaker, 1.0, fail=True)
    call(breaker, 2.0, fail=True)
    assert breaker.state is CLOSED  # 3 of 3 failed, but fewer than minimum_calls
    call(breaker, 3.0, fail=False)
    assert breaker.state is OPEN  # 3 of 4 >= 50 %
    assert breaker.open_until == 33.0
    (transition,) = breaker.history
    assert transition.at == 3.0 and (transition.source, transition.target) == (CLOSED, OPEN)
    assert transition.reason == "3 of 4 calls failed in the last 10 s"


def test_exactly_the_threshold_trips_and_just_below_does_not() -> None:
    below = CircuitBreaker(SMALL)
    for t, fail in enumerate([True, False, False, False, False]):
        call(below, float(t), fail=fail)
    assert below.state is CLOSED  # 1 of 5 = 20 %
    at = CircuitBreaker(SMALL)
    for t, fail in enumerate([True, False, True, False]):
        call(at, float(t), fail=fail)
    assert at.state is OPEN  # 2 of 4 = 50 %


def test_failures_older_than_the_window_fall_out() -> None:
    # Buckets of 1 s; at t=10.0 the window holds buckets 1..10, so t=0.5 is gone.
    old = CircuitBreaker(SMALL)
    for _ in range(3):
        call(old, 0.5, fail=True)
    call(old, 10.0, fail=True)
    assert old.state is CLOSED
    assert old.statistics(10.0).window_calls == 1
    # At t=9.5 the bucket of t=0.5 is still in: 4 of 4 failed.
    recent = CircuitBreaker(SMALL)
    for _ in range(3):
        call(recent, 0.5, fail=True)
    call(recent, 9.5, fail=True)
    assert recent.state is OPEN


def test_the_window_edge_is_exact_even_before_the_next_call() -> None:
    breaker = CircuitBreaker(SMALL)
    for _ in range(3):
        call(breaker, 0.5, fail=True)
    assert breaker.statistics(9.999).window_failures == 3
    assert breaker.statistics(10.0).window_failures == 0
    assert breaker.statistics(10.0).window_calls == 0


def test_closing_starts_from_an_empty_window() -> None:
    # A window long enough to still hold the failures that opened the breaker.
    policy = msgspec.structs.replace(SMALL, window=120.0, window_buckets=12, half_open_probes=1)
    breaker = tripped(policy)
    probe = permit_of(breaker, 30.0)
    breaker.record_success(probe, 0.1, 30.0)
    assert breaker.state is CLOSED
    assert breaker.statistics(30.0).window_calls == 0
    call(breaker, 31.0, fail=True)
    call(breaker, 31.0, fail=True)
    assert breaker.state is CLOSED  # 2 calls: fewer than minimum_calls again


def test_slow_calls_open_the_breaker_on_their_own_rate() -> None:
    policy = CircuitBreakerPolicy(
        minimum_calls=2,
        window=60.0,
        slow_call_duration=5.0,
        slow_call_rate_threshold=50.0,
        open_duration=10.0,
    )
    breaker = CircuitBreaker(policy)
    call(breaker, 0.0, fail=False, duration=5.0)  # exactly the limit is not slow
    call(breaker, 1.0, fail=False, duration=1.0)
    assert breaker.state is CLOSED
    call(breaker, 2.0, fail=False, duration=5.5)
    assert breaker.state is CLOSED  # 1 of 3 slow
    call(breaker, 3.0, fail=False, duration=9.0)
    assert breaker.state is OPEN  # 2 of 4 slow
    assert breaker.history[-1].reason == "2 of 4 calls took longer than 5 s in the last 60 s"


def test_slow_calls_do_not_count_when_slow_tracking_is_off() -> None:
    breaker = CircuitBreaker(CircuitBreakerPolicy(minimum_calls=2))
    for t in range(10):
        call(breaker, float(t), fail=False, duration=1e6)
    assert breaker.state is CLOSED
    assert breaker.statistics(10.0).window_slow_calls == 0


# -- open -> half-open -> closed | open ----------------------------------------------------------


def tripped(policy: CircuitBreakerPolicy = SMALL, at: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(policy, name="sim (m)")
    for _ in range(policy.minimum_calls):
        call(breaker, at, fail=True)
    assert breaker.state is OPEN
    return breaker


def test_open_rejects_until_the_duration_has_passed_exactly() -> None:
    breaker = tripped()
    assert breaker.open_until == 30.0
    rejected = breaker.acquire(10.5)
    assert isinstance(rejected, Rejected)
    assert rejected.state is OPEN and rejected.retry_in == 19.5
    assert rejected.reason == (
        "circuit open for sim (m) (4 of 4 calls failed in the last 10 s); next probe in 19.5 s"
    )
    assert not breaker.allow(29.999)
    assert isinstance(breaker.acquire(29.999), Rejected)
    assert breaker.allow(30.0)
    probe = breaker.acquire(30.0)
    assert isinstance(probe, Permit) and probe.probe
    assert breaker.state is HALF_OPEN
    assert breaker.statistics(30.0).rejected == 2


def test_half_open_lets_exactly_the_probes_through_and_closes_when_they_succeed() -> None:
    breaker = tripped()
    first, second = permit_of(breaker, 30.0), permit_of(breaker, 30.5)
    third = breaker.acquire(31.0)
    assert isinstance(third, Rejected)
    assert third.state is HALF_OPEN and third.retry_in is None
    assert not breaker.allow(31.0)
    breaker.record_success(first, 1.0, 32.0)
    assert breaker.state is HALF_OPEN
    assert isinstance(breaker.acquire(32.0), Rejected)  # a passed probe keeps its slot
    transition = breaker.record_success(second, 1.0, 33.0)
    assert transition is not None and transition.target is CLOSED
    assert breaker.state is CLOSED and breaker.open_until is None
    assert breaker.statistics(33.0).window_calls == 0  # a fresh window
    call(breaker, 34.0, fail=True)  # one failure after closing does not reopen
    assert breaker.state is CLOSED


def test_a_failed_probe_reopens_at_once() -> None:
    breaker = tripped()
    first, second = permit_of(breaker, 30.0), permit_of(breaker, 30.0)
    transition = breaker.record_failure(first, 2.0, 35.0, api(OverloadedError, 529))
    assert transition is not None and (transition.source, transition.target) == (HALF_OPEN, OPEN)
    assert transition.reason == "a probe call failed: OverloadedError"
    assert breaker.open_until == 65.0
    # The other probe's result arrives late: counted as late, moves nothing.
    assert breaker.record_success(second, 1.0, 36.0) is None
    assert breaker.state is OPEN
    assert breaker.statistics(36.0).late_results == 1


def test_a_slow_probe_reopens() -> None:
    policy = msgspec.structs.replace(SMALL, slow_call_duration=2.0)
    breaker = tripped(policy)
    probe = permit_of(breaker, 30.0)
    breaker.record_success(probe, 2.5, 32.5)
    assert breaker.state is OPEN
    assert breaker.history[-1].reason == "a probe call took 2.5 s (slow above 2 s)"


def test_a_cancelled_or_ignored_probe_gives_its_slot_back() -> None:
    breaker = tripped(msgspec.structs.replace(SMALL, half_open_probes=1))
    probe = permit_of(breaker, 30.0)
    assert isinstance(breaker.acquire(30.0), Rejected)
    breaker.release(probe)  # cancelled: no verdict
    again = permit_of(breaker, 31.0)
    breaker.record_failure(again, 0.1, 31.1, api(BadRequestError, 400))  # the caller's fault
    assert breaker.state is HALF_OPEN
    last = permit_of(breaker, 32.0)
    breaker.record_success(last, 0.1, 32.1)
    assert breaker.state is CLOSED


def test_open_duration_grows_for_reopenings_in_a_row_and_resets_on_close() -> None:
    policy = msgspec.structs.replace(
        SMALL, half_open_probes=1, open_duration_multiplier=2.0, max_open_duration=100.0
    )
    breaker = tripped(policy)
    assert breaker.open_until == 30.0
    now = 30.0
    expected = [60.0, 100.0, 100.0]  # 30 * 2, 30 * 4 capped, capped
    for duration in expected:
        probe = permit_of(breaker, now)
        breaker.record_failure(probe, 0.1, now, server())
        assert breaker.open_until == now + duration
        now += duration
    probe = permit_of(breaker, now)
    breaker.record_success(probe, 0.1, now)
    assert breaker.state is CLOSED
    for _ in range(4):
        call(breaker, now, fail=True)
    assert breaker.open_until == now + 30.0


def test_results_from_before_an_opening_do_not_count_after_it() -> None:
    breaker = CircuitBreaker(SMALL)
    stale = permit_of(breaker, 0.0)
    for _ in range(4):
        call(breaker, 1.0, fail=True)
    assert breaker.state is OPEN
    assert breaker.record_success(stale, 0.5, 2.0) is None
    probe = permit_of(breaker, 31.0)
    assert probe.probe
    stats = breaker.statistics(31.0)
    assert (stats.probes_in_flight, stats.probes_passed, stats.late_results) == (1, 0, 1)


def test_ignored_errors_neither_fail_nor_succeed() -> None:
    breaker = CircuitBreaker(SMALL)
    for cls, status in [
        (RateLimitError, 429),
        (AuthenticationError, 401),
        (BadRequestError, 400),
        (QuotaExceededError, 429),
    ]:
        for _ in range(10):
            breaker.record_failure(permit_of(breaker, 0.0), 0.1, 0.0, api(cls, status))
    assert breaker.state is CLOSED
    assert breaker.statistics(0.0).window_calls == 0
    for _ in range(4):
        call(breaker, 0.0, fail=True)
    assert breaker.state is OPEN  # the ignored ones did not dilute the rate


# -- which errors count --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (api(ServerError), True),
        (api(OverloadedError, 529), True),
        (PhaseTimeoutError("idle", phase="idle"), True),
        (PhaseTimeoutError("first token", phase="first_token"), True),
        (PhaseTimeoutError("connect", phase="connect"), True),
        (ConnectError("refused"), True),
        (ReadError("reset"), True),
        (SSEError("bad utf-8"), True),
        (PhaseTimeoutError("call deadline", phase="deadline"), False),
        (PhaseTimeoutError("pool", phase="pool"), False),
        (api(RateLimitError, 429), False),
        (api(QuotaExceededError, 429), False),
        (api(AuthenticationError, 401), False),
        (api(NotFoundError, 404), False),
        (api(BadRequestError, 400), False),
        (api(ContextLengthExceededError, 400), False),
        (api(ContentFilterError, 400), False),
        (RequestError("cannot express"), False),
        (ToolArgumentsError("bad args", tool="t"), False),
        (KeyError("our own bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_which_errors_count_against_the_deployment(error: BaseException, counts: bool) -> None:
    assert counts_as_failure(error) is counts


def test_every_provider_error_class_has_an_explicit_verdict() -> None:
    """A new error class in providers.errors must be given a verdict on purpose: none
    may fall through to the generic roots."""
    for name in errors_module.__all__:
        cls = getattr(errors_module, name)
        if not isinstance(cls, type) or not issubclass(cls, ProviderError):
            continue
        if cls in (ProviderError, APIError):
            continue
        decided_by = next((c for c in cls.__mro__ if c in FAILURE_VERDICTS), None)
        assert decided_by is not None, f"{name} has no entry in FAILURE_VERDICTS"
        assert decided_by not in (ProviderError, APIError), name


# -- misuse ------------------------------------------------------------------------------------


def test_permit_misuse_raises_and_changes_nothing() -> None:
    breaker = CircuitBreaker(SMALL)
    other = CircuitBreaker(SMALL)
    permit = permit_of(breaker, 0.0)
    breaker.record_failure(permit, 0.1, 0.0, server())
    before = breaker.statistics(0.0)
    with pytest.raises(PermitError, match="already recorded"):
        breaker.record_success(permit, 0.1, 0.0)
    with pytest.raises(PermitError):
        breaker.release(permit)
    with pytest.raises(PermitError, match="not issued by"):
        other.record_success(permit, 0.1, 0.0)
    fresh = permit_of(breaker, 0.0)
    after_acquire = breaker.statistics(0.0)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="duration"):
            breaker.record_failure(fresh, bad, 0.0, server())
    assert not fresh.done
    assert breaker.statistics(0.0) == after_acquire
    assert before.window_failures == after_acquire.window_failures == 1
    with pytest.raises(TypeError):
        Permit()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 101.0}, "failure_rate_threshold"),
        ({"slow_call_rate_threshold": -5.0}, "slow_call_rate_threshold"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"window_buckets": 0}, "window_buckets"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"window": 0.0}, "window"),
        ({"open_duration": math.inf}, "open_duration"),
        ({"slow_call_duration": 0.0}, "slow_call_duration"),
        ({"open_duration_multiplier": 0.5}, "open_duration_multiplier"),
        ({"open_duration_multiplier": 2.0}, "set max_open_duration"),
        ({"max_open_duration": 60.0}, "only applies when open_duration_multiplier"),
        (
            {"open_duration": 30.0, "open_duration_multiplier": 2.0, "max_open_duration": 10.0},
            "max_open_duration must be",
        ),
    ],
)
def test_policy_refuses_bad_values_naming_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CircuitBreakerPolicy(**fields)  # type: ignore[arg-type]


def test_policy_from_config_refuses_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="failure_threshold"):
        msgspec.convert({"failure_threshold": 50}, CircuitBreakerPolicy)


def test_the_transition_table_is_the_documented_cycle() -> None:
    assert {(s.value, t.value, d.value) for (s, t), d in TRANSITIONS.items()} == {
        ("closed", "trip", "open"),
        ("open", "cool_down_elapsed", "half_open"),
        ("half_open", "probe_failed", "open"),
        ("half_open", "probes_passed", "closed"),
    }


# -- the state machine, at random ---------------------------------------------------------------

ERRORS: list[BaseException] = [
    api(ServerError),
    ConnectError("refused"),
    PhaseTimeoutError("idle", phase="idle"),
    api(RateLimitError, 429),
    api(AuthenticationError, 401),
    PhaseTimeoutError("deadline", phase="deadline"),
]

LEGAL_MOVES = {(source, target) for (source, _), target in TRANSITIONS.items()}

POLICY = CircuitBreakerPolicy(
    failure_rate_threshold=50.0,
    minimum_calls=3,
    window=4.0,
    window_buckets=4,
    slow_call_duration=2.0,
    slow_call_rate_threshold=75.0,
    open_duration=5.0,
    open_duration_multiplier=2.0,
    max_open_duration=20.0,
    half_open_probes=2,
)


class BreakerMachine(RuleBasedStateMachine):
    """Random acquire/record/release/misuse/time sequences against a reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.breaker = CircuitBreaker(POLICY)
        self.now = 0.0
        self.open: list[Permit] = []  # permits without an outcome
        self.done: list[Permit] = []
        # The generation (transitions so far) each permit was issued in.
        self.generation_of: dict[int, int] = {}
        self.generation = 0
        # The reference window: counted outcomes (time, failed, slow) since the last close.
        self.outcomes: list[tuple[float, bool, bool]] = []

    def window_totals(self) -> tuple[int, int, int]:
        width = POLICY.window / POLICY.window_buckets
        current = math.floor(self.now / width)
        inside = [
            o for o in self.outcomes if math.floor(o[0] / width) > current - POLICY.window_buckets
        ]
        return len(inside), sum(o[1] for o in inside), sum(o[2] for o in inside)

    def live_probes(self) -> list[Permit]:
        return [p for p in self.open if p.probe and self.generation_of[id(p)] == self.generation]

    def sync(self, state_before: BreakerState) -> int:
        """Catch up with the transitions the last event caused; returns how many."""
        total = self.breaker.statistics(self.now).transitions
        happened = total - self.generation
        assert happened in (0, 1)  # one event moves the breaker at most once
        if happened:
            t = self.breaker.history[-1]
            assert (t.source, t.target) in LEGAL_MOVES
            event(f"{t.source.value} -> {t.target.value}")
            assert t.source is state_before and t.at == self.now
            self.generation = total
            if t.target is CLOSED:
                self.outcomes = []
        return happened

    @initialize(trip=st.booleans())
    def maybe_start_tripped(self, trip: bool) -> None:
        """Half the runs start open, so recovery (half-open, probes) is well explored."""
        if trip:
            for _ in range(POLICY.minimum_calls):
                permit = self.breaker.acquire(self.now)
                assert isinstance(permit, Permit)
                self.generation_of[id(permit)] = self.generation
                self.record(permit, 0.1, ERRORS[0])
            assert self.breaker.state is OPEN

    @rule(dt=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def acquire(self) -> None:
        state = self.breaker.state
        open_until = self.breaker.open_until
        live_before = len(self.live_probes())
        allowed = self.breaker.allow(self.now)
        result = self.breaker.acquire(self.now)
        assert isinstance(result, Permit) == allowed
        if state is OPEN:
            assert open_until is not None
            if self.now < open_until:
                # Open rejects until the duration has passed, and says exactly when.
                assert isinstance(result, Rejected)
                assert result.retry_in == open_until - self.now
            else:
                assert isinstance(result, Permit) and result.probe
        if state is HALF_OPEN:
            passed = self.breaker.statistics(self.now).probes_passed
            assert isinstance(result, Permit) == (live_before + passed < POLICY.half_open_probes)
        if state is CLOSED:
            assert isinstance(result, Permit) and not result.probe
        self.sync(state)
        if isinstance(result, Permit):
            self.open.append(result)
            self.generation_of[id(result)] = self.generation

    def take(self, data: st.DataObject) -> Permit:
        return self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), duration=st.sampled_from([0.1, 1.0, 2.0, 3.0]))
    def succeed(self, data: st.DataObject, duration: float) -> None:
        self.record(self.take(data), duration, None)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), duration=st.sampled_from([0.1, 1.0, 3.0]), error=st.sampled_from(ERRORS))
    def fail(self, data: st.DataObject, duration: float, error: BaseException) -> None:
        self.record(self.take(data), duration, error)

    def record(self, permit: Permit, duration: float, error: BaseException | None) -> None:
        state = self.breaker.state
        current = self.generation_of[id(permit)] == self.generation
        counted = error is None or counts_as_failure(error)
        slow = duration > 2.0
        late_before = self.breaker.statistics(self.now).late_results
        if error is None:
            self.breaker.record_success(permit, duration, self.now)
        else:
            self.breaker.record_failure(permit, duration, self.now, error)
        self.done.append(permit)
        moved = self.sync(state)
        if not current:
            assert not moved  # a late result moves nothing
            assert self.breaker.statistics(self.now).late_results == late_before + 1
        elif state is CLOSED:
            if counted:
                self.outcomes.append((self.now, error is not None, slow))
            calls, failures, slows = self.window_totals()
            should_trip = (
                counted
                and calls >= POLICY.minimum_calls
                and (
                    failures * 100 >= POLICY.failure_rate_threshold * calls
                    or slows * 100 >= POLICY.slow_call_rate_threshold * calls
                )
            )
            assert self.breaker.state is (OPEN if should_trip else CLOSED)
            stats = self.breaker.statistics(self.now)
            if not should_trip:
                assert (stats.window_calls, stats.window_failures, stats.window_slow_calls) == (
                    calls,
                    failures,
                    slows,
                )
        else:
            assert state is HALF_OPEN and permit.probe
            if counted and (error is not None or slow):
                assert self.breaker.state is OPEN
            elif not counted:
                assert not moved  # the slot is simply free again

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        permit = self.take(data)
        state = self.breaker.state
        self.breaker.release(permit)
        self.done.append(permit)
        assert not self.sync(state)

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def misuse(self, data: st.DataObject) -> None:
        permit = data.draw(st.sampled_from(self.done))
        before = (self.breaker.statistics(self.now), self.breaker.history, self.breaker.state)
        with pytest.raises(PermitError):
            self.breaker.record_success(permit, 0.1, self.now)
        with pytest.raises(PermitError):
            self.breaker.record_failure(permit, 0.1, self.now, ERRORS[0])
        with pytest.raises(PermitError):
            self.breaker.release(permit)
        assert (self.breaker.statistics(self.now), self.breaker.history, self.breaker.state) == (
            before
        )

    @invariant()
    def probes_never_exceed_the_configured_number(self) -> None:
        stats = self.breaker.statistics(self.now)
        assert stats.probes_in_flight + stats.probes_passed <= POLICY.half_open_probes
        assert stats.probes_in_flight == len(self.live_probes())
        if self.breaker.state is not HALF_OPEN:
            assert stats.probes_in_flight == stats.probes_passed == 0

    @invariant()
    def open_until_is_set_exactly_when_open(self) -> None:
        assert (self.breaker.open_until is not None) == (self.breaker.state is OPEN)
        if self.breaker.state is OPEN:
            assert self.breaker.open_until is not None
            opened_for = self.breaker.open_until - self.breaker.history[-1].at
            assert opened_for in (5.0, 10.0, 20.0)  # 5 s, doubled per reopening, cap 20 s


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
test_breaker_state_machine = BreakerMachine.TestCase
