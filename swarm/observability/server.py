"""The ``/metrics`` endpoint: a tiny HTTP/1.1 server on the engine's own event loop
(anyio, so trio or asyncio), bound to 127.0.0.1 unless asked otherwise.

It answers ``GET /metrics`` (and ``/``) with the exposition, anything else 404,
one request per connection; a client that sends nothing is dropped after a few
seconds, and a request head over 8 KiB is refused, so a stray client cannot
hold it up or grow its memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ..agents.runtime import Swarm
from ..engine import Engine
from .http import read_request, respond
from .prometheus import CONTENT_TYPE, EngineMetrics

__all__ = ["MetricsServer", "open_metrics_server"]


class MetricsServer:
    """A running endpoint: ``url`` is where Prometheus scrapes."""

    def __init__(self, engine: Engine, metrics: EngineMetrics, host: str, port: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.host = host
        self.port = port
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
            else:
                await respond(
                    client,
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    b"swarm metrics: GET /metrics\n",
                )


@asynccontextmanager
async def open_metrics_server(
    engine: Engine, *, host: str = "127.0.0.1", port: int = 0, metrics: EngineMetrics | None = None
) -> AsyncIterator[MetricsServer]:
    """Serve ``engine``'s metrics for the block (port 0: any free port; see
    ``server.url``). Counting starts when the block does."""
    registry = metrics or EngineMetrics()
    remove = engine.ledger.add_listener(registry.observe)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = MetricsServer(engine, registry, host, bound)
    try:
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server._serve)
            try:
                yield server
            finally:
                tg.cancel_scope.cancel()
    finally:
        remove()
