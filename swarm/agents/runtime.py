"""Agents as actors: a swarm runs each agent under a supervisor with a bounded mailbox.

::

    async with open_engine() as engine, open_swarm(engine, [triage, billing]) as crew:
        reply = await crew.ask("triage", "My invoice is wrong", timeout=30)
        print(reply.agent, reply.text)

How it holds together:

* Each agent's mailbox belongs to the swarm, not to the actor, so it survives a
  restart; the actor takes a message only when it has a free slot (``concurrency``),
  so a busy agent's senders wait at the mailbox (back-pressure), never in memory.
* Every message is answered exactly once: with a :class:`Reply`, or with an error
  (:class:`AgentError` for a failed handling, :class:`AgentStopped` when the agent or
  the swarm stopped first, :class:`~swarm.agents.BudgetExhausted` when the budget ran
  out). A sender that gives up (timeout, cancellation) withdraws its message: if the
  agent is working on it, that work is cancelled.
* Agents run as ``transient`` children of one ``one_for_one`` supervisor: an agent
  with ``on_error="restart"`` crashes on a failed message and is restarted (fresh
  memory, same mailbox) within the swarm's restart intensity; past it the supervisor
  escalates and ``open_swarm`` raises. ``on_error="escalate"`` stops the swarm with
  the error at once. Siblings are never stopped silently.
* A budget (tokens, cost, wall time) is charged as each model turn ends; once spent,
  every agent's work is cancelled, every waiting sender gets ``BudgetExhausted``
  and the swarm takes no new messages. The caller's block keeps running, so it can
  report what finished.
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import msgspec
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from providers.events import Response, TextDelta, Usage
from providers.messages import Message, Request
from providers.tools import Tool

from .. import logs
from ..engine import Engine
from ..errors import SwarmError
from ..execution.loop import (
    LoopFinished,
    LoopResult,
    ToolFinished,
    TurnEnded,
    TurnStarted,
    run_tool_loop,
)
from ..execution.session import Session
from ..execution.tools import ToolBox, ToolOutcome
from ..ledger import CallRecord
from ..supervisor import (
    ChildContext,
    ChildSpec,
    Supervisor,
    SupervisorEscalation,
    SupervisorSpec,
    open_supervisor,
)
from .agent import Agent
from .budget import Budget, BudgetMeter, Spent

__all__ = [
    "AgentContext",
    "AgentError",
    "AgentStatistics",
    "AgentStopped",
    "Reply",
    "ReplyTimeout",
    "Swarm",
    "SwarmReport",
    "UnknownAgent",
    "current_agent",
    "open_swarm",
]


class UnknownAgent(SwarmError, LookupError):
    """A message names an agent the swarm does not have."""


class AgentError(SwarmError):
    """An agent failed to handle a message (``__cause__`` is why)."""

    def __init__(self, agent: str, cause: BaseException) -> None:
        super().__init__(f"agent {agent!r} failed: {type(cause).__name__}: {cause}")
        self.agent = agent


class AgentStopped(SwarmError):
    """The agent (or its swarm) stopped before it answered."""


class ReplyTimeout(SwarmError, TimeoutError):
    """No reply within the timeout given to ``ask``; the message was withdrawn."""


class Reply(msgspec.Struct, kw_only=True, frozen=True):
    """An agent's answer to one message.

    Attributes:
        agent: Who answered (after handoffs, the last agent).
        text: The answer.
        messages: The conversation it answered (without instructions), ending with
            its answer: what a handoff passes on.
        usage: Tokens over every model call made for this message (handoffs too).
        turns: Model calls made.
        tool_calls: Tool calls run.
        stopped: ``answered``, ``turn_limit`` or ``handler`` (a Python handler).
        path: The agents the message went through (handoffs), first to last.
    """

    agent: str
    text: str
    messages: list[Message] = []
    usage: Usage = Usage()
    turns: int = 0
    tool_calls: int = 0
    stopped: Literal["answered", "turn_limit", "handler"] = "answered"
    path: list[str] = []


class AgentStatistics(msgspec.Struct, kw_only=True, frozen=True):
    messages: int  # taken from the mailbox
    replies: int
    errors: int
    withdrawn: int  # senders that gave up first
    turns: int
    tool_calls: int
    restarts: int
    queued: int  # waiting in the mailbox now
    busy: int  # being handled now
    usage: Usage
    summaries: int = 0  # model calls that summarized its memory (memory_policy)
    summary_failures: int = 0  # of which failed (the memory was trimmed instead)


class SwarmReport(msgspec.Struct, kw_only=True, frozen=True):
    """What a swarm did (``swarm.report()``, at any time).

    ``cache_hit_rate`` is prompt tokens read from the provider's cache over all
    prompt tokens: the share of input the agents' stable prefixes saved.
    """

    agents: dict[str, AgentStatistics]
    spent: Spent
    cache_hit_rate: float
    stopped: Literal["running", "finished", "budget", "escalated"]
    budget_reason: str | None
    seconds: float

    def busiest(self, limit: int) -> list[tuple[str, AgentStatistics]]:
        """At most ``limit`` agents, busiest first (then most queued, then by name):
        what a dashboard or a metrics endpoint lists when a swarm has thousands."""
        ordered = sorted(self.agents.items(), key=lambda kv: (-kv[1].busy, -kv[1].queued, kv[0]))
        return ordered[:limit]


_CURRENT: contextvars.ContextVar[AgentContext] = contextvars.ContextVar("swarm_agent")


def current_agent() -> AgentContext:
    """The agent whose message is being handled (inside its tools and handler).

    Raises:
        RuntimeError: called outside an agent's work.
    """
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "current_agent() is only available inside an agent's tools or handler"
        ) from None


# The ledger metadata key naming the message a model call was made for.
MESSAGE_METADATA = "swarm.message"
# What a memory summary is asked to keep (memory_policy="summarize").
SUMMARY_INSTRUCTIONS = (
    "Summarize the conversation below for the assistant who had it, so it can go on "
    "without the full text: keep every fact, decision, name, number and open question, "
    "and what tools returned; leave out pleasantries. Write the summary only."
)


def _transcript(messages: Sequence[Message]) -> str:
    """The turns to summarize as plain text (tool calls and results included)."""
    lines = []
    for message in messages:
        if message.text:
            lines.append(f"{message.role}: {message.text}")
        for call in message.tool_calls:
            lines.append(f"{message.role} called {call.name}({call.arguments})")
    return "\n".join(lines)


# Message ids, unique in the process (not per swarm): two swarms on one engine
# must not give a tracer or the ledger the same id for two messages.
_MESSAGE_IDS = itertools.count(1)


class MessageEvent(msgspec.Struct, kw_only=True, frozen=True):
    """An agent started handling a message, or finished with it (for tracing).

    Attributes:
        kind: ``started`` or ``finished``.
        message_id: The message's id, unique in the process (``msg-N``); its model calls
            carry it as ledger metadata ``swarm.message``.
        parent_id: The message whose handling sent this one (an ask or tell from
            an agent's tool or handler, a handoff), or None for one from outside.
        sender: The sending agent's name, or None.
        at: Wall-clock time (``time.time()``).
        outcome: For ``finished``: ``replied``, ``failed``, ``withdrawn`` (the
            sender gave up) or ``stopped`` (the swarm stopped).
        error: For ``failed``: the exception's type name.
    """

    kind: Literal["started", "finished"]
    agent: str
    message_id: str
    parent_id: str | None
    sender: str | None
    at: float
    outcome: Literal["replied", "failed", "withdrawn", "stopped"] | None = None
    error: str | None = None


def _message_event(
    kind: Literal["started", "finished"],
    agent: str,
    envelope: _Envelope,
    outcome: Literal["replied", "failed", "withdrawn", "stopped"] | None = None,
    error: str | None = None,
) -> MessageEvent:
    return MessageEvent(
        kind=kind,
        agent=agent,
        message_id=envelope.id,
        parent_id=envelope.parent,
        sender=envelope.sender,
        at=time.time(),
        outcome=outcome,
        error=error,
    )


class AgentContext:
    """What an agent's tools and handler can reach: the agent, its swarm, and who
    sent the message being handled."""

    def __init__(
        self, swarm: Swarm, agent: Agent, sender: str | None, message_id: str = ""
    ) -> None:
        self.swarm = swarm
        self.agent = agent
        self.sender = sender
        # The message being handled: its model calls carry it as the ledger
        # metadata "swarm.message" (so a tracer can nest them under the message).
        self.message_id = message_id
        self.handoff: str | None = None  # set by a transfer tool

    async def ask(
        self,
        to: str,
        content: str | Sequence[Message],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the reply's deadline
    ) -> Reply:
        """Ask another agent, as this agent (see :meth:`Swarm.ask`)."""
        return await self.swarm.ask(to, content, timeout=timeout, sender=self.agent.name)

    async def tell(self, to: str, content: str | Sequence[Message]) -> None:
        await self.swarm.tell(to, content, sender=self.agent.name)


class _Envelope:
    """One message and its one answer. ``scope`` is the work on it, once started."""

    __slots__ = (
        "done",
        "error",
        "id",
        "messages",
        "parent",
        "reply",
        "scope",
        "sender",
        "withdrawn",
    )

    def __init__(
        self, sender: str | None, messages: list[Message], id: str = "", parent: str | None = None
    ) -> None:
        self.sender = sender
        self.id = id
        # The message whose handling sent this one (an ask from a tool, a handoff).
        self.parent = parent
        self.messages = messages
        self.done = anyio.Event()
        self.reply: Reply | None = None
        self.error: BaseException | None = None
        self.withdrawn = False
        self.scope: anyio.CancelScope | None = None

    def resolve(self, reply: Reply) -> None:
        if not self.done.is_set():
            self.reply = reply
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()

    def withdraw(self) -> None:
        self.withdrawn = True
        if self.scope is not None:
            self.scope.cancel()


class _AgentState:
    def __init__(self, agent: Agent, tools: ToolBox) -> None:
        self.agent = agent
        self.send: MemoryObjectSendStream[_Envelope]
        self.receive: MemoryObjectReceiveStream[_Envelope]
        self.send, self.receive = anyio.create_memory_object_stream[_Envelope](agent.mailbox)
        self.tools = tools  # the agent's tools plus its ask_/transfer_ tools
        self.in_hand: set[_Envelope] = set()  # taken from the mailbox, not yet answered
        self.messages = self.replies = self.errors = self.withdrawn = 0
        self.turns = self.tool_calls = self.restarts = 0
        self.summaries = self.summary_failures = 0
        self.usage = Usage()

    @property
    def busy(self) -> int:
        return len(self.in_hand)


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
    )


def _as_messages(content: str | Sequence[Message]) -> list[Message]:
    if isinstance(content, str):
        return [Message.user(content)]
    messages = list(content) if isinstance(content, (list, tuple)) else []
    if not messages or not all(isinstance(m, Message) for m in messages):
        raise TypeError(
            "a message to an agent is a str or a non-empty list of providers.Message, "
            f"got {type(content).__name__}"
        )
    return [m for m in messages if m.role != "system"]  # the agent has its own


class Swarm:
    """A running swarm (from :func:`open_swarm`): send messages to its agents by name."""

    def __init__(self, engine: Engine, budget: Budget, shutdown: float) -> None:
        self.engine = engine
        self.budget = budget
        self._meter = BudgetMeter(budget)
        self._shutdown = shutdown
        self._agents: dict[str, _AgentState] = {}
        # Every agent named so far (the ones open_swarm starts, before they all have
        # started), so a tool for a peer can carry the peer's description.
        self._described: dict[str, str] = {}
        self._supervisor: Supervisor | None = None
        self._agents_scope = anyio.CancelScope()  # cancelled when the budget is spent
        self._stop = anyio.Event()  # set when the block ends: a graceful stop
        self._closed = False
        self._escalation: BaseException | None = None
        self._stopped: Literal["running", "finished", "budget", "escalated"] = "running"
        self._started = anyio.current_time()
        self._ended: float | None = None
        self._intensity = 10
        self._period = 60.0
        # Agents whose streamed text is kept for watch()/tail(): the last characters
        # of each, bounded (a dashboard shows one agent's tokens as they come).
        self._taps: dict[str, collections.deque[str]] = {}
        self._tool_listeners: list[Callable[[str, ToolOutcome], None]] = []
        self._listener_errors = 0
        self._message_listeners: list[Callable[[MessageEvent], None]] = []
        # Ids of the messages being handled now (their calls' discarded attempts
        # are charged to this swarm's budget).
        self._handling: set[str] = set()

    # -- watching ---------------------------------------------------------------------

    def add_tool_listener(self, listener: Callable[[str, ToolOutcome], None]) -> Callable[[], None]:
        """Call ``listener(agent_name, outcome)`` after each tool call an agent runs
        (tracing); returns a function that removes it. It must be quick; one that
        raises is counted and the message goes on."""
        self._tool_listeners.append(listener)

        def remove() -> None:
            if listener in self._tool_listeners:
                self._tool_listeners.remove(listener)

        return remove

    def add_message_listener(self, listener: Callable[[MessageEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` when an agent starts handling a message and when
        it is done with it (tracing: an ``invoke_agent`` span per message, its model
        calls and tools nested under it); returns a function that removes it. It
        must be quick; one that raises is counted and the message goes on."""
        self._message_listeners.append(listener)

        def remove() -> None:
            if listener in self._message_listeners:
                self._message_listeners.remove(listener)

        return remove

    def _tell_listeners(self, event: MessageEvent) -> None:
        for listener in self._message_listeners:
            try:
                listener(event)
            except Exception:  # a tracer's bug must not fail the message
                self._listener_errors += 1

    def _envelope(self, sender: str | None, content: str | Sequence[Message]) -> _Envelope:
        current = _CURRENT.get(None)
        parent = current.message_id if current is not None and current.swarm is self else None
        return _Envelope(sender, _as_messages(content), f"msg-{next(_MESSAGE_IDS)}", parent or None)

    def watch(self, name: str, *, pieces: int = 512) -> None:
        """Keep the last ``pieces`` streamed text pieces of agent ``name`` (every
        model turn, as it streams) for :meth:`tail`, from its next message on.
        Unwatched agents cost one dict lookup per message, nothing per token."""
        self._lookup(name)
        if name not in self._taps:
            self._taps[name] = collections.deque(maxlen=pieces)

    def unwatch(self, name: str) -> None:
        """Stop keeping agent ``name``'s streamed text (a no-op if not watched)."""
        self._taps.pop(name, None)

    @property
    def watched(self) -> frozenset[str]:
        """The agents being watched now."""
        return frozenset(self._taps)

    def tail(self, name: str) -> str:
        """What agent ``name`` streamed lately (``watch`` it first; else empty)."""
        tap = self._taps.get(name)
        return "".join(tap) if tap is not None else ""

    # -- membership -----------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The agents' names, in start order."""
        return list(self._agents)

    def agent(self, name: str) -> Agent:
        return self._lookup(name).agent

    def _lookup(self, name: str) -> _AgentState:
        state = self._agents.get(name)
        if state is None:
            known = ", ".join(sorted(self._agents)) or "none"
            raise UnknownAgent(f"no agent named {name!r} in this swarm (agents: {known})")
        return state

    async def spawn(self, agent: Agent) -> None:
        """Start an agent in the running swarm. Peers it names in ``can_ask`` and
        ``handoffs`` need not exist yet; a message to a missing one is an error
        result the model reads.

        Raises:
            ValueError: an agent of that name is already in the swarm, or one of
                its tools' names clashes with its ask_/transfer_ tools.
            AgentStopped, BudgetExhausted: the swarm has stopped.
        """
        self._check_open()
        if not isinstance(agent, Agent):
            raise TypeError(f"spawn() takes an Agent, got {type(agent).__name__}")
        if agent.name in self._agents:
            raise ValueError(f"the swarm already has an agent named {agent.name!r}")
        self._described.setdefault(agent.name, agent.description)
        tools = agent.tools.copy()
        for peer in agent.can_ask:
            tools.add(self._ask_tool(agent.name, peer, agent.ask_timeout), timeout=None)
        for target in agent.handoffs:
            tools.add(self._transfer_tool(target), timeout=None)
        state = _AgentState(agent, tools)
        self._agents[agent.name] = state
        assert self._supervisor is not None
        try:
            await self._supervisor.start_child(
                ChildSpec(
                    id=agent.name,
                    start=self._actor(state),
                    restart="transient",
                    shutdown=self._shutdown,
                )
            )
        except BaseException:
            del self._agents[agent.name]
            raise

    def _ask_tool(self, me: str, peer: str, timeout: float | None) -> Tool:
        swarm = self

        async def ask(message: str) -> str:
            # The swarm's own timeout, not the tool box's: it withdraws the message
            # and cancels the peer's work on it.
            reply = await swarm.ask(peer, message, sender=me, timeout=timeout)
            return reply.text

        description = f"Send agent {peer!r} a message and get its answer."
        if self._described.get(peer):
            description += f" {peer}: {self._described[peer]}"
        return Tool(ask, name=f"ask_{peer}", description=description)

    def _transfer_tool(self, target: str) -> Tool:
        swarm = self

        async def transfer(reason: str = "") -> str:
            swarm._lookup(target)  # a missing agent is an error the model reads
            current_agent().handoff = target
            return f"Transferred to {target}."

        description = f"Hand the conversation over to agent {target!r}, who answers from here."
        if self._described.get(target):
            description += f" {target}: {self._described[target]}"
        return Tool(transfer, name=f"transfer_to_{target}", description=description)

    # -- messages -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._meter.exhausted is not None:
            raise self._meter.error()
        if self._escalation is not None:
            raise AgentStopped(
                f"the swarm stopped after an escalated failure "
                f"({type(self._escalation).__name__}: {self._escalation})"
            )
        if self._closed:
            raise AgentStopped("the swarm has stopped; it takes no new messages")

    def _stopped_error(self, agent: str) -> BaseException:
        if self._meter.exhausted is not None:
            return self._meter.error()
        return AgentStopped(f"agent {agent!r} stopped before it answered")

    async def ask(
        self,
        to: str,
        content: str | Sequence[Message],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the reply's deadline, withdrawn after
        sender: str | None = None,
    ) -> Reply:
        """Send a message to agent ``to`` and wait for its reply.

        Raises:
            UnknownAgent: no agent of that name.
            ReplyTimeout: no reply within ``timeout`` seconds (the message is withdrawn
                and any work on it cancelled).
            AgentError: the agent failed on it (``__cause__`` is why).
            AgentStopped: the agent or the swarm stopped first.
            BudgetExhausted: the swarm's budget is spent.
            ValueError: an agent with ``concurrency=1`` asked itself (it would wait
                for itself forever).
        """
        state = self._lookup(to)
        if sender == to and state.agent.concurrency == 1:
            raise ValueError(
                f"agent {to!r} asked itself with concurrency=1: it would wait for itself; "
                "raise its concurrency or tell() instead"
            )
        envelope = self._envelope(sender, content)
        self._check_open()
        try:
            with anyio.fail_after(timeout):
                await state.send.send(envelope)
                await envelope.done.wait()
        except TimeoutError:
            envelope.withdraw()
            raise ReplyTimeout(
                f"agent {to!r} did not reply within {timeout} s; the message was withdrawn"
            ) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._check_open()
            raise AgentStopped(f"agent {to!r} has stopped") from None
        except BaseException:
            envelope.withdraw()
            raise
        if envelope.error is not None:
            raise envelope.error
        assert envelope.reply is not None
        return envelope.reply

    async def tell(
        self, to: str, content: str | Sequence[Message], *, sender: str | None = None
    ) -> None:
        """Send a message without waiting for the reply (waits only for mailbox room);
        a failure is counted in the agent's errors."""
        state = self._lookup(to)
        envelope = self._envelope(sender, content)
        self._check_open()
        try:
            await state.send.send(envelope)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._check_open()
            raise AgentStopped(f"agent {to!r} has stopped") from None

    # -- the actor ------------------------------------------------------------------

    def _actor(self, state: _AgentState) -> Callable[[ChildContext], Awaitable[None]]:
        async def run(ctx: ChildContext) -> None:
            agent = state.agent
            if ctx.incarnation > 0:  # 0 is the first start
                state.restarts += 1
            session = None
            if agent.memory:
                session = Session(
                    system=agent.instructions,
                    budget_tokens=agent.memory_tokens,
                    policy=agent.memory_policy,
                )
            slots = anyio.Semaphore(agent.concurrency)
            crash: list[BaseException] = []
            receiving = anyio.CancelScope()

            async def watch_stop() -> None:
                await ctx.wait_stop_requested()
                receiving.cancel()

            async def handle(envelope: _Envelope) -> None:
                try:
                    await self._handle(state, envelope, session)
                except Exception as exc:
                    if agent.on_error == "restart":
                        crash.append(exc)
                        receiving.cancel()
                    else:  # "escalate"
                        self._escalate(exc)
                finally:
                    state.in_hand.discard(envelope)
                    slots.release()

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch_stop)
                    with receiving:
                        while True:
                            await slots.acquire()
                            try:
                                envelope = await state.receive.receive()
                            except (anyio.EndOfStream, anyio.ClosedResourceError):
                                slots.release()
                                break
                            except BaseException:
                                slots.release()
                                raise
                            state.messages += 1
                            if envelope.withdrawn:
                                state.withdrawn += 1
                                slots.release()
                                continue
                            # In hand before the task runs: if it never does (cancelled
                            # first), the finally below still answers the sender.
                            state.in_hand.add(envelope)
                            tg.start_soon(handle, envelope)
                    if crash:
                        tg.cancel_scope.cancel()  # the other messages in hand stop with it
                    else:
                        # Asked to stop (or the mailbox closed): the messages in hand
                        # finish; the supervisor cancels us after the shutdown timeout.
                        for _ in range(agent.concurrency):
                            await slots.acquire()
                        tg.cancel_scope.cancel()
            finally:
                for envelope in list(state.in_hand):
                    envelope.fail(self._stopped_error(agent.name))
                state.in_hand.clear()
            if crash:
                raise AgentError(agent.name, crash[0]) from crash[0]

        return run

    async def _handle(
        self, state: _AgentState, envelope: _Envelope, session: Session | None
    ) -> None:
        agent = state.agent
        scope = envelope.scope = anyio.CancelScope()
        if envelope.withdrawn:
            scope.cancel()
        self._handling.add(envelope.id)
        listening = bool(self._message_listeners)
        if listening:
            self._tell_listeners(_message_event("started", agent.name, envelope))
        outcome: Literal["replied", "failed", "withdrawn", "stopped"] = "replied"
        error_kind: str | None = None
        try:
            with scope:
                reply = await self._process(state, envelope, session)
                state.replies += 1
                envelope.resolve(reply)
            if scope.cancelled_caught:
                state.withdrawn += 1
                outcome = "withdrawn"
                envelope.fail(AgentStopped(f"the message to {agent.name!r} was withdrawn"))
        except anyio.get_cancelled_exc_class():
            outcome = "stopped"
            envelope.fail(self._stopped_error(agent.name))
            raise
        except Exception as exc:
            state.errors += 1
            outcome, error_kind = "failed", type(exc).__name__
            if self._meter.exhausted is not None:
                envelope.fail(self._meter.error())
                return
            error = AgentError(agent.name, exc)
            error.__cause__ = exc
            envelope.fail(error)
            if agent.on_error != "reply":
                raise
        finally:
            self._handling.discard(envelope.id)
            if listening:
                self._tell_listeners(
                    _message_event("finished", agent.name, envelope, outcome, error_kind)
                )

    async def _process(
        self, state: _AgentState, envelope: _Envelope, session: Session | None
    ) -> Reply:
        agent = state.agent
        ctx = AgentContext(self, agent, envelope.sender, envelope.id)
        token = _CURRENT.set(ctx)
        try:
            if agent.handler is not None:
                answer = await agent.handler(ctx, list(envelope.messages))
                if isinstance(answer, str):
                    return Reply(
                        agent=agent.name,
                        text=answer,
                        messages=[*envelope.messages, Message.assistant(answer)],
                        stopped="handler",
                        path=[agent.name],
                    )
                if not isinstance(answer, Reply):
                    raise TypeError(
                        f"agent {agent.name!r}: its handler returned "
                        f"{type(answer).__name__}; return a str or a Reply"
                    )
                return answer
            if session is not None and session.over_budget():
                await self._fit_memory(state, session, envelope)
            history = list(session.messages) if session is not None else []
            # What the conversation is as the loop runs: a handoff passes it on.
            conversation = history + envelope.messages
            request = msgspec.structs.replace(agent.request(conversation), tools=state.tools.specs)
            result: LoopResult | None = None
            usage = Usage()
            turns = tool_calls = 0
            tap = self._taps.get(agent.name)  # watched from this message on
            async with run_tool_loop(
                self.engine,
                request,
                state.tools,
                max_turns=agent.max_turns,
                priority=agent.priority,
                agent=agent.name,
                metadata={MESSAGE_METADATA: envelope.id},
            ) as loop:
                async for event in loop:
                    if tap is not None and isinstance(event, TextDelta):
                        tap.append(event.text)
                    elif isinstance(event, TurnEnded):
                        turns += 1
                        usage = _add(usage, event.response.usage)
                        conversation.append(event.response.message)
                        self._charge(state, event.response, agent.model)
                    elif isinstance(event, ToolFinished):
                        tool_calls += 1
                        state.tool_calls += 1
                        conversation.append(event.outcome.message())
                        for listener in self._tool_listeners:
                            try:
                                listener(agent.name, event.outcome)
                            except Exception:  # a tracer's bug must not fail the message
                                self._listener_errors += 1
                    elif isinstance(event, TurnStarted) and ctx.handoff is not None:
                        break  # every tool of the turn that handed off has its result
                    elif isinstance(event, LoopFinished):
                        result = event.result
            if ctx.handoff is not None:
                return await self._hand_off(state, ctx, conversation, usage, turns, tool_calls)
            assert result is not None
            messages = [m for m in result.messages if m.role != "system"]
            if session is not None:
                session.messages = messages
                if agent.memory_policy == "trim":
                    session.trim()
                # "summarize": before the next message, so this reply need not wait
            return Reply(
                agent=agent.name,
                text=result.text,
                messages=messages,
                usage=result.usage,
                turns=result.turns,
                tool_calls=result.tool_calls,
                stopped=result.stopped,
                path=[agent.name],
            )
        finally:
            _CURRENT.reset(token)

    async def _hand_off(
        self,
        state: _AgentState,
        ctx: AgentContext,
        conversation: list[Message],
        usage: Usage,
        turns: int,
        tool_calls: int,
    ) -> Reply:
        target = ctx.handoff
        assert target is not None
        # The target gets the conversation so far (what came in, the turns, the tools'
        # results) as if it had held it from the start: the transfer calls and their
        # results are left out, since the target is not offered those tools (and
        # Anthropic refuses tool_use blocks for tools a request does not define).
        # Its answer is the reply.
        handed = _without_transfers(conversation, set(state.agent.handoffs))
        reply = await self.ask(target, handed, sender=state.agent.name)
        return msgspec.structs.replace(
            reply,
            usage=_add(usage, reply.usage),
            turns=turns + reply.turns,
            tool_calls=tool_calls + reply.tool_calls,
            path=[state.agent.name, *reply.path],
        )

    async def _fit_memory(self, state: _AgentState, session: Session, envelope: _Envelope) -> None:
        """Bring an agent's memory within budget by its policy (``summarize``: one
        model call through the engine, as the agent, charged to the budget)."""
        agent = state.agent

        async def summarize(messages: list[Message]) -> str:
            request = Request(
                model=agent.model,
                messages=[
                    Message.system(SUMMARY_INSTRUCTIONS),
                    Message.user(_transcript(messages)),
                ],
                max_tokens=agent.summary_tokens,
            )
            response = await self.engine.complete(
                request,
                priority=agent.priority,
                agent=agent.name,
                metadata={MESSAGE_METADATA: envelope.id, "swarm.purpose": "summary"},
            )
            self._charge(state, response, agent.model, turn=False)
            state.summaries += 1
            return response.text

        try:
            await session.fit(summarize)
        except Exception as exc:  # the message is still answered, from a trimmed memory
            state.summary_failures += 1
            logs.event(
                logging.WARNING,
                "agent.summary_failed",
                agent=agent.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            session.trim()

    def _charge(
        self, state: _AgentState, response: Response, route: str, *, turn: bool = True
    ) -> None:
        state.turns += turn
        state.usage = _add(state.usage, response.usage)
        cost = self.engine.estimate_cost(response.model or route, response.usage)
        if cost is None and response.model and response.model != route:
            cost = self.engine.estimate_cost(route, response.usage)
        if self._meter.charge(response.usage, cost) is not None:
            self._halt("budget")

    def _charge_discarded(self, record: CallRecord) -> None:
        """A ledger listener: charge the budget with what a call of this swarm's
        agents lost to discarded attempts (runs in the engine's bookkeeping: quick,
        and the halt it may cause only cancels scopes and answers senders)."""
        usage = record.discarded_usage
        if not (usage.input_tokens or usage.output_tokens):
            return
        if record.metadata.get(MESSAGE_METADATA) not in self._handling:
            return  # another swarm's call, or one made outside any agent
        if self._meter.charge_discarded(usage, record.discarded_cost_usd) is not None:
            self._halt("budget")

    def _halt(self, why: Literal["budget", "escalated"]) -> None:
        """Stop at once: every agent's work is cancelled, every waiting sender gets
        its answer (the budget error, or AgentStopped), no new message is taken."""
        if self._stopped == "running":
            self._stopped = why
        self._closed = True
        self._agents_scope.cancel()
        self._drain()

    def _escalate(self, error: BaseException) -> None:
        if self._escalation is None:
            self._escalation = error
        self._halt("escalated")

    def _drain(self) -> None:
        """Answer every message still in a mailbox, and wake every sender still
        waiting for room (their send fails, so they see the swarm stopped)."""
        for state in self._agents.values():
            state.send.close()
            while True:
                try:
                    envelope = state.receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                envelope.fail(self._stopped_error(state.agent.name))
            state.receive.close()

    # -- report ---------------------------------------------------------------------

    def report(self) -> SwarmReport:
        """What the swarm has done so far (or did, after the block)."""
        spent = self._meter.spent()
        agents = {
            name: AgentStatistics(
                messages=s.messages,
                summaries=s.summaries,
                summary_failures=s.summary_failures,
                replies=s.replies,
                errors=s.errors,
                withdrawn=s.withdrawn,
                turns=s.turns,
                tool_calls=s.tool_calls,
                restarts=s.restarts,
                queued=s.receive.statistics().current_buffer_used,
                busy=s.busy,
                usage=s.usage,
            )
            for name, s in self._agents.items()
        }
        end = self._ended if self._ended is not None else anyio.current_time()
        rate = spent.cache_read_tokens / spent.input_tokens if spent.input_tokens else 0.0
        return SwarmReport(
            agents=agents,
            spent=spent,
            cache_hit_rate=rate,
            stopped=self._stopped,
            budget_reason=self._meter.exhausted,
            seconds=end - self._started,
        )

    async def _run_supervisor(self, *, task_status: TaskStatus[None]) -> None:
        spec = SupervisorSpec(
            name="swarm", strategy="one_for_one", intensity=self._intensity, period=self._period
        )
        try:
            with self._agents_scope:
                async with open_supervisor(spec) as supervisor:
                    self._supervisor = supervisor
                    task_status.started()
                    # Leaving the block is the graceful stop: each agent finishes
                    # the messages in hand (up to its shutdown), in reverse order.
                    await self._stop.wait()
        except SupervisorEscalation as exc:
            self._escalate(exc)


def _without_transfers(conversation: list[Message], targets: set[str]) -> list[Message]:
    names = {f"transfer_to_{t}" for t in targets}
    dropped: set[str] = set()
    out: list[Message] = []
    for message in conversation:
        if message.role == "assistant" and message.tool_calls:
            keep = [c for c in message.tool_calls if c.name not in names]
            dropped.update(c.id for c in message.tool_calls if c.name in names)
            if len(keep) != len(message.tool_calls):
                if not keep and not message.text:
                    continue
                message = msgspec.structs.replace(message, tool_calls=keep)
        elif message.role == "tool" and message.tool_call_id in dropped:
            continue
        out.append(message)
    return out


@asynccontextmanager
async def open_swarm(
    engine: Engine,
    agents: Sequence[Agent] = (),
    *,
    budget: Budget | None = None,
    shutdown: float = 5.0,
    intensity: int = 10,
    period: float = 60.0,
) -> AsyncIterator[Swarm]:
    """Run ``agents`` for the block (more can join with ``spawn``).

    Leaving the block stops the agents gracefully: each finishes the messages in
    hand within ``shutdown`` seconds, then is cancelled; messages still queued are
    answered with :class:`AgentStopped`. Cancelling the block cancels every agent
    and every model call at once.

    Args:
        engine: Where every model call goes.
        budget: Limits on tokens, estimated cost and wall time for the whole run.
        shutdown: Seconds an agent gets to finish the messages in hand when the
            block ends, before it is cancelled.
        intensity, period: At most ``intensity`` agent restarts in ``period``
            seconds; one more stops the swarm (``SupervisorEscalation``).

    Raises:
        AgentError: an agent with ``on_error="escalate"`` failed (after the block).
        SupervisorEscalation: agents restarted too often (after the block).
    """
    if not isinstance(engine, Engine):
        raise TypeError(f"open_swarm() needs an Engine (from open_engine()), got {engine!r}")
    names = [a.name for a in agents]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"agent names must be unique in a swarm; repeated: {', '.join(dupes)}")
    swarm = Swarm(engine, budget or Budget(), shutdown)
    stop_charging = engine.ledger.add_listener(swarm._charge_discarded)
    swarm._intensity = intensity
    swarm._period = period
    swarm._described = {a.name: a.description for a in agents}
    body_error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(swarm._run_supervisor)
            clock = anyio.CancelScope()
            if budget is not None and budget.seconds is not None:
                tg.start_soon(_clock, swarm, budget.seconds, clock)
            try:
                for agent in agents:
                    await swarm.spawn(agent)
                yield swarm
            except Exception as exc:
                body_error = exc
            finally:
                if swarm._stopped == "running":
                    swarm._stopped = "finished"
                swarm._closed = True
                clock.cancel()
                swarm._stop.set()
            # The task group now waits for the supervisor's graceful stop.
    finally:
        # Also when cancelled: every queued sender is answered, every mailbox closed.
        stop_charging()
        swarm._drain()
        swarm._ended = anyio.current_time()
    if body_error is not None:
        raise body_error
    if swarm._escalation is not None:
        raise swarm._escalation


async def _clock(swarm: Swarm, seconds: float, scope: anyio.CancelScope) -> None:
    with scope:
        await anyio.sleep(seconds)
        if swarm._meter.time_is_up() is not None:
            swarm._halt("budget")
