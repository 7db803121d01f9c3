"""Retry decisions: exact backoff, Retry-After, one deadline, commit point, budget."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectError,
    ContextLengthExceededError,
    OverloadedError,
    QuotaExceededError,
    RateLimitError,
    ReadError,
    ServerError,
    StreamProtocolError,
)
from providers.errors import TimeoutError as PhaseTimeoutError
from swarm.resilience import (
    GiveUp,
    Restart,
    Retry,
    RetryBudget,
    RetryBudgetPolicy,
    RetryPolicy,
    RetryState,
    RetryStateError,
    backoff_cap,
    decide,
    retry_message,
)


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(
        "rate limit on tokens per min",
        provider="openai",
        model="gpt-4o-mini",
        status=429,
        retry_after=retry_after,
    )


def server_error() -> ServerError:
    return ServerError("internal error", provider="openai", model="gpt-4o-mini", status=500)


def auth_error() -> AuthenticationError:
    return AuthenticationError("bad key", provider="openai", model="gpt-4o-mini", status=401)


class FixedFraction(random.Random):
    """A Random whose random() is always ``fraction``: uniform(a, b) is then exact."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


# -- backoff --------------------------------------------------------------------------------


def test_backoff_cap_grows_exponentially_up_to_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, multiplier=2.0, max_delay=10.0)
    caps = [backoff_cap(policy, attempt) for attempt in range(1, 9)]
    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_backoff_cap_saturates_instead_of_overflowing_on_huge_attempts() -> None:
    policy = RetryPolicy(base_delay=1.0, multiplier=10.0, max_delay=30.0)
    assert backoff_cap(policy, 10_000) == 30.0


def test_full_jitter_is_uniform_over_the_whole_cap() -> None:
    # random() = 0.25 makes uniform(0, cap) exactly cap / 4.
    policy = RetryPolicy(max_attempts=6, base_delay=0.5, multiplier=2.0, max_delay=3.0)
    delays = [
        decide(
            policy,
            attempt=attempt,
            error=server_error(),
            committed=False,
            now=0.0,
            deadline=None,
            rng=FixedFraction(0.25),
        )
        for attempt in range(1, 6)
    ]
    assert delays == [
        Retry(delay=0.125, attempt=2),
        Retry(delay=0.25, attempt=3),
        Retry(delay=0.5, attempt=4),
        Retry(delay=0.75, attempt=5),  # cap 4.0 cut to max_delay 3.0
        Retry(delay=0.75, attempt=6),
    ]


def test_seeded_random_gives_exact_reproducible_delays() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, multiplier=3.0, max_delay=20.0)
    state = RetryState(policy, rng=random.Random(1234), deadline=None)
    got = [state.on_failure(server_error(), committed=False, now=0.0) for _ in range(4)]
    reference = random.Random(1234)
    expected_delays = [reference.uniform(0.0, cap) for cap in (1.0, 3.0, 9.0, 20.0)]
    assert got[:3] == [
        Retry(delay=expected_delays[0], attempt=2),
        Retry(delay=expected_delays[1], attempt=3),
        Retry(delay=expected_delays[2], attempt=4),
    ]
    assert got[3] == Retry(delay=expected_delays[3], attempt=5)
    assert state.on_failure(server_error(), committed=False, now=0.0) == GiveUp(
        reason="attempts exhausted (5 of 5)"
    )


def test_no_jitter_waits_exactly_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, multiplier=2.0, max_delay=30.0, jitter="none")
    rng = random.Random(0)
    before = rng.getstate()
    decision = decide(
        policy, attempt=3, error=server_error(), committed=False, now=0.0, deadline=None, rng=rng
    )
    assert decision == Retry(delay=2.0, attempt=4)
    assert rng.getstate() == before


# -- Retry-After ----------------------------------------------------------------------------


