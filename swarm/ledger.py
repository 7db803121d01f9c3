"""The call ledger: an account of every call the engine accepted.

Invariant (checked, not assumed): every accepted call id is either in flight or
has exactly one record with its outcome; ``accepted == in_flight + completed +
failed + cancelled`` at all times. Finishing a call twice, or one never accepted,
raises :class:`LedgerError` — a runtime bug, surfaced rather than absorbed.

Records are plain msgspec Structs (serializable, for JSON lines export and for
shipping across processes). Counters cover every call ever accepted; the records
themselves are kept up to ``keep`` most recent (memory stays bounded in a
long-running engine) and can be drained to a sink as they finish.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import IO, Literal

import msgspec

from providers.events import FinishReason, Usage

from .events import ErrorInfo
from .lifecycle import CallLifecycle, CallState, GapSummary

__all__ = ["CallRecord", "Ledger", "LedgerError", "LedgerStatistics"]

Outcome = Literal["completed", "failed", "cancelled"]

DEFAULT_KEEP = 100_000
DEFAULT_UNREAD = 100_000


class LedgerError(RuntimeError):
    """A call was finished twice, or finished without being accepted."""


class CallRecord(msgspec.Struct, kw_only=True, frozen=True):
    """What the ledger keeps about one finished call.

    Times are seconds; ``ttft`` is measured from the start of the attempt that
    produced the first token, ``queued`` from acceptance to first dispatch,
    ``duration`` from acceptance to the end.
    """

    id: str
    route: str
    outcome: Outcome
    deployment: str | None = None
    model: str | None = None
    tenant: str | None = None
    agent: str | None = None
    attempts: int = 0
    requeues: int = 0
    restarts: int = 0
    queued: float | None = None
    ttft: float | None = None
    gaps: GapSummary | None = None
    duration: float | None = None
    usage: Usage = Usage()
    cost_usd: float | None = None
    # Attempts whose output was thrown away (failed or cut mid-stream, restarted,
    # cancelled) after the provider began answering: providers bill them. Reported
    # usage where the provider gave it, else estimated (``discarded_estimated``):
    # input from the prompt, one output token per content event. Attempts refused
    # before a response opened (a 429, a 5xx) are not billed and not here.
    discarded_usage: Usage = Usage()
    discarded_cost_usd: float | None = None
    discarded_estimated: bool = False
    finish_reason: FinishReason | None = None
    error: ErrorInfo | None = None
    metadata: dict[str, str] = {}


class LedgerStatistics(msgspec.Struct, kw_only=True, frozen=True):
    accepted: int
    in_flight: int
    completed: int
    failed: int
    cancelled: int
    attempts: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: float
    dropped: int = 0
    """Records finished but dropped before anyone drained them (``Ledger.drain``)."""
    discarded_input_tokens: int = 0
    """Input tokens of attempts whose output was thrown away (``CallRecord.discarded_usage``)."""
    discarded_output_tokens: int = 0
    discarded_cost_usd: float = 0.0


_encoder = msgspec.json.Encoder()


class Ledger:
    """Counts and records calls. Owned by one engine; not shared across threads."""

    def __init__(self, *, keep: int = DEFAULT_KEEP, unread: int = DEFAULT_UNREAD) -> None:
        """
        Args:
            keep: The most recent records kept for :meth:`records` (0: none).
            unread: The most records kept for :meth:`drain` between two drains; older
                undrained ones are dropped and counted (``statistics().dropped``),
                so an engine nobody drains stays bounded in memory.
        """
        if keep < 0:
            raise ValueError(f"Ledger keep must be >= 0, got {keep}")
        if unread < 0:
            raise ValueError(f"Ledger unread must be >= 0, got {unread}")
        self._in_flight: set[str] = set()
        self._records: collections.deque[CallRecord] = collections.deque(maxlen=keep or None)
        self._keep = keep
        self._unread: collections.deque[CallRecord] = collections.deque()
        self._unread_limit = unread
        self._dropped = 0
        self._accepted = 0
        self._outcomes = {"completed": 0, "failed": 0, "cancelled": 0}
        self._attempts = 0
        self._input = 0
        self._output = 0
        self._cache_read = 0
        self._cost = 0.0
        self._discarded_input = 0
        self._discarded_output = 0
        self._discarded_cost = 0.0
        self._listeners: list[Callable[[CallRecord], None]] = []
        self._listener_errors = 0

    def accept(self, call_id: str) -> None:
        """Record that the engine accepted ``call_id``.

        Raises:
            LedgerError: the id is already in flight.
        """
        if call_id in self._in_flight:
            raise LedgerError(f"call {call_id} accepted twice")
        self._in_flight.add(call_id)
        self._accepted += 1

    def withdraw(self, call_id: str) -> None:
        """Undo :meth:`accept` for a call that never entered the engine (refused at
        admission, or its caller was cancelled while waiting for room).

        Raises:
            LedgerError: the call is not in flight.
        """
        try:
            self._in_flight.remove(call_id)
        except KeyError:
            raise LedgerError(f"call {call_id} withdrawn but it is not in flight") from None
        self._accepted -= 1

    def finish(self, record: CallRecord) -> None:
        """Record the end of a call.

        Raises:
            LedgerError: the call is not in flight (never accepted, or already finished).
        """
        try:
            self._in_flight.remove(record.id)
        except KeyError:
            raise LedgerError(
                f"call {record.id} finished ({record.outcome}) but it is not in flight"
            ) from None
        self._outcomes[record.outcome] += 1
        self._attempts += record.attempts
        self._input += record.usage.input_tokens
        self._output += record.usage.output_tokens
        self._cache_read += record.usage.cache_read_tokens
        if record.cost_usd is not None:
            self._cost += record.cost_usd
        self._discarded_input += record.discarded_usage.input_tokens
        self._discarded_output += record.discarded_usage.output_tokens
        if record.discarded_cost_usd is not None:
            self._discarded_cost += record.discarded_cost_usd
        if self._keep:
            self._records.append(record)
        if self._unread_limit:
            if len(self._unread) == self._unread_limit:
                self._unread.popleft()
                self._dropped += 1
            self._unread.append(record)
        else:
            self._dropped += 1
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:  # a listener's bug must not break the engine's books
                self._listener_errors += 1

    def add_listener(self, listener: Callable[[CallRecord], None]) -> Callable[[], None]:
        """Call ``listener(record)`` as each call finishes (metrics, a log sink);
        returns a function that removes it. A listener runs inside the engine's
        bookkeeping, so it must be quick and must not block; one that raises is
        counted (``listener_errors``) and the call's accounting goes on."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    @property
    def listener_errors(self) -> int:
        return self._listener_errors

    def in_flight(self, call_id: str) -> bool:
        return call_id in self._in_flight

    def records(self) -> list[CallRecord]:
        """The kept records, oldest first."""
        return list(self._records)

    def drain(self) -> list[CallRecord]:
        """Records finished since the last drain (for streaming them to a sink)."""
        unread, self._unread = self._unread, collections.deque()
        return list(unread)

    def statistics(self) -> LedgerStatistics:
        return LedgerStatistics(
            accepted=self._accepted,
            in_flight=len(self._in_flight),
            completed=self._outcomes["completed"],
            failed=self._outcomes["failed"],
            cancelled=self._outcomes["cancelled"],
            attempts=self._attempts,
            input_tokens=self._input,
            output_tokens=self._output,
            cache_read_tokens=self._cache_read,
            cost_usd=self._cost,
            dropped=self._dropped,
            discarded_input_tokens=self._discarded_input,
            discarded_output_tokens=self._discarded_output,
            discarded_cost_usd=self._discarded_cost,
        )

    def export_jsonl(self, out: IO[bytes], records: Iterable[CallRecord] | None = None) -> int:
        """Write records (the kept ones by default) as JSON lines; return how many."""
        count = 0
        for record in self._records if records is None else records:
            out.write(_encoder.encode(record) + b"\n")
            count += 1
        return count


