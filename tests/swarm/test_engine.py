"""The engine end to end against the simulator, on trio and asyncio."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import pytest

from providers import Message, Request, TextDelta
from providers.errors import AuthenticationError, ServerError, TimeoutError
from providers.sim import Fault, ModelProfile, SimConfig, open_simulator
from providers.sim import RateLimit as SimRateLimit
from swarm.call import CallFailed, CallStream
from swarm.config import (
    ConfigError,
    EngineConfig,
    ProviderConfig,
    RouteConfig,
    SchedulerConfig,
    TransportKind,
)
from swarm.engine import SUPERVISOR_INTENSITY, Engine, open_engine
from swarm.errors import EngineClosed, EngineOverloaded
from swarm.events import Cancelled, Completed, Failed, Restart
from swarm.lifecycle import CallState
from swarm.pricing import Price
from swarm.ratelimit import FixedConcurrency, RateLimitConfig
from swarm.resilience import CircuitBreakerPolicy, RetryBudgetPolicy, RetryPolicy, Timeouts
from swarm.supervisor import SupervisorEscalation

pytestmark = pytest.mark.anyio

FAST = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=12)
SLOW = ModelProfile(ttft=0.0, tokens_per_second=50, output_tokens=200)  # ~4 s of stream
# Backoff times are tested exactly on virtual time in tests/swarm/resilience; here
# they only need to be short.
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.02)


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ask(text: str = "hello", model: str = "fast", max_tokens: int | None = None) -> Request:
    return Request(model=model, messages=[Message.user(text)], max_tokens=max_tokens)


@asynccontextmanager
async def engine_on_sim(
    sim_config: SimConfig | None = None,
    *,
    max_concurrency: int = 64,
    max_connecting: int = 128,
    scheduler: SchedulerConfig | None = None,
    shutdown_timeout: float = 5.0,
    extra_providers: dict[str, ProviderConfig] | None = None,
    routes: dict[str, RouteConfig] | None = None,
    provider_rate_limit: RateLimitConfig | None = None,
    transport: TransportKind = "streaming",
    **engine_options: Any,
) -> AsyncIterator[tuple[Engine, object]]:
    config = sim_config or SimConfig(models={"fast": FAST, "slow": SLOW})
    async with open_simulator(config) as sim:
        providers = {
            "sim": ProviderConfig(
                family="openai", base_url=sim.openai_base_url, api_key="sk-test",
                max_concurrency=max_concurrency, max_connecting=max_connecting,
                rate_limit=provider_rate_limit, transport=transport,
            ),
            **(extra_providers or {}),
        }  # fmt: skip
        engine_config = EngineConfig(
            providers=providers,
            default_provider="sim",
            routes=routes or {},
            scheduler=scheduler or SchedulerConfig(),
            shutdown_timeout=shutdown_timeout,
            **{"retry": FAST_RETRY, **engine_options},
        )
        async with open_engine(engine_config, env={}) as engine:
            yield engine, sim


async def eventually(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll an observable statistic until it holds (a bounded wait, not a timing check)."""
    with anyio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - statistics have no event to wait on
            await anyio.sleep(0.005)


def balanced(engine: Engine) -> None:
    s = engine.statistics().ledger
    assert s.accepted == s.in_flight + s.completed + s.failed + s.cancelled


async def test_embedded_default_streams_from_the_simulator() -> None:
    async with open_engine(env={}) as engine:
        async with engine.stream(ask(model="gpt-4o-mini", max_tokens=16)) as call:
            events = [event async for event in call]
    assert isinstance(events[-1], Completed)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text and text == events[-1].response.text
    assert events[-1].response.usage.output_tokens > 0


async def test_the_embedded_simulator_takes_a_config() -> None:
    profile = ModelProfile(output_tokens=3, tokens_per_second=0)
    sim = SimConfig(models={"tiny": profile})
    async with open_engine(env={}, simulator=sim) as engine:
        response = await engine.complete(ask(model="tiny", max_tokens=50))
    assert response.usage.output_tokens == 3


async def test_routes_to_the_embedded_simulators_providers_are_checked_when_it_starts() -> None:
    careful = RouteConfig(targets=["sim-anthropic/claude-haiku-4-5"])
    async with open_engine(EngineConfig(routes={"careful": careful}), env={}) as engine:
        response = await engine.complete(ask(model="careful", max_tokens=4))
    assert response.usage.output_tokens > 0
    typo = RouteConfig(targets=["sim-antropic/claude-haiku-4-5"])
    with pytest.raises(ConfigError, match="names provider 'sim-antropic', which is not"):
        async with open_engine(EngineConfig(routes={"careful": typo}), env={}):
            pass