def test_retry_after_overrides_backoff_without_drawing_jitter() -> None:
    rng = random.Random(5)
    before = rng.getstate()
    decision = decide(
        RetryPolicy(),
        attempt=1,
        error=rate_limited(retry_after=7.0),
        committed=False,
        now=10.0,
        deadline=None,
        rng=rng,
    )
    assert decision == Retry(delay=7.0, attempt=2)
    assert rng.getstate() == before


def test_retry_after_longer_than_the_backoff_cap_is_still_honoured() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=2.0)
    decision = decide(
        policy,
        attempt=1,
        error=rate_limited(retry_after=12.5),
        committed=False,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert decision == Retry(delay=12.5, attempt=2)


def test_retry_after_is_capped_at_max_retry_after() -> None:
    decision = decide(
        RetryPolicy(max_retry_after=60.0),
        attempt=2,
        error=rate_limited(retry_after=3600.0),
        committed=False,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert decision == Retry(delay=60.0, attempt=3)


def test_retry_after_is_ignored_when_the_policy_says_so() -> None:
    policy = RetryPolicy(respect_retry_after=False, base_delay=1.0)
    decision = decide(
        policy,
        attempt=1,
        error=rate_limited(retry_after=30.0),
        committed=False,
        now=0.0,
        deadline=None,
        rng=FixedFraction(0.5),
    )
    assert decision == Retry(delay=0.5, attempt=2)


# -- one deadline ---------------------------------------------------------------------------


def test_gives_up_at_once_when_the_delay_would_reach_the_deadline() -> None:
    def at_100_with_deadline_105(retry_after: float) -> object:
        return decide(
            RetryPolicy(),
            attempt=1,
            error=rate_limited(retry_after=retry_after),
            committed=False,
            now=100.0,
            deadline=105.0,
            rng=random.Random(0),
        )

    assert at_100_with_deadline_105(5.0) == GiveUp(
        reason="deadline would pass before the next attempt (next attempt in 5.0 s, 5.0 s left)"
    )
    assert at_100_with_deadline_105(4.5) == Retry(delay=4.5, attempt=2)


def test_deadline_already_passed_gives_up() -> None:
    decision = decide(
        RetryPolicy(base_delay=0.0, max_delay=0.0),
        attempt=1,
        error=server_error(),
        committed=False,
        now=50.0,
        deadline=50.0,
        rng=random.Random(0),
    )
    assert isinstance(decision, GiveUp)
    assert decision.reason.startswith("deadline would pass before the next attempt")


def test_one_deadline_across_attempts_on_virtual_time() -> None:
    # base 1 s, x2, no jitter: retries wait 1, 2, 4, 8 s. Each attempt takes 0.5 s.
    # The deadline at t=10 allows attempts at 0, 1.5, 4.0; the 4 s wait after the third
    # (failing at 4.5) would start the fourth at 8.5 < 10: allowed; after it fails at
    # 9.0 the 8 s wait would cross 10: give up at t=9.0 exactly.
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, multiplier=2.0, jitter="none")
    state = RetryState(policy, rng=random.Random(0), deadline=10.0)
    now = 0.0
    starts = [now]
    while True:
        now += 0.5  # the attempt runs and fails
        decision = state.on_failure(server_error(), committed=False, now=now)
        if isinstance(decision, GiveUp):
            break
        assert isinstance(decision, Retry)
        now += decision.delay
        starts.append(now)
    assert starts == [0.0, 1.5, 4.0, 8.5]
    assert now == 9.0
    assert decision.reason == (
        "deadline would pass before the next attempt (next attempt in 8.0 s, 1.0 s left)"
    )
    assert state.done


# -- what is retried ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        rate_limited(),
        server_error(),
        OverloadedError("overloaded", provider="anthropic", model="claude", status=529),
        ConnectError("refused"),
        ReadError("reset"),
        PhaseTimeoutError("idle", phase="idle"),
        StreamProtocolError("truncated"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_retryable_errors_are_retried(error: Exception) -> None:
    decision = decide(
        RetryPolicy(),
        attempt=1,
        error=error,
        committed=False,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert isinstance(decision, Retry)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (auth_error(), "not retryable: AuthenticationError"),
        (
            BadRequestError("bad", provider="openai", model="m", status=400),
            "not retryable: BadRequestError",
        ),
        (
            ContextLengthExceededError("too long", provider="openai", model="m", status=400),
            "not retryable: ContextLengthExceededError",
        ),
        (
            QuotaExceededError("pay up", provider="openai", model="m", status=429),
            "not retryable: QuotaExceededError",
        ),
        (KeyError("x"), "not retryable: KeyError is not a provider error"),
        (ValueError("bug"), "not retryable: ValueError is not a provider error"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_errors_a_retry_cannot_help_give_up_with_the_class_name(
    error: Exception, reason: str
) -> None:
    # Even on attempt 1 with a generous policy, restarts allowed and time to spare.
    decision = decide(
        RetryPolicy(restarts_allowed=True),
        attempt=1,
        error=error,
        committed=True,
        now=0.0,
        deadline=1000.0,
        rng=random.Random(0),
    )
    assert decision == GiveUp(reason=reason)


def test_cancellation_is_refused_not_decided() -> None:
    class FakeCancelled(BaseException):
        pass

    with pytest.raises(TypeError, match="re-raise"):
        decide(
            RetryPolicy(),
            attempt=1,
            error=FakeCancelled(),
            committed=False,
            now=0.0,
            deadline=None,
            rng=random.Random(0),
        )
    state = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None)
    with pytest.raises(TypeError):
        state.on_failure(KeyboardInterrupt(), committed=False, now=0.0)
    assert state.attempt == 1 and not state.done


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        decide(
            RetryPolicy(),
            attempt=0,
            error=server_error(),
            committed=False,
            now=0.0,
            deadline=None,
            rng=random.Random(0),
        )


def test_a_single_attempt_policy_never_retries() -> None:
    decision = decide(
        RetryPolicy(max_attempts=1),
        attempt=1,
        error=server_error(),
        committed=False,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert decision == GiveUp(reason="attempts exhausted (1 of 1)")


# -- the commit point -----------------------------------------------------------------------


def test_committed_attempt_fails_when_restarts_are_not_allowed() -> None:
    decision = decide(
        RetryPolicy(),
        attempt=1,
        error=ReadError("connection reset mid-stream"),
        committed=True,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert decision == GiveUp(
        reason="the response had already started and this request does not allow restarts"
    )


def test_committed_attempt_restarts_when_allowed() -> None:
    decision = decide(
        RetryPolicy(restarts_allowed=True, base_delay=2.0),
        attempt=2,
        error=ReadError("connection reset mid-stream"),
        committed=True,
        now=0.0,
        deadline=None,
        rng=FixedFraction(0.5),
    )
    assert decision == Restart(delay=2.0, attempt=3)  # cap 4.0 at attempt 2, half of it


def test_uncommitted_attempt_retries_even_when_restarts_are_allowed() -> None:
    decision = decide(
        RetryPolicy(restarts_allowed=True),
        attempt=1,
        error=server_error(),
        committed=False,
        now=0.0,
        deadline=None,
        rng=FixedFraction(0.0),
    )
    assert decision == Retry(delay=0.0, attempt=2)


def test_restart_obeys_attempts_and_deadline_too() -> None:
    policy = RetryPolicy(restarts_allowed=True, max_attempts=2)
    exhausted = decide(
        policy,
        attempt=2,
        error=server_error(),
        committed=True,
        now=0.0,
        deadline=None,
        rng=random.Random(0),
    )
    assert exhausted == GiveUp(reason="attempts exhausted (2 of 2)")
    late = decide(
        policy,
        attempt=1,
        error=rate_limited(retry_after=3.0),
        committed=True,
        now=8.0,
        deadline=10.0,
        rng=random.Random(0),
    )
    assert isinstance(late, GiveUp) and late.reason.startswith("deadline would pass")


# -- the budget -----------------------------------------------------------------------------


def test_budget_refusal_gives_up_and_a_give_up_takes_no_slot() -> None:
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=0.0, min_retry_concurrency=1))
    budget.on_request_start()
    budget.on_request_start()
    first = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    second = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    assert isinstance(first.on_failure(server_error(), committed=False, now=0.0), Retry)
    assert budget.active_retries == 1
    refused = second.on_failure(server_error(), committed=False, now=0.0)
    assert refused == GiveUp(
        reason="retry budget exhausted (1 retries in flight, limit 1 for 2 calls)"
    )
    # Decisions that give up for other reasons never touch the budget.
    third = RetryState(RetryPolicy(), rng=random.Random(0), deadline=1.0, budget=budget)
    assert isinstance(third.on_failure(rate_limited(30.0), committed=False, now=0.0), GiveUp)
    assert budget.statistics().retries_refused == 1
    assert budget.statistics().retries_granted == 1


def test_a_429_paced_by_a_local_limiter_is_retried_without_a_budget_slot() -> None:
    """The budget stops retry storms; a 429's retry that waits for a local limiter's
    permit cannot storm, and refusing it turned a limiter's first overshoot (limits
    configured above the provider's) into 22 failed calls of 46 429s."""
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=0.0, min_retry_concurrency=0))
    budget.on_request_start()
    state = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    paced = state.on_failure(rate_limited(1.0), committed=False, now=0.0, paced=True)
    assert paced == Retry(delay=1.0, attempt=2) and budget.active_retries == 0
    # Not paced (no local limiter), or not a 429: the budget decides as before.
    unpaced = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    assert isinstance(unpaced.on_failure(rate_limited(1.0), committed=False, now=0.0), GiveUp)
    other = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    refused = other.on_failure(server_error(), committed=False, now=0.0, paced=True)
    assert isinstance(refused, GiveUp) and "retry budget exhausted" in refused.reason
    # The paced call holds no slot, so closing it returns nothing.
    state.close()
    assert budget.active_retries == 0 and budget.statistics().retries_granted == 0


def test_retry_state_holds_one_slot_per_call_and_returns_it() -> None:
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=0.0, min_retry_concurrency=5))
    budget.on_request_start()
    state = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    for expected_attempt in (2, 3, 4, 5):
        decision = state.on_failure(server_error(), committed=False, now=0.0)
        assert isinstance(decision, Retry) and decision.attempt == expected_attempt
        assert budget.active_retries == 1  # the previous retry's slot came back first
    assert isinstance(state.on_failure(server_error(), committed=False, now=0.0), GiveUp)
    assert budget.active_retries == 0
    state.close()
    state.close()  # idempotent
    assert budget.active_retries == 0


