"""What attempts whose output was thrown away cost, in the ledger: a stream cut
short, a timed-out or cancelled one, the attempts before a retry that succeeded.
Providers bill them; the ledger keeps them apart from the answer's own usage."""

from __future__ import annotations

import anyio
import pytest

from providers import Message, Request, TextDelta
from providers.events import Usage
from providers.sim import Fault, SimConfig, open_simulator
from providers.sim import RateLimit as SimRateLimit
from swarm.config import EngineConfig, ProviderConfig
from swarm.engine import open_engine
from swarm.events import Failed
from swarm.pricing import Price
from swarm.resilience import RetryPolicy
from swarm.tokens import estimate_input_tokens

from .test_engine import FAST, FAST_RETRY, SLOW, ask, balanced, engine_on_sim

pytestmark = pytest.mark.anyio

CUT = Fault(kind="disconnect", after=5, rate=1.0, models=["fast"])


async def test_a_stream_cut_short_is_counted_as_discarded_and_estimated() -> None:
    config = SimConfig(models={"fast": FAST}, faults=[CUT])
    request = ask("count what this costs")
    prices = {"fast": Price(input=1.0, output=2.0)}
    async with engine_on_sim(config, prices=prices) as (engine, _):
        async with engine.stream(request, allow_restart=False) as call:
            events = [e async for e in call]
        record = engine.ledger.records()[-1]
        stats = engine.statistics().ledger
        balanced(engine)
    assert isinstance(events[-1], Failed)
    streamed = sum(isinstance(e, TextDelta) for e in events)
    assert streamed > 0
    # OpenAI reports usage only at the end: both figures are estimates.
    assert record.discarded_estimated
    assert record.discarded_usage.input_tokens == estimate_input_tokens(request)
    assert record.discarded_usage.output_tokens == streamed
    assert record.usage == Usage()  # no answer
    inp, out = record.discarded_usage.input_tokens, record.discarded_usage.output_tokens
    assert record.discarded_cost_usd == pytest.approx((inp * 1.0 + out * 2.0) / 1e6)
    assert (stats.discarded_input_tokens, stats.discarded_output_tokens) == (inp, out)
    assert stats.discarded_cost_usd == pytest.approx(record.discarded_cost_usd)


async def test_every_attempt_of_a_restarted_call_adds_up() -> None:
    config = SimConfig(models={"fast": FAST}, faults=[CUT])
    policy = RetryPolicy(base_delay=0.005, max_delay=0.02, max_attempts=3)
    async with engine_on_sim(config, retry=policy) as (engine, _):
        async with engine.stream(ask("again and again"), allow_restart=True) as call:
            events = [e async for e in call]
        record = engine.ledger.records()[-1]
    assert isinstance(events[-1], Failed)
    assert record.attempts == 3
    assert record.discarded_usage.output_tokens == sum(isinstance(e, TextDelta) for e in events)
    assert record.discarded_usage.input_tokens == 3 * estimate_input_tokens(ask("again and again"))


async def test_invisible_retries_of_calls_that_then_completed_are_counted() -> None:
    # Half the attempts are cut after two events (drawn afresh per attempt): the
    # calls that needed more than one attempt paid for the ones before.
    fault = Fault(kind="disconnect", after=2, rate=0.5, seed=3, models=["fast"])
    config = SimConfig(models={"fast": FAST}, faults=[fault])
    policy = RetryPolicy(base_delay=0.005, max_delay=0.02, max_attempts=8, restarts_allowed=True)
    async with engine_on_sim(config, retry=policy) as (engine, _):
        results = [r async for r in engine.map([ask(f"q{i}") for i in range(16)], concurrency=8)]
        records = engine.ledger.records()
        balanced(engine)
    assert sum(r.ok for r in results) >= 12  # (the retry budget may end a few)
    retried = [r for r in records if r.outcome == "completed" and r.attempts > 1]
    assert retried, "the seed gives some calls a cut attempt before they complete"
    for record in records:
        # Every failed attempt here was cut after its response opened: billed.
        assert (record.discarded_usage.input_tokens > 0) == (
            record.attempts > 1 or record.outcome == "failed"
        ), record
        if record.outcome == "completed":
            assert record.usage.output_tokens == 12  # the answer's own usage is apart


async def test_a_429_before_any_response_costs_nothing() -> None:
    config = SimConfig(models={"fast": FAST}, rate_limit=SimRateLimit(rpm=1))
    async with engine_on_sim(config, retry=RetryPolicy(max_attempts=1)) as (engine, _):
        assert (await engine.complete(ask("first"))).text
        async with engine.stream(ask("refused")) as call:
            events = [e async for e in call]
        record = engine.ledger.records()[-1]
    assert isinstance(events[-1], Failed) and events[-1].error.kind == "RateLimitError"
    assert record.discarded_usage == Usage() and record.discarded_cost_usd is None
    assert not record.discarded_estimated


async def test_a_call_cancelled_mid_stream_counts_what_it_received() -> None:
    config = SimConfig(models={"slow": SLOW})
    async with engine_on_sim(config) as (engine, _):
        async with engine.stream(ask("long answer", model="slow")) as call:
            seen = 0
            async for event in call:
                seen += isinstance(event, TextDelta)
                if seen == 5:
                    call.cancel()
        with anyio.fail_after(5):
            while not engine.ledger.records():  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.005)
        record = engine.ledger.records()[-1]
        balanced(engine)
    assert record.outcome == "cancelled"
    assert record.discarded_usage.output_tokens >= 5
    assert record.discarded_usage.input_tokens == estimate_input_tokens(ask("long answer"))


async def test_anthropic_reports_input_tokens_at_the_start_so_they_are_exact() -> None:
    # The same prompt on two models: one answers, the other is cut after its
    # message_start (which carries the exact input tokens).
    profiles = {"claude-ok": FAST, "claude-cut": FAST}
    cut = Fault(kind="disconnect", after=4, rate=1.0, models=["claude-cut"])
    config = SimConfig(models=profiles, faults=[cut])
    async with open_simulator(config) as sim:
        provider = ProviderConfig(
            family="anthropic", base_url=sim.anthropic_base_url, api_key="sk-ant-test"
        )
        engine_config = EngineConfig(
            providers={"a": provider}, default_provider="a", retry=FAST_RETRY
        )
        text = "a prompt whose tokens the provider counts"
        async with open_engine(engine_config, env={}) as engine:
            ok = await engine.complete(
                Request(model="claude-ok", messages=[Message.user(text)], max_tokens=50)
            )
            request = Request(model="claude-cut", messages=[Message.user(text)], max_tokens=50)
            async with engine.stream(request, allow_restart=False) as call:
                events = [e async for e in call]
            record = engine.ledger.records()[-1]
    assert isinstance(events[-1], Failed)
    assert ok.usage.input_tokens > 0
    assert record.discarded_usage.input_tokens == ok.usage.input_tokens
