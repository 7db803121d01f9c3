"""Run the load points against a target and record every request (the IO side
of ``swarm bench``; the shapes are in :mod:`.load`, the figures in :mod:`.metrics`).

Requests go through the provider layer alone (``providers.client.stream`` over
the project's streaming transport): no engine, no retries, no rate limiting, so
what is measured is the server plus the thinnest client we have. Each network
read is timestamped once, when it is decoded; its events share that time.

Open loop: one dispatcher task sleeps until each intended time and starts the
request as a task of its own, so a slow server never delays the schedule (the
schedule lag measures the event loop's own lateness). Closed loop: ``concurrency``
workers, each sending its next request when its last one ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import anyio
import httpx
import msgspec

from providers.client import stream
from providers.errors import ProviderError
from providers.events import ReasoningDelta, TextDelta, ToolCallDelta, Usage
from providers.families import Endpoint, get_family
from providers.messages import Message, Request
from providers.transport import StreamingTransport

from .data import Prompt
from .load import Arrival, LoadPoint, arrivals, worker_starts
from .metrics import SLO, PointSummary, RequestRecord, summarize

__all__ = ["BenchClient", "Limits", "run_point", "warm_up"]

_CONTENT = (TextDelta, ReasoningDelta, ToolCallDelta)


class Limits(msgspec.Struct, kw_only=True, frozen=True):
    """When a load point ends: after ``requests`` requests, or when ``duration``
    seconds have passed (no new request starts; those in flight finish), whichever
    comes first. ``timeout``: one request's bound."""

    requests: int | None = None
    duration: float | None = None
    timeout: float = 600.0


class BenchClient:
    """One HTTP client for a run, sized so the pool never queues requests."""

    def __init__(self, endpoint: Endpoint, family: str, model: str, connections: int) -> None:
        self.endpoint = endpoint
        self.family = get_family(family)
        self.model = model
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(
            transport=StreamingTransport(limits=limits),
            timeout=httpx.Timeout(connect=30.0, read=None, write=30.0, pool=None),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def one(
        self,
        index: int,
        prompt: Prompt,
        point: str,
        intended: float | None,
        origin: float,
        limit: float,
    ) -> RequestRecord:
        request = Request(
            model=self.model,
            messages=[Message.user(prompt.text)],
            max_tokens=prompt.output_tokens,
        )
        now = anyio.current_time
        start = now()
        sent: float | None = None
        first: float | None = None
        last: float | None = None
        gaps: list[float] = []
        chunks = 0
        usage: Usage | None = None

        def on_sent() -> None:
            nonlocal sent
            if sent is None:
                sent = now()

        error: BaseException | None = None
        try:
            with anyio.fail_after(limit):
                async with stream(
                    self.http, self.endpoint, request, family=self.family, on_request_sent=on_sent
                ) as events:
                    while (batch := await events.next_batch()) is not None:
                        t = now()
                        content = 0
                        for event in batch:
                            if isinstance(event, _CONTENT):
                                content += 1
                            elif isinstance(event, Usage):
                                usage = event
                        if content:
                            chunks += content
                            if first is None:
                                first = t
                            elif last is not None:
                                gaps.append(t - last)
                            last = t
        except Exception as exc:  # this request's outcome; the run goes on
            if isinstance(exc, TimeoutError) and not isinstance(exc, ProviderError):
                exc = TimeoutError(f"no end of stream within {limit:g} s (--timeout)")
            error = exc
        end = now()
        from_usage = usage is not None and usage.output_tokens > 0
        return RequestRecord(
            index=index,
            point=point,
            intended=intended,
            start=start - origin,
            sent=None if sent is None else sent - origin,
            first_token=None if first is None else first - origin,
            end=end - origin,
            ok=error is None,
            error=None if error is None else type(error).__name__,
            error_message=None if error is None else str(error)[:500],
            input_tokens=usage.input_tokens if usage is not None else None,
            output_tokens=usage.output_tokens if (from_usage and usage) else chunks,
            token_source="usage" if from_usage else "chunks",
            chunks=chunks,
            itl=gaps,
        )


async def warm_up(client: BenchClient, prompts: Iterator[Prompt], count: int, limit: float) -> int:
    """Send ``count`` requests (at most 16 at once) before measuring; returns how
    many succeeded. They open connections and warm the server's caches."""
    ok = 0
    limiter = anyio.Semaphore(16)
    origin = anyio.current_time()

    async def one(k: int, prompt: Prompt) -> None:
        nonlocal ok
        async with limiter:
            record = await client.one(k, prompt, "warm-up", None, origin, limit)
        ok += record.ok

    async with anyio.create_task_group() as tg:
        for k in range(count):
            tg.start_soon(one, k, next(prompts))
    return ok


async def run_point(
    client: BenchClient,
    point: LoadPoint,
    prompts: Iterator[Prompt],
    limits: Limits,
    *,
    slos: Sequence[SLO],
    arrival: Arrival = "poisson",
    burstiness: float = 1.0,
    ramp_up: float = 0.0,
    seed: int = 0,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> tuple[PointSummary, list[RequestRecord]]:
    """Run one load point to its limit; return its summary and records."""
    records: list[RequestRecord] = []
    in_flight = 0
    peak = 0
    sent_count = 0
    origin = anyio.current_time()
    deadline = None if limits.duration is None else origin + limits.duration
    cpu_start = time.process_time()

    def may_start() -> bool:
        if limits.requests is not None and sent_count >= limits.requests:
            return False
        return deadline is None or anyio.current_time() < deadline

    async def one(index: int, prompt: Prompt, intended: float | None) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            record = await client.one(index, prompt, point.label, intended, origin, limits.timeout)
        finally:
            in_flight -= 1
        records.append(record)
        if on_record is not None:
            on_record(record)

    mode: Literal["concurrency", "rate"] = point.mode
    async with anyio.create_task_group() as tg:
        if mode == "rate":
            for due in arrivals(
                point.value, arrival=arrival, burstiness=burstiness, ramp_up=ramp_up, seed=seed
            ):
                if deadline is not None and origin + due >= deadline:
                    break
                if not may_start():
                    break
                await anyio.sleep_until(origin + due)
                sent_count += 1
                tg.start_soon(one, sent_count - 1, next(prompts), due)
        else:

            async def worker(delay: float) -> None:
                nonlocal sent_count
                await anyio.sleep_until(origin + delay)
                while may_start():
                    sent_count += 1
                    await one(sent_count - 1, next(prompts), None)

            for delay in worker_starts(int(point.value), ramp_up):
                tg.start_soon(worker, delay)
    cpu = time.process_time() - cpu_start
    records.sort(key=lambda r: r.start)
    summary = summarize(
        records,
        label=point.label,
        mode=mode,
        value=point.value,
        slos=slos,
        cpu_seconds=cpu,
        max_in_flight=peak,
    )
    return summary, records