def test_closing_after_a_successful_retry_returns_the_slot() -> None:
    budget = RetryBudget(RetryBudgetPolicy())
    budget.on_request_start()
    state = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None, budget=budget)
    state.on_failure(server_error(), committed=False, now=0.0)
    assert budget.active_retries == 1
    state.close()  # the retry succeeded
    assert budget.active_retries == 0


def test_a_finished_retry_state_refuses_more_failures_and_changes_nothing() -> None:
    state = RetryState(RetryPolicy(), rng=random.Random(0), deadline=None)
    state.on_failure(auth_error(), committed=False, now=0.0)
    assert state.done
    with pytest.raises(RetryStateError, match="gave up: not retryable: AuthenticationError"):
        state.on_failure(server_error(), committed=False, now=1.0)
    assert state.attempt == 1
    assert state.last_decision == GiveUp(reason="not retryable: AuthenticationError")


# -- messages -------------------------------------------------------------------------------


def test_retry_message_reads_like_the_conventions_example() -> None:
    message = retry_message(rate_limited(), Retry(delay=1.2, attempt=2), max_attempts=5)
    assert message == (
        "429 from openai (gpt-4o-mini): rate limit on tokens per min; "
        "retrying in 1.2 s (attempt 2 of 5)"
    )


def test_short_delays_are_shown_in_milliseconds() -> None:
    message = retry_message(server_error(), Retry(delay=0.25, attempt=3), max_attempts=4)
    assert message.endswith("; retrying in 250 ms (attempt 3 of 4)")


