"""The consensus pattern: the same question to several agents (or models), then a
vote or a judge.

::

    result = await consensus(crew, ["gpt", "claude", "gemini"], "Is 2**61-1 prime?")
    print(result.answer, result.votes, result.agreement)

    result = await consensus(crew, ["a", "b", "c"], question, method="judge", judge="judge")

The voters are asked at once. ``vote`` compares answers after ``normalize`` (by
default: case, surrounding whitespace and trailing punctuation ignored) and picks the
most common; a tie goes to the answer given first in ``agents`` order, and
``result.tie`` says it happened. ``judge`` sends the judge agent the question and
every answer, numbered, and takes its reply as the answer. A voter that fails is
left out (its error is in ``result.errors``); fewer than ``quorum`` answers raise
:class:`NoConsensus`, which carries what there was.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio

from ..agents.budget import BudgetExhausted
from ..agents.runtime import Reply, Swarm
from ..errors import SwarmError

__all__ = ["ConsensusResult", "NoConsensus", "consensus", "normalize_answer"]

_SPACE = re.compile(r"\s+")


def normalize_answer(text: str) -> str:
    """The default vote key: lower case, whitespace collapsed, trailing ``.!?`` and
    surrounding quotes dropped."""
    return _SPACE.sub(" ", text).strip().strip("\"'`").rstrip(".!?").strip().lower()


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    """The answer, and how it was reached.

    Attributes:
        answer: The winning answer as its first voter wrote it (``vote``), or the
            judge's reply (``judge``).
        method: ``vote`` or ``judge``.
        votes: Normalized answer -> how many voters gave it.
        agreement: Share of the answers that agree with the winner (``vote``).
        tie: The top answers tied; the winner is the first given in agents order.
        replies: Each voter's reply, by agent name.
        errors: Each failed voter's error, by agent name.
        judge: The judge's reply (``judge``).
    """

    answer: str
    method: Literal["vote", "judge"]
    votes: dict[str, int]
    agreement: float
    tie: bool = False
    replies: dict[str, Reply] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    judge: Reply | None = None


class NoConsensus(SwarmError):
    """Too few voters answered (``quorum``), or the judge failed."""

    def __init__(
        self, message: str, replies: dict[str, Reply], errors: dict[str, BaseException]
    ) -> None:
        super().__init__(message)
        self.replies = replies
        self.errors = errors


def _judge_prompt(question: str, answers: list[str]) -> str:
    lines = [
        "Several assistants answered the same question. Decide which answer is best "
        "(or combine them) and reply with the final answer only.",
        "",
        f"Question: {question}",
        "",
    ]
    lines += [f"Answer {i}: {answer}" for i, answer in enumerate(answers, 1)]
    return "\n".join(lines)


async def consensus(
    swarm: Swarm,
    agents: Sequence[str],
    question: str,
    *,
    method: Literal["vote", "judge"] = "vote",
    judge: str | None = None,
    normalize: Callable[[str], str] = normalize_answer,
    quorum: int = 1,
    timeout: float | None = None,  # noqa: ASYNC109 - each voter's reply deadline
) -> ConsensusResult:
    """Ask every agent in ``agents`` ``question`` at once, then vote or judge (see
    the module docstring).

    Raises:
        NoConsensus: fewer than ``quorum`` voters answered, or the judge failed.
        BudgetExhausted: the swarm's budget ran out before a quorum answered or
            before the judge did (its ``__cause__`` is the NoConsensus, with the
            replies there were).
        UnknownAgent: a voter or the judge is not in the swarm.
        ValueError: a setting is out of its domain (named in the message).
    """
    if not isinstance(swarm, Swarm):
        raise TypeError(f"consensus runs on a Swarm (from open_swarm()), got {swarm!r}")
    if isinstance(agents, str) or not agents:
        raise ValueError("consensus needs a non-empty list of agent names to ask")
    if len(set(agents)) != len(agents):
        raise ValueError(f"consensus: each agent votes once; {list(agents)} repeats a name")
    if method not in ("vote", "judge"):
        raise ValueError(f"method must be 'vote' or 'judge', got {method!r}")
    if method == "judge" and judge is None:
        raise ValueError("method='judge' needs judge= (the name of the judging agent)")
    if method == "vote" and judge is not None:
        raise ValueError("judge= is for method='judge'; pass method='judge' or drop judge=")
    if not 1 <= quorum <= len(agents):
        raise ValueError(f"quorum must be within 1..{len(agents)} (the voters), got {quorum}")
    if not isinstance(question, str) or not question:
        raise ValueError("consensus needs a non-empty question")
    for name in [*agents, *([judge] if judge else [])]:
        swarm._lookup(name)

    replies: dict[str, Reply] = {}
    errors: dict[str, BaseException] = {}

    async def vote(name: str) -> None:
        try:
            replies[name] = await swarm.ask(name, question, timeout=timeout)
        except Exception as exc:  # one voter's failure is recorded, not raised
            errors[name] = exc

    async with anyio.create_task_group() as tg:
        for name in agents:
            tg.start_soon(vote, name)
    ordered = {name: replies[name] for name in agents if name in replies}
    if len(ordered) < quorum:
        short = NoConsensus(
            f"only {len(ordered)} of {len(agents)} agents answered (quorum {quorum}); "
            + "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in errors.items()),
            ordered,
            errors,
        )
        # A spent budget is the swarm's condition, not this vote's: raised as itself,
        # as every other pattern does, with what there was in its cause.
        spent = next((e for e in errors.values() if isinstance(e, BudgetExhausted)), None)
        if spent is not None:
            raise spent from short
        raise short
    keys = {name: normalize(reply.text) for name, reply in ordered.items()}
    votes = Counter(keys.values())
    if method == "judge":
        assert judge is not None
        try:
            verdict = await swarm.ask(
                judge, _judge_prompt(question, [r.text for r in ordered.values()]), timeout=timeout
            )
        except BudgetExhausted as exc:
            raise exc from NoConsensus(
                f"the judge {judge!r} was not asked: the budget is spent", ordered, errors
            )
        except Exception as exc:
            raise NoConsensus(
                f"the judge {judge!r} failed: {type(exc).__name__}: {exc}", ordered, errors
            ) from exc
        winner = normalize(verdict.text)
        return ConsensusResult(
            answer=verdict.text,
            method="judge",
            votes=dict(votes),
            agreement=votes.get(winner, 0) / len(ordered),
            replies=ordered,
            errors=errors,
            judge=verdict,
        )
    top = max(votes.values())
    leaders = [key for key, count in votes.items() if count == top]
    # Counter keeps first-seen order and `ordered` follows `agents`: the first leader
    # is the one given first in agents order.
    winner = leaders[0]
    first = next(name for name, key in keys.items() if key == winner)
    return ConsensusResult(
        answer=ordered[first].text,
        method="vote",
        votes=dict(votes),
        agreement=top / len(ordered),
        tie=len(leaders) > 1,
        replies=ordered,
        errors=errors,
    )
