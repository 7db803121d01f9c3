"""Restart accounting on virtual time: exact boundaries, sticky give-up, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.supervisor.intensity import RestartIntensity


def test_allows_intensity_restarts_within_the_period_and_refuses_the_next() -> None:
    acc = RestartIntensity(intensity=3, period=5.0)
    assert [acc.record_restart(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert acc.record_restart(3.0) is False
    assert acc.exceeded and acc.exceeded_at == 3.0
    assert acc.restarts == 3


def test_the_window_includes_both_ends_as_in_otp() -> None:
    # A restart exactly `period` seconds after another is within its period.
    acc = RestartIntensity(intensity=1, period=5.0)
    assert acc.record_restart(10.0)
    assert acc.record_restart(15.0) is False


def test_restarts_older_than_the_period_no_longer_count() -> None:
    acc = RestartIntensity(intensity=1, period=5.0)
    assert acc.record_restart(10.0)
    assert acc.record_restart(15.25)  # 5.25 s later: the first one left the window
    assert acc.recent(15.25) == 1
    assert acc.recent(20.25) == 1
    assert acc.recent(20.5) == 0
    assert acc.restarts == 2 and not acc.exceeded


def test_intensity_zero_refuses_the_first_restart() -> None:
    acc = RestartIntensity(intensity=0, period=1.0)
    assert acc.record_restart(0.0) is False


def test_giving_up_is_sticky_and_changes_nothing_after() -> None:
    acc = RestartIntensity(intensity=0, period=1.0)
    acc.record_restart(7.0)
    with pytest.raises(RuntimeError, match=r"already exceeded at t=7\.0"):
        acc.record_restart(100.0)
    assert acc.exceeded_at == 7.0 and acc.restarts == 0


def test_time_going_backwards_is_refused_and_changes_nothing() -> None:
    acc = RestartIntensity(intensity=2, period=5.0)
    acc.record_restart(4.0)
    with pytest.raises(ValueError, match="went backwards"):
        acc.record_restart(3.0)
    with pytest.raises(ValueError, match="went backwards"):
        acc.recent(3.0)
    assert acc.restarts == 1 and acc.recent(4.0) == 1
    assert acc.record_restart(4.0)  # equal times are fine (same tick)
    assert acc.record_restart(4.0) is False


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_non_finite_times_are_refused(now: float) -> None:
    acc = RestartIntensity(intensity=2, period=5.0)
    with pytest.raises(ValueError, match="finite"):
        acc.record_restart(now)
    assert acc.restarts == 0 and not acc.exceeded


@pytest.mark.parametrize(
    ("intensity", "period", "field"),
    [
        (-1, 1.0, "intensity"),
        (True, 1.0, "intensity"),
        (1.5, 1.0, "intensity"),
        (1, 0.0, "period"),
        (1, -2.0, "period"),
        (1, math.inf, "period"),
        (1, math.nan, "period"),
    ],
)
def test_bad_configuration_names_the_field(intensity: int, period: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RestartIntensity(intensity=intensity, period=period)


# --- properties -----------------------------------------------------------------------------

_gaps = st.lists(
    st.floats(min_value=0.0, max_value=10.0, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=40,
)
_periods = st.floats(min_value=0.001, max_value=20.0, allow_nan=False, allow_infinity=False)


def _times(start: float, gaps: list[float]) -> list[float]:
    times, t = [], start
    for gap in gaps:
        t += gap
        times.append(t)
    return times


def _first_excess(times: list[float], intensity: int, period: float) -> int | None:
    """Oracle: the first index at which intensity + 1 restarts fit in a closed window."""
    for j in range(len(times)):
        if j >= intensity and times[j] - times[j - intensity] <= period:
            return j
    return None


@given(
    start=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    gaps=_gaps,
    intensity=st.integers(min_value=0, max_value=6),
    period=_periods,
)
def test_gives_up_exactly_when_more_than_intensity_restarts_fit_in_a_period(
    start: float, gaps: list[float], intensity: int, period: float
) -> None:
    times = _times(start, gaps)
    acc = RestartIntensity(intensity=intensity, period=period)
    expected = _first_excess(times, intensity, period)
    for index, t in enumerate(times):
        allowed = acc.record_restart(t)
        if index == expected:
            assert allowed is False
            assert acc.exceeded_at == t and acc.restarts == index
            break
        assert allowed is True
    else:
        assert expected is None
        assert acc.restarts == len(times) and not acc.exceeded


@given(
    gaps=_gaps,
    intensity=st.integers(min_value=1, max_value=6),
    period=_periods,
    probe_gap=st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
)
def test_recent_counts_the_accepted_restarts_within_the_period(
    gaps: list[float], intensity: int, period: float, probe_gap: float
) -> None:
    acc = RestartIntensity(intensity=intensity, period=period)
    accepted: list[float] = []
    last = 0.0
    for t in _times(0.0, gaps):
        last = t
        if not acc.record_restart(t):
            break
        accepted.append(t)
        assert acc.recent(t) <= intensity  # the window never holds more than allowed
    now = last + probe_gap
    assert acc.recent(now) == sum(1 for t in accepted if now - t <= period)
