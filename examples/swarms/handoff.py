"""The handoff pattern on the built-in simulator, in the manner of OpenAI's Swarm:
a triage agent passes the conversation to a specialist through a
``transfer_to_<name>`` tool call, and the specialist (with its own tools) answers.

    python examples/swarms/handoff.py            # trio
    python examples/swarms/handoff.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys

import anyio

import swarm
from swarm.agents import Agent, open_swarm


def get_forecast(city: str) -> str:
    """Tomorrow's forecast for a city.

    Args:
        city: The city's name.
    """
    return f"{city}: 14 C, light rain"


async def main() -> None:
    triage = Agent(
        "triage",
        "Find out what the user needs and hand over to the right specialist.",
        handoffs=["weather"],
        max_tokens=30,
    )
    weather = Agent(
        "weather",
        "You answer weather questions with the forecast tool.",
        tools=[get_forecast],
        description="Weather questions.",
        max_tokens=40,
    )
    async with swarm.open_engine() as engine, open_swarm(engine, [triage, weather]) as crew:
        reply = await crew.ask("triage", "Will I need an umbrella in Bergen tomorrow?", timeout=30)
    for message in reply.messages:
        calls = ", ".join(f"{c.name}({c.arguments})" for c in message.tool_calls or [])
        print(f"{message.role:>9}: {message.text[:80]}{' -> ' + calls if calls else ''}")
    print(
        f"--- answered by {reply.agent} via {' -> '.join(reply.path)}, {reply.turns} turns, "
        f"{reply.tool_calls} tool calls, {reply.usage.output_tokens} tokens out"
    )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
