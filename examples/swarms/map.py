"""The map pattern on the built-in simulator: one agent, many inputs, at most
``concurrency`` at once, results in input order.

    python examples/swarms/map.py            # trio
    python examples/swarms/map.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys

import anyio

import swarm
from swarm.agents import Agent, open_swarm
from swarm.patterns import map_agent

CITIES = ["Oslo", "Rome", "Lima", "Cairo", "Hanoi", "Quito", "Perth", "Dakar"]


async def main() -> None:
    tagline = Agent(
        "tagline",
        "You write a one-line travel tagline for the city you are given.",
        model="gpt-4o-mini",
        max_tokens=24,
        concurrency=8,
    )
    async with swarm.open_engine() as engine, open_swarm(engine, [tagline]) as crew:
        items = await map_agent(
            crew, "tagline", CITIES, concurrency=4, prompt=lambda city: f"City: {city}"
        )
        for item in items:
            print(f"{item.input:>6}: {item.text if item.ok else item.error}")
        report = crew.report()
    print(
        f"--- {len(items)} inputs, {sum(i.ok for i in items)} answered, "
        f"{report.spent.tokens} tokens, cache hit rate {report.cache_hit_rate:.0%}"
    )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
