"""The supervisor-worker pattern on the built-in simulator: an orchestrator agent
delegates subtasks to worker agents through ``ask_<name>`` tools and answers from
their results, under a token budget. The worker is set to be restarted if it
crashes (``on_error="restart"``; nothing crashes in this run: restarts and their
intensity limit are shown by tests/swarm/agents/test_agents.py), and the boss's
``ask_researcher`` tool gives up after ``ask_timeout`` seconds.

    python examples/swarms/supervisor_worker.py            # trio
    python examples/swarms/supervisor_worker.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys

import anyio

import swarm
from swarm.agents import Agent, Budget, open_swarm


def look_up_price(item: str) -> str:
    """The price of an item in the catalogue.

    Args:
        item: What to price.
    """
    return f"{item}: 12.50 EUR"


async def main() -> None:
    boss = Agent(
        "orchestrator",
        "Split the user's request into subtasks and delegate them to your workers.",
        can_ask=["researcher"],
        ask_timeout=20,  # a stuck worker becomes a tool error the boss reads
        max_tokens=40,
    )
    researcher = Agent(
        "researcher",
        "You look things up with your tools and report facts.",
        tools=[look_up_price],
        description="Looks up prices.",
        max_tokens=40,
        concurrency=4,
        on_error="restart",  # a crash restarts it; its siblings carry on
    )
    budget = Budget(tokens=20_000, seconds=60)
    async with (
        swarm.open_engine() as engine,
        open_swarm(engine, [boss, researcher], budget=budget) as crew,
    ):
        reply = await crew.ask("orchestrator", "What would three notebooks cost?", timeout=30)
        report = crew.report()
    print(f"orchestrator: {reply.text}")
    for name, stats in report.agents.items():
        print(
            f"{name:>13}: {stats.messages} messages, {stats.turns} model turns, "
            f"{stats.tool_calls} tool calls, {stats.restarts} restarts"
        )
    print(
        f"--- spent {report.spent.tokens} of {budget.tokens} tokens, "
        f"${report.spent.cost_usd:.6f} estimated, {report.seconds:.2f} s"
    )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
