"""What a run reports: the call summary (counts, tokens, latency percentiles) and,
for a swarm run, each input's outcome with the swarm's and providers' figures.

Percentiles are nearest-rank over the calls that have the figure (a call that
failed before its first token has no time to first token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec

from ..agents.runtime import SwarmReport
from ..ledger import CallRecord
from ..provider_actor import ProviderStatistics
from ..ratelimit import RateLimiterStatistics

__all__ = [
    "InputOutcome",
    "RunReport",
    "RunSummary",
    "SwarmRunReport",
    "format_summary",
    "summarize",
]


class RunSummary(msgspec.Struct, kw_only=True, frozen=True):
    calls: int
    completed: int
    failed: int
    cancelled: int
    wall_seconds: float
    output_tokens: int
    input_tokens: int
    tokens_per_second: float
    ttft_p50: float | None
    ttft_p99: float | None
    duration_p50: float | None
    duration_p99: float | None
    attempts: int
    cost_usd: float
    errors: dict[str, int]


class RunReport(msgspec.Struct, kw_only=True, frozen=True):
    summary: RunSummary
    calls: list[CallRecord]


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(records: list[CallRecord], wall: float) -> RunSummary:
    ttfts = [r.ttft for r in records if r.ttft is not None]
    durations = [r.duration for r in records if r.duration is not None]
    output = sum(r.usage.output_tokens for r in records)
    errors: dict[str, int] = {}
    for r in records:
        if r.error is not None:
            errors[r.error.kind] = errors.get(r.error.kind, 0) + 1
    return RunSummary(
        calls=len(records),
        completed=sum(r.outcome == "completed" for r in records),
        failed=sum(r.outcome == "failed" for r in records),
        cancelled=sum(r.outcome == "cancelled" for r in records),
        wall_seconds=wall,
        output_tokens=output,
        input_tokens=sum(r.usage.input_tokens for r in records),
        tokens_per_second=output / wall if wall > 0 else 0.0,
        ttft_p50=_quantile(ttfts, 0.5),
        ttft_p99=_quantile(ttfts, 0.99),
        duration_p50=_quantile(durations, 0.5),
        duration_p99=_quantile(durations, 0.99),
        attempts=sum(r.attempts for r in records),
        cost_usd=sum(r.cost_usd or 0.0 for r in records),
        errors=errors,
    )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def format_summary(s: RunSummary) -> str:
    rows = [
        (
            "calls",
            f"{s.calls:,} ({s.completed:,} completed, {s.failed:,} failed, "
            f"{s.cancelled:,} cancelled)",
        ),
        ("attempts", f"{s.attempts:,}"),
        ("wall time", f"{s.wall_seconds:.2f} s"),
        ("tokens", f"{s.input_tokens:,} in, {s.output_tokens:,} out"),
        ("throughput", f"{s.tokens_per_second:,.0f} output tokens/s"),
        ("time to first token", f"p50 {_ms(s.ttft_p50)}, p99 {_ms(s.ttft_p99)}"),
        ("call duration", f"p50 {_ms(s.duration_p50)}, p99 {_ms(s.duration_p99)}"),
        ("estimated cost", f"${s.cost_usd:.4f}"),
    ]
    if s.errors:
        rows.append(("errors", ", ".join(f"{k}: {n}" for k, n in sorted(s.errors.items()))))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class InputOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """One input's outcome: the answer (the last stage's, or the consensus), or the
    error that stopped it (``error`` names its type and says what happened)."""

    index: int
    input: Any
    ok: bool
    text: str | None = None
    error: str | None = None
    agents: list[str] = []  # who answered, in order (stages, voters)
    detail: dict[str, Any] = {}  # votes and agreement (consensus), failed stage (pipeline)


class SwarmRunReport(msgspec.Struct, kw_only=True, frozen=True):
    """The ``--json`` report of a swarm run (a spec or the demo)."""

    spec: str
    pattern: str
    agents: int
    inputs: int
    answered: int
    failed: int
    summary: RunSummary
    swarm: SwarmReport
    providers: dict[str, ProviderStatistics]
    rate_limits: dict[str, dict[str, RateLimiterStatistics]]
    outcomes: list[InputOutcome]
    calls: list[CallRecord]