async def test_a_rate_limited_embedded_simulator_is_kept_to_by_its_headers() -> None:
    sim = SimConfig(models={"tiny": FAST}, rate_limit=SimRateLimit(rpm=600))
    async with open_engine(env={}, simulator=sim) as engine:
        for _ in range(3):
            await engine.complete(ask(model="tiny", max_tokens=5))
        limits = await engine.rate_limit_statistics()
    assert limits["sim"]["tiny"].requests_ceiling == 600
    assert limits["sim"]["tiny"].grants == 3
    async with open_engine(env={}, simulator=SimConfig()) as engine:
        await engine.complete(ask(model="tiny", max_tokens=5))
        assert await engine.rate_limit_statistics() == {}


async def test_stream_then_completed_and_ledger_record() -> None:
    async with engine_on_sim() as (engine, _):
        async with engine.stream(ask(), tenant="t1", agent="a1") as call:
            events = [event async for event in call]
        record = engine.ledger.records()[-1]
    assert [type(e).__name__ for e in events][-2:] == ["Finish", "Completed"]
    assert record.outcome == "completed" and record.attempts == 1
    assert record.tenant == "t1" and record.agent == "a1"
    assert record.deployment == "sim/fast"
    assert record.ttft is not None and record.usage.output_tokens == 12


async def test_complete_and_map() -> None:
    async with engine_on_sim() as (engine, _):
        response = await engine.complete(ask("one"))
        assert response.finish_reason == "stop"
        requests = [ask(f"q{i}") for i in range(40)]
        results = [r async for r in engine.map(requests, concurrency=7)]
        assert sorted(r.index for r in results) == list(range(40))
        assert all(r.ok for r in results)
        balanced(engine)
        assert engine.statistics().ledger.completed == 41


async def test_map_never_exceeds_its_concurrency() -> None:
    async with engine_on_sim() as (engine, _):
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, engine.statistics().providers["sim"].running)
                await anyio.sleep(0.001)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            requests = [ask(f"q{i}", model="slow", max_tokens=5) for i in range(12)]
            async for _ in engine.map(requests, concurrency=3):
                pass
            tg.cancel_scope.cancel()
    assert 1 <= peak <= 3


async def test_leaving_the_block_cancels_and_closes_upstream() -> None:
    async with engine_on_sim() as (engine, _):
        async with engine.stream(ask(model="slow")) as call:
            async for event in call:
                if isinstance(event, TextDelta):
                    break
        await eventually(lambda: engine.statistics().ledger.in_flight == 0)
        record = engine.ledger.records()[-1]
        assert record.outcome == "cancelled"
        assert engine.statistics().providers["sim"].running == 0
        balanced(engine)


async def test_deadline_passing_in_the_queue_fails_without_calling_a_provider() -> None:
    async with engine_on_sim(max_concurrency=1) as (engine, sim):
        async with engine.stream(ask(model="slow")) as first:
            await first.__anext__()  # the only slot is busy now
            with pytest.raises(TimeoutError, match="while it was queued"):
                await engine.complete(ask("late"), timeout=0.05)
            first.cancel()
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
    assert by_model.get("fast", 0) == 0  # the late call never reached the simulator


async def test_priority_decides_who_goes_next() -> None:
    async with engine_on_sim(max_concurrency=1) as (engine, _):
        order: list[str] = []
        async with engine.stream(ask(model="slow", max_tokens=3)) as blocker:

            async def run(name: str, priority: int) -> None:
                await engine.complete(ask(name), priority=priority)
                order.append(name)

            async with anyio.create_task_group() as tg:
                for name, priority in [("low", 0), ("mid", 5), ("high", 9)]:
                    tg.start_soon(run, name, priority)
                await anyio.sleep(0.05)  # all three queued behind the blocker
                async for _ in blocker:
                    pass
    assert order == ["high", "mid", "low"]


@pytest.mark.parametrize("aging", [None, 0.05])
async def test_priority_aging_lets_a_low_priority_call_through_a_steady_stream(
    aging: float | None,
) -> None:
    # One call at a time; a low-priority call waits while high-priority calls keep
    # arriving (each one submitted as the previous one finishes, so some are always
    # queued). Strict priorities serve it only after the stream stops; with aging it
    # is served while the stream still flows.
    scheduler = SchedulerConfig(priority_aging=aging)
    slowish = ModelProfile(ttft=0.01, tokens_per_second=0, output_tokens=3)
    config = SimConfig(models={"fast": slowish})
    async with engine_on_sim(config, max_concurrency=1, scheduler=scheduler) as (engine, _):
        order: list[str] = []

        async def run(name: str, priority: int) -> None:
            await engine.complete(ask(name), priority=priority)
            order.append(name)

        async with anyio.create_task_group() as tg:
            for i in range(3):  # the queue is never empty of high-priority calls
                tg.start_soon(run, f"high-{i}", 5)
            await anyio.sleep(0.02)
            tg.start_soon(run, "low", 0)
            for i in range(3, 60):
                await run(f"high-{i}", 5)
                if "low" in order:
                    break
    assert "low" in order
    if aging is None:
        assert order.index("low") >= len(order) - 3, order  # after the stream
    else:
        # Waited about (5 - 0 + 1) x 0.05 s of ~0.01 s calls: well before the end.
        assert order.index("low") < 50, order


