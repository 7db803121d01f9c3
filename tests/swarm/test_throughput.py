"""RecentRate: what live displays show as tokens per second (the recent rate,
not the run's average)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.throughput import RecentRate


def test_a_steady_stream_shows_its_rate() -> None:
    rate = RecentRate(window=2.0)
    assert rate.update(0.0, 0) == 0.0  # one sample: no rate yet
    for i in range(1, 41):
        value = rate.update(i * 0.25, i * 25)  # 100 a second
    assert value == pytest.approx(100.0)


def test_a_stall_shows_as_zero_once_the_window_has_passed_it() -> None:
    # A minute at 1,000/s then a stall: the average would still say ~900/s.
    rate = RecentRate(window=2.0)
    t = total = 0.0
    for _ in range(240):
        t += 0.25
        total += 250
        rate.update(t, total)
    for _ in range(8):  # the stall, sampled
        t += 0.25
        value = rate.update(t, total)
    assert value == 0.0
    assert total / t > 900


def test_a_counter_that_goes_back_restarts_the_window() -> None:
    rate = RecentRate()
    rate.update(0.0, 500)
    rate.update(1.0, 600)
    assert rate.update(2.0, 10) == 0.0  # an engine restarted behind the endpoint
    assert rate.update(3.0, 60) == pytest.approx(50.0)


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        RecentRate(window=0)


@given(
    st.lists(st.tuples(st.floats(0.01, 3.0), st.integers(0, 1000)), min_size=1, max_size=60),
    st.floats(0.1, 10.0),
)
def test_the_rate_is_since_the_last_sample_before_the_window(
    steps: list[tuple[float, int]], window: float
) -> None:
    rate = RecentRate(window=window)
    samples: list[tuple[float, float]] = []
    t = total = 0.0
    for dt, add in steps:
        t += dt
        total += add
        samples.append((t, total))
        got = rate.update(t, total)
        # Brute force: the base is the latest sample at or before now - window
        # (or the first one, while the history is shorter than the window).
        older = [s for s in samples[:-1] if s[0] <= t - window]
        base = older[-1] if older else samples[0]
        expected = 0.0 if base[0] >= t else (total - base[1]) / (t - base[0])
        assert got == pytest.approx(expected)
    assert len(rate._samples) <= 2 + sum(1 for s in samples if s[0] > t - window)
