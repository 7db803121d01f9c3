"""A tool loop on the built-in simulator (no key, no network): the model calls
Python tools, sees their results, and answers; every step prints as it happens.

    python examples/tool_loop.py            # trio
    python examples/tool_loop.py asyncio    # the same on asyncio
"""

from __future__ import annotations

import sys
from typing import Literal

import anyio

import swarm
from providers import Message, Request, TextDelta
from swarm.execution import (
    LoopFinished,
    ToolBox,
    ToolFinished,
    ToolStarted,
    TurnStarted,
    run_tool_loop,
)

FORECASTS = {"oslo": "4 C, snow", "rome": "19 C, sunny", "lima": "22 C, cloudy"}


async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. "Oslo".
        unit: Temperature unit.
    """
    await anyio.sleep(0.05)  # an API call would be here
    return FORECASTS.get(city.split()[0].lower(), "12 C, overcast")


def convert_currency(amount: float, to: str) -> str:
    """Convert euros to another currency (a sync tool: it runs in a worker thread).

    Args:
        amount: Euros.
        to: ISO code of the target currency.
    """
    return f"{amount * 1.08:.2f} {to.upper()}"


async def main() -> None:
    tools = ToolBox([get_weather, convert_currency], timeout=10)
    request = Request(
        model="gpt-4o-mini",
        messages=[
            Message.system("You are a travel assistant."),
            Message.user("What's the weather in Oslo, and what are 100 euros in dollars?"),
        ],
        max_tokens=60,
    )
    async with swarm.open_engine() as engine:  # no key: the built-in simulator
        async with run_tool_loop(engine, request, tools, max_turns=4) as loop:
            async for event in loop:
                if isinstance(event, TurnStarted):
                    print(f"\n--- turn {event.turn}")
                elif isinstance(event, TextDelta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, ToolStarted):
                    print(f"[calling {event.call.name}({event.call.arguments})]")
                elif isinstance(event, ToolFinished):
                    mark = "error" if event.outcome.is_error else "ok"
                    print(f"[{event.outcome.name} {mark}: {event.outcome.content}]")
                elif isinstance(event, LoopFinished):
                    result = event.result
                    print(
                        f"\n--- {result.stopped} after {result.turns} turns, "
                        f"{result.tool_calls} tool calls, {result.usage.input_tokens} tokens in, "
                        f"{result.usage.output_tokens} out"
                    )


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
