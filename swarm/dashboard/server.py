"""The live dashboard: a page over HTTP and its snapshots over a WebSocket
(trio-websocket), both on the engine's event loop.

Bound to 127.0.0.1 by default. Bound anywhere else, a random token is required in
the URL (``?token=...``) of the page, the state and the WebSocket: a dashboard on
a shared network shows who runs what. The page is served on one port, the
WebSocket on another (any free one, or ``ws_port``: a firewall needs to know
both); the page opens it on the host name the browser used for the page.

A browser's WebSocket is not bound by the same-origin policy, so any web page
the user visits could open one to a dashboard on 127.0.0.1 and read it (and
pick agents to watch). The WebSocket therefore refuses an ``Origin`` other than
the dashboard's own page: its port, and on loopback a loopback host name (which
also defeats DNS rebinding). Clients that send no Origin (not browsers) pass.

trio-websocket runs on trio only, so the dashboard does (``swarm run`` runs on
trio); on asyncio :func:`open_dashboard` says so.
"""

from __future__ import annotations

import collections
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import sniffio

from ..agents.runtime import Swarm
from ..engine import Engine
from ..observability.http import read_request, respond
from ..throughput import RecentRate
from .page import render_page
from .state import snapshot

__all__ = ["Dashboard", "Source", "engine_source", "open_dashboard", "serve_dashboard"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_AGENT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as Agent names are
_PERIOD = 0.5  # seconds between snapshots


Source = Callable[[str | None], Awaitable[dict[str, Any]]]


def engine_source(
    engine: Engine,
    swarm: Swarm | None,
    title: str,
    inputs: Callable[[], Mapping[str, int]] | None,
) -> Source:
    """Snapshots of an engine (and swarm) in this process."""
    started = time.monotonic()
    rate = RecentRate()  # several viewers share it: more samples, the same rate

    async def state(watching: str | None) -> dict[str, Any]:
        stats = engine.statistics()
        return snapshot(
            title=title,
            elapsed=time.monotonic() - started,
            stats=stats,
            rate_limits=await engine.rate_limit_statistics(),
            swarm=swarm.report() if swarm is not None else None,
            tokens_per_second=rate.update(time.monotonic(), stats.ledger.output_tokens),
            inputs=inputs() if inputs is not None else None,
            watching=watching,
            tail=swarm.tail(watching) if swarm is not None and watching else "",
        )

    return state


class Dashboard:
    """A running dashboard; ``url`` is the page to open."""

    def __init__(
        self, source: Source, swarm: Swarm | None, title: str, host: str, *, remote: bool = False
    ) -> None:
        self.state = source
        self.swarm = swarm
        # Attached to an engine elsewhere (swarm dash): its agents are there, and a
        # pick is passed to the source as it is.
        self.remote = remote
        self.title = title
        self.host = host
        self.token = None if host in _LOOPBACK else secrets.token_urlsafe(16)
        self.port = 0
        self.ws_port = 0
        # Viewers watching each agent, and the taps the dashboard opened (an agent
        # the application watched already keeps its tap when the viewers leave).
        self._viewers: collections.Counter[str] = collections.Counter()
        self._opened: set[str] = set()

    def _watch(self, name: str) -> None:
        assert self.swarm is not None
        if name not in self._viewers and name not in self.swarm.watched:
            self.swarm.watch(name)
            self._opened.add(name)
        self._viewers[name] += 1

    def _unwatch(self, name: str | None) -> None:
        """A viewer stopped watching ``name``: the last one closes the tap (a tap
        costs an append per token of that agent, so taps must not pile up as
        viewers click through the agents)."""
        if name is None or self._viewers[name] == 0:
            return
        self._viewers[name] -= 1
        if self._viewers[name] == 0:
            del self._viewers[name]
            if name in self._opened:
                self._opened.discard(name)
                if self.swarm is not None:
                    self.swarm.unwatch(name)

    @property
    def url(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"http://{self._display_host}:{self.port}/{query}"

    @property
    def _display_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def _same_origin(self, origin: str | None) -> bool:
        """Whether a WebSocket's ``Origin`` is this dashboard's page (see the module)."""
        if origin is None:
            return True  # not a browser: the token (beyond loopback) still applies
        try:
            parts = urllib.parse.urlsplit(origin)
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or port != self.port:
            return False
        return self.token is not None or (parts.hostname or "") in _LOOPBACK

    def _allowed(self, target: str) -> bool:
        if self.token is None:
            return True
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        return secrets.compare_digest(query.get("token", [""])[0], self.token)

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
                page = render_page(self.title, self.ws_port, query).encode()
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
        origin = next(
            (
                value.decode("latin-1")
                for name, value in request.headers
                if name.lower() == b"origin"
            ),
            None,
        )
        if not self._same_origin(origin):
            await request.reject(
                403, body=b"cross-origin WebSocket refused: open the dashboard's page"
            )
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
                    if name != watching[0]:
                        self._watch(name)
                        self._unwatch(watching[0])
                        watching[0] = name
                elif self.remote and isinstance(name, str) and _AGENT_NAME.match(name):
                    watching[0] = name  # attached: the engine's endpoint has the agents
                elif not name:
                    self._unwatch(watching[0])
                    watching[0] = None

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                while True:
                    await ws.send_message(json.dumps(await self.state(watching[0])))
                    await anyio.sleep(_PERIOD)
        except* trio_websocket.ConnectionClosed:
            pass  # the viewer left
        finally:
            self._unwatch(watching[0])


@asynccontextmanager
async def open_dashboard(
    engine: Engine,
    swarm: Swarm | None = None,
    *,
    title: str = "swarm",
    host: str = "127.0.0.1",
    port: int = 0,
    inputs: Callable[[], Mapping[str, int]] | None = None,
    ws_port: int = 0,
) -> AsyncIterator[Dashboard]:
    """Serve the dashboard of ``engine`` (and ``swarm``) for the block; open
    ``dashboard.url``. ``inputs`` gives live input counts (total/answered/failed).
    ``port`` and ``ws_port`` are the page's and the WebSocket's (0: any free one).

    Raises:
        RuntimeError: not running on trio (trio-websocket needs it).
    """
    board = Dashboard(engine_source(engine, swarm, title, inputs), swarm, title, host)
    async with serve_dashboard(board, port, ws_port) as served:
        yield served


@asynccontextmanager
async def serve_dashboard(
    board: Dashboard, port: int = 0, ws_port: int = 0
) -> AsyncIterator[Dashboard]:
    """Serve ``board``'s page on ``port`` and its WebSocket on ``ws_port`` (0: any
    free port)."""
    if sniffio.current_async_library() != "trio":
        raise RuntimeError("the dashboard runs on trio (trio-websocket); run it on trio")
    import trio
    import trio_websocket

    listener = await anyio.create_tcp_listener(local_host=board.host, local_port=port)
    board.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve, board._http)
        server = await nursery.start(
            trio_websocket.serve_websocket, board._ws, board.host, ws_port, None
        )
        board.ws_port = server.port
        try:
            yield board
        finally:
            nursery.cancel_scope.cancel()
