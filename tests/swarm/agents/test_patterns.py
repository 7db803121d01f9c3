"""Swarm patterns (map, pipeline, consensus) over a real swarm on the simulator, on
trio and asyncio: concurrency limits hold, order is what was asked for, every input
gets one outcome, failures stay with their input, bounded queues push back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from providers import Message
from providers.sim import ModelProfile, SimConfig, open_simulator
from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.agents import (
    Agent,
    AgentContext,
    AgentError,
    Budget,
    BudgetExhausted,
    ReplyTimeout,
    UnknownAgent,
    open_swarm,
)
from swarm.agents.runtime import Swarm
from swarm.execution import ToolBox, ToolOutcome
from swarm.patterns import (
    NoConsensus,
    Stage,
    consensus,
    map_agent,
    normalize_answer,
    open_map,
    open_pipeline,
    run_pipeline,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def swarm_of(
    *agents: Agent, models: dict[str, ModelProfile] | None = None, budget: Budget | None = None
) -> AsyncIterator[Swarm]:
    profile = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=12)
    async with open_simulator(SimConfig(models=models or {"m": profile})) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(family="openai", base_url=sim.openai_base_url, api_key="sk-t")
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=1),
        )
        async with (
            open_engine(config, env={}) as engine,
            open_swarm(engine, agents, budget=budget) as crew,
        ):
            yield crew
        assert engine.ledger.statistics().in_flight == 0


class Gauge:
    """Counts handlers running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *_: object) -> None:
        self.now -= 1


def delayed(gauge: Gauge, transform: str = "upper") -> Agent:
    """An agent whose answer is its input transformed, after a delay that makes
    later inputs finish first (so completion order differs from input order)."""

    async def handler(ctx: AgentContext, messages: list[Message]) -> str:
        text = messages[-1].text
        with gauge:
            number = int(text.split()[-1]) if text.split()[-1].isdigit() else 0
            await anyio.sleep(0.002 * (10 - number % 10))
        if "bad" in text:
            raise ValueError(f"cannot do {text!r}")
        return text.upper() if transform == "upper" else f"{text}+"

    return Agent("worker", handler=handler, model="m", concurrency=64)


# -- map --------------------------------------------------------------------------------


async def test_map_keeps_the_concurrency_limit_and_gathers_in_input_order() -> None:
    gauge = Gauge()
    async with swarm_of(delayed(gauge)) as crew:
        items = await map_agent(crew, "worker", [f"task {i}" for i in range(40)], concurrency=5)
    assert [item.index for item in items] == list(range(40))
    assert [item.text for item in items] == [f"TASK {i}" for i in range(40)]
    assert gauge.peak <= 5
    assert gauge.peak == 5  # and it is used


async def test_map_in_completion_order_yields_as_they_finish() -> None:
    gauge = Gauge()
    async with swarm_of(delayed(gauge)) as crew:
        async with open_map(crew, "worker", [f"t {i}" for i in range(10)], concurrency=10) as res:
            order = [item.index async for item in res]
    assert sorted(order) == list(range(10))
    assert order != list(range(10))  # the later ones were quicker


async def test_map_failures_stay_with_their_input() -> None:
    inputs = ["a 1", "bad 2", "c 3", 42]
    async with swarm_of(delayed(Gauge())) as crew:
        items = await map_agent(crew, "worker", inputs, concurrency=2)  # type: ignore[arg-type]
    assert [i.ok for i in items] == [True, False, True, False]
    assert isinstance(items[1].error, AgentError)
    assert isinstance(items[3].error, TypeError) and "pass prompt=" in str(items[3].error)
    with pytest.raises(AgentError):
        _ = items[1].text
    assert items[2].text == "C 3"


async def test_map_with_a_prompt_and_a_lazy_input_generator() -> None:
    pulled: list[int] = []

    def numbers() -> object:
        for i in range(1000):
            pulled.append(i)
            yield i

    async with swarm_of(delayed(Gauge())) as crew:
        async with open_map(
            crew, "worker", numbers(), concurrency=4, prompt=lambda n: f"number {n}"
        ) as res:  # type: ignore[arg-type]
            first = []
            async for item in res:
                first.append(item.text)
                if len(first) == 3:
                    break  # leaving early withdraws the rest
        await anyio.sleep(0.05)
        report = crew.report().agents["worker"]
    assert all(text.startswith("NUMBER ") for text in first)
    assert len(pulled) < 20  # the inputs were read lazily, a few ahead
    assert report.busy == 0


