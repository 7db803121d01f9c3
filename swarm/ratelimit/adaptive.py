"""AIMD control of an allowed rate from 429s and reported limits (sans-IO).

Why AIMD rather than CUBIC: CUBIC's strength is probing quickly for a capacity that is
unknown and large (a long fat network pipe). Here the capacity is almost always
*known*: the configured limit, lowered at once to the provider's own figure whenever a
response reports one. The controller's job is to back off after a 429 (the local view
drifted from the provider's) and return to that known ceiling; linear recovery does it
in a bounded, predictable time (``(1 - decrease_factor) / recovery_per_second``
seconds from one cut), which an operator can reason about and a test can assert
exactly. AIMD is also the scheme that converges to a fair share when several processes
share one API key, each backing off on its own 429s.

Recovery is fast while the provider reports its limit in its headers
(``recovery_when_reported``, 20% of the ceiling a second: back from one cut in 2.5 s)
and slow otherwise (``recovery_per_second``, 2%: 25 s). With the limit reported, the
ceiling is confirmed and every response's remaining count keeps the bucket honest, so
a 429 is a passing disagreement (a clock skew, a call counted late), not a capacity to
discover; the slow pace there cost a run at the simulator's exact limit 9% of its
throughput for one stray 429 (a cut loses ``(1 - decrease)^2 / (2 * recovery)``
seconds of the ceiling's throughput: 6.25 s at 2%/s, 0.6 s at 20%/s). Without a
reported limit the 429s are the only signal, and the slow pace keeps them rare (each
sawtooth ends in one).

The controller::

    rate(now) = min(ceiling, rate_at_anchor + recovery * ceiling * (now - anchor))
    on a 429:   rate = max(floor, rate(now) * decrease_factor)     (re-anchored at now)
    ceiling   = min(configured ceiling, the limit the provider last reported)
    floor     = floor_fraction * ceiling

One 429 storm is one congestion event: a 429 answering a request sent *before* the last
decrease does not decrease again (the request was sent at the old rate), as TCP cuts
its window once per round trip however many segments were lost.
"""

from __future__ import annotations

import math

import msgspec

__all__ = [
    "DEFAULT_DECREASE_FACTOR",
    "DEFAULT_FLOOR_FRACTION",
    "DEFAULT_RECOVERY_PER_SECOND",
    "DEFAULT_RECOVERY_WHEN_REPORTED",
    "AIMDConfig",
    "AIMDController",
]

#: A 429 halves the rate: TCP Reno's factor. The decrease must be large enough that
#: the bucket's local view falls clearly below the provider's after a drift.
DEFAULT_DECREASE_FACTOR = 0.5
#: Recovery adds 2% of the ceiling per second: from one cut back to the ceiling in 25 s,
#: from the floor in under 48 s, under half a provider's one-minute window.
DEFAULT_RECOVERY_PER_SECOND = 0.02
#: Recovery while the provider reports its limit: from one cut back in 2.5 s.
DEFAULT_RECOVERY_WHEN_REPORTED = 0.2
#: The rate never goes below 5% of the ceiling: a burst of 429s does not stop traffic.
DEFAULT_FLOOR_FRACTION = 0.05


class AIMDConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How the allowed rate reacts to 429s.

    Attributes:
        decrease_factor: The rate is multiplied by it on a 429, in (0, 1]; 1.0 turns
            the decrease off (a 429 then only pauses).
        recovery_per_second: Fraction of the ceiling added back per second, > 0,
            while the provider has not reported its limit.
        recovery_when_reported: The same while it has (its headers confirm the
            ceiling; see the module docstring), > 0.
        floor_fraction: The lowest rate, as a fraction of the ceiling, in (0, 1].
    """

    decrease_factor: float = DEFAULT_DECREASE_FACTOR
    recovery_per_second: float = DEFAULT_RECOVERY_PER_SECOND
    recovery_when_reported: float = DEFAULT_RECOVERY_WHEN_REPORTED
    floor_fraction: float = DEFAULT_FLOOR_FRACTION

    def __post_init__(self) -> None:
        if not (0.0 < self.decrease_factor <= 1.0):
            raise ValueError(
                f"AIMDConfig.decrease_factor must be in (0, 1], got {self.decrease_factor!r}; "
                "0.5 halves the rate on a 429, 1.0 disables the decrease"
            )
        for name in ("recovery_per_second", "recovery_when_reported"):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise ValueError(
                    f"AIMDConfig.{name} must be a finite number > 0 (a fraction of "
                    f"the ceiling per second), got {value!r}"
                )
        if not (0.0 < self.floor_fraction <= 1.0):
            raise ValueError(
                f"AIMDConfig.floor_fraction must be in (0, 1], got {self.floor_fraction!r}; "
                "0.05 keeps at least 5% of the ceiling"
            )


class AIMDController:
    """The allowed rate of one limit (requests or tokens), in units per second.

    Args:
        config: The decrease, recovery and floor.
        ceiling: The configured rate, units per second (> 0). The rate starts there.
        now: The time the controller is created.

    Raises:
        ValueError: A ceiling that is not a positive finite number.
    """

    __slots__ = (
        "_anchor_rate",
        "_anchor_t",
        "_config",
        "_configured",
        "_decreases",
        "_last_decrease",
        "_reported",
    )

    def __init__(self, config: AIMDConfig, *, ceiling: float, now: float) -> None:
        _check_rate("ceiling", ceiling)
        self._config = config
        self._configured = float(ceiling)
        self._reported: float | None = None
        self._anchor_rate = float(ceiling)
        self._anchor_t = float(now)
        self._last_decrease: float | None = None
        self._decreases = 0

    @property
    def configured_ceiling(self) -> float:
        """The ceiling from configuration."""
        return self._configured

    @property
    def ceiling(self) -> float:
        """The configured ceiling, lowered to the provider's reported limit when lower."""
        if self._reported is None:
            return self._configured
        return min(self._configured, self._reported)

    @property
    def floor(self) -> float:
        """The lowest rate the controller allows."""
        return self._config.floor_fraction * self.ceiling

    @property
    def decreases(self) -> int:
        """How many 429s decreased the rate."""
        return self._decreases

    @property
    def last_decrease(self) -> float | None:
        """When the rate was last decreased, or None."""
        return self._last_decrease

    def rate(self, now: float) -> float:
        """The allowed rate at ``now``, units per second, in [floor, ceiling]."""
        elapsed = max(0.0, now - self._anchor_t)
        ceiling = self.ceiling
        # The pace changes only where on_limit_reported re-anchors, so the rate stays
        # one line from the anchor.
        config = self._config
        pace = (
            config.recovery_per_second if self._reported is None else config.recovery_when_reported
        )
        grown = self._anchor_rate + pace * ceiling * elapsed
        return max(self.floor, min(ceiling, grown))

    def on_rate_limited(self, now: float, *, sent_at: float | None = None) -> bool:
        """A 429: decrease the rate multiplicatively, once per congestion event.

        Args:
            now: When the 429 arrived.
            sent_at: When the refused request was granted. A request sent before the
                last decrease was sent at the old rate, so its 429 is part of the event
                already answered and changes nothing. None: treated as sent now.

        Returns:
            True if the rate was decreased.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        sent = now if sent_at is None else sent_at
        if self._last_decrease is not None and sent < self._last_decrease:
            return False
        current = self.rate(now)
        self._anchor_rate = max(self.floor, current * self._config.decrease_factor)
        self._anchor_t = max(now, self._anchor_t)
        self._last_decrease = now
        self._decreases += 1
        return True

    def on_limit_reported(self, limit: float | None, now: float) -> None:
        """The provider reported its limit (units per second), or None to forget it.

        A limit below the configured ceiling becomes the ceiling at once (the rate drops
        to it if above). A higher one only lifts the ceiling back towards the configured
        value, and the rate climbs to it at the recovery pace: a limit is never raised
        above configuration by a header.

        Raises:
            ValueError: A limit that is not a positive finite number.
        """
        if limit is not None:
            _check_rate("limit", limit)
        current = self.rate(now)
        self._reported = None if limit is None else float(limit)
        self._anchor_rate = min(current, self.ceiling)
        self._anchor_t = max(now, self._anchor_t)

    def __repr__(self) -> str:
        return (
            f"AIMDController(ceiling={self.ceiling:g}/s, anchor={self._anchor_rate:g}/s "
            f"at t={self._anchor_t:g}, decreases={self._decreases})"
        )


def _check_rate(name: str, value: float) -> None:
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0 (units per second), got {value!r}")
