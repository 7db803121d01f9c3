"""Agents as actors and the swarm that runs them, end to end against the in-process
simulator, on trio and asyncio: ask and reply, timeouts that withdraw the message,
the on_error policies and restart intensity, budgets, cancellation, handoffs,
delegation (can_ask), memory, prompt caching in the report, and bad input."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from providers import ImagePart, Message, Request, Response
from providers.errors import ServerError
from providers.sim import Fault, ModelProfile, SimConfig, open_simulator
from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.agents import (
    Agent,
    AgentContext,
    AgentError,
    AgentStopped,
    Budget,
    BudgetExhausted,
    MessageEvent,
    Reply,
    ReplyTimeout,
    UnknownAgent,
    current_agent,
    open_swarm,
)
from swarm.engine import Engine
from swarm.execution.session import SUMMARY_PREFIX
from swarm.pricing import Price
from swarm.supervisor import SupervisorEscalation

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def engine_with(
    *,
    output_tokens: int = 20,
    cache_min_tokens: int = 1024,
    tokens_per_second: float = 0,
    family: str = "openai",
) -> AsyncIterator[Engine]:
    profile = ModelProfile(
        ttft=0.0,
        tokens_per_second=tokens_per_second,
        output_tokens=output_tokens,
        cache_min_tokens=cache_min_tokens,
    )
    async with open_simulator(SimConfig(models={"m": profile})) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(
                    family=family, base_url=sim.base_url_for(family), api_key="sk-t"
                )
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=1),
            prices={"m": Price(input=1.0, output=2.0)},
        )
        async with open_engine(config, env={}) as engine:
            yield engine


def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: City name.
    """
    return f"{city}: 21 C"


