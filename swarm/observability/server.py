"""The ``/metrics`` endpoint: a tiny HTTP/1.1 server on the engine's own event loop
(anyio, so trio or asyncio), bound to 127.0.0.1 unless asked otherwise.

It answers ``GET /metrics`` (and ``/``) with the exposition, anything else 404,
one request per connection; a client that sends nothing is dropped after a few
seconds, and a request head over 8 KiB is refused, so a stray client cannot
hold it up or grow its memory.

With ``tails=True`` (``swarm run --metrics-tails``; loopback only) it also
answers ``GET /swarm/tail?agent=NAME`` with what that agent streamed lately, as
JSON (``{"agent": ..., "tail": ...}``), for ``swarm dash``'s token view. That is
content, not a metric: off by default, never beyond loopback, and the tap it
opens on the agent closes once nobody has asked for ``TAIL_IDLE`` seconds.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ..agents.runtime import Swarm
from ..engine import Engine
from .http import read_request, respond
from .prometheus import CONTENT_TYPE, EngineMetrics

__all__ = ["TAIL_IDLE", "MetricsServer", "open_metrics_server"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TAIL_IDLE = 10.0  # seconds without a /swarm/tail request before its tap closes


class MetricsServer:
    """A running endpoint: ``url`` is where Prometheus scrapes."""

    def __init__(
        self, engine: Engine, metrics: EngineMetrics, host: str, port: int, *, tails: bool = False
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.host = host
        self.port = port
        self.tails = tails
        # Taps this endpoint opened, and when each was last asked for.
        self._tapped: dict[str, float] = {}
        # The swarm whose agents are exposed too (``swarm_agent_*``), while set:
        # a swarm usually opens after the endpoint and closes before it.
        self.swarm: Swarm | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def exposition(self) -> str:
        report = self.swarm.report() if self.swarm is not None else None
        return self.metrics.render(
            self.engine.statistics(), await self.engine.rate_limit_statistics(), report
        )

    async def _serve(self, client: anyio.abc.ByteStream) -> None:
        async with client:
            request = await read_request(client)
            if request is None:
                return
            method, target = request
            path = target.split("?", 1)[0]
            if method == "GET" and path in ("/metrics", "/"):
                await respond(client, "200 OK", CONTENT_TYPE, (await self.exposition()).encode())
            elif method == "GET" and path == "/swarm/tail":
                status, body = self._tail(target)
                await respond(client, status, "application/json", json.dumps(body).encode())
            else:
                await respond(
                    client,
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    b"swarm metrics: GET /metrics\n",
                )

    def _tail(self, target: str) -> tuple[str, dict[str, str]]:
        """The answer to ``/swarm/tail?agent=NAME`` (status, JSON body)."""
        now = time.monotonic()
        self._close_idle_taps(now)
        if not self.tails:
            return "404 Not Found", {
                "error": "this endpoint does not serve agents' text; start the engine's "
                "endpoint with tails (swarm run --metrics-tails)"
            }
        swarm = self.swarm
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        name = query.get("agent", [""])[0]
        if swarm is None or name not in swarm.names:
            return "404 Not Found", {"error": f"no agent {name!r} in a swarm on this endpoint"}
        if name not in self._tapped and name not in swarm.watched:
            swarm.watch(name)  # from the agent's next message on
            self._tapped[name] = now
        if name in self._tapped:
            self._tapped[name] = now
        return "200 OK", {"agent": name, "tail": swarm.tail(name)}

    def _close_idle_taps(self, now: float) -> None:
        for name, asked in list(self._tapped.items()):
            if now - asked > TAIL_IDLE:
                del self._tapped[name]
                if self.swarm is not None:
                    self.swarm.unwatch(name)


@asynccontextmanager
async def open_metrics_server(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    metrics: EngineMetrics | None = None,
    tails: bool = False,
) -> AsyncIterator[MetricsServer]:
    """Serve ``engine``'s metrics for the block (port 0: any free port; see
    ``server.url``). Counting starts when the block does. ``tails``: also serve
    the attached swarm's agents' streamed text (see the module; loopback only).

    Raises:
        ValueError: ``tails`` with a host other than loopback.
    """
    if tails and host not in _LOOPBACK:
        raise ValueError(
            f"tails serves what agents write; it is served on loopback only, not on {host!r}"
        )
    registry = metrics or EngineMetrics()
    remove = engine.ledger.add_listener(registry.observe)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = MetricsServer(engine, registry, host, bound, tails=tails)
    try:
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server._serve)
            try:
                yield server
            finally:
                tg.cancel_scope.cancel()
    finally:
        remove()