async def test_map_with_a_model_agent_and_a_timeout() -> None:
    async def never(ctx: AgentContext, messages: list[Message]) -> str:
        await anyio.sleep(60)
        return ""

    model = Agent("summarizer", "Summarize.", model="m", concurrency=8)
    async with swarm_of(model, Agent("stuck", handler=never, model="m")) as crew:
        items = await map_agent(crew, "summarizer", [f"doc {i}" for i in range(12)])
        stuck = await map_agent(crew, "stuck", ["x"], timeout=0.1)
    assert all(item.ok and item.text for item in items)
    assert isinstance(stuck[0].error, ReplyTimeout)


async def test_map_refuses_bad_settings_before_sending_anything() -> None:
    async with swarm_of(delayed(Gauge())) as crew:
        with pytest.raises(UnknownAgent, match="no agent named 'nope'"):
            await map_agent(crew, "nope", ["x"])
        with pytest.raises(ValueError, match="concurrency must be an int >= 1"):
            await map_agent(crew, "worker", ["x"], concurrency=0)
        with pytest.raises(ValueError, match="order must be"):
            await map_agent(crew, "worker", ["x"], order="random")  # type: ignore[arg-type]
        with pytest.raises(UnknownAgent, match="no agent named 'nope'"):
            await map_agent(crew, ["worker", "nope"], ["x"])
        with pytest.raises(ValueError, match="non-empty list"):
            await map_agent(crew, [], ["x"])
        assert crew.report().agents["worker"].messages == 0


async def test_map_over_a_pool_spreads_inputs_evenly_in_input_order() -> None:
    log: list[str] = []
    pool = [stage_agent(f"w{k}", log) for k in range(3)]
    async with swarm_of(*pool) as crew:
        items = await map_agent(crew, ["w0", "w1", "w2"], [f"x{i}" for i in range(9)])
        report = crew.report()
    assert [item.text for item in items] == [f"x{i}>w{i % 3}" for i in range(9)]
    assert [report.agents[f"w{k}"].replies for k in range(3)] == [3, 3, 3]


# -- pipeline ---------------------------------------------------------------------------


def stage_agent(name: str, log: list[str], gauge: Gauge | None = None, delay: float = 0) -> Agent:
    async def handler(ctx: AgentContext, messages: list[Message]) -> str:
        text = messages[-1].text
        log.append(f"{name}:{text}")
        if gauge is None:
            await anyio.sleep(delay)
        else:
            with gauge:
                await anyio.sleep(delay)
        if text.endswith("!"):
            raise RuntimeError(f"{name} refuses {text!r}")
        return f"{text}>{name}"

    return Agent(name, handler=handler, model="m", concurrency=16, mailbox=64)


async def test_a_pipeline_runs_every_input_through_every_stage() -> None:
    log: list[str] = []
    agents = [stage_agent(n, log) for n in ("a", "b", "c")]
    async with swarm_of(*agents) as crew:
        items = await run_pipeline(crew, ["a", Stage("b", workers=3), "c"], ["x", "y", "z"])
    assert [item.text for item in items] == ["x>a>b>c", "y>a>b>c", "z>a>b>c"]
    assert all(len(item.replies) == 3 and item.stage is None for item in items)


async def test_a_pipeline_failure_comes_out_with_its_stage_and_the_rest_flow_on() -> None:
    log: list[str] = []

    def shout(text: str) -> str:
        return text + "!" if text.startswith("boom") else text

    agents = [stage_agent(n, log) for n in ("a", "b")]
    async with swarm_of(*agents) as crew:
        items = await run_pipeline(crew, ["a", Stage("b", prompt=shout)], ["ok", "boom", "fine"])
    assert [i.ok for i in items] == [True, False, True]
    assert items[1].stage == 1 and isinstance(items[1].error, AgentError)
    assert [r.text for r in items[1].replies] == ["boom>a"]  # what it got through
    assert "b:boom>a!" in log
    assert items[2].text == "fine>a>b"


async def test_a_slow_stage_pushes_back_through_the_bounded_queues() -> None:
    log: list[str] = []
    gauge = Gauge()
    async with swarm_of(stage_agent("fast", log), stage_agent("slow", log, gauge, 0.05)) as crew:
        stages = [Stage("fast", prompt=str), "slow"]
        async with open_pipeline(crew, stages, range(100), buffer=2) as results:
            got = []
            async for item in results:
                got.append(item)
                if len(got) == 2:
                    ahead = len([e for e in log if e.startswith("fast:")])
                    break
    # fast is ahead of slow only by what the queues hold (2 + 2, one in slow's hand,
    # one in fast's), never the whole input.
    assert ahead <= 2 + 2 + 2 + 2
    assert gauge.peak == 1  # slow has one worker


