"""Supervisor semantics on trio and asyncio, with injected crashes.

Restart counts per strategy, restart types, escalation, reverse-order shutdown, the
operations of the handle, and structured cancellation. Exact timing is in
``test_shutdown_timing.py`` (trio's virtual clock).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from swarm.supervisor import (
    ChildContext,
    ChildRunningError,
    ChildSpec,
    DuplicateChildError,
    Supervisor,
    SupervisorClosedError,
    SupervisorEscalation,
    SupervisorSpec,
    SupervisorUsageError,
    UnknownChildError,
    open_supervisor,
    supervisor_child,
)

from .children import Boom, Exits, Streams, Worker, workers

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


settle = anyio.wait_all_tasks_blocked


def _spec(ws: dict[str, Worker], **kwargs: object) -> SupervisorSpec:
    return SupervisorSpec(children=[w.spec() for w in ws.values()], **kwargs)  # type: ignore[arg-type]


def _runs(ws: dict[str, Worker]) -> dict[str, int]:
    return {child_id: w.runs for child_id, w in ws.items()}


# --- start and stop order -------------------------------------------------------------------


async def test_children_start_in_order_and_stop_in_reverse_order() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c", "d")
    exits = Exits()
    async with open_supervisor(_spec(ws), on_child_exit=exits) as sup:
        assert log == ["start a", "start b", "start c", "start d"]
        assert [c.state for c in sup.which_children()] == ["running"] * 4
        log.clear()
    assert log == ["stop d", "stop c", "stop b", "stop a"]
    assert exits.kinds() == [
        ("d", "shutdown"),
        ("c", "shutdown"),
        ("b", "shutdown"),
        ("a", "shutdown"),
    ]
    stats = sup.statistics()
    assert (stats.state, stats.stop_reason, stats.running, stats.restarts) == (
        "closed",
        "exited",
        0,
        0,
    )


async def test_a_dynamically_started_child_is_started_last_and_stopped_first() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b")
    late = Worker(log, "late")
    async with open_supervisor(_spec(ws)) as sup:
        await sup.start_child(late.spec())
        assert [c.id for c in sup.which_children()] == ["a", "b", "late"]
        log.clear()
    assert log == ["stop late", "stop b", "stop a"]


# --- strategies -----------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_crashed_child() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c")
    async with open_supervisor(_spec(ws, strategy="one_for_one", intensity=5)) as sup:
        log.clear()
        ws["b"].crash()
        await settle()
        assert log == ["stop b", "start b"]
        ws["b"].crash()
        await settle()
        assert _runs(ws) == {"a": 1, "b": 3, "c": 1}
        assert [(c.id, c.restarts, c.incarnation) for c in sup.which_children()] == [
            ("a", 0, 0),
            ("b", 2, 2),
            ("c", 0, 0),
        ]
        assert sup.statistics().restarts == 2
        assert ws["b"].contexts[-1].incarnation == 2


async def test_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c", "d")
    async with open_supervisor(_spec(ws, strategy="one_for_all", intensity=5)) as sup:
        log.clear()
        ws["b"].crash()
        await settle()
        assert log == [
            "stop b",
            "stop d",
            "stop c",
            "stop a",
            "start a",
            "start b",
            "start c",
            "start d",
        ]
        assert _runs(ws) == {"a": 2, "b": 2, "c": 2, "d": 2}
        assert [c.restarts for c in sup.which_children()] == [1, 1, 1, 1]
        assert sup.statistics().restarts == 1  # one restart, however many children


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c", "d")
    async with open_supervisor(_spec(ws, strategy="rest_for_one", intensity=5)) as sup:
        log.clear()
        ws["b"].crash()
        await settle()
        assert log == ["stop b", "stop d", "stop c", "start b", "start c", "start d"]
        log.clear()
        ws["d"].crash()  # the last child: only itself
        await settle()
        assert log == ["stop d", "start d"]
        assert _runs(ws) == {"a": 1, "b": 2, "c": 2, "d": 3}
        assert sup.statistics().restarts == 2


async def test_siblings_that_crash_in_the_same_tick_are_restarted_once() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c")
    async with open_supervisor(_spec(ws, strategy="one_for_all", intensity=1)) as sup:
        ws["a"].crash()
        ws["c"].crash()
        await settle()
        # Both crashes are folded into one restart (as OTP does); intensity 1 holds.
        assert _runs(ws) == {"a": 2, "b": 2, "c": 2}
        assert sup.statistics().restarts == 1
        assert sup.statistics().state == "running"


# --- restart types --------------------------------------------------------------------------


async def test_permanent_child_is_restarted_after_a_normal_exit() -> None:
    log: list[str] = []
    ws = workers(log, "a")
    exits = Exits()
    async with open_supervisor(_spec(ws, intensity=3), on_child_exit=exits) as sup:
        ws["a"].finish()
        await settle()
        assert ws["a"].runs == 2
        assert exits.kinds() == [("a", "normal")]
        assert sup.statistics().restarts == 1


async def test_transient_child_is_restarted_after_a_crash_only() -> None:
    log: list[str] = []
    t = Worker(log, "t")
    ws = workers(log, "a", "b")
    spec = SupervisorSpec(
        strategy="one_for_all",
        intensity=3,
        children=[ws["a"].spec(), t.spec(restart="transient"), ws["b"].spec()],
    )
    async with open_supervisor(spec) as sup:
        t.crash()
        await settle()
        assert (t.runs, ws["a"].runs, ws["b"].runs) == (2, 2, 2)
        log.clear()
        t.finish()  # a clean end: not restarted, and the siblings are left alone
        await settle()
        assert log == ["stop t"]
        assert [(c.id, c.state) for c in sup.which_children()] == [
            ("a", "running"),
            ("t", "stopped"),
            ("b", "running"),
        ]
        log.clear()
        ws["b"].crash()  # a stopped transient child stays stopped in a one_for_all restart
        await settle()
        assert log == ["stop b", "stop a", "start a", "start b"]
        assert sup.statistics().restarts == 2


async def test_temporary_child_is_never_restarted_and_is_forgotten() -> None:
    log: list[str] = []
    ws = workers(log, "a", "tmp1", "tmp2", "b")
    spec = SupervisorSpec(
        strategy="one_for_all",
        intensity=3,
        children=[
            ws["a"].spec(),
            ws["tmp1"].spec(restart="temporary"),
            ws["tmp2"].spec(restart="temporary"),
            ws["b"].spec(),
        ],
    )
    exits = Exits()
    async with open_supervisor(spec, on_child_exit=exits) as sup:
        ws["tmp1"].crash()
        await settle()
        assert ws["tmp1"].runs == 1 and sup.statistics().restarts == 0
        assert [c.id for c in sup.which_children()] == ["a", "tmp2", "b"]
        log.clear()
        ws["a"].crash()  # tmp2 is stopped for its sibling's restart, and not restarted
        await settle()
        assert log == ["stop a", "stop b", "stop tmp2", "start a", "start b"]
        assert [c.id for c in sup.which_children()] == ["a", "b"]
    assert ("tmp1", "crashed") in exits.kinds()
    assert ("tmp2", "shutdown") in exits.kinds()


# --- intensity and escalation ---------------------------------------------------------------


async def test_escalates_when_intensity_is_exceeded_and_not_before() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c")
    exits = Exits()
    spec = _spec(ws, name="root", intensity=2, period=3600.0)
    with pytest.raises(SupervisorEscalation) as caught:
        async with open_supervisor(spec, on_child_exit=exits) as sup:
            for _ in range(2):
                ws["b"].crash()
                await settle()
            assert sup.statistics().state == "running"
            assert sup.statistics().restarts == 2
            log.clear()
            ws["b"].crash()
            await anyio.sleep_forever()  # the supervisor cancels the block when it gives up
    escalation = caught.value
    assert isinstance(escalation.__cause__, Boom)
    assert str(escalation.__cause__) == "b crashed"
    assert (escalation.supervisor, escalation.exit.id, escalation.exit.kind) == (
        "root",
        "b",
        "crashed",
    )
    assert "gave up" in str(escalation) and "'b'" in str(escalation)
    # Not restarted; every other child stopped, in reverse start order.
    assert log == ["stop b", "stop c", "stop a"]
    assert _runs(ws) == {"a": 1, "b": 3, "c": 1}
    stats = sup.statistics()
    assert (stats.state, stats.stop_reason, stats.restarts, stats.running) == (
        "closed",
        "escalated",
        2,
        0,
    )
    assert exits.kinds()[-3:] == [("b", "crashed"), ("c", "shutdown"), ("a", "shutdown")]


async def test_intensity_zero_escalates_on_the_first_crash() -> None:
    log: list[str] = []
    ws = workers(log, "a")
    with pytest.raises(SupervisorEscalation):
        async with open_supervisor(_spec(ws, intensity=0)):
            ws["a"].crash()
            await anyio.sleep_forever()
    assert ws["a"].runs == 1


async def test_a_child_crashing_at_every_start_escalates_after_intensity_restarts() -> None:
    starts = 0

    async def crashes_at_once(ctx: ChildContext) -> None:
        nonlocal starts
        starts += 1
        raise Boom(f"start {starts}")

    spec = SupervisorSpec(intensity=3, children=[ChildSpec(id="x", start=crashes_at_once)])
    with pytest.raises(SupervisorEscalation) as caught:
        async with open_supervisor(spec):
            await anyio.sleep_forever()
    assert starts == 4  # the first start and 3 restarts
    assert str(caught.value.__cause__) == "start 4"


async def test_nested_supervisor_escalation_is_its_parents_crash() -> None:
    starts = 0

    async def crashes_at_once(ctx: ChildContext) -> None:
        nonlocal starts
        starts += 1
        raise Boom("leaf")

    inner = SupervisorSpec(
        name="inner", intensity=2, children=[ChildSpec(id="leaf", start=crashes_at_once)]
    )
    parent_exits = Exits()
    outer = SupervisorSpec(
        name="outer",
        intensity=1,
        children=[supervisor_child(inner)],
    )
    with pytest.raises(SupervisorEscalation) as caught:
        async with open_supervisor(outer, on_child_exit=parent_exits):
            await anyio.sleep_forever()
    # inner: 1 start + 2 restarts, twice (its first run and the parent's one restart).
    assert starts == 6
    assert parent_exits.kinds() == [("inner", "crashed"), ("inner", "crashed")]
    outer_escalation = caught.value
    assert outer_escalation.supervisor == "outer"
    inner_escalation = outer_escalation.__cause__
    assert isinstance(inner_escalation, SupervisorEscalation)
    assert inner_escalation.supervisor == "inner"
    assert isinstance(inner_escalation.__cause__, Boom)


async def test_a_nested_supervisor_stops_its_children_in_reverse_when_its_parent_stops_it() -> None:
    log: list[str] = []
    ws = workers(log, "x", "y")
    inner = SupervisorSpec(name="inner", children=[w.spec() for w in ws.values()])
    before = Worker(log, "before")
    outer = SupervisorSpec(
        children=[
            before.spec(),
            supervisor_child(inner),
        ]
    )
    async with open_supervisor(outer):
        assert log == ["start before", "start x", "start y"]
        log.clear()
    assert log == ["stop y", "stop x", "stop before"]


# --- auto shutdown --------------------------------------------------------------------------


async def test_any_significant_child_ending_shuts_the_supervisor_down() -> None:
    log: list[str] = []
    job = Worker(log, "job")
    ws = workers(log, "a", "b")
    spec = SupervisorSpec(
        auto_shutdown="any_significant",
        children=[ws["a"].spec(), job.spec(restart="transient", significant=True), ws["b"].spec()],
    )
    reached_end_of_block = False
    async with open_supervisor(spec) as sup:
        log.clear()
        job.finish()
        await anyio.sleep_forever()  # cancelled by the shutdown; the block ends quietly
        reached_end_of_block = True
    assert not reached_end_of_block
    assert log == ["stop job", "stop b", "stop a"]
    assert sup.statistics().stop_reason == "auto_shutdown"


async def test_all_significant_waits_for_the_last_significant_child() -> None:
    log: list[str] = []
    j1, j2 = Worker(log, "j1"), Worker(log, "j2")
    other = Worker(log, "other")
    spec = SupervisorSpec(
        auto_shutdown="all_significant",
        children=[
            j1.spec(restart="temporary", significant=True),
            other.spec(),
            j2.spec(restart="transient", significant=True),
        ],
    )
    checked = False
    async with open_supervisor(spec) as sup:
        j1.crash()  # a temporary significant child ends (abnormally: it still counts)
        await settle()
        assert sup.statistics().state == "running"
        j2.crash()  # transient: a crash is restarted, so it has not ended
        await settle()
        assert sup.statistics().state == "running" and j2.runs == 2
        checked = True  # (a shutdown would have cancelled the block before this line)
        j2.finish()
        await anyio.sleep_forever()
    assert checked
    assert sup.statistics().stop_reason == "auto_shutdown"
    assert log[-2:] == ["stop j2", "stop other"]


async def test_a_nested_auto_shutdown_is_a_normal_exit_in_the_parent() -> None:
    log: list[str] = []
    job = Worker(log, "job")
    inner = SupervisorSpec(
        name="inner",
        auto_shutdown="any_significant",
        children=[job.spec(restart="transient", significant=True)],
    )
    exits = Exits()
    outer = SupervisorSpec(children=[supervisor_child(inner, restart="transient")])
    async with open_supervisor(outer, on_child_exit=exits) as sup:
        job.finish()
        await settle()
        assert exits.kinds() == [("inner", "normal")]
        assert [(c.id, c.state) for c in sup.which_children()] == [("inner", "stopped")]


# --- the exit hook --------------------------------------------------------------------------


async def test_every_exit_is_reported_before_the_child_is_restarted() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b")
    exits = Exits(log)
    async with open_supervisor(_spec(ws, strategy="one_for_all", intensity=3), on_child_exit=exits):
        log.clear()
        ws["a"].crash()
        await settle()
        assert log == [
            "stop a",
            "exit a crashed",
            "stop b",
            "exit b shutdown",
            "start a",
            "start b",
        ]
    crash = exits.exits[0]
    assert isinstance(crash.exception, Boom)
    assert (crash.supervisor, crash.incarnation) == ("supervisor", 0)
    assert [e.incarnation for e in exits.exits] == [0, 0, 1, 1]
    assert all(e.exception is None for e in exits.exits[1:])


# --- operations -----------------------------------------------------------------------------


async def test_terminate_then_restart_then_delete_a_child() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c")
    exits = Exits()
    async with open_supervisor(_spec(ws, strategy="one_for_all"), on_child_exit=exits) as sup:
        log.clear()
        await sup.terminate_child("b")
        assert log == ["stop b"]  # the others are untouched whatever the strategy
        assert exits.kinds() == [("b", "shutdown")]
        assert [c.state for c in sup.which_children()] == ["running", "stopped", "running"]
        await sup.terminate_child("b")  # already stopped: nothing happens
        assert log == ["stop b"]

        with pytest.raises(ChildRunningError, match=r"'a'.*running"):
            await sup.restart_child("a")
        await sup.restart_child("b")
        assert log[-1] == "start b"
        info = {c.id: c for c in sup.which_children()}["b"]
        assert (info.state, info.incarnation, info.restarts) == ("running", 1, 0)
        assert sup.statistics().restarts == 0  # a restart_child is not a restart

        with pytest.raises(ChildRunningError):
            await sup.delete_child("b")
        await sup.terminate_child("b")
        await sup.delete_child("b")
        assert [c.id for c in sup.which_children()] == ["a", "c"]
        with pytest.raises(UnknownChildError, match="no child 'b'"):
            await sup.restart_child("b")
        with pytest.raises(UnknownChildError):
            await sup.terminate_child("b")
        with pytest.raises(LookupError):
            await sup.delete_child("nope")


async def test_terminating_a_temporary_child_forgets_it() -> None:
    log: list[str] = []
    tmp = Worker(log, "tmp")
    async with open_supervisor(SupervisorSpec(children=[tmp.spec(restart="temporary")])) as sup:
        await sup.terminate_child("tmp")
        assert sup.which_children() == []


async def test_start_child_refuses_a_duplicate_id_and_a_misplaced_significant_child() -> None:
    log: list[str] = []
    ws = workers(log, "a")
    async with open_supervisor(_spec(ws)) as sup:
        with pytest.raises(DuplicateChildError, match="already has a child 'a'"):
            await sup.start_child(Worker(log, "a").spec())
        await sup.terminate_child("a")
        with pytest.raises(DuplicateChildError):  # a stopped child keeps its id
            await sup.start_child(Worker(log, "a").spec())
        with pytest.raises(ValueError, match="auto_shutdown"):
            await sup.start_child(Worker(log, "s").spec(restart="transient", significant=True))
        assert [c.id for c in sup.which_children()] == ["a"]


async def test_a_closed_supervisor_refuses_every_operation() -> None:
    log: list[str] = []
    ws = workers(log, "a")
    async with open_supervisor(_spec(ws)) as sup:
        pass
    for operation in (
        sup.start_child(Worker(log, "b").spec()),
        sup.terminate_child("a"),
        sup.restart_child("a"),
        sup.delete_child("a"),
    ):
        with pytest.raises(SupervisorClosedError, match="closed"):
            await operation


async def test_a_child_cannot_terminate_itself() -> None:
    refused: list[BaseException] = []
    holder: list[Supervisor] = []

    async def suicidal(ctx: ChildContext) -> None:
        if ctx.incarnation == 0:
            async with anyio.create_task_group() as tg:  # also from a task it spawned

                async def attempt() -> None:
                    try:
                        await holder[0].terminate_child(ctx.id)
                    except SupervisorUsageError as exc:
                        refused.append(exc)

                tg.start_soon(attempt)
        await ctx.wait_stop_requested()

    async with open_supervisor(SupervisorSpec(children=[])) as sup:
        holder.append(sup)
        await sup.start_child(ChildSpec(id="s", start=suicidal))
        await settle()
        assert len(refused) == 1 and "cannot terminate itself" in str(refused[0])
        assert [c.state for c in sup.which_children()] == ["running"]


async def test_a_child_can_terminate_a_sibling() -> None:
    log: list[str] = []
    victim = Worker(log, "victim")
    holder: list[Supervisor] = []

    async def killer(ctx: ChildContext) -> None:
        await holder[0].terminate_child("victim")
        await ctx.wait_stop_requested()

    async with open_supervisor(SupervisorSpec(children=[victim.spec()])) as sup:
        holder.append(sup)
        await sup.start_child(ChildSpec(id="killer", start=killer))
        await settle()
        assert [(c.id, c.state) for c in sup.which_children()] == [
            ("victim", "stopped"),
            ("killer", "running"),
        ]


def test_handles_have_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        ChildContext(object(), supervisor="s", id="a", incarnation=0)
    with pytest.raises(TypeError, match="no public constructor"):
        Supervisor(object(), spec=SupervisorSpec(), on_child_exit=None, task_group=None)  # type: ignore[arg-type]


# --- how the block ends ---------------------------------------------------------------------


async def test_an_error_in_the_block_stops_the_children_and_propagates_unwrapped() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b")
    exits = Exits()
    with pytest.raises(KeyError, match="from the block"):
        async with open_supervisor(_spec(ws), on_child_exit=exits):
            log.clear()
            raise KeyError("from the block")
    assert log == ["stop b", "stop a"]
    assert exits.kinds() == [("b", "shutdown"), ("a", "shutdown")]


async def test_a_block_failing_while_the_supervisor_escalates_raises_both() -> None:
    log: list[str] = []
    ws = workers(log, "a")
    with pytest.raises(ExceptionGroup) as caught:
        async with open_supervisor(_spec(ws, intensity=0)):
            try:
                ws["a"].crash()
                await anyio.sleep_forever()
            finally:
                raise KeyError("cleanup of the block failed")
    escalation, body_error = caught.value.exceptions
    assert isinstance(escalation, SupervisorEscalation)
    assert isinstance(body_error, KeyError)


async def test_cancelling_the_owner_cancels_every_child_and_reports_them_killed() -> None:
    log: list[str] = []
    ws = workers(log, "a", "b", "c", ignore_stop=True)
    streams = Streams()
    exits = Exits()

    async def streaming(ctx: ChildContext) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(streams.stream)

    spec = SupervisorSpec(
        children=[
            *(w.spec(shutdown="infinity") for w in ws.values()),
            ChildSpec(id="s", start=streaming),
        ]
    )
    with anyio.CancelScope() as scope:
        async with open_supervisor(spec, on_child_exit=exits) as sup:
            await settle()
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert sorted(exits.kinds()) == [
        ("a", "killed"),
        ("b", "killed"),
        ("c", "killed"),
        ("s", "killed"),
    ]
    assert sorted(log[-3:]) == ["stop a", "stop b", "stop c"]
    assert (streams.opened, streams.closed) == (10, 10)
    assert sup.statistics().stop_reason == "cancelled"
    assert sup.statistics().state == "closed"


async def test_a_crash_while_being_stopped_is_reported_and_not_restarted() -> None:
    exits = Exits()

    async def fails_on_stop(ctx: ChildContext) -> None:
        await ctx.wait_stop_requested()
        raise Boom("cleanup failed")

    spec = SupervisorSpec(children=[ChildSpec(id="f", start=fails_on_stop)])
    async with open_supervisor(spec, on_child_exit=exits) as sup:
        await sup.terminate_child("f")
        assert [c.state for c in sup.which_children()] == ["stopped"]
        assert sup.statistics().restarts == 0
    assert exits.kinds() == [("f", "crashed")]


# --- 500 live streams -------------------------------------------------------------------------


async def test_shutdown_with_500_live_streams_leaves_no_task_behind() -> None:
    streams = Streams()
    order: list[int] = []

    def stream_child(index: int) -> Callable[[ChildContext], object]:
        async def child(ctx: ChildContext) -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(streams.stream)
                await ctx.wait_stop_requested()
                tg.cancel_scope.cancel()  # drain: close the stream, then return
            order.append(index)

        return child

    spec = SupervisorSpec(
        children=[ChildSpec(id=f"s{i}", start=stream_child(i)) for i in range(500)]  # type: ignore[arg-type]
    )
    async with open_supervisor(spec) as sup:
        await settle()
        assert streams.opened == 500 and sup.statistics().running == 500
    assert streams.closed == 500
    assert order == list(range(499, -1, -1))
    assert sup.statistics().running == 0


# --- logs -----------------------------------------------------------------------------------


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    return [(r.getMessage(), dict(r.swarm)) for r in caplog.records if hasattr(r, "swarm")]


async def test_crashes_restarts_and_escalation_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="swarm")
    log: list[str] = []
    ws = workers(log, "a", "b")
    spec = _spec(ws, name="root", strategy="one_for_all", intensity=1, period=3600.0)
    with pytest.raises(SupervisorEscalation):
        async with open_supervisor(spec):
            ws["b"].crash()
            await settle()
            first = _events(caplog)
            ws["b"].crash()
            await anyio.sleep_forever()
    assert first == [
        (
            "child.crashed",
            {
                "supervisor": "root",
                "child": "b",
                "incarnation": 0,
                "error": "Boom: b crashed",
            },
        ),
        # one_for_all: a restarts for b's sake; both say so.
        (
            "child.restarted",
            {"supervisor": "root", "child": "a", "cause": "b", "strategy": "one_for_all",
             "restarts": 1},
        ),
        (
            "child.restarted",
            {"supervisor": "root", "child": "b", "cause": "b", "strategy": "one_for_all",
             "restarts": 1},
        ),
    ]  # fmt: skip
    later = _events(caplog)[len(first) :]
    assert [name for name, _ in later] == ["child.crashed", "supervisor.escalated"]
    escalated = later[1][1]
    assert escalated["child"] == "b" and escalated["intensity"] == 1
    assert "gave up" in str(escalated["error"])
