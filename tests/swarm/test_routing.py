"""Routes: fallbacks on the errors another deployment may not have, and load
balancing across deployments (least outstanding, lowest latency).

The choice itself is sans-IO (``Route.choose``, given live figures); the engine
tests check the figures it is given and the fallbacks against the simulator.
"""

from __future__ import annotations

import anyio
import pytest

from providers import TextDelta
from providers.errors import AuthenticationError, BadRequestError
from providers.sim import Fault, ModelProfile, SimConfig
from swarm.config import RouteConfig
from swarm.events import Completed, Failed
from swarm.resilience import RetryPolicy
from swarm.routing import Deployment, Route

from .test_engine import FAST, ask, engine_on_sim

A, B, C = Deployment("p", "a"), Deployment("p", "b"), Deployment("q", "c")


def choose(
    route: Route,
    *,
    exclude: tuple[Deployment, ...] = (),
    full: set[Deployment] | None = None,
    outstanding: dict[Deployment, int] | None = None,
    latency: dict[Deployment, float] | None = None,
) -> Deployment | None:
    return route.choose(
        exclude=exclude,
        has_room=lambda d: d not in (full or set()),
        outstanding=lambda d: (outstanding or {}).get(d, 0),
        latency=lambda d: (latency or {}).get(d),
    )


# -- the choice (sans-IO) -----------------------------------------------------------


def test_fallback_uses_the_first_untried_target_and_waits_for_it_when_full() -> None:
    route = Route("r", (A, B, C), "fallback")
    assert choose(route) == A
    assert choose(route, exclude=(A,)) == B
    assert choose(route, exclude=(A, B)) == C
    assert choose(route, exclude=(A, B, C)) is None
    # A full first target is waited for: later targets are for failures, not overflow.
    assert choose(route, full={A}) is None
    assert choose(route, exclude=(A,), full={B}) is None


def test_least_outstanding_takes_the_least_loaded_open_target() -> None:
    route = Route("r", (A, B, C), "least_outstanding")
    assert choose(route, outstanding={A: 3, B: 1, C: 2}) == B
    assert choose(route, outstanding={A: 1, B: 1, C: 1}) == A  # ties: config order
    assert choose(route, outstanding={A: 3, B: 1, C: 2}, full={B}) == C
    assert choose(route, outstanding={A: 3, B: 1, C: 2}, exclude=(B,)) == C
    assert choose(route, full={A, B, C}) is None


def test_lowest_latency_measures_every_target_then_takes_the_fastest() -> None:
    route = Route("r", (A, B, C), "lowest_latency")
    assert choose(route) == A
    assert choose(route, latency={A: 0.5}) == B  # untried targets first
    assert choose(route, latency={A: 0.5, B: 0.9}) == C
    assert choose(route, latency={A: 0.5, B: 0.9, C: 0.2}) == C
    assert choose(route, latency={A: 0.5, B: 0.9, C: 0.2}, full={C}) == A
    assert choose(route, latency={A: 0.5, B: 0.9, C: 0.2}, exclude=(C,)) == A


# -- fallbacks against the simulator ------------------------------------------------

ONCE = RetryPolicy(max_attempts=1)  # no retry: the fallback is what is tested
SMART = {"smart": RouteConfig(targets=["sim/fast", "sim/backup"], strategy="fallback")}


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("why", "fault", "fast"),
    [
        ("rate limited", Fault(kind="status", status=429, models=["fast"]), FAST),
        ("overloaded", Fault(kind="status", status=529, models=["fast"]), FAST),
        ("server error", Fault(kind="status", status=503, models=["fast"]), FAST),
        # The prompt is longer than fast's context window, not backup's.
        ("context length", None, ModelProfile(tokens_per_second=0, context_window=2)),
    ],
)
async def test_a_call_falls_back_on_errors_another_deployment_may_not_have(
    why: str, fault: Fault | None, fast: ModelProfile
) -> None:
    config = SimConfig(models={"fast": fast, "backup": FAST}, faults=[fault] if fault else [])
    async with engine_on_sim(config, routes=SMART, retry=ONCE) as (engine, sim):
        async with engine.stream(ask("a question of several words", model="smart")) as call:
            events = [e async for e in call]
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
        record = engine.ledger.records()[-1]
    assert isinstance(events[-1], Completed), why
    # One answer, from the backup only: the refused attempt sent no text.
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == events[-1].response.text
    assert record.deployment == "sim/backup"
    assert record.attempts == 2
    assert by_model == {"fast": 1, "backup": 1}


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (400, BadRequestError)])
async def test_errors_every_deployment_would_give_do_not_fall_back(
    status: int, error: type[Exception]
) -> None:
    config = SimConfig(
        models={"fast": FAST, "backup": FAST},
        faults=[Fault(kind="status", status=status, models=["fast"])],
    )
    async with engine_on_sim(config, routes=SMART, retry=ONCE) as (engine, sim):
        with pytest.raises(error):
            await engine.complete(ask(model="smart"))
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
    assert by_model == {"fast": 1}


