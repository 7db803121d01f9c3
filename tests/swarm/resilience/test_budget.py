"""The retry budget: Envoy's limit, exact counters, and a full outage held in check."""

from __future__ import annotations

import math
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import ServerError
from swarm.resilience import (
    BudgetAccountingError,
    GiveUp,
    Retry,
    RetryBudget,
    RetryBudgetPolicy,
    RetryPolicy,
    RetryState,
)


def outage_error() -> ServerError:
    return ServerError("upstream down", provider="sim", model="m", status=503)


def budget_with(active: int, *, percent: float = 20.0, minimum: int = 3) -> RetryBudget:
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=percent, min_retry_concurrency=minimum))
    for _ in range(active):
        budget.on_request_start()
    return budget


@pytest.mark.parametrize(
    ("active", "limit"),
    [(0, 3), (1, 3), (10, 3), (15, 3), (19, 3), (20, 4), (24, 4), (25, 5), (100, 20), (1001, 200)],
)
def test_limit_is_the_larger_of_the_minimum_and_the_floored_share(active: int, limit: int) -> None:
    assert budget_with(active).retry_limit == limit


def test_share_is_not_lost_to_float_rounding() -> None:
    # 9.2 * 750 / 100 is 68.99999999999999 in floats; 9.2 % of 750 calls is 69 retries.
    assert budget_with(750, percent=9.2, minimum=0).retry_limit == 69
    assert budget_with(1500, percent=4.6, minimum=0).retry_limit == 69


def test_retries_are_granted_until_the_limit_then_refused_until_one_ends() -> None:
    budget = budget_with(20)  # limit 4
    assert [budget.try_start_retry() for _ in range(6)] == [True] * 4 + [False] * 2
    assert budget.active_retries == 4
    budget.on_retry_end()
    assert budget.try_start_retry() is True
    assert budget.try_start_retry() is False
    stats = budget.statistics()
    assert stats == stats.__class__(
        active_requests=20,
        active_retries=4,
        retry_limit=4,
        retries_granted=5,
        retries_refused=3,
    )


def test_zero_budget_with_no_minimum_refuses_every_retry() -> None:
    budget = budget_with(1000, percent=0.0, minimum=0)
    assert budget.try_start_retry() is False


def test_a_fall_in_calls_never_revokes_granted_retries() -> None:
    budget = budget_with(40)  # limit 8
    for _ in range(8):
        assert budget.try_start_retry()
    for _ in range(30):
        budget.on_request_end()  # calls without retries finish: limit drops to 3
    assert budget.retry_limit == 3
    assert budget.active_retries == 8
    assert budget.try_start_retry() is False
    for _ in range(5):
        budget.on_retry_end()
    assert budget.try_start_retry() is False  # 3 in flight, limit 3
    budget.on_retry_end()
    assert budget.try_start_retry() is True


def test_unmatched_ends_raise_and_change_nothing() -> None:
    budget = RetryBudget(RetryBudgetPolicy())
    with pytest.raises(BudgetAccountingError):
        budget.on_request_end()
    with pytest.raises(BudgetAccountingError):
        budget.on_retry_end()
    assert budget.statistics() == RetryBudget(RetryBudgetPolicy()).statistics()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"budget_percent": -1.0}, "budget_percent"),
        ({"budget_percent": 100.5}, "budget_percent"),
        ({"budget_percent": float("nan")}, "budget_percent"),
        ({"budget_percent": True}, "budget_percent"),
        ({"min_retry_concurrency": -1}, "min_retry_concurrency"),
        ({"min_retry_concurrency": 1.5}, "min_retry_concurrency"),
    ],
)
def test_policy_refuses_bad_values_naming_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RetryBudgetPolicy(**fields)  # type: ignore[arg-type]


def test_policy_defaults_are_envoys_and_unknown_fields_are_refused() -> None:
    policy = RetryBudgetPolicy()
    assert (policy.budget_percent, policy.min_retry_concurrency) == (20.0, 3)
    with pytest.raises(msgspec.ValidationError, match="budget_pct"):
        msgspec.convert({"budget_pct": 10}, RetryBudgetPolicy)


# -- random operation sequences against a reference -----------------------------------------

operations = st.lists(
    st.sampled_from(["request_start", "request_end", "retry_start", "retry_end"]), max_size=300
)


