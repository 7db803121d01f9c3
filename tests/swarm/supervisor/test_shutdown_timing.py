"""Shutdown and restart timing on trio's virtual clock (autojump): exact times.

trio-only on purpose: asyncio has no virtual clock. The same code paths run on asyncio
in ``test_supervisor.py``.
"""

from __future__ import annotations

import math

import anyio
import pytest
import trio.testing

from swarm.supervisor import (
    ChildContext,
    ChildSpec,
    SupervisorEscalation,
    SupervisorSpec,
    open_supervisor,
    supervisor_child,
)

from .children import Boom, Exits, Streams, Worker, workers

pytestmark = pytest.mark.trio

Clock = trio.testing.MockClock


async def test_a_child_ignoring_its_stop_request_is_cancelled_after_exactly_its_shutdown(
    autojump_clock: Clock,
) -> None:
    log: list[str] = []
    stubborn = Worker(log, "stubborn", ignore_stop=True)
    exits = Exits()
    spec = SupervisorSpec(children=[stubborn.spec(shutdown=2.5)])
    async with open_supervisor(spec, on_child_exit=exits):
        await anyio.sleep(1.0)
        t0 = anyio.current_time()
    assert anyio.current_time() == t0 + 2.5
    assert stubborn.ended_at == [t0 + 2.5]
    ctx = stubborn.contexts[0]
    assert ctx.stop_requested and ctx.stop_deadline == t0 + 2.5
    assert exits.kinds() == [("stubborn", "killed")]
    assert exits.exits[0].at == t0 + 2.5


async def test_children_stop_one_by_one_in_reverse_order_each_with_its_own_shutdown(
    autojump_clock: Clock,
) -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c", ignore_stop=True)
    polite = Worker(log, "polite")
    spec = SupervisorSpec(
        children=[
            ws["a"].spec(shutdown=1.0),
            ws["b"].spec(shutdown=2.0),
            polite.spec(shutdown=30.0),
            ws["c"].spec(shutdown=4.0),
        ]
    )
    async with open_supervisor(spec):
        t0 = anyio.current_time()
        log.clear()
    assert log == ["stop c", "stop polite", "stop b", "stop a"]
    assert ws["c"].ended_at == [t0 + 4.0]
    assert polite.ended_at == [t0 + 4.0]  # it returned when asked
    assert ws["b"].ended_at == [t0 + 6.0]
    assert ws["a"].ended_at == [t0 + 7.0]
    assert anyio.current_time() == t0 + 7.0


async def test_brutal_kill_cancels_at_once_and_infinity_waits_as_long_as_it_takes(
    autojump_clock: Clock,
) -> None:
    async def slow_to_stop(ctx: ChildContext) -> None:
        await ctx.wait_stop_requested()
        await anyio.sleep(100.0)  # a long drain, honoured under "infinity"

    log: list[str] = []
    brute = Worker(log, "brute")
    exits = Exits()
    spec = SupervisorSpec(
        children=[
            ChildSpec(id="slow", start=slow_to_stop, shutdown="infinity"),
            brute.spec(shutdown="brutal_kill"),
        ]
    )
    async with open_supervisor(spec, on_child_exit=exits) as sup:
        t0 = anyio.current_time()
        contexts = {c.id: c for c in sup.which_children()}
        assert set(contexts) == {"slow", "brute"}
    assert brute.ended_at == [t0]
    assert brute.contexts[0].stop_requested and brute.contexts[0].stop_deadline == t0
    assert anyio.current_time() == t0 + 100.0
    assert exits.kinds() == [("brute", "killed"), ("slow", "shutdown")]
    assert [e.at for e in exits.exits] == [t0, t0 + 100.0]


async def test_infinity_sets_an_infinite_stop_deadline(autojump_clock: Clock) -> None:
    log: list[str] = []
    w = Worker(log, "w")
    async with open_supervisor(SupervisorSpec(children=[w.spec(shutdown="infinity")])):
        assert w.contexts[0].stop_deadline is None
    assert w.contexts[0].stop_deadline == math.inf


async def test_restarts_count_within_the_period_only(autojump_clock: Clock) -> None:
    log: list[str] = []
    ws = workers(log, "a")
    exits = Exits()
    spec = SupervisorSpec(intensity=1, period=5.0, children=[ws["a"].spec()])
    with pytest.raises(SupervisorEscalation):
        async with open_supervisor(spec, on_child_exit=exits) as sup:
            t0 = anyio.current_time()
            ws["a"].crash()
            await anyio.sleep(5.25)  # the first restart leaves the window
            ws["a"].crash()
            await anyio.sleep(4.0)
            assert sup.statistics().recent_restarts == 1
            assert sup.statistics().state == "running" and ws["a"].runs == 3
            await anyio.sleep(1.0)  # exactly `period` after the second: still within it
            ws["a"].crash()
            await anyio.sleep_forever()
    assert [e.at for e in exits.exits] == [t0, t0 + 5.25, t0 + 10.25]
    assert ws["a"].runs == 3
    assert sup.statistics().restarts == 2


