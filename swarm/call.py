"""A call in the engine: its options, its internal state, and the caller's handle.

The handle (:class:`CallStream`) is what ``engine.stream`` yields: an async
iterator over the call's events, ending with its terminal event. It has no public
constructor; the engine makes them.

Invariant: the engine sends exactly one terminal event per call into the call's
channel (best effort if the caller already went away), and records exactly one
ledger entry, whatever happens: completion, failure, caller cancellation,
deadline or shutdown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import msgspec
import sniffio
from anyio.streams.memory import MemoryObjectSendStream

from providers.events import Response, Usage
from providers.messages import Request

from .errors import SwarmError
from .events import CallEvent, Cancelled, Completed, Failed, Terminal
from .lifecycle import CallLifecycle
from .pipe import PipeReceiver, PipeSender

if TYPE_CHECKING:
    from .rate_actor import RateLimitActor
    from .ratelimit import Permit
    from .reading import Lend
    from .routing import Deployment, Route
    from .scheduler import Ticket

__all__ = ["CallFailed", "CallOptions", "CallStream"]


class CallOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How the engine treats one call.

    Attributes:
        priority: Higher leaves the queue first.
        timeout: Seconds from submission after which the call fails (queued time
            and every attempt included); a call whose deadline passes while queued
            fails at once without touching a provider.
        tenant: Fair-queuing group (a user, a team, an agent).
        agent: The agent that made the call, for the ledger.
        allow_restart: After a committed attempt fails, start over with a
            ``Restart`` event instead of failing (the caller must discard text).
            None: the engine's ``retry.restarts_allowed``.
        metadata: Kept in the ledger.
    """

    priority: int = 0
    timeout: float | None = None
    tenant: str = ""
    agent: str | None = None
    allow_restart: bool | None = None
    metadata: dict[str, str] = {}

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}")


class CallFailed(SwarmError):
    """Raised by ``CallStream.response()`` and ``engine.complete`` when a call was
    cancelled; failures re-raise the provider's own typed error instead."""


class _Call:
    """The engine's state for one call. Touched by one actor at a time: the
    scheduler while queued, the provider task while running."""

    __slots__ = (
        "admitted",
        "cancel_requested",
        "collector",
        "deadline",
        "discarded",
        "discarded_cost",
        "discarded_estimated",
        "dispatched",
        "error",
        "gate",
        "id",
        "lend",
        "life",
        "options",
        "permit",
        "request",
        "route",
        "scope",
        "send",
        "sent",
        "streamed",
        "terminal",
        "ticket",
        "tried",
    )

    def __init__(
        self,
        call_id: str,
        request: Request,
        options: CallOptions,
        route: Route,
        send: PipeSender[CallEvent],
        now: float,
    ) -> None:
        self.id = call_id
        self.request = request
        self.options = options
        self.route = route
        self.send = send
        self.life = CallLifecycle(call_id, now)
        self.deadline = None if options.timeout is None else now + options.timeout
        self.tried: list[Deployment] = []
        # The deployment the scheduler dispatched the call to, until its "done"
        # (the per-deployment in-flight count least_outstanding routing reads).
        self.dispatched: Deployment | None = None
        # The current attempt's progress, kept here so that it survives the attempt's
        # cancellation (its rate permit is settled from it): whether the request went
        # out, and the content events received (about one token each).
        self.sent = False
        self.streamed = 0
        # What the attempts whose output was thrown away (failed or cut mid-stream,
        # restarted, cancelled) were billed: reported by the provider where it said,
        # else estimated (input from the prompt, one output token per content event).
        # Attempts refused before a response opened (a 429, a 5xx) are not billed.
        self.discarded: Usage | None = None
        self.discarded_cost: float | None = None
        self.discarded_estimated = False
        self.ticket: Ticket[_Call] | None = None
        self.scope: anyio.CancelScope | None = None
        self.error: BaseException | None = None
        self.terminal: Terminal | None = None
        self.cancel_requested = False
        self.admitted = False  # holds an admission token while queued the first time
        # While a rate-limit actor holds it, waiting for a permit: that actor (a
        # cancellation goes there). The permit it granted (model, permit), until the
        # call's first attempt takes it.
        self.gate: RateLimitActor | None = None
        self.permit: tuple[str, Permit] | None = None
        # While the caller's task reads the current attempt's response itself (see
        # swarm.reading): the lend. Set and revoked by the provider actor only.
        self.lend: Lend | None = None
        # engine.map's shared channel and this call's index in it: only the terminal
        # event goes there (map callers want results, not tokens).
        self.collector: tuple[MemoryObjectSendStream[tuple[int, Terminal]], int] | None = None


