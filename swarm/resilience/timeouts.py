"""Timeouts by phase, and the sans-IO clock that tracks them for one attempt.

A single "timeout" cannot tell a dead connection from a model that is thinking:
an LLM call has phases with very different normal durations, so each has its own
limit (``None`` disables one)::

    start ──connect──► connected ──···──► first content ──idle──► content ──idle──► end
      │◄──────────────── first_token ───────────►│
      │◄─────────────────────────────── total ──────────────────────────────────►│
      (and the call's own deadline, across all attempts, when the caller gave one)

* ``connect``: from the attempt's start until a connection is ready and the request
  starts going out (see :meth:`PhaseClock.on_connected`).
* ``first_token``: from the attempt's start until the first *content* event (text,
  reasoning, refusal, tool call, citations): the time to first token a user feels.
  Response headers, ``Start``, ``Usage`` and keep-alives are not content.
* ``idle``: the longest gap between content events. Keep-alives (SSE comments,
  Anthropic ``ping``) and non-content events do NOT reset it: a server that only
  pings is stuck, not streaming.
* ``total``: the whole attempt.
* ``pool`` and ``write`` are transport phases: waiting for a free connection in the
  pool and writing the request body happen inside the HTTP client, which enforces
  them per operation (``httpx.Timeout(pool=..., write=...)``) and reports a
  ``TimeoutError`` with that phase. :class:`PhaseClock` does not track them.

The clock reads no clock: every event carries ``now`` (seconds, monotonic), and
:meth:`PhaseClock.next_deadline` tells the actor when to wake up
(``with anyio.move_on_at(when): ...``), :meth:`PhaseClock.expired` whether a phase
has run out.
"""

from __future__ import annotations

import enum
import math
from typing import Literal, NamedTuple

import msgspec