async def test_escalation_stops_every_child_with_its_shutdown_before_raising(
    autojump_clock: Clock,
) -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", ignore_stop=True)
    crasher = Worker(log, "crasher")
    spec = SupervisorSpec(
        intensity=0,
        children=[ws["a"].spec(shutdown=1.5), crasher.spec(), ws["b"].spec(shutdown=2.0)],
    )
    with pytest.raises(SupervisorEscalation) as caught:
        async with open_supervisor(spec):
            t0 = anyio.current_time()
            crasher.crash()
            await anyio.sleep_forever()
    assert isinstance(caught.value.__cause__, Boom)
    assert ws["b"].ended_at == [t0 + 2.0]
    assert ws["a"].ended_at == [t0 + 3.5]
    assert anyio.current_time() == t0 + 3.5


async def test_a_caller_cancelled_during_a_graceful_stop_cancels_the_child_at_once(
    autojump_clock: Clock,
) -> None:
    log: list[str] = []
    stubborn = Worker(log, "stubborn", ignore_stop=True)
    exits = Exits()
    spec = SupervisorSpec(children=[stubborn.spec(shutdown=10.0)])
    async with open_supervisor(spec, on_child_exit=exits) as sup:
        t0 = anyio.current_time()
        with anyio.move_on_after(3.0) as scope:
            await sup.terminate_child("stubborn")
        assert scope.cancelled_caught
        assert stubborn.ended_at == [t0 + 3.0]
        assert [c.state for c in sup.which_children()] == ["stopped"]
        await sup.restart_child("stubborn")
        assert stubborn.runs == 2
    assert exits.kinds() == [("stubborn", "killed"), ("stubborn", "killed")]


async def test_waits_for_a_child_that_signals_ready_before_starting_the_next(
    autojump_clock: Clock,
) -> None:
    log: list[str] = []

    async def slow_init(ctx: ChildContext) -> None:
        await anyio.sleep(3.0)
        log.append(f"ready at {anyio.current_time() - t0}")
        ctx.ready()
        await ctx.wait_stop_requested()

    after = Worker(log, "after")
    t0 = anyio.current_time()
    spec = SupervisorSpec(
        children=[ChildSpec(id="init", start=slow_init, signals_ready=True), after.spec()]
    )
    async with open_supervisor(spec):
        assert log == ["ready at 3.0", "start after"]


async def test_start_child_cancelled_before_ready_leaves_nothing_running(
    autojump_clock: Clock,
) -> None:
    exits = Exits()

    async def never_ready(ctx: ChildContext) -> None:
        await anyio.sleep_forever()

    async with open_supervisor(SupervisorSpec(), on_child_exit=exits) as sup:
        with anyio.move_on_after(2.0):
            await sup.start_child(ChildSpec(id="n", start=never_ready, signals_ready=True))
        assert sup.which_children() == []
        assert exits.kinds() == [("n", "killed")]


# --- 500 live streams -------------------------------------------------------------------------


async def test_500_streams_of_a_child_ignoring_its_stop_end_at_exactly_its_shutdown(
    autojump_clock: Clock,
) -> None:
    streams = Streams()

    async def provider(ctx: ChildContext) -> None:
        # A provider actor running one task per streaming call; it does not drain.
        async with anyio.create_task_group() as tg:
            for _ in range(500):
                tg.start_soon(streams.stream)

    spec = SupervisorSpec(children=[ChildSpec(id="provider", start=provider, shutdown=2.5)])
    async with open_supervisor(spec):
        await anyio.sleep(1.0)
        assert streams.opened == 500
        t0 = anyio.current_time()
    assert anyio.current_time() == t0 + 2.5
    assert streams.closed == 500


async def test_a_subtree_of_500_streaming_children_is_cancelled_at_its_parents_timeout(
    autojump_clock: Clock,
) -> None:
    streams = Streams()
    inner_exits = Exits()

    async def stubborn_stream(ctx: ChildContext) -> None:
        await streams.stream()  # ignores its stop request

    inner = SupervisorSpec(
        name="streams",
        children=[ChildSpec(id=f"s{i}", start=stubborn_stream, shutdown=1.0) for i in range(500)],
    )
    outer = SupervisorSpec(
        children=[supervisor_child(inner, shutdown=10.0, on_child_exit=inner_exits)]
    )
    async with open_supervisor(outer):
        assert streams.opened == 500  # the subtree was ready before the block
        t0 = anyio.current_time()
    # The inner supervisor stopped s499..s491 one second each; at t0 + 10 (s490's own
    # deadline too) its parent's timeout cancelled the rest of the subtree at once.
    assert anyio.current_time() == t0 + 10.0
    assert streams.closed == 500
    assert len(inner_exits.exits) == 500
    assert {e.kind for e in inner_exits.exits} == {"killed"}
    assert [e.id for e in inner_exits.exits[:9]] == [f"s{i}" for i in range(499, 490, -1)]
    assert [e.at - t0 for e in inner_exits.exits[:9]] == [float(i) for i in range(1, 10)]
    assert all(e.at == t0 + 10.0 for e in inner_exits.exits[9:])
