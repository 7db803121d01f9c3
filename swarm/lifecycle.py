"""The life of one call, as a sans-IO state machine.

::

                 dispatch                first_byte
    QUEUED ───────────────► DISPATCHED ─────────────► STREAMING ──content──┐
      ▲  ▲                     │   │                     │    ▲────────────┘
      │  └──── requeue ────────┘   │ attempt_failed      │ attempt_failed
      │     (actor crashed before  │ (retry)             │ (retry: restart)
      │      the commit point)     ▼                     ▼
      │                       WAITING_RETRY ◄────────────┘
      └───── (dispatch) ──────────┘
    any non-terminal ── complete ──► COMPLETED   (from DISPATCHED or STREAMING)
                     ── fail ──────► FAILED
                     ── cancel ────► CANCELLED

Invariants:
    * ``requeue`` is legal from DISPATCHED and from WAITING_RETRY (between attempts:
      a visible failed attempt already sent the caller its ``Restart``).
    * A call is in exactly one state; COMPLETED, FAILED and CANCELLED are terminal
      and sticky: every later transition raises :class:`IllegalTransition` and
      changes nothing. This is how the engine guarantees exactly one terminal event.
    * The commit point is the first response byte of an attempt. A committed attempt
      is never requeued (its text reached the caller); it can only fail, restart
      (WAITING_RETRY with ``restart_pending``) or finish.
    * ``attempts`` counts dispatches, including those later requeued (they may have
      reached the provider, which bills or rate-limits them); ``requeues`` counts
      the uncommitted returns to the scheduler. The ledger reports both.

Times are seconds from an injected clock (``now`` arguments).
"""

from __future__ import annotations

import enum
import math

import msgspec

__all__ = ["CallLifecycle", "CallState", "GapSummary", "IllegalTransition"]


