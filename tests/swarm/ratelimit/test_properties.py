"""Random event sequences keep the limiters' invariants (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.ratelimits import RateLimitInfo
from swarm.ratelimit import (
    AIMDConfig,
    FixedConcurrency,
    GradientConcurrency,
    Permit,
    RateLimitConfig,
    RateLimiter,
    RateLimitPermitError,
    TokenBucket,
    TokenCost,
    Wait,
)

# -- the bucket alone ------------------------------------------------------------------------

bucket_ops = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0.0, 30.0)),
        st.tuples(st.just("reserve"), st.floats(0.0, 150.0)),
        st.tuples(st.just("take"), st.floats(0.0, 50.0)),
        st.tuples(st.just("refund"), st.floats(0.0, 50.0)),
        st.tuples(st.just("correct"), st.floats(0.0, 120.0)),
        st.tuples(st.just("correct_reset"), st.floats(0.0, 120.0)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=bucket_ops, rate=st.floats(0.1, 20.0), capacity=st.floats(1.0, 100.0))
def test_a_bucket_never_grants_more_than_it_earns(
    ops: list[tuple[str, float]], rate: float, capacity: float
) -> None:
    """granted <= starting level + rate * elapsed + refunded - taken - final level.

    And the level is never above capacity; it is below zero only after an oversized
    grant, a ``take`` or a correction with calls unseen (debt).
    """
    b = TokenBucket(rate=rate, capacity=capacity, now=0.0)
    now = 0.0
    granted = taken = refunded = 0.0
    debt_possible = False
    for op, x in ops:
        if op == "advance":
            now += x
        elif op == "reserve":
            level = b.level(now)
            wait = b.wait_time(x, now)
            assert b.reserve(x, now) == wait
            if wait == 0.0:
                granted += x
                assert level >= min(x, capacity) - 1e-9 * capacity
                debt_possible |= x > capacity
            else:
                assert b.level(now) == level  # a refusal takes nothing
                assert b.reserve(x, now + wait) == 0.0  # the wait was exact
                granted += x
                now += wait
                debt_possible |= x > capacity
        elif op == "take":
            b.take(x, now)
            taken += x
            debt_possible = True
        elif op == "refund":
            b.refund(x, now)
            refunded += x
        elif op == "correct":
            b.correct(x, None, now, unseen=x / 3)
            debt_possible |= x / 3 > 0
        else:
            b.correct(x, x / 2, now)
        level = b.level(now)
        assert level <= capacity
        if not debt_possible:
            assert level >= 0.0
    final = b.level(now)
    slack = 1e-6 * (capacity + rate * now + granted + refunded)
    assert granted <= capacity + rate * now + refunded - taken - final + slack


# -- the limiter -----------------------------------------------------------------------------


@dataclass
class Op:
    kind: str
    args: dict[str, Any]


costs = st.builds(TokenCost, input_tokens=st.integers(0, 4000), max_tokens=st.integers(0, 4000))
outcomes = st.sampled_from(["completed", "failed", "cancelled", "unsent", "rate_limited"])
infos = st.builds(
    RateLimitInfo,
    requests_limit=st.none() | st.integers(0, 200),
    requests_remaining=st.none() | st.integers(0, 200),
    requests_reset=st.none() | st.floats(0.0, 120.0),
    tokens_limit=st.none() | st.integers(0, 20_000),
    tokens_remaining=st.none() | st.integers(0, 20_000),
    tokens_reset=st.none() | st.floats(0.0, 120.0),
)
limiter_ops = st.lists(
    st.one_of(
        st.builds(lambda d: Op("advance", {"dt": d}), st.floats(0.0, 20.0)),
        st.builds(lambda c: Op("acquire", {"cost": c}), costs),
        st.builds(
            lambda i, o, u, t, r: Op(
                "release", {"index": i, "outcome": o, "usage": u, "ttft": t, "retry": r}
            ),
            st.integers(0, 50),
            outcomes,
            st.none() | st.integers(0, 10_000),
            st.none() | st.floats(0.0, 30.0),
            st.none() | st.floats(0.0, 10.0),
        ),
        st.builds(lambda i, p: Op("headers", {"info": i, "permit": p}), infos, st.booleans()),
        st.builds(
            lambda r, lim: Op("429", {"retry": r, "limit": lim}),
            st.none() | st.floats(0.0, 10.0),
            st.sampled_from([None, "requests", "tokens"]),
        ),
        st.builds(lambda i: Op("release_again", {"index": i}), st.integers(0, 50)),
    ),
    max_size=120,
)
concurrency = st.sampled_from(
    [
        None,
        FixedConcurrency(limit=3),
        GradientConcurrency(
            max_limit=12, min_limit=2, initial_limit=4, window=0.0, window_min_samples=1
        ),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    ops=limiter_ops,
    conc=concurrency,
    refund=st.booleans(),
    adaptive=st.sampled_from([None, AIMDConfig()]),
)
def test_any_sequence_keeps_the_limiter_invariants(
    ops: list[Op],
    conc: FixedConcurrency | GradientConcurrency | None,
    refund: bool,
    adaptive: AIMDConfig | None,
) -> None:
    """For any events, in any order:

    * levels never go above their bucket's capacity;
    * no grant while paused, and waits are positive (or None for concurrency);
    * a bucket wait is exact: retrying after it, with nothing else happening, is granted;
    * in-flight calls never exceed the concurrency limit in force when one was granted;
    * each permit is released exactly once: a second release raises and changes nothing;
    * when everything is released, nothing is in flight, and grants == releases.
    """
    rl = RateLimiter(
        RateLimitConfig(
            requests_per_minute=120,
            tokens_per_minute=12_000,
            refund_unused_tokens=refund,
            concurrency=conc,
            adaptive=adaptive,
            # The slow start (one permit until the first response) is a concurrency
            # wait of its own, tested in test_limiter; here the buckets are followed.
            learning_probes=0,
        ),
        now=0.0,
    )
    now = 0.0
    live: list[Permit] = []
    dead: list[Permit] = []
    for op in ops:
        a = op.args
        if op.kind == "advance":
            now += a["dt"]
        elif op.kind == "acquire":
            paused = now < rl.paused_until
            limit_before = rl.statistics(now).concurrency_limit
            result = rl.try_acquire(a["cost"], now)
            if isinstance(result, Permit):
                assert not paused
                live.append(result)
                if limit_before is not None:
                    assert rl.inflight <= limit_before
            else:
                now = _check_wait(rl, result, a["cost"], now, paused)
        elif op.kind == "release" and live:
            p = live.pop(a["index"] % len(live))
            retry = a["retry"] if a["outcome"] == "rate_limited" else None
            rl.release(
                p, now, a["outcome"], usage_tokens=a["usage"], ttft=a["ttft"], retry_after=retry
            )
            dead.append(p)
        elif op.kind == "release_again" and dead:
            p = dead[a["index"] % len(dead)]
            before = rl.statistics(now)
            with pytest.raises(RateLimitPermitError):
                rl.release(p, now, "completed")
            assert rl.statistics(now) == before
        elif op.kind == "headers":
            permit = live[-1] if a["permit"] and live else None
            rl.on_response_headers(a["info"], now, permit=permit)
        elif op.kind == "429":
            rl.on_rate_limited(a["retry"], now, limit=a["limit"])
        _check_levels(rl, now)
        assert rl.inflight == len(live)
    for p in live:
        rl.release(p, now, "completed")
    stats = rl.statistics(now)
    assert stats.inflight == 0
    assert stats.grants == stats.released


def _check_levels(rl: RateLimiter, now: float) -> None:
    stats = rl.statistics(now)
    assert stats.requests_ceiling is not None and stats.tokens_ceiling is not None
    assert stats.requests_available is not None and stats.tokens_available is not None
    # Capacity is the burst (a minute's worth) scaled with the ceiling.
    assert stats.requests_available <= stats.requests_ceiling * (1 + 1e-12)
    assert stats.tokens_available <= stats.tokens_ceiling * (1 + 1e-12)
    assert stats.requests_per_minute is not None and stats.tokens_per_minute is not None
    assert 0.0 < stats.requests_per_minute <= stats.requests_ceiling * (1 + 1e-12)
    assert 0.0 < stats.tokens_per_minute <= stats.tokens_ceiling * (1 + 1e-12)
    assert stats.paused_for >= 0.0


def _check_wait(rl: RateLimiter, wait: Wait, cost: TokenCost, now: float, paused: bool) -> float:
    """Check a wait; returns the time after following it."""
    if wait.reason == "concurrency":
        assert wait.seconds is None
        return now
    assert wait.seconds is not None and wait.seconds > 0.0 and math.isfinite(wait.seconds)
    assert (wait.reason == "paused") == paused
    if wait.reason == "paused":
        # (now + (paused_until - now) may differ from paused_until in the last bit)
        assert now + wait.seconds == pytest.approx(rl.paused_until, rel=1e-12, abs=1e-12)
        return now
    # Retrying after exactly the wait succeeds on the buckets (the concurrency slot is
    # another matter, so only check when one is free).
    stats = rl.statistics(now)
    if stats.concurrency_limit is None or stats.inflight < stats.concurrency_limit:
        retry = rl.try_acquire(cost, now + wait.seconds)
        assert isinstance(retry, Permit), (wait, retry)
        rl.release(retry, now + wait.seconds, "unsent")
        return now + wait.seconds
    return now
