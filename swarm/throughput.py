"""The recent rate of a growing count (output tokens per second, for live views).

A run's average since its start hides what is happening now: a run that streamed
fast for a minute and then stalled on a rate limit still shows a high average.
Live displays (``swarm run``'s progress, the dashboard, ``swarm dash``) show the
rate over the last few seconds instead; the final report keeps the average.
"""

from __future__ import annotations

import collections

__all__ = ["RecentRate"]

DEFAULT_WINDOW = 2.0  # seconds: smooth over a few snapshots, still "now"


class RecentRate:
    """Units per second over the last ``window`` seconds of samples.

    Feed it ``update(now, total)`` with a monotonic clock and a count that only
    grows (a counter reset, a lower total, starts the window again). Memory is
    bounded by the samples inside the window (plus one before it, the base).
    """

    __slots__ = ("_samples", "_window")

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        if not window > 0:
            raise ValueError(f"RecentRate window must be positive seconds, got {window!r}")
        self._window = window
        self._samples: collections.deque[tuple[float, float]] = collections.deque()

    def update(self, now: float, total: float) -> float:
        """Record ``total`` at ``now``; the rate since the window's base (0.0 until
        there are two samples)."""
        samples = self._samples
        if samples and (total < samples[-1][1] or now < samples[-1][0]):
            samples.clear()  # the counter went back: not a rate
        samples.append((now, total))
        # Keep one sample at or before the window's start as the base.
        while len(samples) > 2 and samples[1][0] <= now - self._window:
            samples.popleft()
        then, before = samples[0]
        if now <= then:
            return 0.0
        return (total - before) / (now - then)
