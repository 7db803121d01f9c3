"""The simulator: a real loopback LLM server speaking every family's wire format.

It serves OpenAI Chat Completions, OpenAI Responses, Anthropic Messages and
Gemini (streaming and not) on 127.0.0.1, with seeded text, pacing, tool calls,
per-key rate limits, prompt-cache accounting and fault injection, so the runtime,
its tests and its benchmarks have a realistic upstream without a network.

In process::

    async with open_simulator(SimConfig(seed=1)) as sim:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-sim")
        ...
        stats = sim.stats.snapshot()

As a server: ``python -m providers.sim --port 8000`` (or ``swarm sim``).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from .config import Fault, ModelProfile, RateLimit, SimConfig, load_config
from .server import Simulator

__all__ = [
    "Fault",
    "ModelProfile",
    "RateLimit",
    "SimConfig",
    "Simulator",
    "load_config",
    "open_simulator",
    "tune_gc",
]


def tune_gc() -> None:
    """Keep CPython's garbage collector out of the simulator's schedule (process-wide).

    A collection pauses every stream, and its length is what the schedule's p99
    lateness shows. With thousands of live streams the default thresholds make
    full collections slow and frequent; (100_000, 50, 100) made them rare but
    each young collection walked ~100,000 live objects (and their token lists):
    30-40 ms pauses, p99 26-51 ms at 5,000 paced streams. Small young
    generations promoted quickly (10,000, 2, 100) pause 5-24 ms: p99 6.7-28.6 ms
    and max 16-43 ms in 6 of 7 runs (the 7th met a 122 ms stall from outside the
    process), the same throughput. What is alive when this is
    called (modules, the text corpus) is frozen out of every collection.

    ``swarm sim`` does this; a process that runs a large simulator in-process (a
    benchmark) may call it too.
    """
    gc.set_threshold(10_000, 2, 100)
    gc.freeze()


@asynccontextmanager
async def open_simulator(config: SimConfig | None = None) -> AsyncIterator[Simulator]:
    """Run a simulator in this event loop (trio or asyncio) for the ``async with``.

    Yields the running :class:`Simulator`: ``.base_url`` is ``http://127.0.0.1:PORT``;
    ``.openai_base_url``, ``.anthropic_base_url``, ``.gemini_base_url`` and
    ``.base_url_for(family)`` are what clients of each family take.
    """
    sim = Simulator(config)
    # An error in the caller's block comes out as itself, not wrapped in the
    # server's task group's ExceptionGroup (the server task only ends cancelled).
    body_error: Exception | None = None
    async with anyio.create_task_group() as tg:
        await tg.start(sim.serve)
        try:
            yield sim
        except Exception as exc:
            body_error = exc
        finally:
            tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
