"""A continuously refilled token bucket (sans-IO).

The bucket holds a *level* of units (requests or tokens) that refills at ``rate`` units
per second up to ``capacity``. Nothing here reads a clock: every operation takes
``now`` (seconds, monotonic), and a ``now`` earlier than one already seen counts as no
time passing, so a bucket never refills backwards (a wait is still counted from the
``now`` given).

Semantics a caller relies on:

* ``reserve(amount, now)`` is all-or-nothing: it returns ``0.0`` and takes ``amount``,
  or returns the seconds until it could be granted and takes nothing.
* **Oversized requests.** An amount larger than ``capacity`` can never fit; it is
  granted when the bucket is *full*, and the excess becomes *debt*: the level goes
  negative and refill repays it before anything else is granted. So a huge request is
  never starved, and the long-run rate still holds (a stream of requests of twice the
  capacity gets one every ``2 * capacity / rate`` seconds, not one every
  ``capacity / rate``).
* ``take`` charges unconditionally (debt allowed): for usage that already happened,
  such as output beyond what was reserved. ``refund`` gives back, never above capacity.
* ``correct`` aligns the bucket with the provider's rate-limit headers (see its
  docstring): it only ever *lowers* the level.

Invariants: ``level <= capacity`` always; the level is negative only through an
oversized grant, ``take`` or ``correct`` (debt); every grant happens at a level of at
least the amount granted (or at a full bucket, for an oversized amount).
"""

from __future__ import annotations

import math

__all__ = ["TokenBucket"]

# Relative tolerance when deciding whether a level covers an amount. Without it, float
# rounding of ``level + elapsed * rate`` can leave a level a hair short of the amount at
# exactly the instant ``wait_time`` promised, and a caller on virtual time would be told
# to wait 1e-16 s, a wait that ``now + wait`` cannot even represent.
_TOLERANCE = 1e-9


