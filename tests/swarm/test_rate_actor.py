"""The rate-limit actor between the scheduler and the provider actor, end to end
against the simulator, on trio and asyncio: order under limits, cancellation and
deadlines of waiting calls, crashes, shutdown, and limits learned from headers."""

from __future__ import annotations

import anyio
import pytest

from providers.errors import TimeoutError
from providers.sim import ModelProfile, SimConfig
from providers.sim import RateLimit as SimRateLimit
from swarm.events import Cancelled, Completed, Failed
from swarm.rate_actor import ADMIT_WINDOW
from swarm.ratelimit import FixedConcurrency, RateLimitConfig, RateLimiterStatistics
from swarm.resilience import RetryPolicy

from .test_engine import FAST, ask, balanced, engine_on_sim, eventually

pytestmark = pytest.mark.anyio

THINKING = ModelProfile(ttft=0.05, tokens_per_second=0, output_tokens=3)


def rpm(n: int) -> RateLimitConfig:
    return RateLimitConfig(requests_per_minute=n)


async def statistics_once_released(engine: object, released: int) -> RateLimiterStatistics:
    """The model's limiter statistics once it has settled ``released`` permits (a
    settlement reaches the rate actor as a message, after the call's last event)."""
    with anyio.fail_after(5):
        while True:
            stats = (await engine.rate_limit_statistics())["sim"]["fast"]  # type: ignore[attr-defined]
            if stats.released >= released:
                return stats
            await anyio.sleep(0.005)


def sim_requests(sim: object) -> int:
    outcomes = sim.stats.snapshot()["by_outcome"]  # type: ignore[attr-defined]
    return int(sum(outcomes.values()))


async def test_priority_still_decides_while_a_rate_limit_holds_calls_back() -> None:
    # One permit at a time (concurrency 1) for a model that takes 0.05 s: a flood of
    # low-priority calls is queued first, then one high-priority call. It must not
    # wait behind the flood: only the calls already handed to the lane (at most
    # ADMIT_WINDOW) may go before it. The provider itself has room for them all.
    limits = RateLimitConfig(concurrency=FixedConcurrency(limit=1))
    config = SimConfig(models={"thinking": THINKING})
    async with engine_on_sim(config, provider_rate_limit=limits) as (engine, _):
        low = [await engine.submit(ask(f"low{i}", model="thinking")) for i in range(30)]
        await eventually(lambda: engine.statistics().providers["sim"].running == 1)
        high = await engine.submit(ask("high", model="thinking"), priority=10)
        async with anyio.create_task_group() as tg:
            order: list[str] = []

            async def wait(name: str, call: object) -> None:
                await call.response()  # type: ignore[attr-defined]
                order.append(name)

            tg.start_soon(wait, "high", high)
            for i, call in enumerate(low):
                tg.start_soon(wait, f"low{i}", call)
        balanced(engine)
    assert len(order) == 31
    assert order.index("high") <= ADMIT_WINDOW + 1


async def test_a_call_waiting_for_its_permit_is_cancelled_at_once_and_never_sent() -> None:
    config = SimConfig(models={"fast": FAST}, rate_limit=SimRateLimit(rpm=1))
    async with engine_on_sim(config, provider_rate_limit=rpm(1)) as (engine, sim):
        assert (await engine.complete(ask("one"))).text
        waiting = await engine.submit(ask("two"))
        await anyio.sleep(0.05)
        with anyio.fail_after(1):  # the bucket refills in 60 s: this is the cancel
            waiting.cancel()
            events = [e async for e in waiting]
        record = engine.ledger.records()[-1]
        assert sim_requests(sim) == 1
        balanced(engine)
        # The lane is free again: another call waits for the bucket, not for a leak.
        stats = (await engine.rate_limit_statistics())["sim"]["fast"]
    assert len(events) == 1 and isinstance(events[0], Cancelled)
    assert events[0].reason == "caller"
    assert record.outcome == "cancelled" and record.attempts == 0
    assert stats.inflight == 0


async def test_a_deadline_passing_while_waiting_for_a_permit_fails_without_a_request() -> None:
    config = SimConfig(models={"fast": FAST})
    async with engine_on_sim(config, provider_rate_limit=rpm(1)) as (engine, sim):
        assert (await engine.complete(ask("one"))).text
        call = await engine.submit(ask("two"), timeout=0.2)
        with anyio.fail_after(2):
            events = [e async for e in call]
        assert sim_requests(sim) == 1
        balanced(engine)
    assert isinstance(events[-1], Failed)
    assert events[-1].error.kind == "TimeoutError"
    assert "waited for the rate limit" in events[-1].error.message
    with pytest.raises(TimeoutError, match="waited for the rate limit"):
        await call.response()


