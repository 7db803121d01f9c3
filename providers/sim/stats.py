"""Request accounting: every request counted by key, model, family and outcome.

``/sim/stats`` returns :meth:`Stats.snapshot` as JSON, so a test can check that a
client sent exactly the requests it says it sent, and read the scheduler's own
record of how late its paced writes were.

Generations are counted under their family (``openai``, ``anthropic``,
``openai-responses``, ``gemini``); model listings under ``models`` and unknown
URLs under ``unknown``, with model ``-``. The simulator's own ``/sim/*`` and
``/health`` endpoints are not counted.

Outcomes: ``ok``, ``rate_limited``, ``bad_request``, ``unauthorized``,
``not_found``, ``context_length``, ``client_disconnected``, and
``fault:<kind>`` (``fault:status_503``, ``fault:disconnect``, ``fault:stall``,
``fault:malformed``, ``fault:error_event``, ``fault:slow_headers``).
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from .pacing import LagHistogram

__all__ = ["Stats"]


class Stats:
    def __init__(self, log_size: int = 1000) -> None:
        self.lag = LagHistogram()
        self._log_size = log_size
        self.reset()

    def reset(self) -> None:
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.cache_creation_tokens = 0
        self.active_streams = 0
        self.connections = 0
        self.log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
        self.lag.clear()

    def record(
        self,
        *,
        key: str,
        model: str,
        family: str,
        outcome: str,
        stream: bool,
        status: int,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        t: float = 0.0,
    ) -> None:
        self.counts[(key, model, family, outcome)] += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cached_tokens += cached_tokens
        self.cache_creation_tokens += cache_creation_tokens
        if self._log_size:
            self.log.append(
                {
                    "t": round(t, 4),
                    "key": key,
                    "model": model,
                    "family": family,
                    "stream": stream,
                    "status": status,
                    "outcome": outcome,
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cached_tokens": cached_tokens,
                }
            )

    def snapshot(self) -> dict[str, Any]:
        by: dict[str, Counter[str]] = {n: Counter() for n in ("key", "model", "family", "outcome")}
        for (key, model, family, outcome), n in self.counts.items():
            by["key"][key] += n
            by["model"][model] += n
            by["family"][family] += n
            by["outcome"][outcome] += n
        return {
            "requests": sum(self.counts.values()),
            "by_key": dict(by["key"]),
            "by_model": dict(by["model"]),
            "by_family": dict(by["family"]),
            "by_outcome": dict(by["outcome"]),
            "counts": [
                {"key": k, "model": m, "family": f, "outcome": o, "count": n}
                for (k, m, f, o), n in sorted(self.counts.items())
            ],
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cached": self.cached_tokens,
                "cache_creation": self.cache_creation_tokens,
            },
            "active_streams": self.active_streams,
            "connections": self.connections,
            "schedule_lag": self.lag.summary(),
            "log": list(self.log),
        }