@pytest.mark.parametrize("fair_by", ["agent", "tenant"])
async def test_one_greedy_agent_does_not_starve_its_siblings(
    fair_by: Literal["agent", "tenant"],
) -> None:
    scheduler = SchedulerConfig(fair_by=fair_by)
    async with engine_on_sim(max_concurrency=1, scheduler=scheduler) as (engine, _):
        order: list[str] = []
        # The blocker (25 tokens at 50/s) outlasts both sleeps: everyone queues behind it.
        async with engine.stream(ask(model="slow", max_tokens=25)) as blocker:

            async def run(agent: str, i: int) -> None:
                await engine.complete(ask(f"{agent} {i}"), agent=agent)
                order.append(agent)

            async with anyio.create_task_group() as tg:
                for i in range(8):
                    tg.start_soon(run, "greedy", i)
                await anyio.sleep(0.05)  # the greedy agent's calls are queued first
                for i in range(2):
                    tg.start_soon(run, "modest", i)
                await anyio.sleep(0.05)
                async for _ in blocker:
                    pass
    if fair_by == "agent":
        # Fair shares by agent: the modest agent's two calls go within the first four.
        assert "modest" in order[:2] and order[:4].count("modest") == 2, order
    else:
        # No tenants given: one group, arrival order.
        assert order == ["greedy"] * 8 + ["modest"] * 2, order


async def test_full_queue_refuses_with_a_clear_error() -> None:
    scheduler = SchedulerConfig(max_queued=1, when_full="refuse")
    async with engine_on_sim(max_concurrency=1, scheduler=scheduler) as (engine, _):
        async with engine.stream(ask(model="slow")) as running:
            await running.__anext__()
            queued = await engine.submit(ask("queued"))
            await anyio.sleep(0.01)  # the scheduler takes it into its queue
            with pytest.raises(EngineOverloaded, match="max_queued"):
                await engine.submit(ask("refused"))
            await queued.aclose()
            running.cancel()
        balanced(engine)


async def test_errors_before_the_first_byte_are_retried_invisibly() -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="status", status=503, rate=0.5, seed=3)],
    )
    generous = RetryBudgetPolicy(budget_percent=100.0)
    lenient = CircuitBreakerPolicy(failure_rate_threshold=100.0, minimum_calls=1000)
    async with engine_on_sim(config, retry_budget=generous, breaker=lenient) as (engine, sim):
        results = [r async for r in engine.map([ask(f"q{i}") for i in range(30)], concurrency=10)]
        ledger = engine.statistics().ledger
        attempts_seen_by_sim = sim.stats.snapshot()["requests"]  # type: ignore[attr-defined]
    failed = [r for r in results if not r.ok]
    # Five attempts per call at a 50% fault rate: nearly all succeed, and any that
    # did not ended Failed with the provider's error, never silently.
    assert len(failed) <= 3
    for r in failed:
        assert isinstance(r.event, Failed) and r.event.error.status == 503
    assert ledger.attempts > 30  # retries happened
    assert ledger.attempts == attempts_seen_by_sim  # each attempt reached the sim once


@pytest.mark.parametrize("transport", ["streaming", "httpx"])
async def test_either_transport_streams_retries_and_reuses_connections(
    transport: TransportKind,
) -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="status", status=503, rate=0.3, seed=5)],
    )
    generous = RetryBudgetPolicy(budget_percent=100.0)
    lenient = CircuitBreakerPolicy(failure_rate_threshold=100.0, minimum_calls=1000)
    async with engine_on_sim(
        config, max_concurrency=8, transport=transport, retry_budget=generous, breaker=lenient
    ) as (engine, sim):
        results = [r async for r in engine.map([ask(f"q{i}") for i in range(60)], concurrency=8)]
        ledger = engine.statistics().ledger
        snapshot = sim.stats.snapshot()  # type: ignore[attr-defined]
        connections = sim.stats.connections  # type: ignore[attr-defined]
    assert all(r.ok for r in results)
    assert ledger.attempts > 60 and ledger.attempts == snapshot["requests"]
    # The pool never holds more connections than the provider's concurrency.
    assert 1 <= connections <= 8


async def test_an_unknown_transport_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown transport 'h3'.*'streaming'"):
        ProviderConfig(family="openai", base_url="http://x", transport="h3")  # type: ignore[arg-type]