@pytest.mark.anyio
async def test_a_call_that_had_streamed_text_does_not_fall_back() -> None:
    # Text already reached the caller: another deployment's answer would be spliced on.
    config = SimConfig(
        models={"fast": ModelProfile(tokens_per_second=0, output_tokens=20), "backup": FAST},
        faults=[Fault(kind="disconnect", after=3, models=["fast"])],
    )
    async with engine_on_sim(config, routes=SMART, retry=ONCE) as (engine, sim):
        async with engine.stream(ask(model="smart")) as call:
            events = [e async for e in call]
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
    assert isinstance(events[-1], Failed)
    assert any(isinstance(e, TextDelta) for e in events)
    assert by_model == {"fast": 1}


@pytest.mark.anyio
async def test_the_last_target_failing_ends_the_call_with_its_error() -> None:
    config = SimConfig(
        models={"fast": FAST, "backup": FAST}, faults=[Fault(kind="status", status=503)]
    )
    async with engine_on_sim(config, routes=SMART, retry=ONCE) as (engine, sim):
        async with engine.stream(ask(model="smart")) as call:
            events = [e async for e in call]
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
        record = engine.ledger.records()[-1]
    assert isinstance(events[-1], Failed)
    assert events[-1].error.status == 503
    assert by_model == {"fast": 1, "backup": 1}
    assert record.attempts == 2


# -- balancing against the simulator ------------------------------------------------

# Streams of ~1 s, so that calls overlap while the balance is counted.
LONG = ModelProfile(ttft=0.0, tokens_per_second=40, output_tokens=40)


@pytest.mark.anyio
async def test_least_outstanding_spreads_calls_over_deployments_of_one_provider() -> None:
    # Both targets are models of the one provider "sim": the count must be per
    # deployment, not per provider (which would send every call to the first).
    config = SimConfig(models={"one": LONG, "two": LONG, "three": LONG})
    route = RouteConfig(targets=["sim/one", "sim/two", "sim/three"], strategy="least_outstanding")
    async with engine_on_sim(config, routes={"pool": route}) as (engine, sim):
        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(engine.complete, ask(f"q{i}", model="pool"))
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
    assert by_model == {"one": 4, "two": 4, "three": 4}


@pytest.mark.anyio
async def test_least_outstanding_sends_new_calls_where_earlier_ones_finished() -> None:
    quick = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=3)
    config = SimConfig(models={"long": LONG, "quick": quick})
    route = RouteConfig(targets=["sim/long", "sim/quick"], strategy="least_outstanding")
    async with engine_on_sim(config, routes={"pool": route}) as (engine, sim):
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.complete, ask("held", model="pool"))  # long: in flight
            with anyio.fail_after(10):  # until it is dispatched (not a timing bet)
                while engine.statistics().ledger.in_flight < 1:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            for i in range(5):  # one after another: quick is always the emptier
                await engine.complete(ask(f"q{i}", model="pool"))
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
    assert by_model == {"long": 1, "quick": 5}


@pytest.mark.anyio
async def test_lowest_latency_prefers_the_deployment_quickest_to_its_first_token() -> None:
    config = SimConfig(
        models={
            "sluggish": ModelProfile(ttft=0.3, tokens_per_second=0, output_tokens=3),
            "snappy": ModelProfile(ttft=0.01, tokens_per_second=0, output_tokens=3),
        }
    )
    route = RouteConfig(targets=["sim/sluggish", "sim/snappy"], strategy="lowest_latency")
    async with engine_on_sim(config, routes={"pool": route}) as (engine, sim):
        for i in range(8):
            await engine.complete(ask(f"q{i}", model="pool"))
        by_model = sim.stats.snapshot()["by_model"]  # type: ignore[attr-defined]
        ttft = engine.statistics().providers["sim"].ttft
    # Each target measured once (untried first), then the quick one every time.
    assert by_model == {"sluggish": 1, "snappy": 7}
    assert ttft["snappy"] < ttft["sluggish"]
