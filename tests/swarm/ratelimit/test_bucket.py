"""The token bucket on virtual time: exact waits, refunds, debt and header corrections."""

from __future__ import annotations

import math

import pytest

from swarm.ratelimit import TokenBucket


def rpm60(now: float = 0.0) -> TokenBucket:
    """60 requests per minute: one per second, a minute's worth of burst."""
    return TokenBucket(rate=60 / 60, capacity=60, now=now)


def test_a_full_bucket_grants_its_capacity_at_once_then_one_per_second() -> None:
    b = rpm60()
    assert [b.reserve(1, 0.0) for _ in range(60)] == [0.0] * 60
    assert b.reserve(1, 0.0) == 1.0
    assert b.reserve(1, 0.5) == 0.5
    assert b.reserve(1, 1.0) == 0.0
    assert b.reserve(1, 1.0) == 1.0
    assert b.reserve(1, 2.0) == 0.0
    assert b.level(2.0) == 0.0


def test_a_refused_reserve_takes_nothing() -> None:
    b = TokenBucket(rate=2.0, capacity=10, now=0.0, level=3.0)
    assert b.reserve(5, 0.0) == 1.0  # 2 short at 2/s
    assert b.level(0.0) == 3.0
    assert b.wait_time(5, 0.0) == 1.0
    assert b.level(0.0) == 3.0
    assert b.reserve(5, 1.0) == 0.0
    assert b.level(1.0) == 0.0


def test_refill_never_goes_above_capacity() -> None:
    b = rpm60()
    b.reserve(30, 0.0)
    assert b.level(10.0) == 40.0
    assert b.level(1000.0) == 60.0


def test_refund_gives_back_but_never_above_capacity() -> None:
    b = rpm60()
    b.reserve(50, 0.0)
    b.refund(20, 0.0)
    assert b.level(0.0) == 30.0
    b.refund(1000, 0.0)
    assert b.level(0.0) == 60.0


def test_take_charges_unconditionally_into_debt_repaid_before_any_grant() -> None:
    b = rpm60()
    b.reserve(60, 0.0)
    b.take(10, 0.0)  # output beyond the reservation
    assert b.level(0.0) == -10.0
    assert b.wait_time(1, 0.0) == 11.0
    assert b.reserve(0, 5.0) == 5.0  # nothing at all is granted while in debt


def test_an_oversized_request_is_granted_at_a_full_bucket_and_leaves_debt() -> None:
    b = TokenBucket(rate=1.0, capacity=10, now=0.0, level=5.0)
    assert b.wait_time(25, 0.0) == 5.0  # waits for a full bucket, not forever
    assert b.reserve(25, 0.0) == 5.0
    assert b.reserve(25, 5.0) == 0.0
    assert b.level(5.0) == -15.0
    # The long-run rate holds: the next oversized request waits for 25 s of refill.
    assert b.wait_time(25, 5.0) == 25.0
    assert b.wait_time(1, 5.0) == 16.0


def test_set_rate_credits_the_past_at_the_old_rate() -> None:
    b = rpm60()
    b.reserve(60, 0.0)
    b.set_rate(4.0, 5.0)  # 5 s at 1/s, then 4/s
    assert b.level(5.0) == 5.0
    assert b.level(6.0) == 9.0
    assert b.rate == 4.0


def test_set_rate_with_a_smaller_capacity_clips_the_level() -> None:
    b = rpm60()
    b.set_rate(0.5, 0.0, capacity=30)
    assert b.capacity == 30.0
    assert b.level(0.0) == 30.0
    assert b.level(100.0) == 30.0


def test_a_capacity_clip_then_the_same_headers_remaining() -> None:
    # Configured at 120 but the provider allows 60: the first grant's response
    # reports the limit (clip to 60) and its remaining (59) together.
    b = TokenBucket(rate=2.0, capacity=120, now=0.0)
    b.reserve(1, 0.0)
    b.set_rate(1.0, 0.0, capacity=60)
    assert b.level(0.0) == 60.0
    assert b.correct(remaining=59, reset_in=None, now=0.0) == 1.0
    assert b.level(0.0) == 59.0


def test_correct_lowers_to_the_providers_remaining() -> None:
    b = rpm60()
    assert b.correct(remaining=20, reset_in=None, now=0.0) == 40.0
    assert b.level(0.0) == 20.0


def test_correct_never_raises_the_level() -> None:
    b = rpm60()
    b.reserve(50, 0.0)
    assert b.correct(remaining=55, reset_in=None, now=0.0) == 0.0
    assert b.level(0.0) == 10.0


