"""Concurrency limits: a fixed one, and a latency-gradient adaptive one (sans-IO).

The adaptive limit follows Netflix's Gradient2 (concurrency-limits) in the manner of
Envoy's adaptive concurrency filter, fed with *time to first token*: the latency an LLM
provider adds when it queues our requests. Each sampling window::

    short    = mean TTFT of the window                (the current latency)
    long     = exponential average of ``short``        (the baseline; plain mean while
                                                         warming up)
    gradient = clamp(tolerance * long / short, 0.5, 1.0)
    target   = limit * gradient + queue_size            (queue_size: sqrt(limit) unless set)
    limit    = clamp(limit * (1 - smoothing) + target * smoothing, min_limit, max_limit)

While latency stays within ``tolerance`` of its baseline the gradient is 1 and the limit
grows by ``smoothing * queue_size`` per window; when latency rises the gradient drops
below 1 and the limit shrinks (at most halving per window's target, to ride out
outliers). Two guards from Gradient2: the limit does not grow while the window never
used half of it (an app-limited caller proves nothing about capacity; unlike Gradient2,
it may still shrink then, since rising TTFT is the provider's congestion whoever
causes it), and when the
baseline is over twice the current latency (load just ended) it decays by 10% per window
rather than waiting for the average to catch up.

Accounting: ``acquire()`` takes a slot if ``inflight < limit``; ``release()`` gives it
back. A limit that drops below ``inflight`` revokes nothing: calls in flight finish, and
no new slot is granted until ``inflight`` is below the limit again.
"""

from __future__ import annotations

import math

import msgspec

__all__ = [
    "DEFAULT_GRADIENT_INITIAL_LIMIT",
    "DEFAULT_GRADIENT_LONG_WINDOW",
    "DEFAULT_GRADIENT_MIN_LIMIT",
    "DEFAULT_GRADIENT_SMOOTHING",
    "DEFAULT_GRADIENT_TOLERANCE",
    "DEFAULT_GRADIENT_WARMUP",
    "DEFAULT_GRADIENT_WINDOW",
    "DEFAULT_GRADIENT_WINDOW_MIN_SAMPLES",
    "ConcurrencyLimit",
    "FixedConcurrency",
    "FixedConcurrencyLimit",
    "GradientConcurrency",
    "GradientConcurrencyLimit",
    "concurrency_limit",
]

#: Gradient2's starting limit.
DEFAULT_GRADIENT_INITIAL_LIMIT = 20
#: A floor that keeps a swarm moving when TTFT is noisy.
DEFAULT_GRADIENT_MIN_LIMIT = 4
#: Gradient2's smoothing: a window moves the limit 20% of the way to its target.
DEFAULT_GRADIENT_SMOOTHING = 0.2
#: TTFT may grow to 1.5x its baseline before the limit shrinks. TTFT varies with prompt
#: length (prefill), far more than an RPC's latency does, hence more than Gradient2's 1.0.
DEFAULT_GRADIENT_TOLERANCE = 1.5
#: Windows in the baseline's exponential average (about ten minutes of 1 s windows).
DEFAULT_GRADIENT_LONG_WINDOW = 600
#: Windows averaged plainly before the exponential average starts.
DEFAULT_GRADIENT_WARMUP = 10
#: Seconds per sampling window.
DEFAULT_GRADIENT_WINDOW = 1.0
#: Samples a window needs before it closes.
DEFAULT_GRADIENT_WINDOW_MIN_SAMPLES = 10

# The gradient's lower clamp: one window at most halves the target (Gradient2's value).
_MIN_GRADIENT = 0.5
# Baseline decay once the baseline is over twice the current latency (Gradient2).
_BASELINE_DECAY = 0.9
_BASELINE_DECAY_RATIO = 2.0


class FixedConcurrency(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag="fixed"
):
    """A fixed concurrency limit.

    Attributes:
        limit: The most calls in flight at once (>= 1).
    """

    limit: int

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"FixedConcurrency.limit must be >= 1, got {self.limit!r}")


