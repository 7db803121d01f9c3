"""The tool loop: stream a turn, run the tools it called, send the results back,
repeat until the model answers without calling a tool or the turn limit is hit.

::

    box = ToolBox([get_weather])
    async with run_tool_loop(engine, request, box) as loop:
        async for event in loop:          # every step, while it happens
            if isinstance(event, TextDelta):
                print(event.text, end="")
            elif isinstance(event, ToolFinished):
                print(f"[{event.outcome.name} -> {event.outcome.content}]")
    result = loop.result                  # LoopResult, once the loop finished

    result = await tool_loop(engine, request, box)   # or just the result

The loop runs as a task in the block's task group and hands its events over a
bounded channel, so tools of one turn run concurrently and each ``ToolFinished``
arrives when that tool ends. Leaving the block cancels the loop: its model call
and every running tool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, Self

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from providers.events import Response, StreamEvent, Usage
from providers.messages import Message, Request, ToolCall

from ..call import CallFailed
from ..engine import Engine
from ..events import Cancelled, Completed, Failed, Restart
from .tools import ToolBox, ToolOutcome

__all__ = [
    "LoopEvent",
    "LoopFinished",
    "LoopResult",
    "ToolFinished",
    "ToolLoop",
    "ToolStarted",
    "TurnEnded",
    "TurnStarted",
    "run_tool_loop",
    "tool_loop",
]


class TurnStarted(msgspec.Struct, tag="turn_started", tag_field="type", kw_only=True, frozen=True):
    turn: int  # 1 for the first model call


class TurnEnded(msgspec.Struct, tag="turn_ended", tag_field="type", kw_only=True, frozen=True):
    turn: int
    response: Response  # this turn's assistant message, finish reason and usage


class ToolStarted(msgspec.Struct, tag="tool_started", tag_field="type", kw_only=True, frozen=True):
    turn: int
    call: ToolCall


class ToolFinished(
    msgspec.Struct, tag="tool_finished", tag_field="type", kw_only=True, frozen=True
):
    turn: int
    outcome: ToolOutcome


class LoopResult(msgspec.Struct, kw_only=True, frozen=True):
    """How a tool loop ended.

    Attributes:
        response: The last turn's response (the answer, when ``stopped`` is
            ``answered``).
        messages: The whole conversation: the request's messages, then each turn's
            assistant message and tool results (ready for the next request).
        turns: Model calls made.
        tool_calls: Tool calls run over all turns.
        usage: Tokens summed over every turn.
        stopped: ``answered`` (a turn with no tool call) or ``turn_limit`` (the
            last turn still called tools; they ran, and their results are the
            last messages).
    """

    response: Response
    messages: list[Message]
    turns: int
    tool_calls: int
    usage: Usage
    stopped: Literal["answered", "turn_limit"]

    @property
    def text(self) -> str:
        return self.response.text


class LoopFinished(
    msgspec.Struct, tag="loop_finished", tag_field="type", kw_only=True, frozen=True
):
    result: LoopResult


LoopEvent = (
    StreamEvent | Restart | TurnStarted | TurnEnded | ToolStarted | ToolFinished | LoopFinished
)


def _add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
    )


class ToolLoop:
    """The caller's view of a running tool loop (from :func:`run_tool_loop`)."""

    def __init__(self, receive: MemoryObjectReceiveStream[LoopEvent | BaseException]) -> None:
        self._receive = receive
        self._result: LoopResult | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> LoopEvent:
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, LoopFinished):
            self._result = item.result
        return item

    @property
    def result(self) -> LoopResult | None:
        """The result, once the iteration reached ``LoopFinished``."""
        return self._result

    async def finish(self) -> LoopResult:
        """Consume the remaining events; return the result.

        Raises:
            ProviderError, CallFailed: a model call failed (the loop stops there).
        """
        async for _ in self:
            pass
        if self._result is None:
            raise CallFailed("the tool loop ended without a result (it was cancelled)")
        return self._result


