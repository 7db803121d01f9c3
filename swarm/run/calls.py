"""``swarm run --calls N``: plain streaming calls through the engine, no agents.

Many concurrent streaming calls with varied prompts, on the built-in simulator
unless an engine config is given: the quickest look at the engine alone.
"""

from __future__ import annotations

import contextlib
import time
from typing import IO

import anyio

from providers.messages import Message, Request

from ..config import EngineConfig
from ..engine import Engine, open_engine
from ..observability.otel import instrument, span_file
from ..throughput import RecentRate
from .report import RunReport, summarize

__all__ = ["run_calls"]

TOPICS = [
    "the history of tea", "how bridges carry load", "why the sky is blue",
    "what makes a good map", "the life of a honeybee", "how tides work",
    "the invention of the printing press", "why cats purr", "how vaccines train immunity",
    "the physics of a bicycle",
]  # fmt: skip


async def _progress(engine: Engine, total: int, out: IO[str], live: bool) -> None:
    rate = RecentRate()  # the rate now, not the run's average
    rate.update(time.monotonic(), engine.statistics().ledger.output_tokens)
    while True:
        await anyio.sleep(0.25 if live else 2.0)
        stats = engine.statistics()
        ledger = stats.ledger
        running = sum(p.running for p in stats.providers.values())
        done = ledger.completed + ledger.failed + ledger.cancelled
        tokens_per_second = rate.update(time.monotonic(), ledger.output_tokens)
        line = (
            f"{done}/{total} done, {running} in flight, {stats.queued} queued, "
            f"{ledger.failed} failed, {tokens_per_second:,.0f} tok/s"
        )
        out.write(("\r" + line + " " * 8) if live else (line + "\n"))
        out.flush()


async def run_calls(
    *,
    calls: int,
    concurrency: int,
    model: str,
    max_tokens: int,
    config: EngineConfig | None,
    progress: IO[str] | None,
    spans: str | None = None,
) -> RunReport:
    """Run ``calls`` streaming calls, ``concurrency`` at a time; return the report
    (``spans``: write an OpenTelemetry span per call to this file, JSON lines)."""
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
    async with open_engine(engine_config) as engine, contextlib.AsyncExitStack() as stack:
        if spans is not None:
            provider = stack.enter_context(span_file(spans))
            stack.callback(instrument(engine, tracer_provider=provider))
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