def _check_amount(name: str, value: float) -> None:
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class TokenBucket:
    """A token bucket refilled continuously at ``rate`` per second up to ``capacity``.

    Args:
        rate: Units per second (for a per-minute limit ``L``, ``L / 60``). Must be > 0.
        capacity: The most the bucket holds: the largest burst. Must be > 0.
        now: The time the bucket is created.
        level: The starting level; full (``capacity``) when omitted.

    Raises:
        ValueError: A rate or capacity that is not a positive finite number, or a level
            above capacity.
    """

    __slots__ = ("_capacity", "_level", "_rate", "_slow_rate", "_slow_until", "_t")

    def __init__(
        self, *, rate: float, capacity: float, now: float, level: float | None = None
    ) -> None:
        _check_positive("rate", rate)
        _check_positive("capacity", capacity)
        if level is not None and not (math.isfinite(level) and level <= capacity):
            raise ValueError(f"level must be finite and <= capacity ({capacity}), got {level!r}")
        self._rate = float(rate)
        self._capacity = float(capacity)
        self._level = float(capacity if level is None else level)
        self._t = float(now)
        # Until ``_slow_until`` the refill runs at most at ``_slow_rate`` (set by the
        # ``reset_in`` of a correction: never refill faster than the provider does).
        self._slow_rate = math.inf
        self._slow_until = -math.inf

    # -- reading -----------------------------------------------------------------------

    @property
    def rate(self) -> float:
        """Units per second the bucket refills at (before any ``reset_in`` slow-down)."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most the bucket holds."""
        return self._capacity

    def level(self, now: float) -> float:
        """The level at ``now``: what could be granted now. Negative while in debt."""
        self._advance(now)
        return self._level

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds from ``now`` until ``amount`` could be granted; 0.0 if it can be now.

        Takes nothing. An amount above capacity needs a full bucket.

        Raises:
            ValueError: ``amount`` is negative or not finite.
        """
        _check_amount("amount", amount)
        self._advance(now)
        need = min(amount, self._capacity) - self._level
        if need <= _TOLERANCE * max(1.0, self._capacity):
            return 0.0
        # From ``now`` even if it is behind the last time seen (which refill counts from).
        return self._time_to_gain(need, self._t) + max(0.0, self._t - now)

    # -- changing ------------------------------------------------------------------------

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount`` if it is available now; otherwise take nothing.

        Returns:
            0.0 when granted (and taken); otherwise the seconds until it could be.

        Raises:
            ValueError: ``amount`` is negative or not finite.
        """
        wait = self.wait_time(amount, now)
        if wait > 0.0:
            return wait
        if amount > self._capacity:
            self._level -= amount  # granted at a full bucket: the excess becomes debt
        else:
            # The tolerance may have granted a hair more than the level: forgive it
            # rather than leave a -1e-12 debt behind.
            self._level = max(0.0, self._level - amount) if self._level >= 0.0 else self._level
        return 0.0

    def take(self, amount: float, now: float) -> None:
        """Charge ``amount`` unconditionally; the level may go negative (debt).

        Raises:
            ValueError: ``amount`` is negative or not finite.
        """
        _check_amount("amount", amount)
        self._advance(now)
        self._level -= amount

    def refund(self, amount: float, now: float) -> None:
        """Give ``amount`` back; the level never goes above capacity.

        Raises:
            ValueError: ``amount`` is negative or not finite.
        """
        _check_amount("amount", amount)
        self._advance(now)
        self._level = min(self._capacity, self._level + amount)

    def set_rate(self, rate: float, now: float, *, capacity: float | None = None) -> None:
        """Change the refill rate (and optionally the capacity) from ``now`` on.

        The refill up to ``now`` is credited at the old rate first. A smaller capacity
        clips the level to it.

        Raises:
            ValueError: A rate or capacity that is not a positive finite number.
        """
        _check_positive("rate", rate)
        if capacity is not None:
            _check_positive("capacity", capacity)
        self._advance(now)
        self._rate = float(rate)
        if capacity is not None:
            self._capacity = float(capacity)
            self._level = min(self._level, self._capacity)

    def correct(
        self,
        remaining: float,
        reset_in: float | None,
        now: float,
        *,
        unseen: float = 0.0,
    ) -> float:
        """Align with a provider's rate-limit headers: ``remaining`` now, full in ``reset_in``.

        How a provider's window is combined with this continuous bucket:

        * **Only ever lower.** Raising the level to a provider's figure is how a client
          overshoots (the figure is a snapshot, and what was sent since is not in it), so
          the level is lowered to the provider's figure when it is below ours, and
          otherwise left alone (our own refill already credits what the provider will
          give back).
        * **Calls in flight.** A header is the provider's snapshot when it admitted one
          call. What this bucket granted and the provider had not admitted by then is
          not in it; ``unseen`` is that amount, so the provider's level as this bucket
          counts it is ``remaining - unseen``, compared with the level now. (A limiter
          estimates ``unseen`` from the calls granted after that one whose own headers
          have not come back: ``swarm.ratelimit.unheard``.) The provider's refill since
          its snapshot is not credited: the header does not say when it was taken, and
          guessing early overshoots, so the error is a small constant margin on the
          safe side, not a loss of rate.
        * **Never refill faster than the provider.** ``reset_in`` is when the provider
          says its quota is full again. If this bucket, refilling at its rate from the
          corrected level, would be full sooner, its refill is slowed until then to
          exactly reach capacity at ``now + reset_in``. That catches a rate configured
          above the provider's and a provider window longer than a minute (a per-day
          request limit reports a reset hours away). The latest header replaces any
          earlier slow-down.
        * **Fixed windows.** A provider that resets a fixed window all at once (rather
          than refilling continuously, as OpenAI, Anthropic and the simulator do) can
          still be overshot by this bucket's refill before its window ends; a burst
          (capacity) below the limit narrows that, and the 429 path (pause until
          ``retry-after``, multiplicative decrease) bounds it.

        Args:
            remaining: What the provider said is left (>= 0).
            reset_in: Seconds until the provider's quota is full again, or None.
            now: The time the header arrived.
            unseen: What this bucket granted that the provider had not yet admitted when
                it took the snapshot (>= 0); 0 takes the header as fresh.

        Returns:
            How much the level was lowered (0.0 when the header was not below it).

        Raises:
            ValueError: ``remaining``, ``reset_in`` or ``unseen`` negative or not finite.
        """
        _check_amount("remaining", remaining)
        if reset_in is not None:
            _check_amount("reset_in", reset_in)
        _check_amount("unseen", unseen)
        self._advance(now)
        # Exactly the provider's figure when fresh (no float residue from a subtraction).
        provider = remaining - unseen if unseen else remaining
        lowered = 0.0
        if self._level > provider:
            lowered = self._level - provider
            self._level = provider
        if reset_in is not None and reset_in > 0.0:
            deficit = self._capacity - self._level
            slow = deficit / reset_in if deficit > 0.0 else math.inf
            if slow < self._rate:
                self._slow_rate = slow
                self._slow_until = max(now, self._t) + reset_in
            else:
                self._slow_rate = math.inf
                self._slow_until = -math.inf
        return lowered

    # -- internals -----------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        if now <= self._t:
            return
        slow_span = max(0.0, min(now, self._slow_until) - self._t)
        gain = slow_span * min(self._rate, self._slow_rate) + (now - self._t - slow_span) * (
            self._rate
        )
        self._level = min(self._capacity, self._level + gain)
        self._t = now

    def _time_to_gain(self, need: float, start: float) -> float:
        slow = min(self._rate, self._slow_rate)
        slow_span = max(0.0, self._slow_until - start)
        slow_gain = slow * slow_span
        if need <= slow_gain:
            return need / slow
        return slow_span + (need - slow_gain) / self._rate

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate={self._rate:g}/s, capacity={self._capacity:g}, "
            f"level={self._level:g} at t={self._t:g})"
        )


def _check_positive(name: str, value: float) -> None:
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
