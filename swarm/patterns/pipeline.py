"""The pipeline pattern: stages of agents with bounded queues between them.

::

    stages = ["researcher", Stage("writer", workers=4), "editor"]
    async with open_pipeline(crew, stages, topics, buffer=8) as results:
        async for item in results:
            print(item.index, item.text if item.ok else f"stage {item.stage}: {item.error}")

Each input goes through the stages in order: stage 0 gets the input, every later
stage the previous stage's answer (or what its ``prompt`` makes of it). Each stage
runs ``workers`` messages at once, and the queue in front of it holds ``buffer``
items at most: a slow stage holds up the stages before it instead of letting work
pile up in memory (back-pressure all the way to the input iterator, which is read
lazily). Results come in completion order, each with its input's ``index``. An
input that fails at a stage comes out at once with the error and that stage's
index; the rest flow on. Leaving the block early cancels the pipeline.

A stage's ``agent`` may be a pool (a list of names): input ``i`` goes to
``agent[i % len(agent)]`` at that stage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from providers.messages import Message

from ..agents.runtime import Reply, Swarm
from .fanout import _default_prompt, agent_pool

__all__ = ["PipelineItem", "Stage", "open_pipeline", "run_pipeline"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage: the agent that does it (or a pool of agents: a tuple of names),
    how many messages it takes at once, and how the previous stage's answer (the
    input, for the first stage) becomes its message."""

    agent: str | tuple[str, ...]
    workers: int = 1
    prompt: Callable[[Any], str | Sequence[Message]] | None = None

    def __post_init__(self) -> None:
        names = (self.agent,) if isinstance(self.agent, str) else self.agent
        if not isinstance(names, tuple) or not names or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"Stage.agent is an agent's name or a non-empty tuple of names, got {self.agent!r}"
            )
        w = self.workers
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"Stage({self.agent!r}): workers must be an int >= 1, got {w!r}")


@dataclass(frozen=True, slots=True)
class PipelineItem:
    """An input's outcome: the reply of every stage it went through; ``error`` and
    ``stage`` (the index of the stage that failed) when it did not get through."""

    index: int
    input: Any
    replies: list[Reply] = field(default_factory=list)
    error: BaseException | None = None
    stage: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The last stage's answer; raises the input's error when it failed."""
        if self.error is not None:
            raise self.error
        return self.replies[-1].text


@dataclass(slots=True)
class _Work:
    index: int
    input: Any
    replies: list[Reply]


def _stages(swarm: Swarm, stages: Sequence[str | Stage]) -> list[tuple[Stage, list[str]]]:
    """Each stage with its pool of agent names (checked before anything is sent)."""
    if not isinstance(swarm, Swarm):
        raise TypeError(f"the pipeline pattern runs on a Swarm (from open_swarm()), got {swarm!r}")
    if isinstance(stages, str) or not stages:
        raise ValueError("a pipeline needs a non-empty list of stages (agent names or Stage)")
    out = [s if isinstance(s, Stage) else Stage(s) for s in stages]
    return [(stage, agent_pool(swarm, stage.agent, "pipeline")) for stage in out]


@asynccontextmanager
async def open_pipeline(
    swarm: Swarm,
    stages: Sequence[str | Stage],
    inputs: Iterable[Any],
    *,
    buffer: int = 4,
    timeout: float | None = None,  # noqa: ASYNC109 - each message's reply deadline
) -> AsyncIterator[AsyncIterator[PipelineItem]]:
    """Run ``inputs`` through ``stages`` and iterate over the outcomes (see the
    module docstring).

    Args:
        stages: Agent names, or :class:`Stage` for workers and a prompt.
        buffer: Items the queue in front of each stage (and the output) holds.
        timeout: Each message's reply deadline.

    Raises:
        UnknownAgent: a stage names no agent of the swarm.
        ValueError: no stages, or ``buffer`` below 1.
    """
    plan = _stages(swarm, stages)
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
        raise ValueError(f"buffer must be an int >= 1, got {buffer!r}")
    queues = [anyio.create_memory_object_stream[_Work](buffer) for _ in plan]
    out_send, out_receive = anyio.create_memory_object_stream[PipelineItem](buffer)

    async def feed(send: MemoryObjectSendStream[_Work]) -> None:
        async with send:
            for index, value in enumerate(inputs):
                await send.send(_Work(index, value, []))

    async def work(
        k: int,
        receive: MemoryObjectReceiveStream[_Work],
        forward: MemoryObjectSendStream[_Work] | None,
        out: MemoryObjectSendStream[PipelineItem],
    ) -> None:
        stage, pool = plan[k]
        async with receive, out:
            try:
                async for item in receive:
                    value = item.input if k == 0 else item.replies[-1].text
                    try:
                        content = (stage.prompt or _default_prompt)(value)
                        target = pool[item.index % len(pool)]
                        reply = await swarm.ask(target, content, timeout=timeout)
                    except Exception as exc:  # this input stops here; the rest flow on
                        failed = PipelineItem(item.index, item.input, item.replies, exc, k)
                        await out.send(failed)
                        continue
                    item.replies.append(reply)
                    if forward is None:
                        await out.send(PipelineItem(item.index, item.input, item.replies))
                    else:
                        await forward.send(item)
            finally:
                if forward is not None:
                    forward.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed, queues[0][0])
        for k, (stage, _) in enumerate(plan):
            receive = queues[k][1]
            forward = queues[k + 1][0] if k + 1 < len(plan) else None
            for _ in range(stage.workers):
                # Each worker holds its own clones: a queue ends when the last worker
                # feeding it is done, so every stage sees the end in turn.
                tg.start_soon(
                    work, k, receive.clone(), forward.clone() if forward else None, out_send.clone()
                )
            receive.close()
            if forward is not None:
                forward.close()
        out_send.close()
        try:
            yield _Results(out_receive)
        finally:
            tg.cancel_scope.cancel()
            out_receive.close()


class _Results:
    """The iterator ``open_pipeline`` yields (a class, not an async generator, so
    an early exit leaves nothing to finalize)."""

    def __init__(self, receive: MemoryObjectReceiveStream[PipelineItem]) -> None:
        self._receive = receive

    def __aiter__(self) -> _Results:
        return self

    async def __anext__(self) -> PipelineItem:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


async def run_pipeline(
    swarm: Swarm,
    stages: Sequence[str | Stage],
    inputs: Iterable[Any],
    *,
    buffer: int = 4,
    timeout: float | None = None,  # noqa: ASYNC109 - each message's reply deadline
) -> list[PipelineItem]:
    """:func:`open_pipeline`, gathered into a list in input order."""
    async with open_pipeline(swarm, stages, inputs, buffer=buffer, timeout=timeout) as results:
        items = [item async for item in results]
    return sorted(items, key=lambda item: item.index)
