"""Phase timeouts: validation, exact deadlines on virtual time, keep-alives, order."""

from __future__ import annotations

import math

import msgspec
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import TimeoutError as PhaseTimeoutError
from providers.events import (
    Citations,
    ErrorEvent,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from swarm.resilience import (
    ClockState,
    Deadline,
    PhaseClock,
    PhaseOrderError,
    Timeouts,
    is_content,
)

T = Timeouts(connect=5.0, pool=5.0, write=5.0, first_token=30.0, idle=10.0, total=100.0)


def committed(clock: PhaseClock) -> bool:
    # A function, not the property inline: mypy would keep an earlier narrowing of it.
    return clock.committed


def snapshot(clock: PhaseClock) -> tuple[object, ...]:
    return (
        clock.state,
        clock.committed,
        clock.started_at,
        clock.connected_at,
        clock.first_byte_at,
        clock.first_content_at,
        clock.last_content_at,
        clock.ended_at,
        clock.next_deadline(),
    )


# -- configuration --------------------------------------------------------------------------


def test_defaults_are_valid_and_every_phase_can_be_disabled() -> None:
    Timeouts()
    off = Timeouts(connect=None, pool=None, write=None, first_token=None, idle=None, total=None)
    clock = PhaseClock(off)
    clock.start(0.0)
    assert clock.next_deadline() is None
    assert clock.expired(1e12) is None


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"connect": 0.0}, "connect"),
        ({"pool": -1.0}, "pool"),
        ({"write": float("nan")}, "write"),
        ({"idle": float("inf")}, "idle is infinite; use None"),
        ({"first_token": True}, "first_token"),
        ({"total": "60"}, "total"),
    ],
)
def test_ambiguous_or_invalid_timeouts_are_refused_naming_the_field(
    fields: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        Timeouts(**fields)  # type: ignore[arg-type]


def test_total_bounds_every_phase_without_refusing_longer_ones() -> None:
    # A short total with the other phases at their defaults is what users write.
    clock = PhaseClock(Timeouts(total=5.0))  # below every default phase
    clock.start(100.0)
    assert clock.next_deadline() == (105.0, "total")
    # A first_token shorter than connect covers a slow connect too.
    clock = PhaseClock(Timeouts(connect=10.0, first_token=5.0))
    clock.start(0.0)
    deadline = clock.next_deadline()
    assert deadline is not None and deadline.when == 5.0


def test_equal_limits_are_not_ambiguous() -> None:
    Timeouts(connect=10.0, first_token=10.0, idle=60.0, total=60.0, pool=60.0, write=60.0)
    # Without a total, any phase length is meaningful.
    Timeouts(idle=10_000.0, total=None)


def test_unknown_fields_are_refused_from_config() -> None:
    with pytest.raises(msgspec.ValidationError, match="read"):
        msgspec.convert({"read": 5.0}, Timeouts)
    assert msgspec.convert({"idle": 5.0}, Timeouts).idle == 5.0


# -- exact deadlines ------------------------------------------------------------------------


def test_phase_deadlines_follow_the_attempt_exactly() -> None:
    clock = PhaseClock(T)
    clock.start(1000.0)
    assert clock.next_deadline() == Deadline(1005.0, "connect")
    assert clock.expired(1004.5) is None
    assert clock.expired(1005.0) == "connect"  # reached at its exact instant
    clock.on_connected(1002.0)
    assert clock.next_deadline() == Deadline(1030.0, "first_token")  # from the start
    clock.on_first_byte(1003.0)
    assert clock.committed
    assert clock.next_deadline() == Deadline(1030.0, "first_token")  # headers are not content
    clock.on_keepalive(1020.0)
    assert clock.next_deadline() == Deadline(1030.0, "first_token")
    clock.on_content_event(1025.0)
    assert clock.time_to_first_token == 25.0
    assert clock.next_deadline() == Deadline(1035.0, "idle")
    clock.on_keepalive(1030.0)
    clock.on_keepalive(1034.0)
    assert clock.next_deadline() == Deadline(1035.0, "idle")  # pings are not progress
    assert clock.expired(1034.999) is None
    assert clock.expired(1035.0) == "idle"
    clock.on_content_event(1034.5)
    assert clock.next_deadline() == Deadline(1044.5, "idle")
    for t in (1044.0, 1054.0, 1064.0, 1074.0, 1084.0):
        clock.on_content_event(t)
    assert clock.next_deadline() == Deadline(1094.0, "idle")
    clock.on_content_event(1093.0)
    assert clock.next_deadline() == Deadline(1100.0, "total")  # idle 1103 is past total
    assert clock.expired(1100.0) == "total"
    clock.on_end(1099.0)
    assert clock.next_deadline() is None
    assert clock.expired(1e9) is None
    assert clock.state is ClockState.ENDED


def test_the_call_deadline_caps_the_attempt() -> None:
    clock = PhaseClock(T)
    clock.start(0.0, deadline=20.0)
    clock.on_connected(1.0)
    assert clock.next_deadline() == Deadline(20.0, "deadline")
    assert clock.call_deadline == 20.0
    clock.on_content_event(2.0)
    assert clock.next_deadline() == Deadline(12.0, "idle")
    clock.on_content_event(11.0)
    assert clock.next_deadline() == Deadline(20.0, "deadline")


def test_ties_report_the_most_specific_phase() -> None:
    clock = PhaseClock(Timeouts(connect=5.0, first_token=60.0, idle=30.0, total=60.0))
    clock.start(0.0, deadline=60.0)
    clock.on_connected(1.0)
    assert clock.next_deadline() == Deadline(60.0, "first_token")
    clock.on_content_event(30.0)
    assert clock.next_deadline() == Deadline(60.0, "idle")
    clock.on_content_event(40.0)
    assert clock.next_deadline() == Deadline(60.0, "total")  # total before the call deadline


def test_bytes_imply_the_connection_and_commit() -> None:
    clock = PhaseClock(T)
    clock.start(0.0)
    assert not committed(clock)
    clock.on_keepalive(2.0)  # an SSE comment before any connection was reported
    assert committed(clock)
    assert clock.connected_at == 2.0 and clock.first_byte_at == 2.0
    assert clock.next_deadline() == Deadline(30.0, "first_token")  # connect is disarmed


def test_connected_is_not_the_commit_point() -> None:
    clock = PhaseClock(T)
    clock.start(0.0)
    clock.on_connected(1.0)
    assert not committed(clock)
    clock.on_content_event(4.0)
    assert committed(clock)
    assert (clock.first_byte_at, clock.first_content_at) == (4.0, 4.0)


def test_disabled_idle_leaves_total_in_charge() -> None:
    clock = PhaseClock(Timeouts(connect=None, first_token=None, idle=None, total=50.0))
    clock.start(10.0)
    clock.on_content_event(11.0)
    assert clock.next_deadline() == Deadline(60.0, "total")


def test_timeout_error_names_the_phase_and_the_limit() -> None:
    clock = PhaseClock(T)
    clock.start(0.0)
    error = clock.timeout_error("idle", "openai (gpt-4o-mini)")
    assert isinstance(error, PhaseTimeoutError)
    assert error.phase == "idle" and error.retryable
    assert str(error) == (
        "idle timeout from openai (gpt-4o-mini): no content for 10 s "
        "(keep-alives do not count as progress)"
    )
    first = clock.timeout_error("first_token", "anthropic (claude)")
    assert str(first) == (
        "first-token timeout from anthropic (claude): no content within 30 s of the start"
    )
    assert clock.timeout_error("deadline", "x").phase == "deadline"


def test_only_generated_output_is_content() -> None:
    content: list[StreamEvent] = [
        TextDelta(text="hi"),
        ReasoningDelta(text="hmm"),
        RefusalDelta(text="no"),
        ToolCallStart(index=0, id="c1", name="f"),
        ToolCallDelta(index=0, arguments="{"),
        ToolCallDone(index=0, id="c1", name="f", arguments="{}"),
        Citations(urls=["https://example.com"]),
    ]
    not_content: list[StreamEvent] = [
        Start(id="r1", model="m"),
        Usage(input_tokens=1, output_tokens=1),
        Finish(reason="stop"),
        ErrorEvent(kind="OverloadedError", message="overloaded"),
    ]
    assert all(is_content(e) for e in content)
    assert not any(is_content(e) for e in not_content)


# -- illegal transitions --------------------------------------------------------------------


def _started() -> PhaseClock:
    clock = PhaseClock(T)
    clock.start(0.0)
    return clock


def _committed() -> PhaseClock:
    clock = _started()
    clock.on_first_byte(1.0)
    return clock


def _ended() -> PhaseClock:
    clock = _started()
    clock.on_end(1.0)
    return clock


@pytest.mark.parametrize(
    ("make", "event"),
    [
        (lambda: PhaseClock(T), "on_connected"),
        (lambda: PhaseClock(T), "on_first_byte"),
        (lambda: PhaseClock(T), "on_content_event"),
        (lambda: PhaseClock(T), "on_keepalive"),
        (lambda: PhaseClock(T), "on_end"),
        (_started, "start"),
        (_committed, "on_first_byte"),
        (_committed, "on_connected"),
        (_ended, "on_content_event"),
        (_ended, "on_keepalive"),
        (_ended, "on_first_byte"),
        (_ended, "on_end"),
        (_ended, "start"),
    ],
)
def test_out_of_order_events_raise_and_change_nothing(make: object, event: str) -> None:
    clock = make()  # type: ignore[operator]
    before = snapshot(clock)
    with pytest.raises(PhaseOrderError):
        getattr(clock, event)(5.0)
    assert snapshot(clock) == before


# -- properties -----------------------------------------------------------------------------

timeouts_strategy = st.builds(
    lambda c, f, i, tot: Timeouts(
        connect=c,
        first_token=None if f is None else max(f, c or 0.0),
        idle=i,
        total=tot,
        pool=None,
        write=None,
    ),
    st.none() | st.floats(0.5, 20.0),
    st.none() | st.floats(0.5, 40.0),
    st.none() | st.floats(0.5, 20.0),
    st.none() | st.floats(40.0, 200.0),
)
events = st.lists(
    st.tuples(
        st.sampled_from(["connected", "first_byte", "content", "keepalive"]),
        st.floats(0.0, 15.0),
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(timeouts=timeouts_strategy, evs=events, deadline=st.none() | st.floats(1.0, 300.0))
def test_deadlines_match_a_reference_and_keepalives_never_extend_them(
    timeouts: Timeouts, evs: list[tuple[str, float]], deadline: float | None
) -> None:
    clock = PhaseClock(timeouts)
    clock.start(0.0, deadline=deadline)
    now = 0.0
    connected = False
    last_content: float | None = None
    for name, dt in evs:
        now += dt
        before = snapshot(clock)
        old = clock.next_deadline()
        try:
            if name == "connected":
                clock.on_connected(now)
            elif name == "first_byte":
                clock.on_first_byte(now)
            elif name == "content":
                clock.on_content_event(now)
            else:
                clock.on_keepalive(now)
        except PhaseOrderError:
            assert snapshot(clock) == before
            continue
        if name == "content":
            last_content = now
        connected = True
        if name == "keepalive":
            new = clock.next_deadline()
            # A keep-alive only ever disarms connect; it never pushes a deadline out.
            assert old is not None or new is None
            if old is not None and old.phase != "connect":
                assert new == old
        # The reference: every armed phase, the earliest wins.
        armed: list[float] = []
        if not connected and timeouts.connect is not None:
            armed.append(timeouts.connect)
        if last_content is None and timeouts.first_token is not None:
            armed.append(timeouts.first_token)
        if last_content is not None and timeouts.idle is not None:
            armed.append(last_content + timeouts.idle)
        if timeouts.total is not None:
            armed.append(timeouts.total)
        if deadline is not None:
            armed.append(deadline)
        nxt = clock.next_deadline()
        assert (nxt.when if nxt else None) == (min(armed) if armed else None)
        if nxt is not None:
            assert clock.expired(nxt.when) == nxt.phase
            assert clock.expired(math.nextafter(nxt.when, -math.inf)) is None
        assert clock.committed == (clock.first_byte_at is not None)


# -- driving it on virtual time (trio) ------------------------------------------------------


@pytest.mark.trio
async def test_an_actor_loop_times_out_on_idle_at_the_exact_instant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The shape of the provider actor's read loop: sleep until the next deadline or
    the next event. Content at t=1, 2, 3, then only pings every second: the idle
    timeout (5 s) fires at exactly t=8, however many pings came in between."""
    send, receive = trio.open_memory_channel[str](1)

    async def server() -> None:
        async with send:
            for kind in ("content", "content", "content"):
                await trio.sleep(1.0)
                await send.send(kind)
            while True:
                await trio.sleep(1.0)
                await send.send("ping")

    clock = PhaseClock(Timeouts(connect=1.0, first_token=10.0, idle=5.0, total=60.0))
    expired = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        clock.start(trio.current_time())
        clock.on_connected(trio.current_time())
        while expired is None:
            nxt = clock.next_deadline()
            assert nxt is not None
            with trio.move_on_at(nxt.when):
                kind = await receive.receive()
                if kind == "content":
                    clock.on_content_event(trio.current_time())
                else:
                    clock.on_keepalive(trio.current_time())
            expired = clock.expired(trio.current_time())
        nursery.cancel_scope.cancel()
    assert expired == "idle"
    assert trio.current_time() == 8.0
    assert clock.last_content_at == 3.0