async def test_a_broken_stream_after_commit_restarts_when_allowed() -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="disconnect", after=4, rate=1.0, end=None, models=["fast"])],
    )
    async with engine_on_sim(config) as (engine, _):
        async with engine.stream(ask(), allow_restart=False) as call:
            events = [e async for e in call]
        assert isinstance(events[-1], Failed)
        assert not any(isinstance(e, Restart) for e in events)
        async with engine.stream(ask("again"), allow_restart=True) as call:
            events = [e async for e in call]
        restarts = [e for e in events if isinstance(e, Restart)]
        assert restarts and isinstance(events[-1], Failed)  # every attempt breaks
        assert events[-1].error.kind == "ReadError"
        assert engine.ledger.records()[-1].restarts == len(restarts)


async def test_the_configs_restarts_allowed_is_the_default_a_call_can_override() -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="disconnect", after=4, rate=1.0, end=None, models=["fast"])],
    )
    policy = RetryPolicy(base_delay=0.005, max_delay=0.02, restarts_allowed=True)
    async with engine_on_sim(config, retry=policy) as (engine, _):
        async with engine.stream(ask()) as call:  # says nothing: the config decides
            events = [e async for e in call]
        assert any(isinstance(e, Restart) for e in events)
        async with engine.stream(ask("again"), allow_restart=False) as call:
            events = [e async for e in call]
        assert isinstance(events[-1], Failed)
        assert not any(isinstance(e, Restart) for e in events)


async def test_fallback_moves_to_the_next_target() -> None:
    # "down" points at a port where nothing listens.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    down = ProviderConfig(family="openai", base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    route = RouteConfig(targets=["down/fast", "sim/fast"], strategy="fallback")
    async with engine_on_sim(extra_providers={"down": down}, routes={"smart": route}) as (
        engine,
        _,
    ):
        response = await engine.complete(ask(model="smart"))
        record = engine.ledger.records()[-1]
    assert response.text
    assert record.deployment == "sim/fast"
    assert record.attempts > 1


async def test_failures_raise_the_providers_typed_error() -> None:
    config = SimConfig(models={"fast": FAST}, api_keys=["sk-other"])
    async with engine_on_sim(config) as (engine, _):
        with pytest.raises(AuthenticationError) as info:
            await engine.complete(ask())
        assert engine.ledger.records()[-1].attempts == 1  # auth errors are not retried
    assert "sk-test" not in str(info.value)


async def test_server_errors_exhaust_retries_then_fail() -> None:
    config = SimConfig(models={"fast": FAST}, faults=[Fault(kind="status", status=500)])
    async with engine_on_sim(config) as (engine, _):
        with pytest.raises(ServerError):
            await engine.complete(ask())
        assert engine.ledger.records()[-1].attempts == engine.config.retry.max_attempts


async def test_the_retry_budget_holds_during_a_full_outage() -> None:
    config = SimConfig(models={"fast": FAST}, faults=[Fault(kind="status", status=503)])
    budget = RetryBudgetPolicy(budget_percent=20.0, min_retry_concurrency=2)
    async with engine_on_sim(config, retry_budget=budget) as (engine, sim):
        results = [r async for r in engine.map([ask(f"q{i}") for i in range(40)], concurrency=20)]
        attempts = engine.statistics().ledger.attempts
        requests_seen = sim.stats.snapshot()["requests"]  # type: ignore[attr-defined]
    assert all(not r.ok for r in results)
    # Without a budget and a breaker, 40 calls x 5 attempts = 200 requests would
    # hit the outage.
    assert attempts == requests_seen < 40 * engine.config.retry.max_attempts // 2
    kinds = {r.event.error.kind for r in results if isinstance(r.event, Failed)}
    # Calls fail with the provider's 503 until the breaker opens, then fast.
    assert kinds == {"OverloadedError", "CircuitOpen"}


async def test_an_engine_with_an_api_key_in_its_environment_runs_that_provider() -> None:
    # No config and OPENAI_API_KEY set: the engine is configured for OpenAI, and no
    # simulator is started (nothing is sent: the test makes no call).
    async with open_engine(env={"OPENAI_API_KEY": "sk-test"}) as engine:
        assert set(engine.statistics().providers) == {"openai"}
        assert engine.config.default_provider == "openai" and not engine.config.uses_simulator
    with pytest.raises(ConfigError, match="GROQ_API_KEY"):
        async with open_engine(
            EngineConfig(providers={"g": ProviderConfig(preset="groq")}), env={}
        ):
            pass


