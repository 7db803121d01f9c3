"""Who reads a call's response (swarm.reading): the caller's task while it waits
for events, the provider actor otherwise, with the same behaviour either way:
phase timeouts, slow consumers, a cancelled step, restarts and calls gathered later.

Each test runs with ``caller_reads`` on and off (the provider actor reading every
event), on trio and asyncio.
"""

from __future__ import annotations

import collections

import anyio
import pytest
import trio

from providers import TextDelta
from providers.sim import Fault, ModelProfile, SimConfig
from swarm.events import Completed, Failed, Restart
from swarm.ratelimit import RateLimitConfig
from swarm.resilience import RetryPolicy, Timeouts

from .test_engine import FAST, ask, balanced, engine_on_sim, eventually

pytestmark = pytest.mark.anyio

PACED = ModelProfile(ttft=0.0, tokens_per_second=100, output_tokens=20)  # a read per token


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[True, False], ids=["caller-reads", "actor-reads"])
def caller_reads(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_waiting_caller_reads_its_response_itself_and_gets_every_event(
    caller_reads: bool,
) -> None:
    async with engine_on_sim(SimConfig(models={"paced": PACED}), caller_reads=caller_reads) as (
        engine,
        _,
    ):
        reference = (await engine.complete(ask(model="paced"))).text
        lent: list[bool] = []
        async with engine.stream(ask(model="paced")) as call:
            events = []
            async for event in call:
                events.append(event)
                lent.append(call._call.lend is not None)
        assert isinstance(events[-1], Completed)
        assert text(events) == reference == events[-1].response.text
        # While it streamed, the reading was lent to this task (or never, when off).
        assert any(lent) is caller_reads
        record = engine.ledger.records()[-1]
        assert record.outcome == "completed" and record.usage.output_tokens == 20


async def test_a_step_cancelled_while_it_waits_loses_nothing(caller_reads: bool) -> None:
    async with engine_on_sim(SimConfig(models={"paced": PACED}), caller_reads=caller_reads) as (
        engine,
        _,
    ):
        reference = (await engine.complete(ask(model="paced"))).text
        events: list[object] = []
        timed_out = 0
        async with engine.stream(ask(model="paced")) as call:
            while not events or not isinstance(events[-1], Completed | Failed):
                # A deadline shorter than the gap between tokens: most steps are cut.
                with anyio.move_on_after(0.002) as scope:
                    events.append(await call.__anext__())
                timed_out += scope.cancelled_caught
        assert timed_out > 0
        assert isinstance(events[-1], Completed)
        assert text(events) == reference


async def test_a_stall_while_the_caller_waits_fails_on_the_idle_timeout(
    caller_reads: bool,
) -> None:
    config = SimConfig(
        models={"fast": FAST},
        faults=[Fault(kind="stall", after=3, duration=3.0, then="continue")],
    )
    timeouts = Timeouts(first_token=5.0, idle=0.1, total=10.0)
    async with engine_on_sim(config, timeouts=timeouts, caller_reads=caller_reads) as (engine, _):
        with anyio.fail_after(2):
            async with engine.stream(ask()) as call:
                events = [event async for event in call]
    assert isinstance(events[-1], Failed)
    assert events[-1].error.kind == "TimeoutError" and "idle" in events[-1].error.message


async def test_a_first_token_that_never_comes_fails_on_the_first_token_timeout(
    caller_reads: bool,
) -> None:
    config = SimConfig(models={"sluggish": ModelProfile(ttft=3.0, output_tokens=5)})
    timeouts = Timeouts(first_token=0.1, idle=5.0, total=10.0)
    retry = RetryPolicy(max_attempts=1)
    async with engine_on_sim(config, timeouts=timeouts, retry=retry, caller_reads=caller_reads) as (
        engine,
        _,
    ):
        with anyio.fail_after(2):
            async with engine.stream(ask(model="sluggish")) as call:
                events = [event async for event in call]
    assert isinstance(events[-1], Failed)
    assert events[-1].error.message.startswith("first-token timeout")


async def test_a_caller_busy_longer_than_the_idle_timeout_is_not_a_provider_timeout(
    caller_reads: bool,
) -> None:
    # The caller stops for 0.5 s between two events; the provider was not idle.
    timeouts = Timeouts(first_token=5.0, idle=0.15, total=10.0)
    async with engine_on_sim(
        SimConfig(models={"paced": PACED}), timeouts=timeouts, caller_reads=caller_reads
    ) as (engine, _):
        reference = (await engine.complete(ask(model="paced"))).text
        events: list[object] = []
        async with engine.stream(ask(model="paced")) as call:
            async for event in call:
                events.append(event)
                if len(events) == 3:
                    await anyio.sleep(0.5)
        assert isinstance(events[-1], Completed), events[-1]
        assert text(events) == reference


async def test_a_broken_stream_restarts_and_the_caller_sees_the_restart(
    caller_reads: bool,
) -> None:
    # Every attempt breaks after 4 chunks: the caller sees each one's text, then a
    # Restart, and the call fails once the attempts are spent.
    config = SimConfig(
        models={"paced": PACED},
        faults=[Fault(kind="disconnect", after=4, rate=1.0, end=None, models=["paced"])],
    )
    policy = RetryPolicy(base_delay=0.005, max_delay=0.02, max_attempts=3)
    async with engine_on_sim(config, retry=policy, caller_reads=caller_reads) as (engine, _):
        async with engine.stream(ask(model="paced"), allow_restart=True) as call:
            events = [e async for e in call]
        restarts = [i for i, e in enumerate(events) if isinstance(e, Restart)]
        assert len(restarts) == 2  # three attempts, each cut after 4 chunks
        assert isinstance(events[-1], Failed) and events[-1].error.kind == "ReadError"
        # Each attempt's text comes before its Restart, in order.
        assert all(isinstance(events[i - 1], TextDelta) for i in restarts)
        assert engine.ledger.records()[-1].restarts == 2


async def test_calls_gathered_later_run_meanwhile(caller_reads: bool) -> None:
    async with engine_on_sim(SimConfig(models={"fast": FAST}), caller_reads=caller_reads) as (
        engine,
        _,
    ):
        calls = [await engine.submit(ask(f"q{i}")) for i in range(5)]
        # Nobody reads yet: the provider actor reads for them, and they finish.
        await eventually(lambda: engine.statistics().ledger.completed == 5)
        results = [await call.response() for call in calls]
        assert all(r.text for r in results)


class _Steps(trio.abc.Instrument):
    """Counts each task's steps by name while on."""

    def __init__(self) -> None:
        self.steps: collections.Counter[str] = collections.Counter()
        self.on = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.steps[task.name.rsplit(".", 1)[-1]] += 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_call_on_an_idle_engine_wakes_neither_the_scheduler_nor_the_rate_actor() -> None:
    # Admission, the permit, dispatch and the settling are done by the tasks that
    # cause them while those actors sleep with nothing to do: each wake-up is a pass
    # of the event loop on the way to the first token.
    steps = _Steps()
    async with engine_on_sim(
        SimConfig(models={"fast": FAST}),
        provider_rate_limit=RateLimitConfig(requests_per_minute=10_000),
    ) as (engine, _):
        await engine.complete(ask())  # warm: the connection, the lane
        await anyio.sleep(0.05)
        trio.lowlevel.add_instrument(steps)
        steps.on = True
        for _ in range(5):
            assert (await engine.complete(ask())).text
        steps.on = False
        trio.lowlevel.remove_instrument(steps)
        stats = await engine.rate_limit_statistics()
        balanced(engine)
    assert steps.steps["scheduler"] == 0 and steps.steps["ratelimit:sim"] == 0, steps.steps
    assert steps.steps["_run_call"] >= 5
    fast = stats["sim"]["fast"]
    assert fast.grants == 6 and fast.released == 6 and fast.inflight == 0  # every call metered


async def test_a_finished_call_leaves_no_reference_cycle_behind(caller_reads: bool) -> None:
    # Everything a call made (its _Call, pipe, lifecycle, the HTTP response) is
    # freed by reference counting when the call ends, not left for the cyclic
    # collector: at thousands of live calls the collector's passes are what cost.
    import gc

    async with engine_on_sim(SimConfig(models={"paced": PACED}), caller_reads=caller_reads) as (
        engine,
        _,
    ):
        await engine.complete(ask(model="paced"))  # warm: pool, imports
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                async with engine.stream(ask(model="paced")) as call:
                    assert isinstance([e async for e in call][-1], Completed)
                assert (await engine.complete(ask(model="paced"))).text
            gc.collect()
            garbage = collections.Counter(type(o).__qualname__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    ours = {"_Call", "CallLifecycle", "PipeSender", "Response", "Request", "CallStream"}
    assert {name: n for name, n in garbage.items() if name in ours} == {}
