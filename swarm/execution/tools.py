"""Running tools: a registry that checks a model's arguments, runs the tool
(async in the loop, sync in a worker thread), bounds its time, and turns every
failure into a result the model can read. A tool call never crashes the caller.

Built on :class:`providers.tools.Tool`, which makes the schemas and checks the
arguments; this module is the runtime half (threads, timeouts, concurrency).
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import anyio
import anyio.to_thread
import msgspec
import sniffio

from providers.errors import ToolArgumentsError
from providers.messages import ImagePart, Message, Part, TextPart, ToolCall, ToolSpec
from providers.tools import Tool

__all__ = ["ToolBox", "ToolOutcome"]


class ToolOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """What one tool call produced, as the model will see it.

    Attributes:
        call_id: The id of the tool call this answers.
        name: The tool's name.
        content: The result as text (a ``str`` result as it is, anything else as
            JSON), or the error explained for the model.
        images: Images the tool returned (an ``ImagePart``, or a list or tuple of
            ``str``/``TextPart``/``ImagePart`` pieces, whose text becomes
            ``content``): sent to the model with the text, as each family takes
            them (Anthropic and Gemini in the tool result, OpenAI Responses as
            ``input_image`` output, OpenAI Chat in a user message after the results).
        is_error: True when the arguments were bad, the tool raised, timed out or
            is unknown.
        error_kind: ``arguments``, ``raised``, ``timeout`` or ``unknown_tool``.
        duration: Seconds the tool ran (0 when it never started).
    """

    call_id: str
    name: str
    content: str
    images: list[ImagePart] = []
    is_error: bool = False
    error_kind: str | None = None
    duration: float = 0.0

    def message(self) -> Message:
        """The ``tool`` message that carries this result back to the model."""
        if not self.images:
            return Message.tool(self.call_id, self.name, self.content, is_error=self.is_error)
        parts: list[Part] = [TextPart(text=self.content)] if self.content else []
        parts.extend(self.images)
        return Message.tool(self.call_id, self.name, parts, is_error=self.is_error)


def _encode_result(value: Any) -> tuple[str, list[ImagePart]]:
    """A tool's return value as (text, images)."""
    if isinstance(value, str):
        return value, []
    if isinstance(value, ImagePart):
        return "", [value]
    if (
        isinstance(value, list | tuple)
        and value
        and any(isinstance(v, ImagePart) for v in value)
        and all(isinstance(v, str | TextPart | ImagePart) for v in value)
    ):
        texts = [v if isinstance(v, str) else v.text for v in value if not isinstance(v, ImagePart)]
        return "\n".join(texts), [v for v in value if isinstance(v, ImagePart)]
    try:
        return msgspec.json.encode(value, enc_hook=str).decode(), []
    except (TypeError, ValueError, msgspec.EncodeError):
        return repr(value), []