async def test_without_rate_limit_headers_the_slow_start_ends_when_the_first_stream_opens() -> None:
    # The simulator here sends no rate-limit headers (it enforces none), as most
    # OpenAI-compatible servers: the second call must not wait for the first's end.
    long = ModelProfile(ttft=0.0, tokens_per_second=10, output_tokens=200)  # ~20 s
    limits = RateLimitConfig(
        requests_per_minute=100_000, tokens_per_minute=10**9, refund_unused_tokens=False
    )
    async with engine_on_sim(SimConfig(models={"long": long}), provider_rate_limit=limits) as (
        engine,
        _,
    ):
        first = await engine.submit(ask("a", "long"))
        second = await engine.submit(ask("b", "long"))
        await eventually(lambda: engine.statistics().providers["sim"].running == 2, limit=10)
        assert engine.statistics().ledger.in_flight == 2  # the first is still streaming
        first.cancel()
        second.cancel()


async def test_statistics_count_the_calls_waiting_for_a_rate_limit_permit() -> None:
    # One request a minute: the first call goes, the next two wait for the bucket.
    limits = RateLimitConfig(requests_per_minute=1, learning_probes=0)
    async with engine_on_sim(provider_rate_limit=limits) as (engine, _):
        calls = [await engine.submit(ask(f"q{i}")) for i in range(3)]
        await eventually(lambda: engine.statistics().rate_limit_waiting == {"sim": 2})
        assert (await engine.rate_limit_statistics())["sim"]["fast"].waits_rpm >= 2
        for call in calls:
            call.cancel()
        await eventually(lambda: engine.statistics().rate_limit_waiting == {"sim": 0})


async def test_the_retry_budget_alone_caps_retries_during_a_full_outage() -> None:
    # The breaker held shut (it never judges), so what stops the retry storm is the
    # budget alone: without it every call makes all its attempts.
    config = SimConfig(models={"fast": FAST}, faults=[Fault(kind="status", status=503)])
    never_opens = CircuitBreakerPolicy(failure_rate_threshold=100.0, minimum_calls=10**6)
    outage: dict[str, int] = {}
    for name, budget in (
        ("off", RetryBudgetPolicy(budget_percent=100.0, min_retry_concurrency=1000)),
        ("on", RetryBudgetPolicy(budget_percent=20.0, min_retry_concurrency=2)),
    ):
        async with engine_on_sim(config, retry_budget=budget, breaker=never_opens) as (
            engine,
            sim,
        ):
            results = [
                r async for r in engine.map([ask(f"q{i}") for i in range(40)], concurrency=20)
            ]
            outage[name] = sim.stats.snapshot()["requests"]  # type: ignore[attr-defined]
            assert engine.statistics().ledger.attempts == outage[name]
        assert all(not r.ok for r in results)
        assert {r.event.error.kind for r in results if isinstance(r.event, Failed)} == {
            "OverloadedError"
        }
    assert outage["off"] == 40 * FAST_RETRY.max_attempts
    # At most max(2, 20% of 20 in flight) = 4 retries at once, for 40 calls of 5
    # attempts: far below the 160 retries the outage asked for.
    assert outage["on"] - 40 < (outage["off"] - 40) // 2


async def test_shutdown_cancels_live_streams_and_accounts_for_all() -> None:
    got: list[object] = []

    async def reader(engine: Engine, started: anyio.Event) -> None:
        call = await engine.submit(ask(model="slow"))
        started.set()
        last: object = None
        async for event in call:
            last = event
        got.append(last)

    async with anyio.create_task_group() as readers:
        async with engine_on_sim(shutdown_timeout=0.2) as (engine, _):
            for _ in range(20):
                started = anyio.Event()
                readers.start_soon(reader, engine, started)
                await started.wait()
            await eventually(lambda: engine.statistics().providers["sim"].running == 20)
        # The engine closed while 20 streams were live (each ~4 s long).
        stats = engine.statistics()
    assert len(got) == 20
    assert all(isinstance(e, Cancelled) and e.reason == "shutdown" for e in got)
    assert stats.ledger.cancelled == 20 and stats.ledger.in_flight == 0
    assert stats.providers["sim"].running == 0


async def test_shutdown_with_500_live_streams_leaves_no_task_or_connection_behind() -> None:
    streams = 500
    long = ModelProfile(ttft=0.0, tokens_per_second=2, output_tokens=1000)  # ~8 minutes
    got: list[object] = []

    async def reader(call: CallStream) -> None:
        last: object = None
        async for event in call:
            last = event
        got.append(last)

    async with open_simulator(SimConfig(models={"long": long})) as sim:
        providers = {
            "sim": ProviderConfig(
                family="openai", base_url=sim.openai_base_url, api_key="sk-test",
                max_concurrency=streams,
            )
        }  # fmt: skip
        config = EngineConfig(providers=providers, default_provider="sim", shutdown_timeout=1.0)
        async with anyio.create_task_group() as readers:
            # A hang guard only (the engine stops itself after shutdown_timeout).
            with anyio.fail_after(60):
                async with open_engine(config, env={}) as engine:
                    for i in range(streams):
                        readers.start_soon(reader, await engine.submit(ask(f"q{i}", "long")))
                    await eventually(lambda: sim.stats.active_streams == streams, limit=60)
                stats = engine.statistics()
        # Every stream's connection was closed by the engine, not left to the server.
        await eventually(lambda: sim.stats.connections == 0)
    assert len(got) == streams
    assert all(isinstance(e, Cancelled) and e.reason == "shutdown" for e in got)
    assert stats.ledger.cancelled == streams and stats.ledger.in_flight == 0
    assert stats.providers["sim"].running == 0 and stats.providers["sim"].connecting == 0
    balanced(engine)


