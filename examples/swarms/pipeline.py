"""The pipeline pattern on the built-in simulator: outline -> draft -> edit, with
bounded queues between the stages, results printed as each input comes out.

    python examples/swarms/pipeline.py            # trio
    python examples/swarms/pipeline.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys

import anyio

import swarm
from swarm.agents import Agent, open_swarm
from swarm.patterns import Stage, open_pipeline

TOPICS = ["tides", "volcanoes", "bees", "comets", "glaciers", "coral reefs"]


async def main() -> None:
    agents = [
        Agent("outliner", "Outline a short article on the topic.", max_tokens=20),
        Agent("writer", "Write the article from the outline.", max_tokens=40, concurrency=3),
        Agent("editor", "Tighten the article; reply with the final text.", max_tokens=30),
    ]
    stages = [
        Stage("outliner", prompt=lambda topic: f"Topic: {topic}"),
        Stage("writer", workers=3),  # the slow stage gets more hands
        "editor",
    ]
    async with swarm.open_engine() as engine, open_swarm(engine, agents) as crew:
        async with open_pipeline(crew, stages, TOPICS, buffer=2) as results:
            async for item in results:
                if item.ok:
                    print(f"[{item.index}] {item.input}: {item.text[:70]}...")
                else:
                    print(
                        f"[{item.index}] {item.input}: failed at stage {item.stage}: {item.error}"
                    )
        report = crew.report()
    turns = {name: stats.turns for name, stats in report.agents.items()}
    print(f"--- {len(TOPICS)} topics through 3 stages; model turns per agent {turns}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