class ToolBox:
    """The tools an agent or a tool loop may call.

    Args:
        tools: Functions (sync or async) or ``msgspec.Struct`` types, or ready
            :class:`~providers.tools.Tool` objects.
        timeout: Seconds a tool may run before its call ends as an error (None: no
            bound); :meth:`add` sets one per tool.
        max_parallel: Tool calls of one turn run at once, at most this many.
        threads: Worker threads for sync tools, shared by the box's calls (sync
            tools run there so the event loop never blocks).

    Struct tools have no function to run: give ``handler=`` to :meth:`add` (a
    function taking the Struct instance), or they answer with their arguments
    echoed as JSON (a "structured output" tool).
    """

    def __init__(
        self,
        tools: Iterable[Callable[..., Any] | type[msgspec.Struct] | Tool] = (),
        *,
        timeout: float | None = 60.0,
        max_parallel: int = 8,
        threads: int = 8,
    ) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive or None, got {timeout}")
        self.timeout = timeout
        self.max_parallel = max_parallel
        self._threads = threads
        # Made in the loop, and again if the box moves to another loop library (a
        # limiter belongs to the library that made it: trio's cannot serve asyncio).
        self._limiter: anyio.CapacityLimiter | None = None
        self._limiter_library = ""
        self._tools: dict[str, Tool] = {}
        self._timeouts: dict[str, float | None] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}
        for tool in tools:
            self.add(tool)

    def add(
        self,
        tool: Callable[..., Any] | type[msgspec.Struct] | Tool,
        *,
        name: str | None = None,
        timeout: float | Literal["box"] | None = "box",
        handler: Callable[..., Any] | None = None,
    ) -> Tool:
        """Register a tool; returns its :class:`Tool`. ``timeout`` is this tool's
        bound in seconds (None: none; ``"box"``: the box's); ``handler`` runs a
        Struct tool (it takes the Struct instance).

        Raises:
            ValueError: A tool of that name is already registered.
            TypeError: The tool cannot be described (see ``providers.tools.Tool``).
        """
        made = tool if isinstance(tool, Tool) else Tool(tool, name=name)
        if made.name in self._tools:
            raise ValueError(
                f"a tool named {made.name!r} is already in this ToolBox; give name= to add another"
            )
        self._tools[made.name] = made
        if timeout != "box":
            if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
                raise ValueError(
                    f"tool {made.name!r}: timeout must be positive seconds, None (no bound) "
                    f"or 'box' (the box's), got {timeout!r}"
                )
            self._timeouts[made.name] = timeout
        if handler is not None:
            self._handlers[made.name] = handler
        return made

    def copy(self) -> ToolBox:
        """A new box with the same tools, timeouts, handlers and limits, to which
        more tools can be added without touching this one."""
        box = ToolBox(timeout=self.timeout, max_parallel=self.max_parallel, threads=self._threads)
        box._tools = dict(self._tools)
        box._timeouts = dict(self._timeouts)
        box._handlers = dict(self._handlers)
        return box

    @property
    def specs(self) -> list[ToolSpec]:
        """What a request offers the model (``Request(tools=box.specs)``)."""
        return [tool.spec for tool in self._tools.values()]

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one tool call. Never raises for the tool's faults (only cancellation)."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return ToolOutcome(
                call_id=call.id,
                name=call.name,
                content=f"error: there is no tool named {call.name!r}; the tools are: {known}",
                is_error=True,
                error_kind="unknown_tool",
            )
        try:
            arguments = tool.decode_arguments(call.arguments)
        except ToolArgumentsError as exc:
            return ToolOutcome(
                call_id=call.id,
                name=call.name,
                content=f"error: {exc}",
                is_error=True,
                error_kind="arguments",
            )
        timeout = self._timeouts.get(tool.name, self.timeout)
        started = time.perf_counter()
        try:
            # A scope, not fail_after: a TimeoutError the tool raises itself (a
            # socket's, or a peer agent's ReplyTimeout) is its own error, not ours.
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                value = await self._invoke(tool, arguments)
            if scope.cancelled_caught:
                assert timeout is not None
                return ToolOutcome(
                    call_id=call.id,
                    name=call.name,
                    content=f"error: tool {tool.name!r} did not finish within {timeout:g} s",
                    is_error=True,
                    error_kind="timeout",
                    duration=time.perf_counter() - started,
                )
        except Exception as exc:  # the tool's own fault: the model is told, the loop goes on
            return ToolOutcome(
                call_id=call.id,
                name=call.name,
                content=f"error: tool {tool.name!r} raised {type(exc).__name__}: {exc}",
                is_error=True,
                error_kind="raised",
                duration=time.perf_counter() - started,
            )
        text, images = _encode_result(value)
        return ToolOutcome(
            call_id=call.id,
            name=call.name,
            content=text,
            images=images,
            duration=time.perf_counter() - started,
        )

    async def run_all(
        self,
        calls: list[ToolCall],
        on_start: Callable[[ToolCall], None] | None = None,
        on_done: Callable[[ToolOutcome], None] | None = None,
    ) -> list[ToolOutcome]:
        """Run one turn's tool calls, ``max_parallel`` at a time; outcomes in call order."""
        outcomes: list[ToolOutcome | None] = [None] * len(calls)
        slots = anyio.Semaphore(self.max_parallel)

        async def one(index: int, call: ToolCall) -> None:
            async with slots:
                if on_start is not None:
                    on_start(call)
                outcome = await self.run(call)
                outcomes[index] = outcome
                if on_done is not None:
                    on_done(outcome)

        async with anyio.create_task_group() as tg:
            for index, call in enumerate(calls):
                tg.start_soon(one, index, call)
        return [o for o in outcomes if o is not None]

    async def _invoke(self, tool: Tool, arguments: Any) -> Any:
        handler = self._handlers.get(tool.name)
        if tool.func is None and handler is None:
            return msgspec.to_builtins(arguments)  # a structured-output tool: echo
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if handler is not None:
            fn, args = handler, (arguments,)
        else:
            assert tool.func is not None
            fn, kwargs = tool.func, dict(arguments)
        if tool.is_async or (handler is not None and _is_async(handler)):
            return await fn(*args, **kwargs)
        library = sniffio.current_async_library()
        if self._limiter is None or library != self._limiter_library:
            self._limiter = anyio.CapacityLimiter(self._threads)
            self._limiter_library = library
        # abandon_on_cancel: a timed-out sync tool cannot be stopped (Python threads
        # cannot be killed); its result is dropped and its thread finishes alone.
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs),
            limiter=self._limiter,
            abandon_on_cancel=True,
        )


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - a callable object's method
    )