@settings(max_examples=300)
@given(
    ops=operations,
    percent=st.sampled_from([0.0, 5.0, 20.0, 33.3, 50.0, 100.0]),
    minimum=st.integers(0, 5),
)
def test_random_sequences_grant_exactly_while_under_the_limit(
    ops: list[str], percent: float, minimum: int
) -> None:
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=percent, min_retry_concurrency=minimum))
    requests = retries = granted = refused = 0
    for op in ops:
        limit = max(minimum, math.floor(percent * requests / 100 + 1e-9))
        assert budget.retry_limit == limit
        if op == "request_start":
            budget.on_request_start()
            requests += 1
        elif op == "request_end":
            if requests == 0:
                with pytest.raises(BudgetAccountingError):
                    budget.on_request_end()
            else:
                budget.on_request_end()
                requests -= 1
        elif op == "retry_start":
            ok = budget.try_start_retry()
            assert ok == (retries < limit)
            if ok:
                retries += 1
                granted += 1
                assert retries <= limit  # the invariant right after a grant
            else:
                refused += 1
        else:
            if retries == 0:
                with pytest.raises(BudgetAccountingError):
                    budget.on_retry_end()
            else:
                budget.on_retry_end()
                retries -= 1
        stats = budget.statistics()
        assert (stats.active_requests, stats.active_retries) == (requests, retries)
        assert (stats.retries_granted, stats.retries_refused) == (granted, refused)


# -- a full outage --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    callers=st.integers(1, 120),
    percent=st.sampled_from([0.0, 10.0, 20.0, 50.0]),
    minimum=st.integers(0, 4),
    max_attempts=st.integers(2, 6),
    seed=st.integers(0, 2**32),
)
def test_retries_in_flight_never_exceed_the_budget_during_a_full_outage(
    callers: int, percent: float, minimum: int, max_attempts: int, seed: int
) -> None:
    """A swarm keeps ``callers`` calls in flight on a deployment that fails every
    attempt. Each call retries through RetryState; a finished call is replaced by a
    new one (closed-loop load). Whatever the interleaving, retries in flight stay
    within max(min, floor(percent * callers / 100))."""
    schedule = random.Random(seed)
    budget = RetryBudget(RetryBudgetPolicy(budget_percent=percent, min_retry_concurrency=minimum))
    policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.1, max_delay=1.0)
    limit = max(minimum, math.floor(percent * callers / 100 + 1e-9))

    def new_call() -> RetryState:
        budget.on_request_start()
        return RetryState(policy, rng=schedule, deadline=None, budget=budget)

    calls = [new_call() for _ in range(callers)]
    for step in range(callers * max_attempts * 4):
        i = schedule.randrange(callers)  # some call's attempt fails now
        decision = calls[i].on_failure(outage_error(), committed=False, now=float(step))
        if isinstance(decision, GiveUp):
            # The replacement starts before the old call ends, so the number of
            # calls in flight, and with it the limit, stays constant.
            replacement = new_call()
            calls[i].close()
            budget.on_request_end()
            calls[i] = replacement
        else:
            assert isinstance(decision, Retry)
        assert budget.active_retries <= limit
        assert budget.active_requests == callers
    for call in calls:
        call.close()
        budget.on_request_end()
    assert budget.statistics().active_retries == 0
    assert budget.statistics().active_requests == 0


def test_an_outage_wave_gets_exactly_the_budget_of_retries() -> None:
    """100 calls fail together: without a budget all 100 would retry at once (a storm
    that doubles the load on a dead deployment); with 20 % only 20 do, and the other
    80 fail at once with a reason."""
    budget = budget_with(0)
    policy = RetryPolicy(max_attempts=5)
    calls = []
    for _ in range(100):
        budget.on_request_start()
        calls.append(RetryState(policy, rng=random.Random(0), deadline=None, budget=budget))
    decisions = [call.on_failure(outage_error(), committed=False, now=0.0) for call in calls]
    retried = [d for d in decisions if isinstance(d, Retry)]
    refused = [d for d in decisions if isinstance(d, GiveUp)]
    assert len(retried) == 20 and len(refused) == 80
    assert (
        refused[0].reason == "retry budget exhausted (20 retries in flight, limit 20 for 100 calls)"
    )
    # The 20 retries fail too: each returns its slot before asking again, so they keep
    # retrying while the budget stays full.
    for call, decision in zip(calls, decisions, strict=True):
        if isinstance(decision, Retry):
            assert isinstance(call.on_failure(outage_error(), committed=False, now=1.0), Retry)
    assert budget.active_retries == 20