@asynccontextmanager
async def run_tool_loop(
    engine: Engine,
    request: Request,
    tools: ToolBox,
    *,
    max_turns: int = 10,
    buffer: int = 256,
    **call_options: object,
) -> AsyncIterator[ToolLoop]:
    """Run a tool loop in the block; iterate the handle for its events.

    Args:
        engine: Where the model calls go.
        request: The first turn's request; the box's tools are offered unless the
            request names its own.
        tools: The tools the model may call.
        max_turns: Model calls at most (at least 1).
        buffer: Events held for a slow reader before the loop waits for it.
        call_options: Passed to every ``engine.stream`` call (priority, timeout,
            tenant, agent, metadata...).

    Raises:
        ValueError: ``max_turns`` below 1.
    """
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    if not request.tools and len(tools):
        request = msgspec.structs.replace(request, tools=tools.specs)
    send, receive = anyio.create_memory_object_stream[LoopEvent | BaseException](buffer)
    loop = ToolLoop(receive)
    # The driver task never raises (a failed call is handed to the reader), so the
    # only error here is the caller's own: it is held while the driver is
    # cancelled and raised as itself, not wrapped in the task group's group.
    body_error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_drive, engine, request, tools, max_turns, call_options, send)
        try:
            yield loop
        except Exception as exc:
            body_error = exc
        finally:
            tg.cancel_scope.cancel()
            receive.close()
    if body_error is not None:
        raise body_error


async def tool_loop(
    engine: Engine, request: Request, tools: ToolBox, **options: object
) -> LoopResult:
    """Run a tool loop to its end and return the result (see :func:`run_tool_loop`)."""
    async with run_tool_loop(engine, request, tools, **options) as loop:  # type: ignore[arg-type]
        return await loop.finish()


async def _drive(
    engine: Engine,
    request: Request,
    tools: ToolBox,
    max_turns: int,
    call_options: dict[str, object],
    send: MemoryObjectSendStream[LoopEvent | BaseException],
) -> None:
    async with send:
        try:
            result = await _turns(engine, request, tools, max_turns, call_options, send)
        except anyio.get_cancelled_exc_class():
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the reader left
        except Exception as exc:  # a failed model call: the reader raises it
            try:
                await send.send(exc)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            return
        try:
            await send.send(LoopFinished(result=result))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


async def _turns(
    engine: Engine,
    request: Request,
    tools: ToolBox,
    max_turns: int,
    call_options: dict[str, object],
    send: MemoryObjectSendStream[LoopEvent | BaseException],
) -> LoopResult:
    messages = list(request.messages)
    usage = Usage()
    n_tools = 0
    for turn in range(1, max_turns + 1):
        await send.send(TurnStarted(turn=turn))
        turn_request = msgspec.structs.replace(request, messages=list(messages))
        response: Response | None = None
        async with engine.stream(turn_request, **call_options) as call:  # type: ignore[arg-type]
            async for event in call:
                if isinstance(event, Completed):
                    response = event.response
                elif isinstance(event, Failed | Cancelled):
                    break
                else:
                    await send.send(event)
            if response is None:
                await call.response()  # raises the call's typed error
                raise CallFailed(f"turn {turn}: the model call ended without a response")
        usage = _add_usage(usage, response.usage)
        messages.append(response.message)
        await send.send(TurnEnded(turn=turn, response=response))
        calls = response.tool_calls
        if not calls:
            return LoopResult(
                response=response,
                messages=messages,
                turns=turn,
                tool_calls=n_tools,
                usage=usage,
                stopped="answered",
            )
        n_tools += len(calls)
        # Tool events are sent from the tools' own tasks as they start and end;
        # send_nowait with a fallback would reorder them, so the tasks await the
        # channel (a slow reader slows the tools' reporting, never loses it).
        outcomes = await _run_tools(tools, calls, turn, send)
        messages.extend(outcome.message() for outcome in outcomes)
    assert response is not None  # max_turns >= 1: at least one turn ran
    return LoopResult(
        response=response,
        messages=messages,
        turns=max_turns,
        tool_calls=n_tools,
        usage=usage,
        stopped="turn_limit",
    )


async def _run_tools(
    tools: ToolBox,
    calls: list[ToolCall],
    turn: int,
    send: MemoryObjectSendStream[LoopEvent | BaseException],
) -> list[ToolOutcome]:
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    slots = anyio.Semaphore(tools.max_parallel)

    async def one(index: int, call: ToolCall) -> None:
        async with slots:
            await send.send(ToolStarted(turn=turn, call=call))
            outcome = await tools.run(call)
            outcomes[index] = outcome
            await send.send(ToolFinished(turn=turn, outcome=outcome))

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(one, index, call)
    return [o for o in outcomes if o is not None]
