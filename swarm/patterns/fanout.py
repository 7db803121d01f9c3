"""The map pattern: one task fanned out over many inputs, gathered as they finish.

::

    async with open_map(crew, "summarizer", documents, concurrency=16) as results:
        async for item in results:
            print(item.index, item.text if item.ok else item.error)

At most ``concurrency`` messages are out at once. With ``order="input"`` results come
in the order of the inputs; a slot is held until its result has been handed out, so
the reorder buffer never holds more than ``concurrency`` results (a slow head of the
line slows the map down rather than growing memory). Every input gets exactly one
result: its reply, or the error that stopped it (``item.error``); one bad input
never stops the others. Leaving the block early withdraws what is still running.

``agent`` may also be a pool: a list of agent names (identical workers, say, or the
same role on several providers). Input ``i`` goes to ``agent[i % len(agent)]``, so
the work spreads evenly and a rerun sends each input to the same member.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from providers.messages import Message

from ..agents.runtime import Reply, Swarm

__all__ = ["MapItem", "Order", "map_agent", "open_map"]

T = TypeVar("T")
Order = Literal["completion", "input"]


@dataclass(frozen=True, slots=True)
class MapItem(Generic[T]):
    """One input's outcome: ``reply`` when it was answered, else ``error``."""

    index: int
    input: T
    reply: Reply | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The reply's text; raises the input's error when it failed."""
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply.text


def _default_prompt(value: object) -> str | Sequence[Message]:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(m, Message) for m in value):
        return list(value)
    raise TypeError(
        f"map input {value!r} is not a str or a list of Messages; pass prompt= to turn "
        "inputs into messages (prompt=lambda x: f'... {x}')"
    )


def agent_pool(swarm: Swarm, agent: str | Sequence[str], pattern: str) -> list[str]:
    """The agent names ``agent`` stands for (one name or a pool), each checked."""
    if not isinstance(swarm, Swarm):
        raise TypeError(f"the {pattern} pattern runs on a Swarm (from open_swarm()), got {swarm!r}")
    pool = [agent] if isinstance(agent, str) else list(agent)
    if not pool or not all(isinstance(name, str) for name in pool):
        raise ValueError(
            f"the {pattern} pattern needs an agent name or a non-empty list of them, got {agent!r}"
        )
    for name in pool:
        swarm._lookup(name)  # UnknownAgent, naming the agents there are
    return pool


def _check(swarm: Swarm, agent: str | Sequence[str], concurrency: int, order: str) -> list[str]:
    pool = agent_pool(swarm, agent, "map")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if order not in ("completion", "input"):
        raise ValueError(f"order must be 'completion' or 'input', got {order!r}")
    return pool


@asynccontextmanager
async def open_map(
    swarm: Swarm,
    agent: str | Sequence[str],
    inputs: Iterable[T],
    *,
    concurrency: int = 16,
    order: Order = "completion",
    timeout: float | None = None,  # noqa: ASYNC109 - each message's reply deadline
    prompt: Callable[[T], str | Sequence[Message]] | None = None,
) -> AsyncIterator[AsyncIterator[MapItem[T]]]:
    """Send ``agent`` one message per input, at most ``concurrency`` at once, and
    iterate over the results (see the module docstring).

    Args:
        agent: The agent's name, or a pool of names (input ``i`` goes to
            ``agent[i % len(agent)]``).
        inputs: Any iterable, consumed lazily (a generator of a million inputs is
            fine: only ``concurrency`` are in hand at a time).
        order: ``"completion"`` (as they finish) or ``"input"``.
        timeout: Each reply's deadline; past it that input's error is
            :class:`~swarm.agents.ReplyTimeout`.
        prompt: Turns an input into the message (default: a str or a list of
            Messages is the message itself).

    Raises:
        UnknownAgent: no agent of that name (before anything is sent).
        ValueError: ``concurrency`` or ``order`` is out of its domain, or the pool
            is empty.
    """
    pool = _check(swarm, agent, concurrency, order)
    make = prompt or _default_prompt
    slots = anyio.Semaphore(concurrency)
    # Results in flight plus the ones waiting to be handed out fit in `concurrency`.
    send, receive = anyio.create_memory_object_stream[MapItem[T]](concurrency)

    async def one(index: int, value: T) -> None:
        try:
            content = make(value)
            reply = await swarm.ask(pool[index % len(pool)], content, timeout=timeout)
            item = MapItem(index, value, reply=reply)
        except Exception as exc:  # this input's outcome; the others go on
            item = MapItem(index, value, error=exc)
        await send.send(item)
        if order == "completion":
            slots.release()

    async def feed() -> None:
        async with send, anyio.create_task_group() as tg:
            for index, value in enumerate(inputs):
                await slots.acquire()
                tg.start_soon(one, index, value)

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        try:
            yield _Results(receive, slots, order)
        finally:
            tg.cancel_scope.cancel()  # left early: what is still out is withdrawn
            receive.close()


class _Results(Generic[T]):
    """The iterator ``open_map`` yields: a plain class, not an async generator, so
    leaving a loop early leaves nothing to finalize (the block's end cleans up)."""

    def __init__(
        self, receive: MemoryObjectReceiveStream[MapItem[T]], slots: anyio.Semaphore, order: Order
    ) -> None:
        self._receive = receive
        self._slots = slots
        self._order = order
        self._waiting: dict[int, MapItem[T]] = {}
        self._head = 0

    def __aiter__(self) -> _Results[T]:
        return self

    async def __anext__(self) -> MapItem[T]:
        if self._order == "completion":
            try:
                return await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
        # Input order: hold results until the head of the line arrives; its slot
        # is freed only as it is handed out, which bounds what waits here.
        while self._head not in self._waiting:
            try:
                item = await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            self._waiting[item.index] = item
        ready = self._waiting.pop(self._head)
        self._head += 1
        self._slots.release()
        return ready


async def map_agent(
    swarm: Swarm,
    agent: str | Sequence[str],
    inputs: Iterable[T],
    *,
    concurrency: int = 16,
    order: Order = "input",
    timeout: float | None = None,  # noqa: ASYNC109 - each message's reply deadline
    prompt: Callable[[T], str | Sequence[Message]] | None = None,
) -> list[MapItem[T]]:
    """:func:`open_map`, gathered into a list (in input order by default)."""
    async with open_map(
        swarm, agent, inputs, concurrency=concurrency, order=order, timeout=timeout, prompt=prompt
    ) as results:
        return [item async for item in results]