from providers.errors import TimeoutError as PhaseTimeoutError
from providers.events import (
    Citations,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_FIRST_TOKEN_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "DEFAULT_WRITE_TIMEOUT",
    "TRANSITIONS",
    "ClockState",
    "Deadline",
    "Phase",
    "PhaseClock",
    "PhaseOrderError",
    "Timeouts",
    "is_content",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_POOL_TIMEOUT = 30.0
DEFAULT_WRITE_TIMEOUT = 30.0
# Reasoning models may think for minutes before their first visible token.
DEFAULT_FIRST_TOKEN_TIMEOUT = 300.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_TOTAL_TIMEOUT = 900.0

Phase = Literal["connect", "pool", "write", "first_token", "idle", "total", "deadline"]

_PHASE_FIELDS = ("connect", "pool", "write", "first_token", "idle", "total")


class Timeouts(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Per-phase time limits of one attempt, in seconds; None disables a phase.

    Attributes:
        connect: Until a connection is ready and the request goes out.
        pool: Waiting for a free connection (enforced by the transport).
        write: Writing the request body (enforced by the transport).
        first_token: From the attempt's start to the first content event.
        idle: The longest gap between content events (keep-alives do not count).
        total: The whole attempt.

    Any combination of phases is valid: each also ends when ``total`` does (the
    first deadline to come is the one reported), so ``Timeouts(total=10)`` needs no
    other change, and a ``first_token`` shorter than ``connect`` covers a slow
    connect too.

    Raises:
        ValueError: a value is not a positive finite number or None (infinity
            included: None disables a phase). The message names the field and
            the fix.
    """

    connect: float | None = DEFAULT_CONNECT_TIMEOUT
    pool: float | None = DEFAULT_POOL_TIMEOUT
    write: float | None = DEFAULT_WRITE_TIMEOUT
    first_token: float | None = DEFAULT_FIRST_TOKEN_TIMEOUT
    idle: float | None = DEFAULT_IDLE_TIMEOUT
    total: float | None = DEFAULT_TOTAL_TIMEOUT

    def __post_init__(self) -> None:
        for name in _PHASE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(
                    f"Timeouts.{name} must be seconds (a number) or None, got {value!r}"
                )
            if math.isinf(value) and value > 0:
                raise ValueError(f"Timeouts.{name} is infinite; use None to disable the phase")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"Timeouts.{name} must be a positive number of seconds, got {value!r}; "
                    "use None to disable the phase"
                )
        # No cross-phase rules: every phase also ends when ``total`` does (the clock
        # reports whichever deadline comes first), so Timeouts(total=10) is valid
        # whatever the other defaults, and a first_token shorter than connect
        # simply covers a slow connect too.


# The events that are progress of the generation: they end first_token and reset idle.
# Start (sent before the model generates), Usage (bookkeeping) and the terminal
# Finish/ErrorEvent are not: a server can send those while generating nothing.
# Events that show the model is producing (most frequent first: isinstance order).
CONTENT_EVENTS = (
    TextDelta,
    ReasoningDelta,
    RefusalDelta,
    ToolCallStart,
    ToolCallDelta,
    ToolCallDone,
    Citations,
)


def is_content(event: StreamEvent) -> bool:
    """Whether ``event`` is content (feed :meth:`PhaseClock.on_content_event`) or
    not (feed :meth:`PhaseClock.on_keepalive`)."""
    return isinstance(event, CONTENT_EVENTS)


class Deadline(NamedTuple):
    """The next moment a phase runs out, and which phase."""

    when: float
    phase: Phase


class ClockState(enum.Enum):
    NEW = "new"  # not started
    CONNECTING = "connecting"  # started; no connection reported yet
    WAITING = "waiting"  # connected (or bytes seen); no content yet
    STREAMING = "streaming"  # content has arrived
    ENDED = "ended"  # the attempt is over: nothing is armed


class PhaseOrderError(RuntimeError):
    """An attempt event arrived out of order (a runtime bug); nothing changed."""


_N, _C, _W, _S, _E = (
    ClockState.NEW,
    ClockState.CONNECTING,
    ClockState.WAITING,
    ClockState.STREAMING,
    ClockState.ENDED,
)

# (state, event) -> next state. A pair missing here is illegal: it raises
# PhaseOrderError and changes nothing. A later event implies the earlier ones
# (bytes arriving prove the connection exists).
TRANSITIONS: dict[tuple[ClockState, str], ClockState] = {
    (_N, "start"): _C,
    (_C, "connected"): _W,
    (_C, "first_byte"): _W,
    (_W, "first_byte"): _W,  # legal only before the first byte: checked separately
    (_C, "keepalive"): _W,
    (_W, "keepalive"): _W,
    (_S, "keepalive"): _S,
    (_C, "content"): _S,
    (_W, "content"): _S,
    (_S, "content"): _S,
    (_C, "end"): _E,
    (_W, "end"): _E,
    (_S, "end"): _E,
}


# Tie order when two phases run out at the same instant: the most specific phase
# explains the failure best, the call's deadline least.
def _seconds(value: float) -> str:
    return f"{value:g} s"


class PhaseClock:
    """The phase deadlines of one attempt (sans-IO).

    Feed it the attempt's events in order with their ``now``; ask
    :meth:`next_deadline` when to wake up and :meth:`expired` whether a phase ran
    out. Queries never change state. Not thread-safe; one per attempt.

    Args:
        timeouts: The per-phase limits.

    Example::

        clock = PhaseClock(timeouts)
        clock.start(now, deadline=call_deadline)
        ...
        nxt = clock.next_deadline()
        with anyio.move_on_at(nxt.when if nxt else math.inf):
            event = await receive()
    """

    __slots__ = (
        "_connected_at",
        "_deadline",
        "_ended_at",
        "_first_byte_at",
        "_first_content_at",
        "_last_content_at",
        "_started_at",
        "_state",
        "timeouts",
    )

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._state = ClockState.NEW
        # Invariants: each time is set once, by the event that names it (or implied
        # by a later event), and they are ordered started <= connected <= first_byte
        # <= first_content <= last_content. committed <=> first_byte_at is set.
        self._started_at: float | None = None
        self._connected_at: float | None = None
        self._first_byte_at: float | None = None
        self._first_content_at: float | None = None
        self._last_content_at: float | None = None
        self._ended_at: float | None = None
        self._deadline: float | None = None

    @property
    def state(self) -> ClockState:
        return self._state

    @property
    def committed(self) -> bool:
        """Whether the attempt passed the commit point (a response byte arrived)."""
        return self._first_byte_at is not None

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def connected_at(self) -> float | None:
        """When the connection was reported, or implied by the first bytes."""
        return self._connected_at

    @property
    def first_byte_at(self) -> float | None:
        return self._first_byte_at

    @property
    def first_content_at(self) -> float | None:
        return self._first_content_at

    @property
    def last_content_at(self) -> float | None:
        return self._last_content_at

    @property
    def ended_at(self) -> float | None:
        return self._ended_at

    @property
    def call_deadline(self) -> float | None:
        """The call's deadline given to :meth:`start`."""
        return self._deadline

    # -- events -----------------------------------------------------------------------------

    def start(self, now: float, *, deadline: float | None = None) -> None:
        """The attempt starts: connect, first-token and total begin to run.

        Args:
            now: The current time.
            deadline: The whole call's deadline (across attempts), if any; it is
                reported as phase ``"deadline"``.

        Raises:
            PhaseOrderError: the clock was already started.
        """
        self._step("start")
        self._started_at = now
        self._deadline = deadline

    def on_connected(self, now: float) -> None:
        """A connection is ready and the request starts going out; ends ``connect``.

        With httpx, report it from the trace extension at
        ``http11.send_request_headers.started`` / ``http2.send_request_headers.started``
        (fired for new and reused connections alike).

        Raises:
            PhaseOrderError: not connecting (not started, already connected, or ended).
        """
        self._step("connected")
        self._connected_at = now

    def on_first_byte(self, now: float) -> None:
        """The first byte of the response (its status line) arrived: the commit point.

        Implies the connection. Does not end ``first_token``: headers are not content.

        Raises:
            PhaseOrderError: bytes were already seen, or the attempt is not running.
        """
        if self.committed and self._state is not ClockState.ENDED:
            raise PhaseOrderError("on_first_byte() called twice for one attempt")
        self._step("first_byte")
        self._bytes_seen(now)

    def on_content_event(self, now: float) -> None:
        """A content event arrived: ends ``first_token`` and restarts ``idle``.

        Implies the connection and the first byte.

        Raises:
            PhaseOrderError: the attempt is not running.
        """
        if self._state is ClockState.STREAMING:  # the hot path: one per token
            self._last_content_at = now
            return
        self._step("content")
        self._bytes_seen(now)
        if self._first_content_at is None:
            self._first_content_at = now
        self._last_content_at = now

    def on_keepalive(self, now: float) -> None:
        """Bytes arrived that carry no content (a comment, a ping, ``Start``, ``Usage``).

        Implies the connection and the first byte, but resets neither
        ``first_token`` nor ``idle``.

        Raises:
            PhaseOrderError: the attempt is not running.
        """
        self._step("keepalive")
        self._bytes_seen(now)

    def on_end(self, now: float) -> None:
        """The attempt is over (finished, failed or abandoned): nothing is armed after.

        Raises:
            PhaseOrderError: not started, or already ended.
        """
        self._step("end")
        self._ended_at = now

    # -- queries ----------------------------------------------------------------------------

    def next_deadline(self) -> Deadline | None:
        """The earliest armed deadline, or None when nothing is armed (not started,
        ended, or every running phase is disabled). On a tie the most specific phase
        wins: connect, first_token, idle, then total, then the call's deadline."""
        if self._state in (ClockState.NEW, ClockState.ENDED) or self._started_at is None:
            return None
        t = self.timeouts
        start = self._started_at
        # The armed phases from the most specific (connect, first_token, idle, total,
        # then the call's deadline), each taken only when strictly earlier than the
        # best so far, so a tie keeps the more specific one. (No dict and one
        # Deadline: this runs several times per call.)
        when = 0.0
        phase: Phase | None = None
        if self._state is ClockState.CONNECTING and t.connect is not None:
            when, phase = start + t.connect, "connect"
        if self._first_content_at is None:
            if t.first_token is not None and (phase is None or start + t.first_token < when):
                when, phase = start + t.first_token, "first_token"
        elif t.idle is not None and self._last_content_at is not None:
            if phase is None or self._last_content_at + t.idle < when:
                when, phase = self._last_content_at + t.idle, "idle"
        if t.total is not None and (phase is None or start + t.total < when):
            when, phase = start + t.total, "total"
        if self._deadline is not None and (phase is None or self._deadline < when):
            when, phase = self._deadline, "deadline"
        return None if phase is None else Deadline(when, phase)

    def expired(self, now: float) -> Phase | None:
        """The phase that has run out at ``now`` (a deadline is reached at its exact
        instant), or None. Does not change state."""
        nxt = self.next_deadline()
        if nxt is not None and now >= nxt.when:
            return nxt.phase
        return None

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from the start to the first content event, once there was one."""
        if self._started_at is None or self._first_content_at is None:
            return None
        return self._first_content_at - self._started_at

    def timeout_error(self, phase: Phase, where: str) -> PhaseTimeoutError:
        """The error to raise when ``phase`` ran out, with a message for the user.

        Args:
            phase: The phase that expired (from :meth:`expired`).
            where: The provider and model, as ``"openai (gpt-4o-mini)"``.
        """
        t = self.timeouts
        limit = {
            "connect": t.connect,
            "pool": t.pool,
            "write": t.write,
            "first_token": t.first_token,
            "idle": t.idle,
            "total": t.total,
        }.get(phase)
        shown = _seconds(limit) if limit is not None else "the limit"
        if phase == "connect":
            text = f"connect timeout to {where}: no connection within {shown}"
        elif phase == "first_token":
            text = f"first-token timeout from {where}: no content within {shown} of the start"
        elif phase == "idle":
            text = (
                f"idle timeout from {where}: no content for {shown} "
                "(keep-alives do not count as progress)"
            )
        elif phase == "total":
            text = f"total timeout from {where}: the attempt ran longer than {shown}"
        elif phase == "deadline":
            text = f"the call's deadline passed while waiting for {where}"
        else:
            text = f"{phase} timeout with {where} after {shown}"
        return PhaseTimeoutError(text, phase=phase)

    # -- internals --------------------------------------------------------------------------

    def _step(self, event: str) -> None:
        target = TRANSITIONS.get((self._state, event))
        if target is None:
            raise PhaseOrderError(
                f"attempt event {event!r} is illegal in state {self._state.value!r}"
            )
        self._state = target

    def _bytes_seen(self, now: float) -> None:
        if self._connected_at is None:
            self._connected_at = now
        if self._first_byte_at is None:
            self._first_byte_at = now

    def __repr__(self) -> str:
        return (
            f"PhaseClock(state={self._state.value}, committed={self.committed}, "
            f"next={self.next_deadline()!r})"
        )