class CallStream:
    """The caller's view of one call: its events, as they arrive.

    ``async for event in call`` yields provider events (``TextDelta``...), runtime
    events (``Restart``) and ends after the terminal event (``Completed``,
    ``Failed`` or ``Cancelled``). Leaving an ``async with`` block before the end
    cancels the call and closes its upstream stream.
    """

    def __init__(
        self,
        call: _Call,
        receive: PipeReceiver[CallEvent],
        cancel: Callable[[_Call], None],
        token: object,
    ) -> None:
        if token is not _TOKEN:
            raise TypeError("CallStream has no public constructor; use engine.stream()")
        self.id = call.id
        self._call = call
        self._receive = receive
        self._cancel = cancel
        self._terminal: Terminal | None = None
        # The batch being handed out (the events of one network read, taken from the
        # pipe whole) and the index of its next event. Invariant: a batch holds no
        # terminal event (those come alone), so an event from it never ends the stream.
        self._batch: list[CallEvent] | None = None
        self._next = 0
        self._closed = False  # aclose() was called
        self._checkpoint_if_cancelled = _checkpoint_if_cancelled()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CallEvent:
        # Hot path: the rest of a batch is handed out with no await at all; a
        # cancellation is checked once per batch (per network read of the response),
        # and only an empty pipe waits.
        batch = self._batch
        if batch is not None:
            i = self._next
            if i < len(batch):
                self._next = i + 1
                return batch[i]
            self._batch = None
        if self._terminal is not None or self._closed:
            raise StopAsyncIteration
        await self._checkpoint_if_cancelled()
        receive = self._receive
        call = self._call
        while True:
            # While the actor lends this task the response (swarm.reading), read
            # the network here: one task wake-up per read instead of two. What the
            # pipe holds comes first (a Restart before the attempt it announces).
            lend = call.lend
            if lend is not None and lend.live and receive.empty:
                got = await lend.read()
                if got is not None:
                    if len(got) > 1:
                        self._batch = got
                        self._next = 1
                    return got[0]
                continue  # the lend is over: what follows comes through the pipe
            try:
                # receive() parks outside any except block (see swarm.pipe): it
                # returns at once when something is buffered.
                entry = await receive.receive()
            except anyio.WouldBlock:
                continue  # woken for a lend (PipeSender.nudge)
            except anyio.EndOfStream:
                return self._ended()
            except anyio.ClosedResourceError:  # closed on this side (aclose)
                raise StopAsyncIteration from None
            return self._take(entry)

    def _take(self, entry: CallEvent | list[CallEvent]) -> CallEvent:
        if type(entry) is list:
            if len(entry) > 1:
                self._batch = entry
                self._next = 1
            return entry[0]
        event: CallEvent = entry  # type: ignore[assignment]
        if isinstance(event, Completed | Failed | Cancelled):
            self._terminal = event
            self._receive.close()  # nothing follows a terminal event
        return event

    def _ended(self) -> CallEvent:
        # The engine never waits to deliver a terminal event: when this stream's
        # buffer was full (a consumer slower than the provider) it is kept on the
        # call instead, and read here once the buffered events are consumed.
        self._receive.close()
        terminal = self._call.terminal
        if terminal is None:
            raise StopAsyncIteration from None
        self._terminal = terminal
        return terminal

    def _poll(self) -> CallEvent | None:
        """The next event if one is buffered, else None; never waits. For readers
        that take events in batches (the blocking API: one thread hop per batch).
        The batch step is __anext__'s, written out in both: there it runs per event."""
        batch = self._batch
        if batch is not None:
            i = self._next
            if i < len(batch):
                self._next = i + 1
                return batch[i]
            self._batch = None
        if self._terminal is not None:
            return None
        try:
            entry = self._receive.receive_nowait()
        except anyio.WouldBlock:
            return None
        except anyio.EndOfStream:
            try:
                return self._ended()
            except StopAsyncIteration:
                return None
        except anyio.ClosedResourceError:
            return None
        return self._take(entry)

    @property
    def terminal(self) -> Terminal | None:
        """The terminal event, once the iteration has reached it."""
        return self._terminal

    async def response(self) -> Response:
        """Read to the end; return the response, or raise why there is none.

        Raises:
            ProviderError: the call failed (the provider's typed error).
            CallFailed: the call was cancelled.
        """
        async for _ in self:
            pass
        terminal = self._terminal
        if isinstance(terminal, Completed):
            return terminal.response
        if self._call.error is not None:
            raise self._call.error
        if isinstance(terminal, Failed):
            raise CallFailed(
                f"call {self.id} failed: {terminal.error.kind}: {terminal.error.message}"
            )
        reason = terminal.reason if isinstance(terminal, Cancelled) else "stream closed"
        raise CallFailed(f"call {self.id} was cancelled ({reason})")

    def cancel(self) -> None:
        """Cancel the call (idempotent). Its stream ends with ``Cancelled``."""
        self._cancel(self._call)

    async def aclose(self) -> None:
        if self._terminal is None:
            self._cancel(self._call)
        self._closed = True
        self._batch = None
        self._receive.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = type(self._terminal).__name__.lower() if self._terminal else "open"
        return f"<CallStream {self.id} {state}>"


_TOKEN: Any = object()


def _checkpoint_if_cancelled() -> Callable[[], Awaitable[None]]:
    """The running loop's own ``checkpoint_if_cancelled``: on trio, trio's, which
    skips anyio's per-call backend lookup (a tenth of the caller's cost per event)."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.checkpoint_if_cancelled
    return anyio.lowlevel.checkpoint_if_cancelled
