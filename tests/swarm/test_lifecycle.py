"""The call lifecycle state machine: legal paths, illegal events, timings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm.lifecycle import CallLifecycle, CallState, IllegalTransition


def streamed(call_id: str = "c1") -> CallLifecycle:
    life = CallLifecycle(call_id, now=10.0)
    life.dispatch("openai", now=10.5)
    life.first_byte(now=10.7)
    life.content(now=10.8)
    return life


def test_happy_path_timings() -> None:
    life = streamed()
    life.content(now=10.85)
    life.content(now=10.95)
    life.complete(now=11.0)
    assert life.state is CallState.COMPLETED
    assert life.queued_time == 0.5
    assert life.ttft == pytest.approx(0.3)  # from dispatch to the first content
    assert life.duration == 1.0
    gaps = life.gaps()
    assert gaps is not None
    assert gaps.count == 2
    assert gaps.mean == pytest.approx(0.075)
    assert gaps.max == pytest.approx(0.1)
    assert 0.05 <= gaps.p50 <= 0.1 and gaps.p99 == pytest.approx(0.1)


def test_content_events_of_one_read_count_as_gaps_of_zero() -> None:
    one_by_one, batched = streamed(), streamed()
    for life in (one_by_one, batched):
        life.content(now=10.9)
    for _ in range(3):
        one_by_one.content(now=11.0)
    batched.content(now=11.0, count=3)  # three events in one network read
    assert batched.gaps() == one_by_one.gaps()
    gaps = batched.gaps()
    assert gaps is not None and gaps.count == 4 and gaps.p50 <= 0.001  # bucket 0: < 1 ms

    fresh = CallLifecycle("c2", now=0.0)
    fresh.dispatch("openai", now=0.0)
    fresh.first_byte(now=0.1)
    fresh.content(now=0.2, count=2)  # the first token and one gap of 0
    assert fresh.ttft == pytest.approx(0.2)
    fresh_gaps = fresh.gaps()
    assert fresh_gaps is not None and fresh_gaps.count == 1 and fresh_gaps.max == 0.0


def test_terminal_states_are_sticky() -> None:
    for end in ("complete", "fail", "cancel"):
        life = streamed()
        getattr(life, end)(now=12.0)
        state = life.state
        for event in ("complete", "fail", "cancel"):
            with pytest.raises(IllegalTransition):
                getattr(life, event)(now=13.0)
        with pytest.raises(IllegalTransition):
            life.dispatch("x", now=13.0)
        assert life.state is state and life.ended_at == 12.0


def test_uncommitted_attempt_can_be_requeued_committed_cannot() -> None:
    life = CallLifecycle("c", now=0.0)
    life.dispatch("a", now=1.0)
    life.requeue(now=2.0)
    assert life.state is CallState.QUEUED and life.requeues == 1
    life.dispatch("b", now=3.0)
    life.first_byte(now=3.5)
    with pytest.raises(IllegalTransition):
        life.requeue(now=4.0)
    assert life.state is CallState.STREAMING
    assert life.attempts == 2 and life.deployment == "b"


def test_committed_failure_with_retry_is_a_restart() -> None:
    life = streamed()
    life.attempt_failed(now=11.0, will_retry=True)
    assert life.state is CallState.WAITING_RETRY and life.restart_pending
    life.dispatch("openai", now=12.0)
    life.first_byte(now=12.2)
    assert life.restarts == 1 and not life.restart_pending
    life.content(now=12.3)  # first content of the new attempt: no gap across attempts
    assert life.gaps() is None


def test_uncommitted_failure_with_retry_is_invisible() -> None:
    life = CallLifecycle("c", now=0.0)
    life.dispatch("a", now=1.0)
    life.attempt_failed(now=1.5, will_retry=True)
    life.dispatch("a", now=2.0)
    life.first_byte(now=2.1)
    assert life.restarts == 0
    assert life.attempts == 2


def test_a_failure_without_retry_must_use_fail() -> None:
    life = streamed()
    with pytest.raises(IllegalTransition, match="fail"):
        life.attempt_failed(now=11.0, will_retry=False)
    assert life.state is CallState.STREAMING


EVENTS = ["dispatch", "first_byte", "content", "attempt_failed", "requeue", "complete", "fail",
          "cancel"]  # fmt: skip


@given(st.lists(st.sampled_from(EVENTS), max_size=40))
def test_random_event_sequences_keep_the_invariants(events: list[str]) -> None:
    life = CallLifecycle("c", now=0.0)
    dispatches = 0
    terminal_seen = 0
    for step, event in enumerate(events, start=1):
        now = float(step)
        before = (life.state, life.attempts, life.requeues, life.restarts, life.ended_at)
        try:
            if event == "dispatch":
                life.dispatch("d", now=now)
                dispatches += 1
            elif event == "attempt_failed":
                life.attempt_failed(now=now, will_retry=True)
            else:
                getattr(life, event)(now=now)
        except IllegalTransition:
            after = (life.state, life.attempts, life.requeues, life.restarts, life.ended_at)
            assert after == before, f"{event} raised but changed the call"
            continue
        if life.state.terminal:
            terminal_seen += 1
    assert terminal_seen <= 1  # at most one terminal transition ever succeeds
    assert life.attempts == dispatches
    assert life.restarts <= life.attempts
    assert (life.ended_at is not None) == life.state.terminal