class GradientConcurrency(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag="gradient"
):
    """A concurrency limit adapted from time-to-first-token (see the module docstring).

    Attributes:
        max_limit: The highest limit: the most calls in flight ever. Required: it is the
            safety bound when latency gives no signal.
        min_limit: The lowest limit (>= 1).
        initial_limit: Where the limit starts, in [min_limit, max_limit].
        smoothing: How far one window moves the limit towards its target, in (0, 1].
        tolerance: How much TTFT may exceed its baseline before the limit shrinks (>= 1).
        queue_size: Growth allowance per window's target; None: sqrt(limit).
        long_window: Windows in the baseline's exponential average (>= 1).
        warmup: Windows averaged plainly before that (>= 1).
        window: Seconds per sampling window (>= 0; 0 closes a window at every sample).
        window_min_samples: Samples a window needs before it closes (>= 1).
    """

    max_limit: int
    min_limit: int = DEFAULT_GRADIENT_MIN_LIMIT
    initial_limit: int = DEFAULT_GRADIENT_INITIAL_LIMIT
    smoothing: float = DEFAULT_GRADIENT_SMOOTHING
    tolerance: float = DEFAULT_GRADIENT_TOLERANCE
    queue_size: float | None = None
    long_window: int = DEFAULT_GRADIENT_LONG_WINDOW
    warmup: int = DEFAULT_GRADIENT_WARMUP
    window: float = DEFAULT_GRADIENT_WINDOW
    window_min_samples: int = DEFAULT_GRADIENT_WINDOW_MIN_SAMPLES

    def __post_init__(self) -> None:
        name = "GradientConcurrency"
        if self.min_limit < 1:
            raise ValueError(f"{name}.min_limit must be >= 1, got {self.min_limit!r}")
        if self.max_limit < self.min_limit:
            raise ValueError(
                f"{name}.max_limit ({self.max_limit}) must be >= min_limit ({self.min_limit})"
            )
        if not (self.min_limit <= self.initial_limit <= self.max_limit):
            raise ValueError(
                f"{name}.initial_limit ({self.initial_limit}) must be within "
                f"[min_limit, max_limit] = [{self.min_limit}, {self.max_limit}]"
            )
        if not (0.0 < self.smoothing <= 1.0):
            raise ValueError(f"{name}.smoothing must be in (0, 1], got {self.smoothing!r}")
        if not (self.tolerance >= 1.0 and math.isfinite(self.tolerance)):
            raise ValueError(
                f"{name}.tolerance must be a finite number >= 1, got {self.tolerance!r}"
            )
        if self.queue_size is not None and not (
            self.queue_size >= 0.0 and math.isfinite(self.queue_size)
        ):
            raise ValueError(
                f"{name}.queue_size must be a finite number >= 0 or None (sqrt of the limit), "
                f"got {self.queue_size!r}"
            )
        if self.long_window < 1:
            raise ValueError(f"{name}.long_window must be >= 1, got {self.long_window!r}")
        if self.warmup < 1:
            raise ValueError(f"{name}.warmup must be >= 1, got {self.warmup!r}")
        if not (self.window >= 0.0 and math.isfinite(self.window)):
            raise ValueError(
                f"{name}.window must be a finite number of seconds >= 0, got {self.window!r}"
            )
        if self.window_min_samples < 1:
            raise ValueError(
                f"{name}.window_min_samples must be >= 1, got {self.window_min_samples!r}"
            )


class ConcurrencyLimit:
    """Slots for calls in flight, under a limit that subclasses may adapt.

    Invariant: a slot is granted only while ``inflight < limit``, so ``inflight`` never
    exceeds the limit in force at the latest grant.
    """

    __slots__ = ("_inflight",)

    def __init__(self) -> None:
        self._inflight = 0

    @property
    def limit(self) -> int:
        """The current limit."""
        raise NotImplementedError

    @property
    def inflight(self) -> int:
        """Slots taken and not yet released."""
        return self._inflight

    def acquire(self) -> bool:
        """Take a slot if one is free. Returns False, changing nothing, if not."""
        if self._inflight >= self.limit:
            return False
        self._inflight += 1
        self._on_acquire()
        return True

    def release(self) -> None:
        """Give a slot back.

        Raises:
            RuntimeError: No slot is taken (a release without an acquire).
        """
        if self._inflight <= 0:
            raise RuntimeError("ConcurrencyLimit.release() without a matching acquire()")
        self._inflight -= 1

    def on_sample(self, ttft: float, now: float) -> None:
        """A time-to-first-token sample (seconds) observed at ``now``.

        Raises:
            ValueError: ``ttft`` is negative or not finite.
        """
        if not (ttft >= 0.0 and math.isfinite(ttft)):
            raise ValueError(f"ttft must be a finite number of seconds >= 0, got {ttft!r}")

    def _on_acquire(self) -> None:
        pass


