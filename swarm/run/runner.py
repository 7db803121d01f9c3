"""Run a :class:`~swarm.run.spec.SwarmSpec`: start the engine (the embedded
simulator unless providers are configured), the agents, the pattern over the
inputs, the live display; gather every input's outcome into the report.

Every input gets exactly one outcome; an input that fails (an agent's error, a
timeout, the budget) is recorded with its error and the others go on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec

from ..agents.runtime import Swarm, open_swarm
from ..config import EngineConfig
from ..engine import Engine, open_engine
from ..observability import open_metrics_server
from ..observability.otel import instrument, span_file
from ..patterns import Stage, consensus, open_map, open_pipeline
from ..throughput import RecentRate
from .display import LiveDisplay, Progress, Snapshot
from .report import InputOutcome, SwarmRunReport, summarize
from .spec import (
    ConsensusPattern,
    MapPattern,
    PipelinePattern,
    SwarmSpec,
    build_agents,
    load_inputs,
    pools,
)

__all__ = ["engine_config", "run_spec"]

_PATTERN_NAMES = {MapPattern: "map", PipelinePattern: "pipeline", ConsensusPattern: "consensus"}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _template(template: str) -> Any:
    return lambda value: template.format(input=value)


def engine_config(spec: SwarmSpec, override: EngineConfig | None) -> EngineConfig:
    """The spec's engine settings (or ``override``, from ``--config``), with the
    spec's routes added. With no provider configured there, the run is on the
    embedded simulator even when API keys are set: a spec spends money only on
    providers it (or its config) names."""
    base = override or spec.engine
    if not base.providers and base.simulator is None:
        base = msgspec.structs.replace(base, simulator=True)
    if not spec.routes:
        return base
    return msgspec.structs.replace(base, routes={**base.routes, **spec.routes})


Emit = Callable[[InputOutcome], None]


async def _run_pattern(
    spec: SwarmSpec, crew: Swarm, inputs: list[str], progress: Progress, emit: Emit
) -> None:
    """Run the spec's pattern over ``inputs``, each outcome to ``emit`` as it comes
    (a callback rather than an async generator: a generator suspended inside the
    patterns' task groups would break structured cancellation)."""
    by_name = pools(spec)
    pattern = spec.pattern
    if isinstance(pattern, MapPattern):
        async with open_map(
            crew,
            by_name[pattern.agent],
            inputs,
            concurrency=spec.concurrency,
            timeout=spec.timeout,
            prompt=_template(pattern.template),
        ) as results:
            async for item in results:
                progress.done(item.error)
                if item.reply is not None:
                    emit(
                        InputOutcome(
                            index=item.index,
                            input=item.input,
                            ok=True,
                            text=item.reply.text,
                            agents=item.reply.path,
                        )
                    )
                else:
                    assert item.error is not None
                    emit(
                        InputOutcome(
                            index=item.index,
                            input=item.input,
                            ok=False,
                            error=_describe(item.error),
                        )
                    )
    elif isinstance(pattern, PipelinePattern):
        stages = [
            Stage(tuple(by_name[s.agent]), workers=s.workers, prompt=_template(s.template))
            for s in pattern.stages
        ]
        async with open_pipeline(
            crew, stages, inputs, buffer=pattern.buffer, timeout=spec.timeout
        ) as items:
            async for p in items:
                progress.done(p.error)
                answered = [r.agent for r in p.replies]
                if p.error is None:
                    emit(
                        InputOutcome(
                            index=p.index,
                            input=p.input,
                            ok=True,
                            text=p.replies[-1].text,
                            agents=answered,
                        )
                    )
                else:
                    emit(
                        InputOutcome(
                            index=p.index,
                            input=p.input,
                            ok=False,
                            error=_describe(p.error),
                            agents=answered,
                            detail={"stage": p.stage},
                        )
                    )
    else:
        await _consensus(spec, pattern, crew, inputs, progress, emit)


async def _consensus(
    spec: SwarmSpec,
    pattern: ConsensusPattern,
    crew: Swarm,
    inputs: list[str],
    progress: Progress,
    emit: Emit,
) -> None:
    """Each input to a consensus of the voters, ``spec.concurrency`` at once."""
    by_name = pools(spec)
    voters = [name for agent in pattern.agents for name in by_name[agent]]
    make = _template(pattern.template)
    slots = anyio.Semaphore(spec.concurrency)

    async def one(index: int, value: str) -> None:
        try:
            result = await consensus(
                crew,
                voters,
                make(value),
                method=pattern.method,
                judge=pattern.judge,
                quorum=pattern.quorum,
                timeout=spec.timeout,
            )
            progress.done(None)
            outcome = InputOutcome(
                index=index,
                input=value,
                ok=True,
                text=result.answer,
                agents=sorted(result.replies),
                detail={
                    "votes": result.votes,
                    "agreement": result.agreement,
                    "tie": result.tie,
                    "failed_voters": sorted(result.errors),
                },
            )
        except Exception as exc:  # NoConsensus too: this input's outcome; the others go on
            progress.done(exc)
            outcome = InputOutcome(index=index, input=value, ok=False, error=_describe(exc))
        finally:
            slots.release()
        emit(outcome)

    async with anyio.create_task_group() as tg:
        for index, value in enumerate(inputs):
            await slots.acquire()
            tg.start_soon(one, index, value)


async def _snapshot(
    spec: SwarmSpec,
    engine: Engine,
    crew: Swarm,
    progress: Progress,
    started: float,
    agents: int,
    rate: RecentRate,
) -> Snapshot:
    stats = engine.statistics()
    now = time.monotonic()
    elapsed = now - started
    report = crew.report()
    return Snapshot(
        title=f"swarm run: {spec.name}",
        elapsed=elapsed,
        inputs_total=progress.total,
        inputs_answered=progress.answered,
        inputs_failed=progress.failed,
        input_errors=dict(progress.errors),
        agents=agents,
        agents_busy=sum(1 for a in report.agents.values() if a.busy),
        engine=stats,
        rate_limits=await engine.rate_limit_statistics(),
        tokens_per_second=rate.update(now, stats.ledger.output_tokens),
    )


async def run_spec(
    spec: SwarmSpec,
    *,
    base: Path,
    config: EngineConfig | None = None,
    progress_out: IO[str] | None = None,
    source: str = "spec",
    metrics: tuple[str, int] | None = None,
    dashboard: tuple[str, int] | tuple[str, int, int] | None = None,
    spans: str | None = None,
    metrics_tails: bool = False,
) -> SwarmRunReport:
    """Run ``spec`` to the end and return its report (see the module docstring).

    Args:
        base: Where the spec's relative paths and tool modules are found.
        config: Engine settings in place of the spec's ``[engine]`` (``--config``).
        progress_out: Where the live display goes (None: no display).
        metrics: (host, port) to serve Prometheus metrics on for the run (port 0:
            any free one); the URL is written to ``progress_out`` (or stderr).
        dashboard: (host, port) or (host, port, WebSocket port) to serve the live
            dashboard on (trio only); its URL is written the same way.
        metrics_tails: The metrics endpoint also serves the agents' streamed text
            (``/swarm/tail``, for ``swarm dash``; loopback only).
        spans: Write OpenTelemetry spans (model calls, tool runs, agent messages)
            to this file as JSON lines (needs the SDK: the ``otel`` extra).
    """
    agents = build_agents(spec, base, source)
    inputs = load_inputs(spec, base)
    progress = Progress(len(inputs))
    outcomes: list[InputOutcome] = []
    server = None
    async with (
        open_engine(engine_config(spec, config), simulator=spec.simulator) as engine,
        AsyncExitStack() as stack,
    ):
        if metrics is not None:
            server = await stack.enter_async_context(
                open_metrics_server(engine, host=metrics[0], port=metrics[1], tails=metrics_tails)
            )
            out = progress_out or sys.stderr
            out.write(f"metrics at {server.url}\n")
            out.flush()
        provider = stack.enter_context(span_file(spans)) if spans is not None else None
        started = time.monotonic()
        rate = RecentRate()
        rate.update(started, 0)  # so the first line shows its first seconds, not 0
        # The dashboard's own stack: its task group must close inside the swarm's.
        async with (
            open_swarm(engine, agents, budget=spec.budget) as crew,
            AsyncExitStack() as inner,
        ):
            if provider is not None:
                inner.callback(instrument(engine, crew, tracer_provider=provider))
            if server is not None:  # its agents on the endpoint too (swarm dash shows them)
                server.swarm = crew
                inner.callback(setattr, server, "swarm", None)
            if dashboard is not None:
                from ..dashboard import open_dashboard

                def counts() -> dict[str, int]:
                    return {
                        "total": progress.total,
                        "answered": progress.answered,
                        "failed": progress.failed,
                    }

                board = await inner.enter_async_context(
                    open_dashboard(
                        engine,
                        crew,
                        title=spec.name,
                        host=dashboard[0],
                        port=dashboard[1],
                        ws_port=dashboard[2] if len(dashboard) > 2 else 0,
                        inputs=counts,
                    )
                )
                out = progress_out or sys.stderr
                out.write(f"dashboard at {board.url}\n")
                out.flush()
            async with anyio.create_task_group() as tg:
                if progress_out is not None:
                    display = LiveDisplay(
                        progress_out,
                        lambda: _snapshot(spec, engine, crew, progress, started, len(agents), rate),
                    )
                    tg.start_soon(display.run)
                await _run_pattern(spec, crew, inputs, progress, outcomes.append)
                tg.cancel_scope.cancel()
            swarm_report = crew.report()
        wall = time.monotonic() - started
        engine_stats = engine.statistics()
        rate_limits = await engine.rate_limit_statistics()
        records = engine.ledger.records()
    outcomes.sort(key=lambda o: o.index)
    return SwarmRunReport(
        spec=spec.name,
        pattern=_PATTERN_NAMES[type(spec.pattern)],
        agents=len(agents),
        inputs=len(inputs),
        answered=progress.answered,
        failed=progress.failed,
        summary=summarize(records, wall),
        swarm=swarm_report,
        providers=engine_stats.providers,
        rate_limits=rate_limits,
        outcomes=outcomes,
        calls=records,
    )