async def test_cancelled_call_response_raises_call_failed() -> None:
    async with engine_on_sim() as (engine, _):
        call = await engine.submit(ask(model="slow"))
        call.cancel()
        with pytest.raises(CallFailed, match="cancelled"):
            await call.response()
        balanced(engine)


async def test_a_caller_waiting_for_room_learns_the_engine_closed() -> None:
    outcome: list[BaseException] = []

    async def late_caller(engine: Engine) -> None:
        try:
            await engine.submit(ask("late"))
        except EngineClosed as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        scheduler = SchedulerConfig(max_queued=1)  # when_full="wait"
        async with engine_on_sim(max_concurrency=1, scheduler=scheduler, shutdown_timeout=0.1) as (
            engine,
            _,
        ):
            running = await engine.submit(ask(model="slow"))
            queued = await engine.submit(ask(model="slow"))
            tg.start_soon(late_caller, engine)
            await anyio.sleep(0.05)  # the late caller now waits for room
        await running.aclose()
        await queued.aclose()
    assert len(outcome) == 1
    balanced(engine)


async def test_first_token_timeout_retries_then_fails_with_the_phase() -> None:
    sluggish = ModelProfile(ttft=2.0, tokens_per_second=0, output_tokens=5)
    config = SimConfig(models={"sluggish": sluggish})
    timeouts = Timeouts(first_token=0.1, idle=1.0, total=10.0)
    retry = RetryPolicy(max_attempts=2, base_delay=0.005, max_delay=0.01)
    async with engine_on_sim(config, timeouts=timeouts, retry=retry) as (engine, _):
        with pytest.raises(TimeoutError) as info:
            await engine.complete(ask(model="sluggish"))
        record = engine.ledger.records()[-1]
    assert info.value.phase == "first_token"
    assert "sim (sluggish)" in str(info.value)
    assert record.attempts == 2


async def test_a_stream_that_stalls_mid_way_fails_on_the_idle_timeout() -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="stall", after=3, duration=3.0, then="continue")],
    )
    timeouts = Timeouts(first_token=5.0, idle=0.1, total=10.0)
    async with engine_on_sim(config, timeouts=timeouts) as (engine, _):
        async with engine.stream(ask()) as call:
            events = [event async for event in call]
    assert isinstance(events[-1], Failed)
    assert events[-1].error.kind == "TimeoutError"
    assert "idle" in events[-1].error.message
    assert any(isinstance(e, TextDelta) for e in events)  # it had committed: no retry


async def test_an_open_breaker_sends_calls_to_the_fallback() -> None:
    config = SimConfig(
        models={"fast": FAST, "backup": FAST},
        faults=[Fault(kind="status", status=529, models=["fast"])],
    )
    route = RouteConfig(targets=["sim/fast", "sim/backup"], strategy="fallback")
    breaker = CircuitBreakerPolicy(minimum_calls=3, failure_rate_threshold=50.0)
    retry = RetryPolicy(max_attempts=1)
    async with engine_on_sim(config, routes={"smart": route}, breaker=breaker, retry=retry) as (
        engine,
        sim,
    ):
        for _ in range(8):
            await engine.complete(ask(model="smart"))
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
        breakers = engine.statistics().providers["sim"].breakers
    # Three failures opened the breaker of sim/fast; later calls skipped it.
    assert by_model["fast"] == 3
    assert by_model["backup"] == 8
    assert breakers == {"fast": "open", "backup": "closed"}


async def test_local_rate_limits_wait_instead_of_drawing_429s() -> None:
    config = SimConfig(models={"fast": FAST}, rate_limit=SimRateLimit(rpm=2))
    limits = RateLimitConfig(
        requests_per_minute=2, tokens_per_minute=None, refund_unused_tokens=False
    )
    async with engine_on_sim(config, provider_rate_limit=limits) as (engine, sim):
        assert (await engine.complete(ask("one"))).text
        assert (await engine.complete(ask("two"))).text
        with pytest.raises(TimeoutError):
            await engine.complete(ask("three"), timeout=0.3)  # waits for quota, never sent
        outcomes = sim.stats.snapshot()["by_outcome"]  # type: ignore[attr-defined]
    assert sum(outcomes.values()) == 2
    assert set(outcomes) == {"ok"}