class CallState(enum.Enum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    STREAMING = "streaming"
    WAITING_RETRY = "waiting_retry"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({CallState.COMPLETED, CallState.FAILED, CallState.CANCELLED})
_LIVE = frozenset(CallState) - _TERMINAL

Q, D, S, W = CallState.QUEUED, CallState.DISPATCHED, CallState.STREAMING, CallState.WAITING_RETRY

# event -> states it is legal in. Anything else raises.
_LEGAL: dict[str, frozenset[CallState]] = {
    "dispatch": frozenset({Q, W}),
    "first_byte": frozenset({D}),
    "content": frozenset({S}),
    "attempt_failed": frozenset({D, S}),
    "requeue": frozenset({D, W}),
    "complete": frozenset({D, S}),
    "fail": _LIVE,
    "cancel": _LIVE,
}


class IllegalTransition(RuntimeError):
    """An event arrived in a state where it makes no sense (a runtime bug)."""


# Log-spaced gap buckets: bucket i holds gaps in [2**(i-1), 2**i) ms, bucket 0 < 1 ms.
_GAP_BUCKETS = 24


class GapSummary(msgspec.Struct, kw_only=True, frozen=True):
    """Inter-token gaps of a call (seconds). Percentiles are bucket upper bounds
    (log2 buckets of milliseconds), so within a factor of two."""

    count: int
    mean: float
    max: float
    p50: float
    p99: float


class CallLifecycle:
    """Tracks one call's state and timings. Not thread-safe; owned by one actor at a time.

    Args:
        call_id: The engine's id for the call.
        now: When the call was accepted.
    """

    __slots__ = (
        "_gap_buckets",
        "_gap_count",
        "_gap_max",
        "_gap_sum",
        "_last_content_at",
        "accepted_at",
        "attempt_started_at",
        "attempts",
        "call_id",
        "committed",
        "deployment",
        "ended_at",
        "first_dispatched_at",
        "first_token_at",
        "requeues",
        "restart_pending",
        "restarts",
        "state",
        "ttft",
    )

    def __init__(self, call_id: str, now: float) -> None:
        self.call_id = call_id
        self.state = CallState.QUEUED
        self.accepted_at = now
        self.first_dispatched_at: float | None = None
        self.attempt_started_at: float | None = None
        self.first_token_at: float | None = None
        self.ttft: float | None = None
        self.ended_at: float | None = None
        self.attempts = 0
        self.requeues = 0
        self.restarts = 0
        self.committed = False
        self.restart_pending = False
        self.deployment: str | None = None
        self._last_content_at: float | None = None
        self._gap_count = 0
        self._gap_sum = 0.0
        self._gap_max = 0.0
        self._gap_buckets: list[int] | None = None

    # -- transitions ------------------------------------------------------------------

    def _check(self, event: str) -> None:
        if self.state not in _LEGAL[event]:
            raise IllegalTransition(
                f"call {self.call_id}: {event!r} is not legal in state {self.state.value}"
            )

    def dispatch(self, deployment: str, now: float) -> None:
        """An attempt starts on ``deployment``."""
        self._check("dispatch")
        self.state = CallState.DISPATCHED
        self.attempts += 1
        self.deployment = deployment
        self.attempt_started_at = now
        self.committed = False
        if self.first_dispatched_at is None:
            self.first_dispatched_at = now

    def first_byte(self, now: float) -> None:
        """The attempt's first response byte arrived: the commit point."""
        self._check("first_byte")
        self.state = CallState.STREAMING
        self.committed = True
        if self.restart_pending:
            self.restart_pending = False
            self.restarts += 1
            # Gaps restart with the new attempt: the old text is void.
            self._last_content_at = None

    def content(self, now: float, count: int = 1) -> None:
        """``count`` content events (text, reasoning or tool-call pieces) arrived
        together at ``now`` (the events of one network read). Hot path.

        Each event after the first is a gap of 0 from the one before it: the same
        statistics as ``count`` calls at one instant, at the cost of one."""
        if self.state is not CallState.STREAMING:
            self._check("content")
        last = self._last_content_at
        self._last_content_at = now
        zeros = count - 1
        if last is None:
            if self.first_token_at is None:
                self.first_token_at = now
                assert self.attempt_started_at is not None
                self.ttft = now - self.attempt_started_at
            if not zeros:
                return
        else:
            gap = now - last
            self._gap_count += 1
            self._gap_sum += gap
            if gap > self._gap_max:
                self._gap_max = gap
            buckets = self._gap_buckets
            if buckets is None:
                buckets = self._gap_buckets = [0] * _GAP_BUCKETS
            ms = gap * 1000.0
            index = 0 if ms < 1.0 else min(_GAP_BUCKETS - 1, int(math.log2(ms)) + 1)
            buckets[index] += 1
            if not zeros:
                return
        self._gap_count += zeros
        buckets = self._gap_buckets
        if buckets is None:
            buckets = self._gap_buckets = [0] * _GAP_BUCKETS
        buckets[0] += zeros

    def attempt_failed(self, now: float, *, will_retry: bool) -> None:
        """The current attempt failed. With ``will_retry`` the call waits for its next
        attempt (a restart if the attempt had committed); otherwise use :meth:`fail`."""
        self._check("attempt_failed")
        if not will_retry:
            raise IllegalTransition(
                f"call {self.call_id}: an attempt that will not be retried ends with fail()"
            )
        if self.committed:
            self.restart_pending = True
        self.state = CallState.WAITING_RETRY

    def requeue(self, now: float) -> None:
        """The call's actor went away before the attempt's commit point, or between
        attempts: back to the queue.

        Raises:
            IllegalTransition: the attempt had committed (it must fail instead).
        """
        self._check("requeue")
        self.requeues += 1
        self.state = CallState.QUEUED

    def complete(self, now: float) -> None:
        self._check("complete")
        self.state = CallState.COMPLETED
        self.ended_at = now

    def fail(self, now: float) -> None:
        self._check("fail")
        self.state = CallState.FAILED
        self.ended_at = now

    def cancel(self, now: float) -> None:
        self._check("cancel")
        self.state = CallState.CANCELLED
        self.ended_at = now

    # -- reading ------------------------------------------------------------------------

    @property
    def queued_time(self) -> float | None:
        """Seconds from acceptance to the first dispatch."""
        if self.first_dispatched_at is None:
            return None
        return self.first_dispatched_at - self.accepted_at

    @property
    def duration(self) -> float | None:
        """Seconds from acceptance to the end."""
        return None if self.ended_at is None else self.ended_at - self.accepted_at

    def gaps(self) -> GapSummary | None:
        if self._gap_count == 0 or self._gap_buckets is None:
            return None
        return GapSummary(
            count=self._gap_count,
            mean=self._gap_sum / self._gap_count,
            max=self._gap_max,
            p50=min(self._gap_max, _quantile(self._gap_buckets, self._gap_count, 0.50)),
            p99=min(self._gap_max, _quantile(self._gap_buckets, self._gap_count, 0.99)),
        )


def _quantile(buckets: list[int], count: int, q: float) -> float:
    """The upper bound (seconds) of the bucket holding the q-quantile."""
    rank = math.ceil(q * count)
    seen = 0
    for index, n in enumerate(buckets):
        seen += n
        if seen >= rank:
            return (2.0**index) / 1000.0
    return (2.0 ** (len(buckets) - 1)) / 1000.0
