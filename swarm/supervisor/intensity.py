"""Restart accounting, sans-IO: may a supervisor restart once more, or must it give up?

OTP's rule (``supervisor``, "Restart intensity and period"): if more than ``intensity``
restarts occur within ``period`` seconds, the supervisor terminates its children and then
itself. A restart at ``t`` is *within the period* of a later one at ``now`` when
``now - t <= period`` (both ends included, as OTP keeps restarts at ``>= now - period``).
So, over a run of restart times, the supervisor gives up at the first restart that makes
``intensity + 1`` restarts fit in a closed window of length ``period``.

:class:`RestartIntensity` holds only the restarts still inside the window (never more than
``intensity`` of them) and takes the time as an argument; it reads no clock.

Invariants:
    * Times given to :meth:`RestartIntensity.record_restart` never go backwards; a time
      that does is refused (``ValueError``) and changes nothing.
    * Giving up is sticky: once a restart has been refused, every later
      ``record_restart`` raises ``RuntimeError`` and changes nothing.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """Counts restarts in a sliding window of ``period`` seconds; refuses one too many.

    Args:
        intensity: Restarts allowed within any ``period`` (>= 0; 0 allows none).
        period: The window, in seconds (finite, > 0).

    Raises:
        ValueError: ``intensity`` or ``period`` is out of its domain.
    """

    __slots__ = ("_exceeded_at", "_intensity", "_last", "_period", "_restarts", "_window")

    def __init__(self, *, intensity: int, period: float) -> None:
        if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
            raise ValueError(f"intensity must be an int >= 0 (got {intensity!r})")
        if (
            isinstance(period, bool)
            or not isinstance(period, int | float)
            or not math.isfinite(period)
            or period <= 0
        ):
            raise ValueError(f"period must be finite seconds > 0 (got {period!r})")
        self._intensity = intensity
        self._period = float(period)
        # Invariant: the accepted restarts not yet known to be outside every future
        # window, oldest first; at most `intensity` of them (one more would have been
        # refused), so the deque is bounded by construction.
        self._window: deque[float] = deque(maxlen=intensity)
        self._restarts = 0
        self._last: float | None = None
        self._exceeded_at: float | None = None

    @property
    def intensity(self) -> int:
        """Restarts allowed within any period."""
        return self._intensity

    @property
    def period(self) -> float:
        """The window, in seconds."""
        return self._period

    @property
    def restarts(self) -> int:
        """Restarts accepted so far (the refused one is not counted)."""
        return self._restarts

    @property
    def exceeded(self) -> bool:
        """Whether a restart has been refused (sticky)."""
        return self._exceeded_at is not None

    @property
    def exceeded_at(self) -> float | None:
        """When the refused restart was asked for, or None."""
        return self._exceeded_at

    def record_restart(self, now: float) -> bool:
        """Ask for a restart at ``now``: True if it is allowed (and counted), False to give up.

        Returns False when this restart would make more than ``intensity`` restarts within
        ``period`` seconds; from then on the accounting is closed.

        Raises:
            RuntimeError: A restart was already refused (the supervisor has given up).
            ValueError: ``now`` is not finite or is earlier than a previous time.
        """
        if self._exceeded_at is not None:
            raise RuntimeError(
                f"restart intensity was already exceeded at t={self._exceeded_at}; a "
                "supervisor that gave up cannot restart again"
            )
        self._check_time(now)
        self._forget_before(now)
        self._last = now
        if len(self._window) + 1 > self._intensity:
            self._exceeded_at = now
            return False
        self._window.append(now)
        self._restarts += 1
        return True

    def recent(self, now: float) -> int:
        """How many accepted restarts lie within the period ending at ``now``.

        Raises:
            ValueError: ``now`` is not finite or is earlier than a previous time.
        """
        self._check_time(now)
        return sum(1 for t in self._window if now - t <= self._period)

    def _check_time(self, now: float) -> None:
        if not isinstance(now, int | float) or not math.isfinite(now):
            raise ValueError(f"now must be a finite time in seconds (got {now!r})")
        if self._last is not None and now < self._last:
            raise ValueError(
                f"time went backwards: now={now} is earlier than the last restart time "
                f"{self._last}; pass a monotonic clock"
            )

    def _forget_before(self, now: float) -> None:
        # Restarts outside the window ending at `now` are outside every later one too,
        # since times never go backwards: dropping them is unobservable.
        while self._window and now - self._window[0] > self._period:
            self._window.popleft()
