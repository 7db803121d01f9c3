"""An agent: a name, instructions, tools, a route and model settings.

An :class:`Agent` is a description; :func:`swarm.agents.open_swarm` runs it as an
actor with a bounded mailbox. Each message it takes is a task for one tool loop:
the instructions and the tools are the stable prefix of every request it makes, so
prompt caching is on for them by default (``cache=False`` turns it off).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from providers.messages import CacheHint, Message, Request

from ..execution.tools import ToolBox

if TYPE_CHECKING:
    from .runtime import AgentContext, Reply

__all__ = ["Agent", "Handler", "OnError"]

Handler = Callable[["AgentContext", list[Message]], Awaitable["Reply | str"]]
OnError = Literal["reply", "restart", "escalate"]
MemoryPolicy = Literal["trim", "summarize"]
DEFAULT_SUMMARY_TOKENS = 512
# Long enough for a peer's own tool loop of several slow model turns.
DEFAULT_ASK_TIMEOUT = 600.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Agent:
    """What an agent is; run it with :func:`~swarm.agents.open_swarm`.

    Args:
        name: Unique in its swarm; letters, digits, ``_`` and ``-`` (it is used in
            tool names such as ``ask_<name>`` and ``transfer_to_<name>``).
        instructions: The system prompt.
        tools: A :class:`ToolBox` or the functions and Structs to put in one.
        model: The route its calls take (``provider/model`` or an alias).
        max_tokens, temperature: Model settings for every call.
        max_turns: Model calls per message at most (the tool loop's limit).
        mailbox: Messages waiting at most; a sender waits for room beyond that.
        concurrency: Messages handled at once (each its own tool loop).
        memory: Keep the conversation across messages (a session kept within
            ``memory_tokens``); needs ``concurrency=1``.
        memory_tokens: The memory's budget in estimated tokens (None: no bound).
        memory_policy: What happens to the oldest turns past ``memory_tokens``:
            ``"trim"`` (default) drops them; ``"summarize"`` replaces them with a
            summary the agent's own model writes (one call of at most
            ``summary_tokens``, charged to the swarm's budget like any turn),
            before the next message is answered. If that call fails, the turns
            are trimmed instead and the message is still answered.
        summary_tokens: ``max_tokens`` of a summary call.
        on_error: When handling a message fails: ``"reply"`` gives the error to
            the sender and keeps serving; ``"restart"`` also restarts the agent
            (fresh memory) under the swarm's restart intensity; ``"escalate"`` stops
            the whole swarm with the error.
        handler: ``async def handler(ctx, messages) -> Reply | str`` in place of the
            model (a rule-based agent, a judge written in Python...).
        cache: Prompt caching for the instructions and tools.
        priority: The scheduler priority of its calls.
        description: One line for other agents' tool descriptions.
        can_ask: Agents it may delegate to: each becomes an ``ask_<name>`` tool
            that sends that agent a message and returns its answer (the
            supervisor-worker pattern).
        ask_timeout: Seconds an ``ask_<name>`` tool waits for the peer's answer
            (default 600; None: no limit). Then the message is withdrawn, the
            peer's work on it cancelled, and the model reads a timeout error, so
            a stuck peer or two agents asking each other cannot hang a turn.
        handoffs: Agents it may hand the conversation to: each becomes a
            ``transfer_to_<name>`` tool; calling it passes the whole conversation on,
            and that agent's answer is the reply (the handoff pattern).

    Raises:
        ValueError: A setting is out of its domain; the message names it.
    """

    def __init__(
        self,
        name: str,
        instructions: str = "",
        *,
        tools: ToolBox | Iterable[Any] = (),
        model: str = "gpt-4o-mini",
        max_tokens: int | None = None,
        temperature: float | None = None,
        max_turns: int = 10,
        mailbox: int = 64,
        concurrency: int = 1,
        memory: bool = False,
        memory_tokens: int | None = None,
        memory_policy: MemoryPolicy = "trim",
        summary_tokens: int = DEFAULT_SUMMARY_TOKENS,
        on_error: OnError = "reply",
        handler: Handler | None = None,
        cache: bool = True,
        priority: int = 0,
        description: str = "",
        can_ask: Sequence[str] = (),
        handoffs: Sequence[str] = (),
        ask_timeout: float | None = DEFAULT_ASK_TIMEOUT,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"Agent name {name!r} must be 1-64 letters, digits, '_' or '-' (it becomes "
                "part of tool names)"
            )
        for label, value, low in (
            ("max_turns", max_turns, 1),
            ("mailbox", mailbox, 1),
            ("concurrency", concurrency, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Agent {name!r}: {label} must be an int >= {low}, got {value!r}")
        if memory and concurrency != 1:
            raise ValueError(
                f"Agent {name!r}: memory=True needs concurrency=1 (one conversation can "
                "only take one message at a time)"
            )
        if memory_policy not in ("trim", "summarize"):
            raise ValueError(
                f"Agent {name!r}: memory_policy must be 'trim' or 'summarize', "
                f"got {memory_policy!r}"
            )
        if memory_policy == "summarize" and not (memory and memory_tokens):
            raise ValueError(
                f"Agent {name!r}: memory_policy='summarize' needs memory=True and "
                "memory_tokens= (the budget past which old turns are summarized)"
            )
        if (
            isinstance(summary_tokens, bool)
            or not isinstance(summary_tokens, int)
            or (summary_tokens < 1)
        ):
            raise ValueError(
                f"Agent {name!r}: summary_tokens must be an int >= 1, got {summary_tokens!r}"
            )
        if on_error not in ("reply", "restart", "escalate"):
            raise ValueError(
                f"Agent {name!r}: on_error must be 'reply', 'restart' or 'escalate', "
                f"got {on_error!r}"
            )
        for label, names in (("can_ask", can_ask), ("handoffs", handoffs)):
            if isinstance(names, str):
                raise ValueError(
                    f"Agent {name!r}: {label} is a list of agent names, got the string "
                    f"{names!r}; write {label}=[{names!r}]"
                )
            for other in names:
                if not isinstance(other, str) or not _NAME.match(other):
                    raise ValueError(f"Agent {name!r}: {label} has a bad agent name {other!r}")
                if other == name:
                    raise ValueError(f"Agent {name!r}: {label} names the agent itself")
        if not model:
            raise ValueError(f"Agent {name!r} needs model= (a route)")
        if ask_timeout is not None and (
            isinstance(ask_timeout, bool)
            or not isinstance(ask_timeout, int | float)
            or not (0 < ask_timeout < math.inf)
        ):
            raise ValueError(
                f"Agent {name!r}: ask_timeout must be a positive number of seconds or None "
                f"(no limit), got {ask_timeout!r}"
            )
        self.name = name
        self.instructions = instructions
        self.tools = tools if isinstance(tools, ToolBox) else ToolBox(list(tools))
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_turns = max_turns
        self.mailbox = mailbox
        self.concurrency = concurrency
        self.memory = memory
        self.memory_tokens = memory_tokens
        self.memory_policy: MemoryPolicy = memory_policy
        self.summary_tokens = summary_tokens
        self.on_error: OnError = on_error
        self.handler = handler
        self.cache = cache
        self.priority = priority
        self.can_ask = tuple(dict.fromkeys(can_ask))
        self.handoffs = tuple(dict.fromkeys(handoffs))
        self.ask_timeout = ask_timeout
        self.description = description or (instructions.split("\n", 1)[0][:200])

    def request(self, messages: Sequence[Message]) -> Request:
        """The request for a turn: instructions first (the cached prefix), then
        ``messages``; the tools ride along."""
        head = [Message.system(self.instructions)] if self.instructions else []
        return Request(
            model=self.model,
            messages=head + list(messages),
            tools=self.tools.specs,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            cache=CacheHint(auto=self.cache, key=f"agent:{self.name}" if self.cache else None),
        )

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model!r}, tools={self.tools.names})"
