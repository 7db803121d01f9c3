"""Sessions: budgets kept by turns (never splitting a tool call from its result),
summaries, and JSON round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import Message, ToolCall
from swarm.execution import Session, SessionError
from swarm.execution.session import SUMMARY_PREFIX, message_tokens

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def turn(n: int, *, tools: int = 0, size: int = 40) -> list[Message]:
    """One turn: a question, tool calls with their results, an answer."""
    out = [Message.user(f"q{n} " + "x" * size)]
    if tools:
        calls = [ToolCall(id=f"c{n}-{i}", name="t", arguments='{"a": 1}') for i in range(tools)]
        out.append(Message.assistant("", tool_calls=calls))
        out += [Message.tool(c.id, "t", "r" * size) for c in calls]
    out.append(Message.assistant(f"a{n} " + "y" * size))
    return out


def test_the_oldest_turns_go_first_and_the_system_prompt_stays() -> None:
    session = Session(system="be brief", budget_tokens=60)
    for n in range(5):
        session.extend(turn(n, tools=n % 2))
    assert session.over_budget()
    request = session.request("m", max_tokens=10)
    assert request.messages[0] == Message.system("be brief")
    assert not session.over_budget()
    kept_questions = [m.text.split()[0] for m in session.messages if m.role == "user"]
    assert kept_questions[-1] == "q4" and kept_questions == sorted(kept_questions)
    assert session.trimmed_turns == 5 - len(kept_questions)


def test_the_last_turn_is_kept_whole_even_over_budget() -> None:
    session = Session(budget_tokens=5)
    session.extend(turn(0))
    session.extend(turn(1, tools=2, size=200))
    session.trim()
    assert session.messages == turn(1, tools=2, size=200)
    assert session.over_budget()


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 120)), min_size=1, max_size=12),
    budget=st.integers(1, 400),
)
def test_trimming_keeps_whole_turns_in_order_and_fits_when_it_can(
    shape: list[tuple[int, int]], budget: int
) -> None:
    turns = [turn(n, tools=tools, size=size) for n, (tools, size) in enumerate(shape)]
    session = Session(system="s", budget_tokens=budget)
    for t in turns:
        session.extend(t)
    session.trim()
    kept = session.messages
    # A suffix of whole turns, the last always among them.
    suffix = [m for t in turns[len(turns) - len(session.turns()) :] for m in t]
    assert kept == suffix and kept[-len(turns[-1]) :] == turns[-1]
    # Every tool result's call is kept with it.
    call_ids = {c.id for m in kept for c in m.tool_calls}
    assert all(m.tool_call_id in call_ids for m in kept if m.role == "tool")
    # Within budget, unless only the last turn is left.
    assert session.tokens() <= budget or len(session.turns()) == 1
    # Nothing more was dropped than needed: one more turn back would not fit.
    if len(session.turns()) < len(turns):
        previous = turns[len(turns) - len(session.turns()) - 1]
        assert session.tokens() + sum(message_tokens(m) for m in previous) > budget


async def test_summarize_replaces_the_oldest_turns_with_a_summary() -> None:
    given_to_summarizer: list[list[Message]] = []

    async def summarize(messages: list[Message]) -> str:
        given_to_summarizer.append(messages)
        return f"{len(messages)} messages about x"

    session = Session(budget_tokens=80, policy="summarize")
    for n in range(4):
        session.extend(turn(n, tools=1))
    await session.fit(summarize)
    assert session.messages[0].role == "user"
    assert session.messages[0].text.startswith(SUMMARY_PREFIX)
    assert given_to_summarizer and given_to_summarizer[0][0].text.startswith("q0")
    assert session.messages[-len(turn(3, tools=1)) :] == turn(3, tools=1)
    assert not session.over_budget()
    with pytest.raises(SessionError, match="summarize"):
        over = Session(budget_tokens=5, policy="summarize", messages=turn(0) + turn(1))
        await over.fit()


def test_a_session_round_trips_through_json(tmp_path: Path) -> None:
    session = Session(system="sys", budget_tokens=500, messages=turn(0, tools=2) + turn(1))
    session.trimmed_turns = 3
    path = tmp_path / "chat.json"
    session.save(path)
    loaded = Session.load(path)
    assert loaded.messages == session.messages
    assert (loaded.system, loaded.budget_tokens, loaded.policy, loaded.trimmed_turns) == (
        "sys", 500, "trim", 3,
    )  # fmt: skip
    assert Session.loads(session.dumps()).dumps() == session.dumps()


def test_bad_session_documents_and_settings_are_refused_by_name() -> None:
    with pytest.raises(SessionError, match="must be JSON"):
        Session.loads(b"{nope")
    with pytest.raises(SessionError, match="not a session document"):
        Session.loads(b'{"version": 1}')
    with pytest.raises(SessionError, match="version 9 is not supported"):
        Session.loads(
            b'{"version": 9, "system": null, "budget_tokens": null,'
            b' "policy": "trim", "messages": []}'
        )
    with pytest.raises(SessionError, match="system="):
        Session(messages=[Message.system("no")])
    with pytest.raises(SessionError, match="budget_tokens"):
        Session(budget_tokens=0)
    with pytest.raises(SessionError, match="unknown policy"):
        Session(policy="forget")  # type: ignore[arg-type]
