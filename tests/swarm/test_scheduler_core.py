"""The scheduler core: priority, weighted fairness, deadlines, no head-of-line blocking."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.scheduler import QueueFull, SchedulerCore


def always(route: object) -> bool:
    return True


def drain(core: SchedulerCore[str]) -> list[str]:
    out = []
    while (ticket := core.pop(always)) is not None:
        out.append(ticket.call)
    return out


def test_higher_priority_leaves_first_then_arrival_order() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10)
    core.push("low1", route="r", priority=0)
    core.push("high", route="r", priority=5)
    core.push("low2", route="r", priority=0)
    assert drain(core) == ["high", "low1", "low2"]


def test_a_flooding_tenant_gets_its_share_not_more() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=1000)
    for i in range(100):
        core.push(f"greedy{i}", route="r", tenant="greedy")
    for i in range(10):
        core.push(f"polite{i}", route="r", tenant="polite")
    first_20 = drain(core)[:20]
    counts = Counter(name.rstrip("0123456789") for name in first_20)
    assert counts == {"greedy": 10, "polite": 10}


def test_weights_divide_the_share() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=1000, weights={"gold": 2.0})
    for i in range(60):
        core.push(f"gold{i}", route="r", tenant="gold")
        core.push(f"free{i}", route="r", tenant="free")
    first_30 = drain(core)[:30]
    counts = Counter(name.rstrip("0123456789") for name in first_30)
    assert counts == {"gold": 20, "free": 10}


def test_fairness_is_measured_in_cost() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=100)
    for i in range(10):
        core.push(f"big{i}", route="r", tenant="big", cost=1000)
        core.push(f"small{i}", route="r", tenant="small", cost=100)
    order = drain(core)
    # One big call is worth ten small ones.
    assert order[:11].count("big0") == 1 and sum(n.startswith("small") for n in order[:11]) == 10


def test_a_returning_idle_tenant_is_not_penalized() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=100)
    for i in range(5):
        core.push(f"a{i}", route="r", tenant="a")
    assert [core.pop(always).call for _ in range(3)] == ["a0", "a1", "a2"]  # type: ignore[union-attr]
    core.push("b0", route="r", tenant="b")
    # b0's tag is the virtual clock plus one call: it ties with a3 (arrival order
    # breaks the tie) and does not wait behind the rest of a's backlog.
    assert drain(core) == ["a3", "b0", "a4"]


def test_a_saturated_route_does_not_block_others() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10)
    core.push("to-busy", route="busy", priority=9)
    core.push("to-free", route="free", priority=0)
    ticket = core.pop(lambda route: route == "free")
    assert ticket is not None and ticket.call == "to-free"
    assert core.pop(lambda route: route == "free") is None
    assert len(core) == 1 and core.queued_routes() == ["busy"]


def test_bounded_admission() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=2)
    core.push("a", route="r")
    core.push("b", route="r")
    with pytest.raises(QueueFull, match="max_queued"):
        core.push("c", route="r")
    assert len(core) == 2


def test_deadlines_expire_exactly_and_only_queued_calls() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10)
    core.push("soon", route="r", deadline=5.0)
    core.push("later", route="r", deadline=9.0)
    core.push("never", route="r")
    assert core.next_deadline() == 5.0
    assert core.expire(4.999) == []
    assert [t.call for t in core.expire(5.0)] == ["soon"]
    assert core.next_deadline() == 9.0
    later = core.pop(always)
    assert later is not None and later.call == "later"
    assert core.expire(100.0) == []  # it left before its deadline
    assert core.next_deadline() is None


def test_removed_call_leaves_no_trace() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10)
    ticket = core.push("gone", route="r", deadline=1.0)
    core.push("stays", route="r")
    assert core.remove(ticket) and not core.remove(ticket)
    assert core.expire(2.0) == []
    assert drain(core) == ["stays"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["push", "pop", "expire", "remove"]),
            st.integers(0, 3),  # priority / route index
            st.sampled_from(["a", "b", "c"]),
        ),
        max_size=80,
    )
)
def test_every_call_is_in_exactly_one_place(ops: list[tuple[str, int, str]]) -> None:
    core: SchedulerCore[int] = SchedulerCore(max_queued=20)
    pushed: dict[int, object] = {}
    left: list[int] = []
    now = 0.0
    for n, (op, x, tenant) in enumerate(ops):
        now += 1.0
        if op == "push":
            try:
                pushed[n] = core.push(n, route=x % 2, priority=x, tenant=tenant,
                                      deadline=now + x)  # fmt: skip
            except QueueFull:
                assert len(core) == 20
        elif op == "pop":
            ticket = core.pop(lambda route, wanted=x % 2: route == wanted)
            if ticket is not None:
                left.append(ticket.call)
        elif op == "expire":
            left.extend(t.call for t in core.expire(now))
        elif op == "remove" and pushed:
            call = sorted(pushed)[x % len(pushed)]
            if core.remove(pushed[call]):  # type: ignore[arg-type]
                left.append(call)
    assert len(left) == len(set(left))  # nothing leaves twice
    assert len(core) + len(left) == len(pushed)  # nothing is lost
    left.extend(t.call for t in core.expire(float("inf")) if t.deadline is not None)
    left.extend(t.call for t in iter(lambda: core.pop(always), None))  # type: ignore[union-attr]
    assert sorted(left) == sorted(pushed)


def test_without_aging_a_steady_high_priority_stream_starves_the_rest() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10)
    core.push("low", route="r", priority=0, enqueued_at=0.0)
    served = []
    for t in range(100):  # one high-priority call arrives and one leaves per second
        core.push(f"high{t}", route="r", priority=3, enqueued_at=float(t))
        ticket = core.pop(always)
        assert ticket is not None
        served.append(ticket.call)
    assert "low" not in served


def test_aging_bounds_how_long_a_low_priority_call_waits() -> None:
    # Aging 10 s: the priority-0 call outranks priority-3 calls that arrived
    # (3 - 0 + 1) * 10 = 40 s after it, so it leaves within ~40 s, not never.
    core: SchedulerCore[str] = SchedulerCore(max_queued=10, aging=10.0)
    core.push("low", route="r", priority=0, enqueued_at=0.0)
    served = []
    for t in range(100):
        core.push(f"high{t}", route="r", priority=3, enqueued_at=float(t))
        ticket = core.pop(always)
        assert ticket is not None
        served.append(ticket.call)
        if ticket.call == "low":
            break
    assert served[-1] == "low"
    assert 30 <= len(served) - 1 <= 41  # the high calls served before it


def test_with_aging_calls_of_one_window_still_keep_priority_and_fairness() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=100, aging=60.0)
    for i in range(6):
        core.push(f"greedy{i}", route="r", tenant="greedy", enqueued_at=1.0 + i)
    core.push("polite0", route="r", tenant="polite", enqueued_at=7.0)
    core.push("urgent", route="r", priority=1, enqueued_at=8.0)
    out = drain(core)
    assert out[0] == "urgent"
    assert out.index("polite0") <= 2  # fair share inside the window, not arrival order


def test_a_requeued_call_keeps_its_age() -> None:
    core: SchedulerCore[str] = SchedulerCore(max_queued=10, aging=1.0)
    core.push("new-high", route="r", priority=2, enqueued_at=100.0)
    core.push("old-requeued", route="r", priority=0, enqueued_at=50.0)  # waited 50 s
    assert drain(core) == ["old-requeued", "new-high"]


@pytest.mark.parametrize("aging", [0.0, -1.0, float("inf"), float("nan")])
def test_aging_must_be_a_positive_number_of_seconds(aging: float) -> None:
    with pytest.raises(ValueError, match="aging must be a positive number"):
        SchedulerCore(max_queued=1, aging=aging)


@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 5), st.floats(0, 1_000, allow_nan=False)), min_size=2, max_size=40
    ),
    aging=st.floats(0.5, 100.0),
)
def test_aging_never_lets_a_call_be_passed_by_one_much_newer_and_not_much_higher(
    arrivals: list[tuple[int, float]], aging: float
) -> None:
    # The bound aging promises: call A (priority p, queued at a) leaves before any
    # call B with priority q queued at b >= a + (q - p + 1) * aging.
    core: SchedulerCore[int] = SchedulerCore(max_queued=100, aging=aging)
    for i, (priority, at) in enumerate(arrivals):
        core.push(i, route="r", priority=priority, enqueued_at=at)
    order = drain(core)
    position = {call: n for n, call in enumerate(order)}
    for a, (p, ta) in enumerate(arrivals):
        for b, (q, tb) in enumerate(arrivals):
            if tb >= ta + (q - p + 1) * aging:
                assert position[a] < position[b], (arrivals[a], arrivals[b])
