"""Load shapes (sans-IO): the intended send times of an open-loop run, and the
start times of a closed loop's workers.

Open loop: requests arrive at ``rate`` per second whatever the server does
(Poisson: exponential gaps; gamma: gaps with shape ``burstiness``, the same mean,
burstier below 1 and steadier above; ``constant``: evenly spaced). A ramp-up of
``R`` seconds raises the rate linearly from 0 to ``rate``; the times are drawn
exactly, by mapping a unit-rate process through the inverse of the ramp's
cumulative rate, so the ramp is neither rounded nor thinned.

Closed loop: ``concurrency`` workers, each sending its next request when its last
one ends; a ramp-up starts the workers evenly spread over ``R`` seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Literal

import msgspec

__all__ = ["Arrival", "LoadPoint", "arrivals", "worker_starts"]

Arrival = Literal["poisson", "gamma", "constant"]


class LoadPoint(msgspec.Struct, kw_only=True, frozen=True):
    """One point of a run (a sweep has several): a closed loop of ``concurrency``
    requests in flight, or an open loop of ``rate`` requests per second."""

    mode: Literal["concurrency", "rate"]
    value: float

    @property
    def label(self) -> str:
        if self.mode == "concurrency":
            return f"concurrency {self.value:g}"
        return f"rate {self.value:g}/s"


def _unit_gaps(arrival: Arrival, burstiness: float, rng: random.Random) -> Iterator[float]:
    """Gaps of a unit-rate process (mean 1)."""
    while True:
        if arrival == "constant":
            yield 1.0
        elif arrival == "poisson":
            yield rng.expovariate(1.0)
        else:
            yield rng.gammavariate(burstiness, 1.0 / burstiness)


def arrivals(
    rate: float,
    *,
    arrival: Arrival = "poisson",
    burstiness: float = 1.0,
    ramp_up: float = 0.0,
    seed: int = 0,
) -> Iterator[float]:
    """Intended send times in seconds from the start, endless and increasing."""
    if rate <= 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
    if burstiness <= 0:
        raise ValueError(f"burstiness must be > 0 (1 is Poisson), got {burstiness}")
    if ramp_up < 0:
        raise ValueError(f"ramp-up must be >= 0 seconds, got {ramp_up}")
    rng = random.Random(seed)
    # Cumulative expected arrivals: rate*t^2/(2R) during the ramp, then rate*(t - R/2).
    ramp_mass = rate * ramp_up / 2
    mass = 0.0
    for gap in _unit_gaps(arrival, burstiness, rng):
        mass += gap
        if mass < ramp_mass:
            yield math.sqrt(2 * ramp_up * mass / rate)
        else:
            yield mass / rate + ramp_up / 2


def worker_starts(concurrency: int, ramp_up: float) -> list[float]:
    """When each closed-loop worker starts: all at 0, or evenly over the ramp."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if ramp_up <= 0 or concurrency == 1:
        return [0.0] * concurrency
    return [ramp_up * k / concurrency for k in range(concurrency)]