async def test_a_crashed_rate_limit_actor_loses_no_call_and_keeps_its_buckets() -> None:
    # 3 rpm: three calls go at once, the others wait in the lane or the queue. The
    # actor crashes; its waiting calls go back to the scheduler and the restarted
    # actor still knows that the bucket is empty (no burst of 3 more).
    config = SimConfig(models={"fast": FAST}, rate_limit=SimRateLimit(rpm=3))
    async with engine_on_sim(config, provider_rate_limit=rpm(3)) as (engine, sim):
        calls = [await engine.submit(ask(f"q{i}"), timeout=1.0) for i in range(8)]
        await eventually(lambda: engine.statistics().ledger.completed == 3)
        engine._gates["sim"].crash()
        await eventually(lambda: engine.statistics().supervisor.restarts >= 1)  # type: ignore[union-attr]
        results = [[e async for e in call][-1] for call in calls]
        assert sim_requests(sim) == 3
        balanced(engine)
        outcomes = sim.stats.snapshot()["by_outcome"]  # type: ignore[attr-defined]
    assert sum(isinstance(r, Completed) for r in results) == 3
    # The five others waited for a permit until their deadline: none was lost, none sent.
    assert sum(isinstance(r, Failed) and r.error.kind == "TimeoutError" for r in results) == 5
    assert set(outcomes) == {"ok"}


async def test_shutdown_cancels_the_calls_waiting_for_a_permit() -> None:
    config = SimConfig(models={"fast": FAST})
    async with engine_on_sim(config, provider_rate_limit=rpm(1), shutdown_timeout=0.2) as (
        engine,
        _,
    ):
        assert (await engine.complete(ask("one"))).text
        waiting = [await engine.submit(ask(f"q{i}")) for i in range(3)]
        await anyio.sleep(0.05)
    results = [[e async for e in call][-1] for call in waiting]
    assert all(isinstance(r, Cancelled) and r.reason == "shutdown" for r in results)
    balanced(engine)


async def test_limits_learned_from_headers_keep_a_flood_under_the_providers_limit() -> None:
    # Nothing configured but "keep to what the provider reports": the simulator allows
    # 30 requests a minute and says so in its headers. Without learning, a flood of 60
    # quick calls draws 429s; with it, the first response teaches the limit and the
    # rest wait (the deadline ends them), so the simulator refuses next to nothing.
    config = SimConfig(models={"fast": FAST}, rate_limit=SimRateLimit(rpm=30))
    async with engine_on_sim(config, provider_rate_limit=RateLimitConfig()) as (engine, sim):
        flood = [ask(f"q{i}") for i in range(60)]
        results = [r async for r in engine.map(flood, concurrency=60, timeout=1.0)]
        outcomes = sim.stats.snapshot()["by_outcome"]  # type: ignore[attr-defined]
        learned = (await engine.rate_limit_statistics())["sim"]["fast"]
        balanced(engine)
    assert learned.requests_ceiling == 30.0
    ok = sum(r.ok for r in results)
    assert 25 <= ok <= 31
    # Calls sent before the first response came back may meet the limit; at most the
    # first round of a connecting gate's worth, never the flood.
    assert outcomes.get("rate_limited", 0) <= 5


@pytest.mark.parametrize("refused_on", ["tokens", "requests"])
async def test_a_429_cuts_only_the_limit_it_names_and_teaches_its_headers(
    refused_on: str,
) -> None:
    # The engine allows more than the simulator. A call is refused (a token cost
    # above the simulator's whole TPM; or, of two sent at once, the second request
    # of an RPM of 1): the 429's headers and wording say which limit it hit, so only
    # that rate is cut and its ceiling comes down to what the provider reports; the
    # other limit is left alone (an unnamed 429 cuts both).
    sim_limit = SimRateLimit(tpm=1_000) if refused_on == "tokens" else SimRateLimit(rpm=1)
    config = SimConfig(models={"fast": FAST}, rate_limit=sim_limit)
    # No slow start: it would hold the second call until the first one's headers
    # taught the real RPM, and there would be no 429 to follow.
    limits = RateLimitConfig(
        requests_per_minute=6_000,
        tokens_per_minute=1_000_000,
        refund_unused_tokens=False,
        learning_probes=0,
    )
    async with engine_on_sim(
        config, provider_rate_limit=limits, retry=RetryPolicy(max_attempts=1)
    ) as (engine, sim):
        if refused_on == "tokens":
            call = await engine.submit(ask("refused", max_tokens=5_000))
            events = [e async for e in call]
        else:
            results = [r async for r in engine.map([ask("a"), ask("b")], concurrency=2)]
            assert sorted(r.ok for r in results) == [False, True]
            events = [next(r.event for r in results if not r.ok)]
        settled = 1 if refused_on == "tokens" else 2
        stats = await statistics_once_released(engine, settled)
        refused = sim.stats.snapshot()["by_outcome"]["rate_limited"]  # type: ignore[attr-defined]
        balanced(engine)
    assert isinstance(events[-1], Failed) and events[-1].error.kind == "RateLimitError"
    assert refused == 1 and stats.rate_limited == 1
    cut, kept = ("tokens", "requests") if refused_on == "tokens" else ("requests", "tokens")
    configured = {"requests": 6_000.0, "tokens": 1_000_000.0}
    reported = {"requests": 1.0, "tokens": 1_000.0}
    assert getattr(stats, f"{cut}_ceiling") == pytest.approx(reported[cut])
    assert getattr(stats, f"{cut}_per_minute") < reported[cut]
    assert getattr(stats, f"{kept}_per_minute") == pytest.approx(configured[kept])
