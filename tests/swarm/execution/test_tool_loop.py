"""Tools and the tool loop, end to end against the in-process simulator, on trio
and asyncio: every step seen as events, tool faults become results the model
reads, timeouts, parallel calls, the turn limit, cancellation."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import msgspec
import pytest

from providers import BadRequestError, ImagePart, Message, Request, TextDelta, ToolCall
from providers.sim import Fault, ModelProfile, SimConfig, open_simulator
from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.engine import Engine
from swarm.execution import (
    LoopFinished,
    ToolBox,
    ToolFinished,
    ToolStarted,
    TurnEnded,
    TurnStarted,
    run_tool_loop,
    tool_loop,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def engine_with(
    tool_calls: int = 1, faults: list[Fault] | None = None
) -> AsyncIterator[Engine]:
    profile = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=20, tool_calls=tool_calls)
    async with open_simulator(SimConfig(models={"m": profile}, faults=faults or [])) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(family="openai", base_url=sim.openai_base_url, api_key="sk-t")
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=1),
        )
        async with open_engine(config, env={}) as engine:
            yield engine


@asynccontextmanager
async def engine_speaking(family: str, profile: ModelProfile) -> AsyncIterator[Engine]:
    """An engine on the simulator's endpoint of ``family``, model ``m``."""
    async with open_simulator(SimConfig(models={"m": profile}, seed=7)) as sim:
        endpoint = ProviderConfig(family=family, base_url=sim.base_url_for(family), api_key="k")
        config = EngineConfig(
            providers={"sim": endpoint}, default_provider="sim", retry=RetryPolicy(max_attempts=1)
        )
        async with open_engine(config, env={}) as engine:
            yield engine


def ask(text: str = "What is the weather in Oslo?") -> Request:
    return Request(model="m", messages=[Message.user(text)], max_tokens=40)