async def test_calls_waiting_for_a_concurrency_slot_wake_when_one_frees() -> None:
    limits = RateLimitConfig(
        requests_per_minute=None,
        tokens_per_minute=None,
        concurrency=FixedConcurrency(limit=1),
    )
    async with engine_on_sim(provider_rate_limit=limits) as (engine, _):
        with anyio.fail_after(10):
            results = [r async for r in engine.map([ask(f"q{i}") for i in range(6)], concurrency=6)]
    assert all(r.ok for r in results)


async def test_a_model_slow_to_its_first_token_is_not_a_connect_timeout() -> None:
    thinking = ModelProfile(ttft=0.3, tokens_per_second=0, output_tokens=5)
    config = SimConfig(models={"thinking": thinking})
    # Connecting takes well under 0.1 s here; the model then thinks for 0.3 s.
    timeouts = Timeouts(connect=0.1, first_token=5.0, idle=5.0, total=10.0)
    async with engine_on_sim(config, timeouts=timeouts) as (engine, _):
        response = await engine.complete(ask(model="thinking"))
    assert response.finish_reason == "stop"


async def test_a_crashed_actor_requeues_uncommitted_calls_and_restarts() -> None:
    thinking = ModelProfile(ttft=0.5, tokens_per_second=0, output_tokens=5)
    async with engine_on_sim(SimConfig(models={"thinking": thinking})) as (engine, _):
        calls = [await engine.submit(ask(f"q{i}", model="thinking")) for i in range(4)]
        await eventually(lambda: engine.statistics().providers["sim"].running == 4)
        engine._actors["sim"].crash()  # all four are waiting for their first byte
        results = [await call.response() for call in calls]
        records = engine.ledger.records()
    assert all(r.finish_reason == "stop" for r in results)
    assert [r.requeues for r in records] == [1, 1, 1, 1]
    assert all(r.attempts == 2 and r.outcome == "completed" for r in records)
    balanced(engine)


async def test_a_crash_mid_stream_fails_the_committed_call_with_the_cause() -> None:
    async with engine_on_sim() as (engine, _):
        async with engine.stream(ask(model="slow")) as call:
            async for event in call:
                if isinstance(event, TextDelta):
                    engine._actors["sim"].crash()
                    break
            rest = [e async for e in call]
        after = await engine.complete(ask("after the restart"))
    assert isinstance(rest[-1], Failed)
    assert rest[-1].error.kind == "ProviderActorCrashed"
    assert after.text  # the restarted actor serves new calls
    balanced(engine)


def restarted(engine: Engine, times: int) -> bool:
    supervisor = engine.statistics().supervisor
    assert supervisor is not None
    return supervisor.restarts == times


async def test_an_actor_that_keeps_crashing_escalates_and_nothing_is_lost() -> None:
    thinking = ModelProfile(ttft=30.0, tokens_per_second=0, output_tokens=5)
    with pytest.raises(BaseException) as info:
        async with engine_on_sim(SimConfig(models={"thinking": thinking})) as (engine, _):
            calls = [await engine.submit(ask(f"q{i}", model="thinking")) for i in range(3)]
            for crashes in range(SUPERVISOR_INTENSITY + 1):
                await eventually(functools.partial(restarted, engine, crashes))
                await eventually(lambda: engine.statistics().providers["sim"].running == 3)
                engine._actors["sim"].crash()
            await anyio.sleep_forever()  # the escalation cancels the engine's block
    assert info.group_contains(SupervisorEscalation) or isinstance(info.value, SupervisorEscalation)
    balanced(engine)
    assert engine.statistics().ledger.in_flight == 0
    for call in calls:
        await call.aclose()


async def test_a_narrow_connecting_gate_serves_every_call_and_frees_its_slots() -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[
            Fault(kind="status", status=503, rate=0.3, seed=5),
            Fault(kind="disconnect", after=2, rate=0.2, seed=6),
        ],
    )
    generous = RetryBudgetPolicy(budget_percent=100.0)
    lenient = CircuitBreakerPolicy(failure_rate_threshold=100.0, minimum_calls=1000)
    retry = RetryPolicy(max_attempts=10, base_delay=0.001, max_delay=0.005)
    async with engine_on_sim(
        config, max_connecting=2, retry=retry, retry_budget=generous, breaker=lenient
    ) as (engine, _):
        requests = [ask(f"q{i}") for i in range(40)]
        results = [r async for r in engine.map(requests, concurrency=20)]
        stats = engine.statistics().providers["sim"]
    assert all(r.ok for r in results)
    assert stats.connecting == 0  # every slot came back, through failures too
    assert stats.attempts > 40
    balanced(engine)


