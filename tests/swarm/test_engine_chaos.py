"""Thousands of calls through injected faults: nothing lost, duplicated or spliced.

The runtime issue's acceptance test: 10,000 calls with 20% mid-stream disconnects,
5% errors before the first byte and 5% 429s. Every call must end in exactly one
terminal event, no text may be spliced across attempts, no response may be left
open, and the simulator's count of requests must equal the ledger's attempts.
"""

from __future__ import annotations

import anyio
import pytest

from providers import Message, Request, TextDelta
from providers.sim import Fault, ModelProfile, SimConfig, open_simulator
from swarm import open_engine
from swarm.config import EngineConfig, ProviderConfig
from swarm.events import Cancelled, Completed, Failed, Restart, Terminal
from swarm.resilience import CircuitBreakerPolicy, RetryBudgetPolicy, RetryPolicy

pytestmark = pytest.mark.anyio

PROFILE = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=12)
FAULTS = [
    Fault(kind="disconnect", after=4, rate=0.20, seed=1),
    Fault(kind="status", status=503, rate=0.05, seed=2),
    Fault(kind="status", status=429, rate=0.05, seed=3),
]
WORKERS = 200


@pytest.mark.parametrize(
    ("anyio_backend", "calls"),
    [("trio", 10_000), ("asyncio", 2_000)],
)
async def test_no_call_is_lost_duplicated_or_spliced_under_faults(
    anyio_backend: str, calls: int
) -> None:
    terminals: dict[int, list[Terminal]] = {i: [] for i in range(calls)}
    spliced: list[int] = []
    restarts = 0
    config = SimConfig(seed=7, models={"m": PROFILE}, faults=FAULTS)
    async with open_simulator(config) as sim:
        engine_config = EngineConfig(
            providers={
                "sim": ProviderConfig(
                    family="openai",
                    base_url=sim.openai_base_url,
                    api_key="sk-chaos",
                    max_concurrency=WORKERS,
                )
            },
            default_provider="sim",
            retry=RetryPolicy(
                max_attempts=6, base_delay=0.001, max_delay=0.005, max_retry_after=0.01
            ),
            retry_budget=RetryBudgetPolicy(budget_percent=100.0),
            breaker=CircuitBreakerPolicy(failure_rate_threshold=100.0, minimum_calls=10**6),
        )
        async with open_engine(engine_config, env={}) as engine:
            send, receive = anyio.create_memory_object_stream[int](WORKERS)

            async def worker() -> None:
                nonlocal restarts
                async with receive.clone() as jobs:
                    async for i in jobs:
                        request = Request(model="m", messages=[Message.user(f"call {i}")])
                        async with engine.stream(request, allow_restart=True) as call:
                            text: list[str] = []
                            async for event in call:
                                if isinstance(event, TextDelta):
                                    text.append(event.text)
                                elif isinstance(event, Restart):
                                    restarts += 1
                                    text.clear()  # what came before is void
                                elif isinstance(event, Completed | Failed | Cancelled):
                                    terminals[i].append(event)
                                    if isinstance(event, Completed):
                                        if "".join(text) != event.response.text:
                                            spliced.append(i)

            async with anyio.create_task_group() as tg:
                for _ in range(WORKERS):
                    tg.start_soon(worker)
                async with send:
                    for i in range(calls):
                        await send.send(i)
                receive.close()
            ledger = engine.statistics().ledger
            running = engine.statistics().providers["sim"].running
        stats = sim.stats.snapshot()  # type: ignore[attr-defined]

    # Exactly one terminal event per call.
    assert [i for i, ends in terminals.items() if len(ends) != 1] == []
    # No spliced text: a completed call's streamed text is its response's text.
    assert spliced == []
    # The ledger accounts for every call, and every attempt reached the simulator.
    assert ledger.accepted == calls
    assert ledger.in_flight == 0
    assert ledger.completed + ledger.failed + ledger.cancelled == calls
    assert ledger.attempts == stats["requests"]
    # No response left open.
    assert running == 0
    assert stats["active_streams"] == 0
    # The faults really happened and were survived: most calls completed.
    assert restarts > calls * 0.05
    assert ledger.attempts > calls * 1.2
    assert ledger.completed > calls * 0.95
    failed_kinds = {
        e.error.kind for ends in terminals.values() for e in ends if isinstance(e, Failed)
    }
    assert failed_kinds <= {"ReadError", "OverloadedError", "RateLimitError"}
