"""The live dashboard: a page over HTTP and its snapshots over a WebSocket
(trio-websocket), both on the engine's event loop.

Bound to 127.0.0.1 by default. Bound anywhere else, a random token is required in
the URL (``?token=...``) of the page, the state and the WebSocket: a dashboard on
a shared network shows who runs what. The page is served on one port, the
WebSocket on the next one chosen by the system; the page knows where.

trio-websocket runs on trio only, so the dashboard does (``swarm run`` runs on
trio); on asyncio :func:`open_dashboard` says so.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import sniffio

from ..agents.runtime import Swarm
from ..engine import Engine
from ..observability.http import read_request, respond
from .page import render_page
from .state import snapshot

__all__ = ["Dashboard", "open_dashboard"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PERIOD = 0.5  # seconds between snapshots


class Dashboard:
    """A running dashboard; ``url`` is the page to open."""

    def __init__(
        self,
        engine: Engine,
        swarm: Swarm | None,
        title: str,
        host: str,
        inputs: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self.engine = engine
        self.swarm = swarm
        self.title = title
        self.host = host
        self.token = None if host in _LOOPBACK else secrets.token_urlsafe(16)
        self._inputs = inputs
        self._started = time.monotonic()
        self._last = (self._started, 0)  # (when, output tokens) of the previous snapshot
        self._tps = 0.0
        self.port = 0
        self.ws_port = 0

    @property
    def url(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"http://{self._display_host}:{self.port}/{query}"

    @property
    def _display_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def _allowed(self, target: str) -> bool:
        if self.token is None:
            return True
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        return secrets.compare_digest(query.get("token", [""])[0], self.token)

    async def state(self, watching: str | None) -> dict[str, Any]:
        stats = self.engine.statistics()
        now = time.monotonic()
        when, tokens = self._last
        if now - when >= _PERIOD / 2:  # several viewers share one rate
            self._tps = (stats.ledger.output_tokens - tokens) / (now - when)
            self._last = (now, stats.ledger.output_tokens)
        swarm = self.swarm
        return snapshot(
            title=self.title,
            elapsed=now - self._started,
            stats=stats,
            rate_limits=await self.engine.rate_limit_statistics(),
            swarm=swarm.report() if swarm is not None else None,
            tokens_per_second=self._tps,
            inputs=self._inputs() if self._inputs is not None else None,
            watching=watching,
            tail=swarm.tail(watching) if swarm is not None and watching else "",
        )

    # -- HTTP: the page and /state.json ---------------------------------------------------

    async def _http(self, client: anyio.abc.ByteStream) -> None:
        async with client:
            request = await read_request(client)
            if request is None:
                return
            method, target = request
            path = urllib.parse.urlsplit(target).path
            if method != "GET" or path not in ("/", "/state.json"):
                await respond(client, "404 Not Found", "text/plain", b"not here\n")
            elif not self._allowed(target):
                await respond(
                    client,
                    "403 Forbidden",
                    "text/plain",
                    b"this dashboard needs its token: open the URL swarm run printed\n",
                )
            elif path == "/":
                query = f"?token={self.token}" if self.token else ""
                ws_url = f"ws://{self._display_host}:{self.ws_port}/ws{query}"
                page = render_page(self.title, ws_url).encode()
                await respond(client, "200 OK", "text/html; charset=utf-8", page)
            else:
                state = json.dumps(await self.state(None)).encode()
                await respond(client, "200 OK", "application/json", state)

    # -- WebSocket: a snapshot every half second, {"watch": NAME} picks an agent ----------

    async def _ws(self, request: Any) -> None:
        import trio_websocket

        if not self._allowed(request.path):
            await request.reject(403, body=b"token required")
            return
        ws = await request.accept()
        watching: list[str | None] = [None]

        async def listen() -> None:
            while True:
                message = await ws.get_message()
                try:
                    name = json.loads(message).get("watch")
                except (ValueError, AttributeError):
                    continue  # not ours: ignore it, keep serving
                if self.swarm is not None and isinstance(name, str) and name in self.swarm.names:
                    self.swarm.watch(name)
                    watching[0] = name
                elif not name:
                    watching[0] = None

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                while True:
                    await ws.send_message(json.dumps(await self.state(watching[0])))
                    await anyio.sleep(_PERIOD)
        except* trio_websocket.ConnectionClosed:
            pass  # the viewer left


@asynccontextmanager
async def open_dashboard(
    engine: Engine,
    swarm: Swarm | None = None,
    *,
    title: str = "swarm",
    host: str = "127.0.0.1",
    port: int = 0,
    inputs: Callable[[], Mapping[str, int]] | None = None,
) -> AsyncIterator[Dashboard]:
    """Serve the dashboard of ``engine`` (and ``swarm``) for the block; open
    ``dashboard.url``. ``inputs`` gives live input counts (total/answered/failed).

    Raises:
        RuntimeError: not running on trio (trio-websocket needs it).
    """
    if sniffio.current_async_library() != "trio":
        raise RuntimeError("the dashboard runs on trio (trio-websocket); run the swarm on trio")
    import trio
    import trio_websocket

    board = Dashboard(engine, swarm, title, host, inputs)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    board.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve, board._http)
        server = await nursery.start(trio_websocket.serve_websocket, board._ws, host, 0, None)
        board.ws_port = server.port
        try:
            yield board
        finally:
            nursery.cancel_scope.cancel()