def test_restart_and_give_up_messages() -> None:
    error = ReadError("connection to openai (gpt-4o) broke mid-response")
    restart = retry_message(error, Restart(delay=2.0, attempt=2), max_attempts=3)
    assert restart == (
        "connection to openai (gpt-4o) broke mid-response; restarting from the beginning in "
        "2.0 s (attempt 2 of 3); discard the partial response"
    )
    state = RetryState(RetryPolicy(max_attempts=1), rng=random.Random(0), deadline=None)
    decision = state.on_failure(error, committed=False, now=0.0)
    assert state.message(error, decision) == (
        "connection to openai (gpt-4o) broke mid-response; giving up: attempts exhausted (1 of 1)"
    )


def test_messages_of_foreign_errors_are_scrubbed_of_keys() -> None:
    error = ValueError("request with sk-abcdefghijklmnop1234 failed")
    message = retry_message(error, GiveUp(reason="x"), max_attempts=1)
    assert "abcdefghijklmnop" not in message
    assert message.startswith("ValueError: request with sk-***")


# -- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"base_delay": -1.0}, "base_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": float("nan")}, "multiplier"),
        ({"max_retry_after": -1.0}, "max_retry_after"),
        ({"jitter": "equal"}, "jitter"),
    ],
)
def test_policy_refuses_bad_values_naming_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RetryPolicy(**fields)  # type: ignore[arg-type]


