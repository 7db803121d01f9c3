"""The engine for code that is not async: a portal thread runs it on trio.

::

    from swarm.blocking import open_engine

    with open_engine() as engine:                     # no key: the built-in simulator
        print(engine.complete(request).text)
        with engine.stream(request) as events:         # a plain iterator
            for event in events:
                ...
        for result in engine.map(requests, concurrency=32):
            ...

The engine lives in one background thread (an anyio blocking portal running trio,
or ``backend="asyncio"``) for the ``with`` block; every method may be called from
any thread, and several threads may use one engine at once. A stream hands its
events over in batches (what has arrived by the time the reader asks, up to
``batch``), so reading costs one thread hop per batch rather than per token.
Leaving a ``stream`` or ``map`` early cancels what is still running, as in the
async API. Errors are the async API's errors, raised in the calling thread.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import sniffio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from providers.events import Response
from providers.messages import Request

from .call import CallStream
from .config import EngineConfig
from .engine import Engine, MapResult
from .engine import open_engine as _open_engine
from .events import CallEvent

__all__ = ["BlockingEngine", "BlockingStream", "open_engine"]


async def _take(call: CallStream, limit: int) -> list[CallEvent]:
    """One event (waiting for it), then whatever else is buffered, up to ``limit``;
    empty at the end of the stream."""
    try:
        batch = [await call.__anext__()]
    except StopAsyncIteration:
        return []
    while len(batch) < limit and (event := call._poll()) is not None:
        batch.append(event)
    return batch


class BlockingStream:
    """A call's events as a plain iterator (from :meth:`BlockingEngine.stream`)."""

    def __init__(self, portal: BlockingPortal, call: CallStream, batch: int) -> None:
        self._portal = portal
        self._call = call
        self._batch = batch
        self._pending: list[CallEvent] = []
        self._done = False

    @property
    def id(self) -> str:
        return self._call.id

    def __iter__(self) -> Iterator[CallEvent]:
        while True:
            if not self._pending:
                if self._done:
                    return
                self._pending = self._portal.call(_take, self._call, self._batch)
                self._pending.reverse()  # popped from the end, in order
                if not self._pending:
                    self._done = True
                    return
            yield self._pending.pop()

    def response(self) -> Response:
        """Read to the end; the response, or the call's error (as ``engine.complete``)."""
        for _ in self:
            pass
        return self._portal.call(self._call.response)

    def cancel(self) -> None:
        self._portal.call(self._call.cancel)


class BlockingEngine:
    """The engine's API, blocking (from :func:`open_engine`)."""

    def __init__(self, portal: BlockingPortal, engine: Engine) -> None:
        self._portal = portal
        self.engine = engine
        """The async engine, for ``portal``-side code."""

    @property
    def portal(self) -> BlockingPortal:
        """The portal the engine runs in (``portal.call(async_fn, ...)``)."""
        return self._portal

    def complete(self, request: Request, **options: Any) -> Response:
        """``engine.complete``: run a call to the end and return its response."""
        return self._portal.call(functools.partial(self.engine.complete, request, **options))

    @contextmanager
    def stream(
        self, request: Request, *, batch: int = 256, **options: Any
    ) -> Iterator[BlockingStream]:
        """``engine.stream``: the call's events as a plain iterator; leaving the
        block early cancels the call."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        manager = self.engine.stream(request, **options)
        with self._portal.wrap_async_context_manager(manager) as call:
            yield BlockingStream(self._portal, call, batch)

    def map(
        self, requests: Iterable[Request], *, concurrency: int = 64, **options: Any
    ) -> Iterator[MapResult]:
        """``engine.map``: results as they finish, at most ``concurrency`` in flight;
        stopping the iteration early (or closing the generator) cancels the rest."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        results = self.engine.map(requests, concurrency=concurrency, **options)
        try:
            while True:
                try:
                    yield self._portal.call(results.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(results, "aclose", None)  # an async generator's
            if close is not None:
                self._portal.call(close)


def _refuse_inside_event_loop() -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    raise RuntimeError(
        f"swarm.blocking.open_engine() was called inside a running {library} event loop, "
        "which its blocking calls would stall; use `async with swarm.open_engine()` there"
    )


@contextmanager
def open_engine(
    config: EngineConfig | None = None,
    *,
    env: dict[str, str] | None = None,
    backend: Literal["trio", "asyncio"] = "trio",
) -> Iterator[BlockingEngine]:
    """Start an engine in a portal thread for the ``with`` block (the arguments are
    :func:`swarm.open_engine`'s); stop it and the thread at the end.

    Raises:
        RuntimeError: called from inside an event loop's thread (use the async
            ``swarm.open_engine`` there; blocking it would stall the loop).
    """
    _refuse_inside_event_loop()
    with start_blocking_portal(backend=backend) as portal:
        with portal.wrap_async_context_manager(_open_engine(config, env=env)) as engine:
            yield BlockingEngine(portal, engine)
