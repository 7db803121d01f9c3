"""``swarm bench``: a load generator and report for LLM endpoints under concurrency.

- :mod:`.data`: prompts (synthetic lengths, JSONL, ShareGPT).
- :mod:`.load`: load shapes (closed loop, open loop with Poisson or gamma arrivals,
  ramp-up), sans-IO.
- :mod:`.metrics`: per-request records and their summary (definitions there and
  in docs/bench.md), sans-IO.
- :mod:`.runner`: sends the requests through the provider layer and records them.
- :mod:`.target`: endpoints, presets, the simulator in a child process.
- :mod:`.report`: the table, JSON, CSV and HTML outputs.
"""

from .load import LoadPoint, arrivals, worker_starts
from .metrics import SLO, Distribution, PointSummary, RequestRecord, distribution, summarize
from .report import SCHEMA_VERSION, BenchReport

__all__ = [
    "SCHEMA_VERSION",
    "SLO",
    "BenchReport",
    "Distribution",
    "LoadPoint",
    "PointSummary",
    "RequestRecord",
    "arrivals",
    "distribution",
    "summarize",
    "worker_starts",
]