def test_policy_from_config_refuses_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="max_attemps"):
        msgspec.convert({"max_attemps": 3}, RetryPolicy)
    assert msgspec.convert({"max_attempts": 3}, RetryPolicy).max_attempts == 3


def test_restarts_are_off_by_default() -> None:
    assert RetryPolicy().restarts_allowed is False


# -- properties -----------------------------------------------------------------------------

policies = st.builds(
    lambda base, extra, mult, attempts, cap: RetryPolicy(
        base_delay=base,
        max_delay=base + extra,
        multiplier=mult,
        max_attempts=attempts,
        max_retry_after=cap,
        restarts_allowed=True,
    ),
    st.floats(0.0, 10.0),
    st.floats(0.0, 100.0),
    st.floats(1.0, 10.0),
    st.integers(1, 12),
    st.floats(0.0, 120.0),
)


@settings(max_examples=300)
@given(
    policy=policies,
    attempt=st.integers(1, 15),
    retry_after=st.none() | st.floats(0.0, 10_000.0),
    committed=st.booleans(),
    now=st.floats(0.0, 1e6),
    remaining=st.none() | st.floats(0.0, 500.0),
    seed=st.integers(0, 2**32),
)
def test_any_retry_respects_attempts_delay_bounds_and_deadline(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    committed: bool,
    now: float,
    remaining: float | None,
    seed: int,
) -> None:
    deadline = None if remaining is None else now + remaining
    decision = decide(
        policy,
        attempt=attempt,
        error=rate_limited(retry_after),
        committed=committed,
        now=now,
        deadline=deadline,
        rng=random.Random(seed),
    )
    if isinstance(decision, GiveUp):
        return
    assert isinstance(decision, Restart if committed else Retry)
    assert decision.attempt == attempt + 1 <= policy.max_attempts
    assert decision.delay >= 0
    if retry_after is not None:
        assert decision.delay == min(retry_after, policy.max_retry_after)
    else:
        assert decision.delay <= backoff_cap(policy, attempt) <= policy.max_delay
    if deadline is not None:
        assert now + decision.delay < deadline