async def test_cancelling_a_caller_closes_its_upstream_stream_and_refunds_its_permits() -> None:
    # 600 tokens a minute refill 10 a second: the refund below is far above what
    # the bucket could refill while the test runs.
    limits = RateLimitConfig(
        requests_per_minute=None,
        tokens_per_minute=600,
        refund_unused_tokens=True,
        concurrency=FixedConcurrency(limit=4),
    )
    async with engine_on_sim(provider_rate_limit=limits) as (engine, sim):
        async with engine.stream(ask(model="slow", max_tokens=400)) as call:
            async for event in call:
                if isinstance(event, TextDelta):
                    break
            during = (await engine.rate_limit_statistics())["sim"]["slow"]
        # The caller left: its call task is cancelled directly (no scheduler round),
        # so once every task has run what it can (no timer, no poll: the slow model's
        # next token is far off), the call is gone and its permits are back.
        await anyio.wait_all_tasks_blocked()
        assert engine.statistics().providers["sim"].running == 0
        after = (await engine.rate_limit_statistics())["sim"]["slow"]
        await eventually(lambda: sim.stats.snapshot()["active_streams"] == 0)  # type: ignore[attr-defined]
        records = engine.ledger.records()
    assert during.inflight == 1 and after.inflight == 0  # the concurrency slot is back
    assert during.tokens_available is not None and after.tokens_available is not None
    assert during.tokens_available < 600 - 400  # input estimate + max_tokens reserved
    # Refunded: the reservation minus the input and the tokens streamed before the
    # caller left (the provider bills those).
    assert after.tokens_available > during.tokens_available + 300
    assert [r.outcome for r in records] == ["cancelled"]
    balanced(engine)


async def test_a_consumer_slower_than_the_stream_still_gets_its_terminal_event() -> None:
    long = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=300)
    async with engine_on_sim(SimConfig(models={"long": long})) as (engine, _):
        async with engine.stream(ask(model="long")) as call:
            events = []
            async for event in call:
                events.append(event)
                await anyio.sleep(0.002)  # the buffer (64 events) fills up behind us
    assert isinstance(events[-1], Completed)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == events[-1].response.text and len(text) > 0
    assert call.terminal is events[-1]
    balanced(engine)


async def test_a_bug_in_one_call_fails_that_call_and_spares_the_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with engine_on_sim() as (engine, _):
        actor = engine._actors["sim"]
        note_latency = actor._note_latency
        bugs = iter([RuntimeError("a bug in the runtime")])

        def buggy(model: str, ttft: float | None) -> None:
            for bug in bugs:
                raise bug
            note_latency(model, ttft)

        monkeypatch.setattr(actor, "_note_latency", buggy)
        with pytest.raises(RuntimeError, match="a bug in the runtime"):
            await engine.complete(ask("first"))
        after = await engine.complete(ask("second"))
        stats = engine.statistics()
    assert after.text
    assert stats.supervisor is not None and stats.supervisor.restarts == 0
    assert stats.ledger.failed == 1 and stats.ledger.completed == 1
    balanced(engine)


async def test_prices_from_the_config_price_the_ledger() -> None:
    prices = {"fast": Price(input=1_000_000.0, output=2_000_000.0)}  # $1 / $2 a token
    async with engine_on_sim(prices=prices) as (engine, _):
        response = await engine.complete(ask())
        [record] = engine.ledger.records()
    usage = response.usage
    assert record.cost_usd == pytest.approx(usage.input_tokens + 2 * usage.output_tokens)


async def test_a_crash_mid_stream_requeues_a_map_call_which_showed_nothing_yet() -> None:
    async with engine_on_sim() as (engine, _):
        actor = engine._actors["sim"]

        def streaming() -> bool:
            return any(c.life.state is CallState.STREAMING for c in actor._owned.values())

        async def crash_once_streaming() -> None:
            await eventually(streaming)
            actor.crash()

        async with anyio.create_task_group() as tg:
            tg.start_soon(crash_once_streaming)
            results = [r async for r in engine.map([ask(model="slow")])]
        [record] = engine.ledger.records()
    assert results[0].ok and results[0].response.text
    assert record.requeues == 1 and record.attempts == 2 and record.restarts == 1
    balanced(engine)


async def test_an_error_in_the_callers_block_comes_out_as_itself() -> None:
    # Not wrapped in the engine's task group's ExceptionGroup, and the engine still
    # shut down cleanly behind it.
    with pytest.raises(KeyError, match="mine"):
        async with engine_on_sim() as (engine, _):
            await engine.complete(ask())
            raise KeyError("mine")
    assert engine.statistics().ledger.in_flight == 0