async def test_a_pipeline_refuses_bad_stages() -> None:
    async with swarm_of(stage_agent("a", [])) as crew:
        with pytest.raises(UnknownAgent, match="'zzz'"):
            await run_pipeline(crew, ["a", "zzz"], ["x"])
        with pytest.raises(ValueError, match="non-empty list of stages"):
            await run_pipeline(crew, [], ["x"])
        with pytest.raises(ValueError, match="non-empty list of stages"):
            await run_pipeline(crew, "a", ["x"])
        with pytest.raises(ValueError, match="buffer must be"):
            await run_pipeline(crew, ["a"], ["x"], buffer=0)
    with pytest.raises(ValueError, match="workers must be"):
        Stage("a", workers=0)
    with pytest.raises(TypeError, match="non-empty tuple of names"):
        Stage(())


async def test_a_pipeline_stage_can_be_a_pool() -> None:
    log: list[str] = []
    agents = [stage_agent(n, log) for n in ("a", "b0", "b1")]
    async with swarm_of(*agents) as crew:
        items = await run_pipeline(crew, ["a", Stage(("b0", "b1"), workers=2)], ["x", "y", "z"])
        with pytest.raises(UnknownAgent, match="'b9'"):
            await run_pipeline(crew, [Stage(("b0", "b9"))], ["x"])
    assert sorted(item.text for item in items) == ["x>a>b0", "y>a>b1", "z>a>b0"]


# -- consensus --------------------------------------------------------------------------


def says(name: str, answer: str | Exception) -> Agent:
    async def handler(ctx: AgentContext, messages: list[Message]) -> str:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Agent(name, handler=handler, model="m")


async def test_a_vote_picks_the_most_common_answer_ignoring_case_and_punctuation() -> None:
    voters = [says("a", "Paris."), says("b", "paris"), says("c", "Lyon"), says("d", "  PARIS!")]
    async with swarm_of(*voters) as crew:
        result = await consensus(crew, ["a", "b", "c", "d"], "Capital of France?")
    assert result.answer == "Paris."
    assert result.votes == {"paris": 3, "lyon": 1}
    assert result.agreement == 0.75 and not result.tie
    assert set(result.replies) == {"a", "b", "c", "d"}


async def test_a_tie_goes_to_the_first_agent_and_says_so() -> None:
    async with swarm_of(says("a", "no"), says("b", "yes")) as crew:
        result = await consensus(crew, ["b", "a"], "Well?")
    assert result.answer == "yes" and result.tie


async def test_failed_voters_are_left_out_and_a_quorum_is_enforced() -> None:
    voters = [says("a", "42"), says("b", RuntimeError("down")), says("c", "42")]
    async with swarm_of(*voters) as crew:
        result = await consensus(crew, ["a", "b", "c"], "Answer?")
        assert result.answer == "42" and set(result.errors) == {"b"}
        assert result.agreement == 1.0
        with pytest.raises(NoConsensus, match="only 2 of 3 agents answered") as info:
            await consensus(crew, ["a", "b", "c"], "Answer?", quorum=3)
    assert set(info.value.replies) == {"a", "c"} and set(info.value.errors) == {"b"}


async def test_a_judge_sees_every_answer_and_decides() -> None:
    seen: list[str] = []

    async def judge(ctx: AgentContext, messages: list[Message]) -> str:
        seen.append(messages[-1].text)
        return "Paris"

    agents = [says("a", "Paris"), says("b", "Lyon"), Agent("judge", handler=judge, model="m")]
    async with swarm_of(*agents) as crew:
        result = await consensus(crew, ["a", "b"], "Capital?", method="judge", judge="judge")
    assert result.answer == "Paris" and result.method == "judge"
    assert result.judge is not None and result.agreement == 0.5
    assert "Question: Capital?" in seen[0]
    assert "Answer 1: Paris" in seen[0] and "Answer 2: Lyon" in seen[0]


async def test_consensus_across_model_agents_on_the_simulator() -> None:
    agents = [Agent(f"m{i}", "Answer.", model="m") for i in range(3)]
    agents.append(Agent("judge", "Pick the best answer.", model="m"))
    async with swarm_of(*agents) as crew:
        result = await consensus(crew, ["m0", "m1", "m2"], "Why?", method="judge", judge="judge")
    assert result.answer and len(result.replies) == 3 and not result.errors


async def test_a_budget_spent_before_a_quorum_is_raised_as_budget_exhausted() -> None:
    """The swarm's budget running out is the swarm's condition: consensus raises it
    (there is no vote to give), with the NoConsensus (what answers there were) as
    cause; map and pipeline instead give each input its outcome, BudgetExhausted
    for those not answered."""
    slow = ModelProfile(ttft=0.0, tokens_per_second=5, output_tokens=200)
    voters = [Agent(f"v{i}", "Answer.", model="slow") for i in range(3)]
    async with swarm_of(*voters, models={"slow": slow}, budget=Budget(seconds=0.3)) as crew:
        with anyio.fail_after(20), pytest.raises(BudgetExhausted, match="time") as caught:
            await consensus(crew, ["v0", "v1", "v2"], "Why?")
    cause = caught.value.__cause__
    assert isinstance(cause, NoConsensus) and set(cause.errors) == {"v0", "v1", "v2"}


