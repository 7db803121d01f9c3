"""``swarm run``: run a workload through the engine and report on it.

Today's workload is a demonstration: many concurrent streaming calls with varied
prompts, on the built-in simulator unless an engine config is given. (Agents,
tool loops and swarm specs come with the execution layer.)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import anyio
import msgspec

from providers.messages import Message, Request

from .config import EngineConfig, load_config
from .engine import Engine, open_engine
from .ledger import CallRecord

__all__ = ["RunReport", "RunSummary", "run_demo"]

TOPICS = [
    "the history of tea", "how bridges carry load", "why the sky is blue",
    "what makes a good map", "the life of a honeybee", "how tides work",
    "the invention of the printing press", "why cats purr", "how vaccines train immunity",
    "the physics of a bicycle",
]  # fmt: skip


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
            f"{s.calls} ({s.completed} completed, {s.failed} failed, {s.cancelled} cancelled)",
        ),
        ("attempts", str(s.attempts)),
        ("wall time", f"{s.wall_seconds:.2f} s"),
        ("tokens", f"{s.input_tokens} in, {s.output_tokens} out"),
        ("throughput", f"{s.tokens_per_second:,.0f} output tokens/s"),
        ("time to first token", f"p50 {_ms(s.ttft_p50)}, p99 {_ms(s.ttft_p99)}"),
        ("call duration", f"p50 {_ms(s.duration_p50)}, p99 {_ms(s.duration_p99)}"),
        ("estimated cost", f"${s.cost_usd:.4f}"),
    ]
    if s.errors:
        rows.append(("errors", ", ".join(f"{k}: {n}" for k, n in sorted(s.errors.items()))))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def _progress(engine: Engine, total: int, out: IO[str], live: bool) -> None:
    started = time.monotonic()
    while True:
        await anyio.sleep(0.25 if live else 2.0)
        stats = engine.statistics()
        ledger = stats.ledger
        running = sum(p.running for p in stats.providers.values())
        done = ledger.completed + ledger.failed + ledger.cancelled
        elapsed = time.monotonic() - started
        line = (
            f"{done}/{total} done, {running} in flight, {stats.queued} queued, "
            f"{ledger.failed} failed, {ledger.output_tokens / max(elapsed, 1e-9):,.0f} tok/s"
        )
        out.write(("\r" + line + " " * 8) if live else (line + "\n"))
        out.flush()


async def run_demo(
    *,
    calls: int,
    concurrency: int,
    model: str,
    max_tokens: int,
    config: EngineConfig | None,
    progress: IO[str] | None,
) -> RunReport:
    """Run ``calls`` streaming calls, ``concurrency`` at a time; return the report."""
    engine_config = config or EngineConfig(simulator=True)
    requests = [
        Request(
            model=model,
            messages=[
                Message.system("You are a concise explainer."),
                Message.user(f"In a few sentences, explain {TOPICS[i % len(TOPICS)]} (#{i})."),
            ],
            max_tokens=max_tokens,
        )
        for i in range(calls)
    ]
    async with open_engine(engine_config) as engine:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            if progress is not None:
                tg.start_soon(_progress, engine, calls, progress, progress.isatty())
            async for _ in engine.map(requests, concurrency=concurrency):
                pass
            tg.cancel_scope.cancel()
        wall = time.monotonic() - started
        if progress is not None and progress.isatty():
            progress.write("\n")
        records = engine.ledger.records()
    return RunReport(summary=summarize(records, wall), calls=records)


def main(args: object) -> int:
    """Entry point for ``swarm run`` (arguments from swarm.cli)."""
    calls: int = getattr(args, "calls")  # noqa: B009 - argparse namespace
    config_path: str | None = getattr(args, "config")  # noqa: B009
    config = load_config(config_path) if config_path else None
    report = anyio.run(
        lambda: run_demo(
            calls=calls,
            concurrency=getattr(args, "concurrency"),  # noqa: B009
            model=getattr(args, "model"),  # noqa: B009
            max_tokens=getattr(args, "max_tokens"),  # noqa: B009
            config=config,
            progress=None if getattr(args, "quiet") else sys.stderr,  # noqa: B009
        ),
        backend="trio",
    )
    print(format_summary(report.summary))
    json_path: str | None = getattr(args, "json")  # noqa: B009
    if json_path:
        Path(json_path).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
        print(f"report written to {json_path}")
    return 0 if report.summary.failed == 0 else 1
