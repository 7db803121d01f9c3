"""The consensus pattern on the built-in simulator: the same question to agents on
three providers' models (OpenAI, Anthropic and Gemini wire formats), then a judge;
and a vote among rule-based agents, which shows the tally.

    python examples/swarms/consensus.py            # trio
    python examples/swarms/consensus.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys

import anyio

import swarm
from providers import Message
from swarm.agents import Agent, AgentContext, open_swarm
from swarm.patterns import consensus

MODELS = {"gpt": "gpt-4o-mini", "claude": "claude-haiku-4-5", "gemini": "gemini-2.0-flash"}


def fixed(answer: str) -> Agent:
    async def handler(ctx: AgentContext, messages: list[Message]) -> str:
        return answer

    return Agent(f"rule-{len(answer)}-{answer[:3].lower()}", handler=handler)


async def main() -> None:
    panel = [
        Agent(name, "Answer in one sentence.", model=m, max_tokens=30) for name, m in MODELS.items()
    ]
    judge = Agent("judge", "You pick the best of several answers.", model="gpt-4o-mini")
    rules = [fixed("Paris"), fixed("paris."), fixed("Lyon")]
    async with swarm.open_engine() as engine, open_swarm(engine, [*panel, judge, *rules]) as crew:
        judged = await consensus(
            crew, list(MODELS), "Why is the sky blue?", method="judge", judge="judge"
        )
        for name, reply in judged.replies.items():
            print(f"{name:>7} ({MODELS[name]}): {reply.text}")
        print(f"  judge: {judged.answer}")

        voted = await consensus(crew, [a.name for a in rules], "Capital of France?")
        print(
            f"--- vote: {voted.answer!r} with {voted.agreement:.0%} agreement, tally {voted.votes}"
        )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