def test_a_stale_header_does_not_forgive_what_the_provider_had_not_seen() -> None:
    b = TokenBucket(rate=1.0, capacity=100, now=0.0)
    b.reserve(10, 0.0)  # the call whose header this is
    b.reserve(20, 0.0)  # not admitted yet when the provider took its snapshot
    # The provider saw 10 more than we did (another client) when it admitted the first.
    assert b.correct(remaining=80, reset_in=None, now=2.0, unseen=20) == 12.0
    # 80 - 20 unseen; the provider's refill since its snapshot is not guessed at.
    assert b.level(2.0) == 60.0
    # Taken as fresh, the same header would have forgiven the 20 in flight:
    fresh = TokenBucket(rate=1.0, capacity=100, now=0.0, level=72.0)
    fresh.correct(remaining=80, reset_in=None, now=0.0)
    assert fresh.level(0.0) == 72.0


def test_a_header_that_agrees_with_the_bucket_changes_nothing() -> None:
    b = TokenBucket(rate=1.0, capacity=100, now=0.0)
    b.reserve(10, 0.0)
    b.reserve(20, 0.0)
    # The second call overtook the first: the first's snapshot already has both.
    assert b.correct(remaining=70, reset_in=None, now=0.0, unseen=0) == 0.0
    # The second's header, with the first's still out and counted as unseen.
    assert b.correct(remaining=80, reset_in=None, now=0.0, unseen=10) == 0.0
    assert b.level(0.0) == 70.0


def test_correct_refuses_a_negative_unseen() -> None:
    b = rpm60()
    with pytest.raises(ValueError, match="unseen"):
        b.correct(remaining=10, reset_in=None, now=0.0, unseen=-1.0)
    assert b.level(0.0) == 60.0


def test_reset_in_keeps_refill_from_outrunning_the_provider() -> None:
    b = rpm60()
    b.reserve(60, 0.0)
    # The provider says it is full again in 120 s, not in our 60 s: its window is longer.
    b.correct(remaining=0, reset_in=120.0, now=0.0)
    assert b.wait_time(1, 0.0) == 2.0
    assert b.level(60.0) == 30.0
    assert b.level(120.0) == 60.0
    b.reserve(60, 120.0)
    assert b.wait_time(1, 120.0) == 1.0  # the slow-down ended with the provider's reset


def test_a_wait_that_crosses_the_end_of_the_slow_down_uses_both_rates() -> None:
    b = TokenBucket(rate=1.0, capacity=60, now=0.0, level=0.0)
    b.correct(remaining=0, reset_in=120.0, now=0.0)  # 0.5/s until t=120
    b.take(80, 0.0)  # debt: 81 needed for one unit
    # 60 by t=120 at 0.5/s, the other 21 at 1/s.
    assert b.wait_time(1, 0.0) == 141.0
    assert b.level(120.0) == -20.0
    assert b.level(141.0) == 1.0


def test_a_reset_sooner_than_our_refill_changes_nothing() -> None:
    b = rpm60()
    b.reserve(60, 0.0)
    b.correct(remaining=0, reset_in=30.0, now=0.0)
    assert b.wait_time(1, 0.0) == 1.0


def test_a_later_header_replaces_the_slow_down() -> None:
    b = rpm60()
    b.reserve(60, 0.0)
    b.correct(remaining=0, reset_in=120.0, now=0.0)
    b.correct(remaining=0, reset_in=60.0, now=0.0)
    assert b.wait_time(1, 0.0) == 1.0


def test_time_never_runs_backwards() -> None:
    b = rpm60(now=10.0)
    b.reserve(60, 10.0)
    assert b.level(5.0) == 0.0
    assert b.wait_time(1, 5.0) == 6.0  # counted from the caller's now
    assert b.level(11.0) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 0.0, "capacity": 1.0}, "rate"),
        ({"rate": -1.0, "capacity": 1.0}, "rate"),
        ({"rate": math.inf, "capacity": 1.0}, "rate"),
        ({"rate": 1.0, "capacity": 0.0}, "capacity"),
        ({"rate": 1.0, "capacity": math.nan}, "capacity"),
        ({"rate": 1.0, "capacity": 1.0, "level": 2.0}, "level"),
    ],
)
def test_bad_construction_is_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenBucket(now=0.0, **kwargs)


@pytest.mark.parametrize("amount", [-1.0, math.nan, math.inf])
def test_bad_amounts_raise_and_change_nothing(amount: float) -> None:
    b = TokenBucket(rate=1.0, capacity=10, now=0.0, level=4.0)
    for op in (b.reserve, b.take, b.refund, b.wait_time):
        with pytest.raises(ValueError, match="amount"):
            op(amount, 1.0)
    with pytest.raises(ValueError, match="remaining"):
        b.correct(amount, None, 1.0)
    with pytest.raises(ValueError, match="rate"):
        b.set_rate(amount if amount != math.inf else -2.0, 1.0)
    assert b.level(0.0) == 4.0  # no refill was credited by the failed calls either
    assert b.level(1.0) == 5.0


def test_a_nan_now_is_refused() -> None:
    b = rpm60()
    with pytest.raises(ValueError, match="now"):
        b.reserve(1, math.nan)
    assert b.level(0.0) == 60.0