def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: City name.
    """
    return f"{city}: 21 C"


async def test_the_loop_runs_the_tool_and_the_model_answers_with_its_result() -> None:
    events: list[object] = []
    async with engine_with() as engine:
        async with run_tool_loop(engine, ask(), ToolBox([get_weather])) as loop:
            async for event in loop:
                events.append(event)
    kinds = [type(e).__name__ for e in events if not isinstance(e, TextDelta)]
    # Turn 1 calls the tool; turn 2 answers. Provider events pass through in between.
    steps = [
        k
        for k in kinds
        if k in {"TurnStarted", "TurnEnded", "ToolStarted", "ToolFinished", "LoopFinished"}
    ]
    assert steps == [
        "TurnStarted", "TurnEnded", "ToolStarted", "ToolFinished",
        "TurnStarted", "TurnEnded", "LoopFinished",
    ]  # fmt: skip
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert not finished.outcome.is_error and finished.outcome.content.endswith(": 21 C")
    result = loop.result
    assert result is not None and result.stopped == "answered" and result.turns == 2
    assert finished.outcome.content in result.text  # the sim answers using the result
    roles = [m.role for m in result.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert result.messages[1].tool_calls[0].name == "get_weather"
    assert result.messages[2].tool_call_id == result.messages[1].tool_calls[0].id
    turn_usage = [e.response.usage for e in events if isinstance(e, TurnEnded)]
    assert result.usage.output_tokens == sum(u.output_tokens for u in turn_usage) > 0
    assert result.usage.input_tokens == sum(u.input_tokens for u in turn_usage) > 0
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert result.text in text


async def test_parallel_tool_calls_run_concurrently_up_to_the_limit() -> None:
    running = 0
    peak = 0
    both = anyio.Event()

    async def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            both.set()
        with anyio.move_on_after(2):  # with max_parallel=1 nobody else comes
            await both.wait()
        running -= 1
        return key.upper()

    async with engine_with(tool_calls=3) as engine:
        result = await tool_loop(engine, ask(), ToolBox([lookup], max_parallel=3))
        assert peak == 3 and result.tool_calls == 3
        peak = 0
        both = anyio.Event()
        result = await tool_loop(engine, ask(), ToolBox([lookup], max_parallel=1))
        assert peak == 1
    tool_messages = [m for m in result.messages if m.role == "tool"]
    calls = result.messages[1].tool_calls
    assert [m.tool_call_id for m in tool_messages] == [c.id for c in calls]  # call order


async def test_a_raising_tool_becomes_an_error_result_and_the_loop_goes_on() -> None:
    def flaky(city: str) -> str:
        """Always fails.

        Args:
            city: A city.
        """
        raise RuntimeError("the weather service is down")

    async with engine_with() as engine:
        async with run_tool_loop(engine, ask(), ToolBox([flaky])) as loop:
            finished = [e async for e in loop if isinstance(e, ToolFinished)]
    outcome = finished[0].outcome
    assert outcome.is_error and outcome.error_kind == "raised"
    assert "RuntimeError: the weather service is down" in outcome.content
    result = loop.result
    assert result is not None and result.stopped == "answered"
    tool_message = result.messages[2]
    assert tool_message.is_error and "weather service is down" in tool_message.text


async def test_a_tool_past_its_timeout_is_an_error_result() -> None:
    async def slow(city: str) -> str:
        """Never answers.

        Args:
            city: A city.
        """
        await anyio.sleep_forever()
        return "never"

    def blocking(city: str) -> str:
        """Blocks its thread.

        Args:
            city: A city.
        """
        time.sleep(0.5)
        return "late"

    for tool in (slow, blocking):
        async with engine_with() as engine:
            box = ToolBox()
            box.add(tool, timeout=0.05)
            result = await tool_loop(engine, ask(), box)
        tool_message = result.messages[2]
        assert tool_message.is_error
        assert f"tool {tool.__name__!r} did not finish within 0.05 s" in tool_message.text
        assert result.stopped == "answered"


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
async def test_wrong_tool_calls_from_the_model_are_error_results_it_reads(family: str) -> None:
    """The simulator's model calls tools wrongly (bad_tool_calls=1: arguments that
    break the schema, or a tool never offered), over each family's wire format;
    the loop must answer each with an error result, never run the tool, and go on."""
    ran: list[str] = []

    def book(city: str, nights: int) -> str:
        """Book a hotel.

        Args:
            city: Where.
            nights: How many nights.
        """
        ran.append(city)
        return "booked"

    profile = ModelProfile(output_tokens=20, tool_rounds=6, bad_tool_calls=1.0)
    async with engine_speaking(family, profile) as engine:
        async with run_tool_loop(engine, ask(), ToolBox([book]), max_turns=10) as loop:
            outcomes = [e.outcome async for e in loop if isinstance(e, ToolFinished)]
    result = loop.result
    assert result is not None and result.stopped == "answered" and result.turns == 7
    assert len(outcomes) == 6 and ran == []  # a wrong call never runs the tool
    kinds = {o.error_kind for o in outcomes}
    assert all(o.is_error for o in outcomes)
    assert kinds == {"arguments", "unknown_tool"}  # both kinds drawn in six calls
    for outcome in outcomes:
        if outcome.error_kind == "unknown_tool":
            assert "there is no tool named 'unoffered_book'; the tools are: book" in (
                outcome.content
            )
        else:
            assert "book" in outcome.content and (
                "city" in outcome.content or "nights" in (outcome.content)
            )
    # Each error went back to the model as the result of its call.
    results = [m for m in result.messages if m.role == "tool"]
    assert [m.text for m in results] == [o.content for o in outcomes]


PNG = ImagePart(
    data=base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode(), media_type="image/png"
)


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
async def test_a_tool_can_return_an_image_the_model_is_sent(family: str) -> None:
    """A screenshot tool: its image goes back to the model in each family's own
    way (in the tool result; for OpenAI Chat, which takes text only there, in a
    user message after the turn's results), and the provider accepts it."""

    def screenshot(url: str) -> list[str | ImagePart]:
        """Take a screenshot of a page.

        Args:
            url: The page.
        """
        return [f"screenshot of {url}", PNG]

    async with engine_speaking(family, ModelProfile(output_tokens=20)) as engine:
        async with run_tool_loop(engine, ask(), ToolBox([screenshot])) as loop:
            outcomes = [e.outcome async for e in loop if isinstance(e, ToolFinished)]
    result = loop.result
    assert result is not None and result.stopped == "answered" and result.turns == 2
    (outcome,) = outcomes
    assert not outcome.is_error and outcome.images == [PNG]
    assert outcome.content.startswith("screenshot of ")
    tool_message = result.messages[2]
    assert tool_message.role == "tool" and tool_message.parts()[-1] == PNG
    # The exact wire form of each family: tests/providers/families (tool result images).


async def test_a_tool_raising_its_own_timeout_error_is_that_tools_error() -> None:
    """A socket timeout (or a peer agent's ReplyTimeout) inside a tool is the
    tool's error, with or without a tool timeout; it used to crash the loop
    (formatting the absent timeout) or be blamed on a timeout never reached."""

    async def flaky(city: str) -> str:
        """Calls a service that times out.

        Args:
            city: A city.
        """
        raise TimeoutError("the weather service did not answer in 2 s")

    for timeout in (None, 30.0):
        async with engine_with() as engine:
            box = ToolBox()
            box.add(flaky, timeout=timeout)
            result = await tool_loop(engine, ask(), box)
        tool_message = result.messages[2]
        assert tool_message.is_error
        assert "raised TimeoutError: the weather service did not answer in 2 s" in (
            tool_message.text
        )
        assert result.stopped == "answered"


async def test_a_sync_tool_runs_in_a_thread_and_the_loop_keeps_running() -> None:
    threads: list[str] = []
    ticks = 0

    def heavy(city: str) -> str:
        """Blocking work.

        Args:
            city: A city.
        """
        threads.append(threading.current_thread().name)
        time.sleep(0.2)
        return "done"

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with engine_with() as engine, anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        result = await tool_loop(engine, ask(), ToolBox([heavy]))
        tg.cancel_scope.cancel()
    assert threads and threads[0] != threading.main_thread().name
    assert ticks > 0  # the event loop went on while the tool slept
    assert result.messages[2].text == "done"


async def test_the_turn_limit_stops_the_loop_after_the_tools_ran() -> None:
    async with engine_with() as engine:
        result = await tool_loop(engine, ask(), ToolBox([get_weather]), max_turns=1)
    assert result.stopped == "turn_limit" and result.turns == 1 and result.tool_calls == 1
    assert [m.role for m in result.messages] == ["user", "assistant", "tool"]
    with pytest.raises(ValueError, match="max_turns must be at least 1"):
        await tool_loop(engine, ask(), ToolBox([get_weather]), max_turns=0)  # before any call


async def test_leaving_the_block_cancels_a_running_tool() -> None:
    started = anyio.Event()
    cancelled = anyio.Event()

    async def wait_forever(city: str) -> str:
        """Waits.

        Args:
            city: A city.
        """
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "never"

    async with engine_with() as engine:
        with anyio.fail_after(10):  # a hang here would be the bug
            async with run_tool_loop(engine, ask(), ToolBox([wait_forever], timeout=None)) as loop:
                async for event in loop:
                    if isinstance(event, ToolStarted):
                        await started.wait()
                        break
            assert cancelled.is_set()
        assert engine.statistics().ledger.in_flight == 0


async def test_a_failed_model_call_raises_its_typed_error_from_the_loop() -> None:
    fault = Fault(kind="status", status=400, rate=1.0)
    async with engine_with(faults=[fault]) as engine:
        with pytest.raises(BadRequestError):
            await tool_loop(engine, ask(), ToolBox([get_weather]))


async def test_the_box_reports_bad_arguments_and_unknown_tools_to_the_model() -> None:
    box = ToolBox([get_weather])
    bad = await box.run(ToolCall(id="c1", name="get_weather", arguments='{"town": "Oslo"}'))
    assert bad.is_error and bad.error_kind == "arguments"
    assert "unknown argument 'town'" in bad.content
    broken = await box.run(ToolCall(id="c2", name="get_weather", arguments="{not json"))
    assert broken.is_error and "not valid JSON" in broken.content
    unknown = await box.run(ToolCall(id="c3", name="nope", arguments="{}"))
    assert unknown.error_kind == "unknown_tool" and "get_weather" in unknown.content
    ok = await box.run(ToolCall(id="c4", name="get_weather", arguments='{"city": "Rome"}'))
    assert (ok.content, ok.is_error, ok.message().tool_call_id) == ("Rome: 21 C", False, "c4")


async def test_struct_tools_and_non_text_results() -> None:
    class Plan(msgspec.Struct):
        """A plan.

        Attributes:
            steps: The steps.
        """

        steps: list[str]

    async def count(words: list[str]) -> dict[str, int]:
        """Count words.

        Args:
            words: The words.
        """
        return {"n": len(words)}

    box = ToolBox([count])
    box.add(Plan)  # structured output: the arguments come back as the result
    box.add(Plan, name="plan_len", handler=lambda plan: len(plan.steps))
    assert [s.name for s in box.specs] == ["count", "Plan", "plan_len"]
    with pytest.raises(ValueError, match="already"):
        box.add(count)
    counted = await box.run(ToolCall(id="a", name="count", arguments='{"words": ["x", "y"]}'))
    assert counted.content == '{"n":2}'
    echoed = await box.run(ToolCall(id="b", name="Plan", arguments='{"steps": ["s"]}'))
    assert echoed.content == '{"steps":["s"]}'
    handled = await box.run(ToolCall(id="c", name="plan_len", arguments='{"steps": ["s", "t"]}'))
    assert handled.content == "2"


def test_the_box_refuses_bad_settings_by_name() -> None:
    with pytest.raises(ValueError, match="max_parallel"):
        ToolBox(max_parallel=0)
    with pytest.raises(ValueError, match="timeout"):
        ToolBox(timeout=0)
    with pytest.raises(ValueError, match="timeout must be positive"):
        ToolBox().add(get_weather, timeout=-1)


async def test_turn_events_carry_their_turn_numbers() -> None:
    async with engine_with() as engine:
        async with run_tool_loop(engine, ask(), ToolBox([get_weather])) as loop:
            events = [e async for e in loop]
    numbered = [
        (type(e).__name__, e.turn)
        for e in events
        if isinstance(e, TurnStarted | ToolStarted | ToolFinished | TurnEnded)
    ]
    assert numbered == [
        ("TurnStarted", 1), ("TurnEnded", 1), ("ToolStarted", 1), ("ToolFinished", 1),
        ("TurnStarted", 2), ("TurnEnded", 2),
    ]  # fmt: skip
    assert isinstance(events[-1], LoopFinished)


async def test_an_error_in_the_loops_block_comes_out_as_itself() -> None:
    async with engine_with() as engine:
        with pytest.raises(LookupError, match="mine"):
            async with run_tool_loop(engine, ask(), ToolBox([get_weather])) as loop:
                async for event in loop:
                    if isinstance(event, ToolStarted):
                        raise LookupError("mine")
        assert engine.statistics().ledger.in_flight == 0


def test_one_tool_box_serves_trio_then_asyncio_in_one_process() -> None:
    """An application may run a box under trio (or the blocking portal) and later
    under asyncio: the sync tools' thread limiter is made for the loop that runs."""

    def double(n: int) -> int:
        """Twice n.

        Args:
            n: A number.
        """
        return 2 * n

    box = ToolBox([double])

    async def run(n: int) -> str:
        return (await box.run(ToolCall(id="c", name="double", arguments=f'{{"n": {n}}}'))).content

    assert anyio.run(run, 2, backend="trio") == "4"
    assert anyio.run(run, 3, backend="asyncio") == "6"
    assert anyio.run(run, 4, backend="trio") == "8"
