"""The live dashboard (``swarm run --dashboard``): actors and their health, rate-limit
buckets and breakers, calls in flight, throughput, and one agent's token stream,
updated over a WebSocket. See :mod:`.server`."""

from .server import Dashboard, open_dashboard

__all__ = ["Dashboard", "open_dashboard"]