class FixedConcurrencyLimit(ConcurrencyLimit):
    """A limit that never changes; samples are checked and ignored."""

    __slots__ = ("_limit",)

    def __init__(self, config: FixedConcurrency) -> None:
        super().__init__()
        self._limit = config.limit

    @property
    def limit(self) -> int:
        return self._limit

    def __repr__(self) -> str:
        return f"FixedConcurrencyLimit(limit={self._limit}, inflight={self._inflight})"


class GradientConcurrencyLimit(ConcurrencyLimit):
    """A Gradient2-style limit driven by time-to-first-token samples.

    Args:
        config: Bounds, smoothing, tolerance and windowing.
        now: The time the limit is created (the first window starts then).
    """

    __slots__ = (
        "_baseline",
        "_baseline_windows",
        "_config",
        "_estimate",
        "_last_short",
        "_window_count",
        "_window_max_inflight",
        "_window_start",
        "_window_sum",
    )

    def __init__(self, config: GradientConcurrency, *, now: float) -> None:
        super().__init__()
        self._config = config
        self._estimate = float(config.initial_limit)
        self._baseline: float | None = None
        self._baseline_windows = 0
        self._last_short: float | None = None
        self._window_start = float(now)
        self._window_sum = 0.0
        self._window_count = 0
        self._window_max_inflight = 0

    @property
    def limit(self) -> int:
        return max(self._config.min_limit, int(self._estimate))

    @property
    def estimate(self) -> float:
        """The limit before rounding down to a whole number of slots."""
        return self._estimate

    @property
    def baseline(self) -> float | None:
        """The long-term TTFT baseline, seconds (None before the first window)."""
        return self._baseline

    @property
    def last_window_ttft(self) -> float | None:
        """The mean TTFT of the last closed window, seconds."""
        return self._last_short

    def _on_acquire(self) -> None:
        self._window_max_inflight = max(self._window_max_inflight, self._inflight)

    def on_sample(self, ttft: float, now: float) -> None:
        super().on_sample(ttft, now)
        self._window_sum += ttft
        self._window_count += 1
        # A sample's own call is in flight when it is taken, even if it is released first.
        self._window_max_inflight = max(self._window_max_inflight, self._inflight)
        cfg = self._config
        if self._window_count >= cfg.window_min_samples and now - self._window_start >= cfg.window:
            self._close_window(now)

    def _close_window(self, now: float) -> None:
        cfg = self._config
        short = self._window_sum / self._window_count
        max_inflight = self._window_max_inflight
        self._window_start = max(now, self._window_start)
        self._window_sum = 0.0
        self._window_count = 0
        self._window_max_inflight = self._inflight
        self._last_short = short

        self._baseline_windows += 1
        if self._baseline is None:
            self._baseline = short
        elif self._baseline_windows <= cfg.warmup:
            self._baseline += (short - self._baseline) / self._baseline_windows
        else:
            self._baseline += (short - self._baseline) * 2.0 / (cfg.long_window + 1)
        baseline = self._baseline
        if short > 0.0 and baseline / short > _BASELINE_DECAY_RATIO:
            self._baseline = baseline * _BASELINE_DECAY

        if short <= 0.0:
            gradient = 1.0
        else:
            gradient = max(_MIN_GRADIENT, min(1.0, cfg.tolerance * baseline / short))
        queue = math.sqrt(self._estimate) if cfg.queue_size is None else cfg.queue_size
        target = self._estimate * gradient + queue
        estimate = self._estimate * (1.0 - cfg.smoothing) + target * cfg.smoothing
        if estimate > self._estimate and max_inflight < self._estimate / 2.0:
            return  # app-limited: no evidence that more concurrency would be served
        self._estimate = max(float(cfg.min_limit), min(float(cfg.max_limit), estimate))

    def __repr__(self) -> str:
        return (
            f"GradientConcurrencyLimit(limit={self.limit}, inflight={self._inflight}, "
            f"baseline={self._baseline!r})"
        )


def concurrency_limit(
    config: FixedConcurrency | GradientConcurrency, *, now: float
) -> ConcurrencyLimit:
    """Build the concurrency limit a config describes."""
    if isinstance(config, FixedConcurrency):
        return FixedConcurrencyLimit(config)
    return GradientConcurrencyLimit(config, now=now)