async def test_consensus_refuses_bad_settings() -> None:
    async with swarm_of(says("a", "x"), says("b", "y")) as crew:
        with pytest.raises(ValueError, match="needs judge="):
            await consensus(crew, ["a", "b"], "q", method="judge")
        with pytest.raises(ValueError, match="judge= is for method='judge'"):
            await consensus(crew, ["a", "b"], "q", judge="a")
        with pytest.raises(ValueError, match="repeats a name"):
            await consensus(crew, ["a", "a"], "q")
        with pytest.raises(ValueError, match=r"quorum must be within 1\.\.2"):
            await consensus(crew, ["a", "b"], "q", quorum=3)
        with pytest.raises(UnknownAgent):
            await consensus(crew, ["a", "zzz"], "q")
        with pytest.raises(ValueError, match="non-empty list"):
            await consensus(crew, "ab", "q")


def test_normalize_answer() -> None:
    assert normalize_answer('  "Yes!"  ') == "yes"
    assert normalize_answer("New\n  York.") == "new york"


# -- budgets, cancellation and failing tools, with model agents -----------------------


async def test_a_map_over_model_agents_stops_when_the_token_budget_is_spent() -> None:
    model = Agent("summarizer", "Summarize.", model="m", concurrency=4)
    async with swarm_of(model, budget=Budget(tokens=400)) as crew:
        with anyio.fail_after(20):
            items = await map_agent(crew, "summarizer", [f"doc {i}" for i in range(40)])
        report = crew.report()
        calls = len(crew.engine.ledger.records())
    # Every input has its one outcome: answered while the budget lasted, then
    # BudgetExhausted for the rest, which never reached a model.
    done = [item for item in items if item.ok]
    spent = [item for item in items if isinstance(item.error, BudgetExhausted)]
    assert len(items) == 40 and len(done) + len(spent) == 40
    assert done and spent and calls < 40
    assert report.stopped == "budget" and report.spent.tokens >= 400
    # swarm_of checks that no call is left in flight.


async def test_cancelling_a_pipeline_of_model_agents_cancels_their_calls() -> None:
    slow = ModelProfile(ttft=0.0, tokens_per_second=20, output_tokens=40)  # 2 s a call
    agents = [Agent(n, "Rewrite.", model="slow", concurrency=4) for n in ("draft", "edit")]
    async with swarm_of(*agents, models={"slow": slow}) as crew:
        with anyio.move_on_after(0.5) as scope:
            async with open_pipeline(
                crew, ["draft", "edit"], [f"text {i}" for i in range(6)]
            ) as out:
                async for _ in out:
                    pass
        assert scope.cancelled_caught
        with anyio.fail_after(10):
            while crew.engine.ledger.statistics().in_flight:  # noqa: ASYNC110 - a statistic
                await anyio.sleep(0.01)
        stats = crew.engine.ledger.statistics()
    # The calls in flight when the pipeline was cancelled ended Cancelled, not later.
    assert stats.cancelled >= 1 and stats.completed == 0


async def test_a_failing_or_hanging_tool_in_a_mapped_agent_is_a_result_it_reads() -> None:
    def flaky_lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        raise ConnectionError("the lookup service is down")

    async def slow_lookup(key: str) -> str:
        """Look a key up slowly.

        Args:
            key: The key.
        """
        await anyio.sleep(60)
        return "never"

    tools = ToolBox(timeout=0.1)
    tools.add(flaky_lookup)
    tools.add(slow_lookup)
    agent = Agent("researcher", "Look things up.", model="tools", tools=tools, concurrency=8)
    caller = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=12, tool_calls=2)
    async with swarm_of(agent, models={"tools": caller}) as crew:
        seen: list[ToolOutcome] = []
        crew.add_tool_listener(lambda name, outcome: seen.append(outcome))
        items = await map_agent(crew, "researcher", [f"topic {i}" for i in range(8)])
    # Every input answered: a tool's failure is a result the model reads, not the item's.
    assert all(item.ok and item.text for item in items)
    assert len(seen) == 16  # two calls for each of the 8 inputs
    for outcome in seen:
        assert outcome.is_error
        if outcome.name == "slow_lookup":
            assert outcome.error_kind == "timeout"
            assert "did not finish within 0.1 s" in outcome.content
        else:
            assert outcome.error_kind == "raised"
            assert "ConnectionError: the lookup service is down" in outcome.content
    assert {o.name for o in seen} == {"slow_lookup", "flaky_lookup"}