def record_from_lifecycle(
    life: CallLifecycle,
    *,
    route: str,
    model: str | None = None,
    tenant: str | None = None,
    agent: str | None = None,
    usage: Usage | None = None,
    cost_usd: float | None = None,
    finish_reason: FinishReason | None = None,
    error: ErrorInfo | None = None,
    metadata: dict[str, str] | None = None,
    discarded_usage: Usage | None = None,
    discarded_cost_usd: float | None = None,
    discarded_estimated: bool = False,
) -> CallRecord:
    """Build the ledger record of a call whose lifecycle has ended.

    Raises:
        LedgerError: the lifecycle is not in a terminal state.
    """
    outcomes: dict[CallState, Outcome] = {
        CallState.COMPLETED: "completed",
        CallState.FAILED: "failed",
        CallState.CANCELLED: "cancelled",
    }
    outcome = outcomes.get(life.state)
    if outcome is None:
        raise LedgerError(f"call {life.call_id} is still {life.state.value}; no record yet")
    return CallRecord(
        id=life.call_id,
        route=route,
        outcome=outcome,
        deployment=life.deployment,
        model=model,
        tenant=tenant,
        agent=agent,
        attempts=life.attempts,
        requeues=life.requeues,
        restarts=life.restarts,
        queued=life.queued_time,
        ttft=life.ttft,
        gaps=life.gaps(),
        duration=life.duration,
        usage=usage or Usage(),
        cost_usd=cost_usd,
        discarded_usage=discarded_usage or Usage(),
        discarded_cost_usd=discarded_cost_usd,
        discarded_estimated=discarded_estimated,
        finish_reason=finish_reason,
        error=error,
        metadata=metadata or {},
    )
