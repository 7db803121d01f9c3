"""The AIMD controller: exact decrease and recovery curves on virtual time."""

from __future__ import annotations

import itertools
import math

import pytest

from swarm.ratelimit import AIMDConfig, AIMDController

# Binary fractions, so the curve's values are exact floats.
CONFIG = AIMDConfig(
    decrease_factor=0.5,
    recovery_per_second=1 / 32,
    recovery_when_reported=1 / 8,
    floor_fraction=1 / 16,
)


def controller(ceiling: float = 8.0) -> AIMDController:
    return AIMDController(CONFIG, ceiling=ceiling, now=0.0)


def test_the_rate_starts_at_the_ceiling() -> None:
    c = controller()
    assert c.rate(0.0) == 8.0
    assert c.rate(100.0) == 8.0


def test_a_429_halves_the_rate_which_recovers_linearly_to_the_ceiling() -> None:
    c = controller()
    assert c.on_rate_limited(10.0) is True
    # recovery: 1/32 of the ceiling (8/s) per second = 0.25/s per second
    curve = [c.rate(10.0 + dt) for dt in (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)]
    assert curve == [4.0, 5.0, 6.0, 7.0, 8.0, 8.0]
    assert c.decreases == 1
    assert c.last_decrease == 10.0


def test_a_429_during_recovery_cuts_from_where_the_rate_has_got_to() -> None:
    c = controller()
    c.on_rate_limited(0.0)  # 4
    assert c.on_rate_limited(8.0, sent_at=8.0) is True  # had recovered to 6
    assert c.rate(8.0) == 3.0
    assert c.rate(12.0) == 4.0


def test_one_congestion_event_is_one_decrease() -> None:
    c = controller()
    assert c.on_rate_limited(10.0, sent_at=9.5)
    # Requests sent before that decrease were sent at the old rate: their 429s are the
    # same event.
    assert c.on_rate_limited(10.2, sent_at=9.9) is False
    assert c.on_rate_limited(10.3, sent_at=9.0) is False
    assert c.rate(10.3) == 4.0 + 0.25 * 0.3
    assert c.decreases == 1
    # A request sent after the decrease and still refused is a new event.
    assert c.on_rate_limited(12.0, sent_at=11.0) is True
    assert c.rate(12.0) == (4.0 + 0.25 * 2.0) / 2


def test_the_rate_never_falls_below_the_floor() -> None:
    c = controller()
    for i in range(20):
        c.on_rate_limited(float(i))
    assert c.floor == 0.5
    assert c.rate(19.0) == 0.5
    assert c.rate(21.0) == 1.0


def test_a_lower_reported_limit_becomes_the_ceiling_at_once() -> None:
    c = controller()
    c.on_limit_reported(2.0, 5.0)
    assert c.ceiling == 2.0
    assert c.rate(5.0) == 2.0
    assert c.rate(500.0) == 2.0
    assert c.floor == 2.0 / 16


def test_a_higher_reported_limit_never_lifts_the_ceiling_above_configuration() -> None:
    c = controller()
    c.on_limit_reported(100.0, 0.0)
    assert c.ceiling == 8.0
    assert c.rate(0.0) == 8.0


def test_a_limit_raised_again_is_climbed_back_at_the_recovery_pace() -> None:
    c = controller()
    c.on_limit_reported(4.0, 0.0)
    c.on_limit_reported(8.0, 10.0)
    assert c.ceiling == 8.0
    # The provider reports its limit: the reported pace, 1/8 of 8/s per second.
    assert c.rate(10.0) == 4.0
    assert c.rate(12.0) == 6.0
    assert c.rate(14.0) == 8.0
    # Forgotten, the limit is unconfirmed again: the slow pace, 1/32 of 8/s.
    c.on_rate_limited(20.0)
    c.on_limit_reported(None, 20.0)
    assert c.rate(20.0) == 4.0
    assert c.rate(28.0) == 6.0


def test_with_the_limit_reported_a_429_is_recovered_from_quickly() -> None:
    c = controller()
    c.on_limit_reported(8.0, 0.0)  # the provider confirms the configured ceiling
    assert c.on_rate_limited(10.0) is True
    curve = [c.rate(10.0 + dt) for dt in (0.0, 1.0, 2.0, 4.0, 5.0)]
    assert curve == [4.0, 5.0, 6.0, 8.0, 8.0]


@pytest.mark.parametrize(("reported", "lost"), [(False, 6.25), (True, 0.625)])
def test_what_one_429_costs_with_the_defaults(reported: bool, lost: float) -> None:
    # Seconds of the ceiling's throughput lost to one cut: (1 - 0.5)^2 / (2 * pace),
    # pace 2% of the ceiling a second unreported, 20% reported.
    c = AIMDController(AIMDConfig(), ceiling=1000.0, now=0.0)
    if reported:
        c.on_limit_reported(1000.0, 0.0)
    c.on_rate_limited(0.0)
    step = 1 / 64  # the rate is piecewise linear on this grid: trapezoids are exact
    points = [c.rate(i * step) for i in range(64 * 60 + 1)]
    allowed = sum((a + b) / 2 * step for a, b in itertools.pairwise(points))
    assert (60 * 1000.0 - allowed) / 1000.0 == pytest.approx(lost, abs=1e-9)


def test_recovery_is_paced_on_the_ceiling_in_force() -> None:
    c = controller()
    c.on_limit_reported(4.0, 0.0)
    c.on_rate_limited(0.0)
    assert c.rate(0.0) == 2.0
    assert c.rate(16.0) == 4.0  # 1/32 of 4 per second


def test_decrease_factor_one_never_decreases() -> None:
    c = AIMDController(AIMDConfig(decrease_factor=1.0), ceiling=8.0, now=0.0)
    assert c.on_rate_limited(1.0) is True
    assert c.rate(1.0) == 8.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decrease_factor": 0.0}, "decrease_factor"),
        ({"decrease_factor": 1.5}, "decrease_factor"),
        ({"recovery_per_second": 0.0}, "recovery_per_second"),
        ({"recovery_per_second": math.inf}, "recovery_per_second"),
        ({"recovery_when_reported": -1.0}, "recovery_when_reported"),
        ({"floor_fraction": 0.0}, "floor_fraction"),
        ({"floor_fraction": 2.0}, "floor_fraction"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"AIMDConfig.{field}"):
        AIMDConfig(**kwargs)


def test_bad_ceilings_and_limits_are_refused_and_change_nothing() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        AIMDController(CONFIG, ceiling=0.0, now=0.0)
    c = controller()
    with pytest.raises(ValueError, match="limit"):
        c.on_limit_reported(-1.0, 0.0)
    with pytest.raises(ValueError, match="now"):
        c.on_rate_limited(math.nan)
    assert c.rate(0.0) == 8.0
    assert c.decreases == 0
