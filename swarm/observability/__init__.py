"""Seeing what an engine does: Prometheus metrics (:mod:`.prometheus`, served by
:func:`open_metrics_server`). Nothing here ever records a key or a prompt."""

from .prometheus import EngineMetrics
from .server import MetricsServer, open_metrics_server

__all__ = ["EngineMetrics", "MetricsServer", "open_metrics_server"]