async def wait_until(condition: Callable[[], bool]) -> None:
    """Polls: the state watched has no event to wait on (it is a statistic)."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def echo(ctx: AgentContext, messages: list[Message]) -> str:
    return "echo: " + messages[-1].text


# -- ask and reply ---------------------------------------------------------------------


async def test_an_agent_answers_with_its_tools_through_the_tool_loop() -> None:
    weather = Agent("weather", "You report the weather.", tools=[get_weather], model="m")
    async with engine_with() as engine, open_swarm(engine, [weather]) as crew:
        reply = await crew.ask("weather", "Weather in Oslo?", timeout=30)
        report = crew.report()
    assert reply.agent == "weather"
    assert reply.path == ["weather"]
    assert reply.turns == 2  # the tool call, then the answer
    assert reply.tool_calls == 1
    assert reply.stopped == "answered"
    assert reply.text
    # The conversation ends with the answer; the tool's result is in it.
    assert reply.messages[-1].role == "assistant"
    assert any(m.role == "tool" and "21 C" in m.text for m in reply.messages)
    assert reply.usage.output_tokens > 0
    stats = report.agents["weather"]
    assert (stats.messages, stats.replies, stats.errors, stats.turns) == (1, 1, 0, 2)
    assert report.spent.turns == 2
    assert report.spent.tokens == report.spent.input_tokens + report.spent.output_tokens > 0
    assert report.spent.cost_usd > 0  # "m" has a price in this engine
    assert report.stopped == "running"
    assert crew.report().stopped == "finished"


async def test_many_messages_to_a_concurrent_agent_are_all_answered() -> None:
    worker = Agent("worker", "Answer briefly.", model="m", concurrency=8, mailbox=4)
    async with engine_with() as engine, open_swarm(engine, [worker]) as crew:
        replies: list[Reply] = []

        async def one(i: int) -> None:
            replies.append(await crew.ask("worker", f"task {i}", timeout=30))

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(one, i)
        stats = crew.report().agents["worker"]
    assert len(replies) == 40
    assert all(r.text for r in replies)
    assert (stats.messages, stats.replies, stats.busy, stats.queued) == (40, 40, 0, 0)


async def test_a_handler_agent_answers_without_a_model_and_tell_does_not_wait() -> None:
    seen: list[str] = []

    async def record(ctx: AgentContext, messages: list[Message]) -> str:
        seen.append(f"{ctx.sender}:{messages[-1].text}")
        assert current_agent() is ctx
        return "ok"

    async with engine_with() as engine:
        async with open_swarm(engine, [Agent("log", handler=record, model="m")]) as crew:
            reply = await crew.ask("log", "first", sender="me")
            await crew.tell("log", "second")
        # Leaving the block is a graceful stop: the told message is still handled.
    assert reply.text == "ok" and reply.stopped == "handler"
    assert seen == ["me:first", "None:second"]


async def test_a_handler_that_returns_something_else_is_an_agent_error() -> None:
    async def bad(ctx: AgentContext, messages: list[Message]) -> str:
        return 42  # type: ignore[return-value]

    async with engine_with() as engine:
        async with open_swarm(engine, [Agent("bad", handler=bad, model="m")]) as crew:
            with pytest.raises(AgentError, match="return a str or a Reply"):
                await crew.ask("bad", "hi")
            # on_error="reply": it keeps serving.
            with pytest.raises(AgentError):
                await crew.ask("bad", "again")
            assert crew.report().agents["bad"].errors == 2


# -- timeouts and withdrawal ----------------------------------------------------------


async def test_a_reply_timeout_withdraws_the_message_and_cancels_the_work() -> None:
    started = anyio.Event()
    cancelled: list[bool] = []

    async def slow(ctx: AgentContext, messages: list[Message]) -> str:
        started.set()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise
        return "late"

    async with engine_with() as engine:
        async with open_swarm(engine, [Agent("slow", handler=slow, model="m")]) as crew:
            with pytest.raises(ReplyTimeout, match="withdrawn"):
                await crew.ask("slow", "take your time", timeout=0.2)
            assert started.is_set()
            await wait_until(lambda: not crew.report().agents["slow"].busy)
            stats = crew.report().agents["slow"]
    assert cancelled == [True]
    assert stats.withdrawn == 1 and stats.replies == 0


async def test_a_cancelled_sender_withdraws_its_message() -> None:
    gate = anyio.Event()
    handled: list[str] = []

    async def blocker(ctx: AgentContext, messages: list[Message]) -> str:
        handled.append(messages[-1].text)
        await gate.wait()
        return "done"

    async with engine_with() as engine:
        agent = Agent("one", handler=blocker, model="m", mailbox=4)
        async with open_swarm(engine, [agent]) as crew:
            async with anyio.create_task_group() as tg:
                tg.start_soon(crew.ask, "one", "first")
                await anyio.sleep(0.05)
                with anyio.move_on_after(0.05):
                    await crew.ask("one", "second")  # queued behind the first, gives up
                gate.set()
            # The actor takes the withdrawn one next, and skips it.
            await wait_until(lambda: not crew.report().agents["one"].queued)
            stats = crew.report().agents["one"]
    # The withdrawn message was taken from the mailbox and skipped, never handled.
    assert handled == ["first"]
    assert stats.withdrawn == 1


# -- failures and supervision ---------------------------------------------------------


def failing_handler(fails: int) -> tuple[list[int], object]:
    calls: list[int] = []

    async def handler(ctx: AgentContext, messages: list[Message]) -> str:
        calls.append(1)
        if len(calls) <= fails:
            raise RuntimeError(f"boom {len(calls)}")
        return "fine"

    return calls, handler


async def test_on_error_restart_restarts_the_agent_and_its_mailbox_survives() -> None:
    _, handler = failing_handler(fails=2)
    agent = Agent("flaky", handler=handler, model="m", on_error="restart")  # type: ignore[arg-type]
    sibling = Agent("sib", handler=echo, model="m")
    async with engine_with() as engine, open_swarm(engine, [agent, sibling]) as crew:
        for _ in range(2):
            with pytest.raises(AgentError, match="boom") as info:
                await crew.ask("flaky", "hi", timeout=10)
            assert isinstance(info.value.__cause__, RuntimeError)
        assert (await crew.ask("flaky", "hi", timeout=10)).text == "fine"
        assert (await crew.ask("sib", "still here", timeout=10)).text == "echo: still here"
        report = crew.report()
    assert report.agents["flaky"].restarts == 2
    assert report.agents["flaky"].errors == 2
    assert report.agents["sib"].restarts == 0


async def test_restarts_past_the_intensity_escalate_and_stop_the_swarm() -> None:
    _, handler = failing_handler(fails=100)
    agent = Agent("flaky", handler=handler, model="m", on_error="restart")  # type: ignore[arg-type]
    sibling = Agent("sib", handler=echo, model="m")
    errors: list[BaseException] = []
    with pytest.raises(SupervisorEscalation):
        async with (
            engine_with() as engine,
            open_swarm(engine, [agent, sibling], intensity=2) as crew,
        ):
            for _ in range(5):
                try:
                    await crew.ask("flaky", "hi", timeout=10)
                except (AgentError, AgentStopped) as exc:
                    errors.append(exc)
            # Once escalated the swarm takes nothing more, and says why.
            with pytest.raises(AgentStopped, match="escalated"):
                await crew.ask("sib", "hello")
            assert crew.report().stopped == "escalated"
    assert any(isinstance(e, AgentStopped) for e in errors)
    assert sum(isinstance(e, AgentError) for e in errors) == 3  # intensity 2, then the third


async def test_on_error_escalate_stops_the_swarm_and_raises_after_the_block() -> None:
    _, handler = failing_handler(fails=1)
    agent = Agent("strict", handler=handler, model="m", on_error="escalate")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="boom 1"):
        async with engine_with() as engine, open_swarm(engine, [agent]) as crew:
            with pytest.raises(AgentError):
                await crew.ask("strict", "hi", timeout=10)
            with pytest.raises(AgentStopped):
                await crew.ask("strict", "again")


async def test_an_error_in_the_block_comes_out_as_itself_and_stops_the_agents() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with engine_with() as engine, open_swarm(engine, [Agent("e", model="m")]):
            raise KeyError("mine")


# -- budgets and cancellation ---------------------------------------------------------


async def test_discarded_attempts_count_against_the_budget() -> None:
    # Every attempt is cut after a few events and retried: the provider bills what
    # each one streamed, so the budget is spent even though no turn ever ends.
    profile = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=20)
    cut = Fault(kind="disconnect", after=6, rate=1.0)
    async with open_simulator(SimConfig(models={"m": profile}, faults=[cut])) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(family="openai", base_url=sim.openai_base_url, api_key="k")
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002),
            prices={"m": Price(input=1.0, output=2.0)},
        )
        async with open_engine(config, env={}) as engine:
            async with open_swarm(engine, [Agent("w", "Answer.", model="m")],
                                  budget=Budget(tokens=15)) as crew:  # fmt: skip
                with pytest.raises((AgentError, BudgetExhausted)):
                    await crew.ask("w", "a question that will not be answered", timeout=30)
                report = crew.report()
            discarded = engine.ledger.records()[-1].discarded_usage
    assert discarded.output_tokens > 0
    assert report.spent.turns == 0 and report.spent.discarded_tokens > 0
    assert report.spent.tokens == report.spent.discarded_tokens
    assert report.spent.cost_usd > 0
    assert report.stopped == "budget" and report.budget_reason == "tokens"


async def test_a_token_budget_stops_the_run_cleanly() -> None:
    worker = Agent("worker", "Answer.", model="m", concurrency=4)
    outcomes: list[object] = []
    async with engine_with() as engine:
        async with open_swarm(engine, [worker], budget=Budget(tokens=200)) as crew:

            async def one(i: int) -> None:
                try:
                    outcomes.append(await crew.ask("worker", f"task {i}", timeout=30))
                except BudgetExhausted as exc:
                    outcomes.append(exc)

            async with anyio.create_task_group() as tg:
                for i in range(30):
                    tg.start_soon(one, i)
            with pytest.raises(BudgetExhausted, match="tokens"):
                await crew.ask("worker", "one more")
            report = crew.report()
    answered = [o for o in outcomes if isinstance(o, Reply)]
    refused = [o for o in outcomes if isinstance(o, BudgetExhausted)]
    assert len(outcomes) == 30  # every message got an answer or the budget error
    assert refused and len(answered) < 30
    assert report.stopped == "budget" and report.budget_reason == "tokens"
    assert report.spent.tokens >= 200


async def test_a_cost_budget_uses_the_engines_prices() -> None:
    worker = Agent("worker", "Answer.", model="m")
    async with engine_with() as engine:
        async with open_swarm(engine, [worker], budget=Budget(cost_usd=1e-5)) as crew:
            with pytest.raises(BudgetExhausted, match="cost"):
                for i in range(100):
                    await crew.ask("worker", f"task {i}", timeout=30)
            report = crew.report()
    assert report.budget_reason == "cost"
    assert report.spent.cost_usd >= 1e-5
    assert report.spent.unpriced_turns == 0


async def test_a_wall_time_budget_cancels_the_work_in_flight() -> None:
    async def forever(ctx: AgentContext, messages: list[Message]) -> str:
        await anyio.sleep(60)
        return "never"

    async with engine_with() as engine:
        agent = Agent("slow", handler=forever, model="m")
        async with open_swarm(engine, [agent], budget=Budget(seconds=0.3)) as crew:
            with anyio.fail_after(10), pytest.raises(BudgetExhausted, match="time"):
                await crew.ask("slow", "hi")
            assert crew.report().stopped == "budget"


async def test_cancelling_the_swarm_block_cancels_every_agent_and_model_call() -> None:
    # Slow streams, so the model calls are in flight when the block is cancelled.
    async with engine_with(tokens_per_second=5, output_tokens=200) as engine:
        worker = Agent("worker", "Answer.", model="m", concurrency=10)
        with anyio.move_on_after(0.5) as scope:
            async with open_swarm(engine, [worker]) as crew:
                async with anyio.create_task_group() as tg:
                    for i in range(10):
                        tg.start_soon(crew.ask, "worker", f"task {i}")
        assert scope.cancelled_caught
        # Nothing is left running in the engine: every call was cancelled with it.
        await wait_until(lambda: not engine.ledger.statistics().in_flight)
        stats = engine.ledger.statistics()
        assert stats.accepted >= 10 and stats.cancelled >= 10 and stats.completed == 0


# -- handoffs, delegation, memory --------------------------------------------------------


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
async def test_a_handoff_passes_the_conversation_and_the_target_answers(family: str) -> None:
    # Every family's wire format carries the handed conversation (the simulator,
    # like Anthropic's API, refuses tool_use / tool_result blocks it cannot match).
    triage = Agent("triage", "Route the user.", model="m", handoffs=["weather"])
    weather = Agent("weather", "Weather expert.", tools=[get_weather], model="m")
    async with (
        engine_with(family=family) as engine,
        open_swarm(engine, [triage, weather]) as crew,
    ):
        reply = await crew.ask("triage", "Is it raining in Oslo?", timeout=30)
        report = crew.report()
    assert reply.agent == "weather"
    assert reply.path == ["triage", "weather"]
    # The target got the user's message, not the transfer call (it has no such tool).
    assert reply.messages[0].role == "user" and "Oslo" in reply.messages[0].text
    assert not any(
        call.name.startswith("transfer_to_")
        for m in reply.messages
        for call in (m.tool_calls or [])
    )
    assert reply.turns == 1 + 2  # triage's transfer turn, then weather's two
    assert report.agents["triage"].turns == 1
    assert report.agents["weather"].replies == 1


async def test_a_handoff_to_a_missing_agent_is_an_error_the_model_reads() -> None:
    triage = Agent("triage", "Route.", model="m", handoffs=["nobody"])
    async with engine_with() as engine, open_swarm(engine, [triage]) as crew:
        reply = await crew.ask("triage", "help", timeout=30)
    assert reply.agent == "triage"
    results = [m for m in reply.messages if m.role == "tool"]
    assert results and "no agent named 'nobody'" in results[0].text


async def test_supervisor_worker_the_boss_delegates_through_ask_tools() -> None:
    boss = Agent("boss", "Delegate.", model="m", can_ask=["worker"])
    worker = Agent("worker", handler=echo, model="m", description="Echoes tasks.")
    async with engine_with() as engine, open_swarm(engine, [boss, worker]) as crew:
        spec = {t.name: t for t in crew._agents["boss"].tools.specs}["ask_worker"]
        reply = await crew.ask("boss", "Do the thing", timeout=30)
        report = crew.report()
    assert "Echoes tasks." in spec.description
    assert reply.agent == "boss" and reply.tool_calls == 1
    tool_results = [m.text for m in reply.messages if m.role == "tool"]
    assert tool_results and tool_results[0].startswith("echo: ")
    assert report.agents["worker"].replies == 1


async def test_an_ask_tool_gives_up_on_a_peer_that_never_answers() -> None:
    cancelled: list[str] = []

    async def stuck(ctx: AgentContext, messages: list[Message]) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(messages[-1].text)  # its work was cancelled, not left running
        return "never"

    boss = Agent("boss", "Delegate.", model="m", can_ask=["worker"], ask_timeout=0.2)
    worker = Agent("worker", handler=stuck, model="m")
    async with engine_with() as engine, open_swarm(engine, [boss, worker]) as crew:
        with anyio.fail_after(30):
            reply = await crew.ask("boss", "Do the thing", timeout=30)
        report = crew.report()
    # The boss's model read the timeout as the tool's result and answered anyway.
    results = [m for m in reply.messages if m.role == "tool"]
    assert results and results[0].is_error
    assert "ReplyTimeout: agent 'worker' did not reply within 0.2 s" in results[0].text
    assert reply.agent == "boss"
    assert len(cancelled) == 1
    assert report.agents["worker"].replies == 0


async def test_memory_keeps_the_conversation_across_messages() -> None:
    prompts: list[int] = []

    agent = Agent("chat", "Chat.", model="m", memory=True)
    async with engine_with() as engine, open_swarm(engine, [agent]) as crew:
        for text in ("one", "two", "three"):
            reply = await crew.ask("chat", text, timeout=30)
            prompts.append(len(reply.messages))
    assert prompts == [2, 4, 6]  # each reply's conversation holds the earlier ones
    assert [m.text for m in reply.messages if m.role == "user"] == ["one", "two", "three"]


QUESTION = "Tell me about the fjords of western Norway and their history. " * 2  # ~33 tokens


async def test_a_summarizing_memory_replaces_old_turns_with_a_summary_by_the_model() -> None:
    agent = Agent(
        "mem", "Chat.", model="m", memory=True, memory_tokens=120, memory_policy="summarize"
    )
    async with engine_with() as engine, open_swarm(engine, [agent]) as crew:
        replies = [await crew.ask("mem", f"{i}: {QUESTION}", timeout=30) for i in range(5)]
        report = crew.report()
        records = engine.ledger.records()
    stats = report.agents["mem"]
    assert stats.summaries >= 1 and stats.summary_failures == 0
    # The last answer was given from a summary of the oldest turns plus the recent ones.
    last = replies[-1].messages
    assert last[0].role == "user" and last[0].text.startswith(SUMMARY_PREFIX)
    assert "0: Tell me" not in " ".join(m.text for m in last[1:])
    assert last[-2].text.startswith("4: ")
    # Summaries are model calls of the agent's, charged like its turns (not counted as turns).
    summaries = [r for r in records if r.metadata.get("swarm.purpose") == "summary"]
    assert len(summaries) == stats.summaries
    assert all(r.agent == "mem" for r in summaries)
    assert stats.turns == 5
    answered = sum(r.usage.output_tokens for r in replies)
    assert report.spent.output_tokens == answered + sum(r.usage.output_tokens for r in summaries)


async def test_a_failed_summary_trims_the_memory_and_the_message_is_still_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = Agent(
        "mem", "Chat.", model="m", memory=True, memory_tokens=120, memory_policy="summarize"
    )
    async with engine_with() as engine, open_swarm(engine, [agent]) as crew:
        complete = engine.complete

        async def no_summaries(request: Request, **options: Any) -> Response:
            if options.get("metadata", {}).get("swarm.purpose") == "summary":
                raise ServerError("the summarizer is down", provider="sim", model="m", status=503)
            return await complete(request, **options)

        monkeypatch.setattr(engine, "complete", no_summaries)
        replies = [await crew.ask("mem", f"{i}: {QUESTION}", timeout=30) for i in range(5)]
        stats = crew.report().agents["mem"]
    assert stats.summary_failures >= 1 and stats.summaries == 0
    assert stats.replies == 5 and stats.errors == 0
    last = replies[-1].messages
    assert not last[0].text.startswith(SUMMARY_PREFIX)  # trimmed instead
    assert last[-2].text.startswith("4: ") and "0: Tell me" not in last[0].text


async def test_without_memory_each_message_starts_fresh() -> None:
    agent = Agent("chat", "Chat.", model="m")
    async with engine_with() as engine, open_swarm(engine, [agent]) as crew:
        await crew.ask("chat", "one", timeout=30)
        reply = await crew.ask("chat", "two", timeout=30)
    assert [m.text for m in reply.messages if m.role == "user"] == ["two"]


async def test_the_report_shows_the_cache_hit_rate_of_the_stable_prefix() -> None:
    agent = Agent("cached", "You are a careful assistant. " * 40, model="m")
    async with engine_with(cache_min_tokens=64) as engine, open_swarm(engine, [agent]) as crew:
        for i in range(4):
            await crew.ask("cached", f"question {i}", timeout=30)
        report = crew.report()
    assert report.spent.cache_read_tokens > 0
    assert 0.0 < report.cache_hit_rate < 1.0


async def test_spawn_adds_an_agent_to_a_running_swarm() -> None:
    async with engine_with() as engine, open_swarm(engine) as crew:
        assert crew.names == []
        await crew.spawn(Agent("late", handler=echo, model="m"))
        assert (await crew.ask("late", "hi")).text == "echo: hi"
        with pytest.raises(ValueError, match="already has an agent named 'late'"):
            await crew.spawn(Agent("late", handler=echo, model="m"))
        assert crew.names == ["late"]


# -- bad input ---------------------------------------------------------------------------


async def test_messages_to_unknown_agents_and_bad_content_are_refused_clearly() -> None:
    async with engine_with() as engine:
        async with open_swarm(engine, [Agent("a", handler=echo, model="m")]) as crew:
            with pytest.raises(UnknownAgent, match=r"no agent named 'b'.*agents: a"):
                await crew.ask("b", "hi")
            with pytest.raises(TypeError, match="str or a non-empty list"):
                await crew.ask("a", 42)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="asked itself"):
                await crew.ask("a", "hi", sender="a")
            # The swarm is unharmed.
            assert (await crew.ask("a", "hi")).text == "echo: hi"
        with pytest.raises(AgentStopped, match="no new messages"):
            await crew.ask("a", "after the block")


async def test_open_swarm_refuses_bad_arguments() -> None:
    async with engine_with() as engine:
        with pytest.raises(ValueError, match=r"unique.*repeated: a"):
            async with open_swarm(engine, [Agent("a", model="m"), Agent("a", model="m")]):
                pass
    with pytest.raises(TypeError, match="needs an Engine"):
        async with open_swarm("engine", []):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "letters, digits"),
        ({"name": "x", "max_turns": 0}, "max_turns must be an int >= 1"),
        ({"name": "x", "mailbox": True}, "mailbox must be an int"),
        ({"name": "x", "memory": True, "concurrency": 2}, "memory=True needs concurrency=1"),
        ({"name": "x", "on_error": "ignore"}, "on_error must be"),
        ({"name": "x", "handoffs": "y"}, r"write handoffs=\['y'\]"),
        ({"name": "x", "can_ask": ["x"]}, "names the agent itself"),
        ({"name": "x", "can_ask": ["bad name"]}, "bad agent name"),
        ({"name": "x", "model": ""}, "needs model="),
        ({"name": "x", "ask_timeout": 0}, "ask_timeout must be a positive number"),
        ({"name": "x", "memory_policy": "forget"}, "memory_policy must be 'trim' or"),
        ({"name": "x", "memory": True, "memory_policy": "summarize"}, "needs memory=True and"),
        ({"name": "x", "summary_tokens": 0}, "summary_tokens must be an int >= 1"),
        ({"name": "x", "ask_timeout": float("inf")}, "or None"),
    ],
)
def test_agent_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Agent(**kwargs)  # type: ignore[arg-type]


def test_budget_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="tokens must be at least 1"):
        Budget(tokens=0)
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        Budget(seconds=-1)
    with pytest.raises(ValueError, match="cost_usd"):
        Budget(cost_usd=float("nan"))


async def test_a_watched_agent_keeps_what_it_streamed_for_tail() -> None:
    a = Agent("a", "Answer.", model="m")
    b = Agent("b", "Answer.", model="m")
    async with engine_with(output_tokens=12) as engine, open_swarm(engine, [a, b]) as crew:
        with pytest.raises(UnknownAgent, match="'nobody'"):
            crew.watch("nobody")
        crew.watch("a")
        first = await crew.ask("a", "hello")
        await crew.ask("b", "hello")
        assert crew.tail("a") == first.text  # every streamed piece, in order
        assert crew.tail("b") == ""  # not watched: nothing kept
        crew.watch("a", pieces=3)  # already watched: unchanged
        second = await crew.ask("a", "again")
        assert crew.tail("a") == first.text + second.text
        crew.unwatch("a")
        assert crew.tail("a") == ""


async def test_message_events_name_each_message_once_across_swarms_on_one_engine() -> None:
    # Two swarms share an engine (and its ledger): their message ids must not meet,
    # and each model call names the message it was made for.
    seen: list[MessageEvent] = []
    async with engine_with() as engine:
        async with (
            open_swarm(engine, [Agent("a", "Answer.", model="m")]) as one,
            open_swarm(engine, [Agent("a", "Answer.", model="m")]) as two,
        ):
            one.add_message_listener(seen.append)
            remove = two.add_message_listener(seen.append)
            await one.ask("a", "first")
            await two.ask("a", "second")
            remove()
            await two.ask("a", "not seen")
        records = engine.ledger.records()
    started = [e for e in seen if e.kind == "started"]
    finished = [e for e in seen if e.kind == "finished"]
    assert len(started) == len(finished) == 2
    assert len({e.message_id for e in started}) == 2
    assert all(e.outcome == "replied" and e.parent_id is None for e in finished)
    tagged = [r.metadata.get("swarm.message") for r in records]
    assert [e.message_id for e in started] == tagged[:2]
    assert tagged[2] not in {e.message_id for e in started}


async def test_an_agents_tool_can_hand_the_model_an_image() -> None:
    chart = ImagePart(data=base64.b64encode(bytes(32)).decode(), media_type="image/png")

    def plot(series: str) -> list[str | ImagePart]:
        """Plot a series.

        Args:
            series: Which one.
        """
        return [f"the plot of {series}", chart]

    analyst = Agent("analyst", "Look at the plots.", tools=[plot], model="m")
    async with engine_with(family="anthropic") as engine, open_swarm(engine, [analyst]) as crew:
        reply = await crew.ask("analyst", "How did sales go?", timeout=30)
    (result,) = [m for m in reply.messages if m.role == "tool"]
    assert result.parts()[-1] == chart and result.text.startswith("the plot of ")
    assert reply.turns == 2 and reply.text  # the model read the result and answered
