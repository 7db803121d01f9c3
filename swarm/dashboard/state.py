"""What the dashboard shows, as one JSON-ready snapshot (sans-IO: built from the
engine's and the swarm's own snapshots, no IO here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..agents.runtime import SwarmReport
from ..engine import EngineStatistics
from ..ratelimit import RateLimiterStatistics

__all__ = ["MAX_AGENTS", "snapshot"]

# Agents listed at most (busiest first): a page with 10,000 rows helps nobody.
MAX_AGENTS = 200


def snapshot(
    *,
    title: str,
    elapsed: float,
    stats: EngineStatistics,
    rate_limits: Mapping[str, Mapping[str, RateLimiterStatistics]],
    swarm: SwarmReport | None,
    tokens_per_second: float,
    inputs: Mapping[str, int] | None = None,
    watching: str | None = None,
    tail: str = "",
) -> dict[str, Any]:
    ledger = stats.ledger
    providers = [
        {
            "name": name,
            "family": p.family,
            "running": p.running,
            "connecting": p.connecting,
            "completed": p.completed,
            "failed": p.failed,
            "retries": p.retries,
            "attempts": p.attempts,
            "breakers": dict(sorted(p.breakers.items())),
            "ttft_ms": {m: round(v * 1000, 1) for m, v in sorted(p.ttft.items())},
        }
        for name, p in sorted(stats.providers.items())
    ]
    limits = [
        {
            "provider": provider,
            "model": model,
            "rpm": s.requests_per_minute,
            "rpm_available": s.requests_available,
            # Anthropic's separate limits show as the output one (the scarcer, as
            # a rule), their input side beside it.
            "tpm": s.tokens_per_minute
            if s.tokens_per_minute is not None
            else s.output_tokens_per_minute,
            "tpm_available": s.tokens_available
            if s.tokens_per_minute is not None
            else s.output_tokens_available,
            "itpm": s.input_tokens_per_minute,
            "itpm_available": s.input_tokens_available,
            "inflight": s.inflight,
            "rate_limited": s.rate_limited,
            "waits": s.waits_rpm + s.waits_tpm + s.waits_itpm + s.waits_otpm + s.waits_concurrency,
        }
        for provider, by_model in sorted(rate_limits.items())
        for model, s in sorted(by_model.items())
    ]
    agents: list[dict[str, Any]] = []
    agent_count = 0
    if swarm is not None:
        agent_count = len(swarm.agents)
        agents = [
            {
                "name": name,
                "busy": a.busy,
                "queued": a.queued,
                "replies": a.replies,
                "errors": a.errors,
                "turns": a.turns,
                "tool_calls": a.tool_calls,
                "restarts": a.restarts,
            }
            for name, a in swarm.busiest(MAX_AGENTS)
        ]
    supervisor = stats.supervisor
    return {
        "title": title,
        "elapsed": round(elapsed, 2),
        "calls": {
            "queued": stats.queued,
            "in_flight": ledger.in_flight,
            "completed": ledger.completed,
            "failed": ledger.failed,
            "cancelled": ledger.cancelled,
            "output_tokens": ledger.output_tokens,
        },
        "tokens_per_second": round(tokens_per_second, 1),
        "inputs": dict(inputs or {}),
        "providers": providers,
        "rate_limits": limits,
        "supervisor": {
            "state": supervisor.state if supervisor else None,
            "restarts": supervisor.restarts if supervisor else 0,
        },
        "agent_count": agent_count,
        "agents": agents,
        "watching": watching,
        "tail": tail[-4000:],
    }
