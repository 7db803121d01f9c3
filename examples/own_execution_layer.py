"""An application's own execution layer on asyncio, with the engine underneath:
the use this project was first asked for. No tool loop of ours: the application
reads the model's stream with ``async for``, shows tokens as they arrive, starts
each tool the moment its call is complete (while the stream goes on with the
next call or text), then sends the results back and streams the answer.

Runs on the built-in simulator (no key, no network), with three parallel tool
calls a turn so the overlap shows:

    python examples/own_execution_layer.py
"""

from __future__ import annotations

import asyncio
import time

import msgspec

import swarm
from providers import Message, Request, TextDelta, ToolCall, ToolCallDone
from providers.sim import ModelProfile, SimConfig
from swarm.events import Completed, Failed
from swarm.execution import ToolBox

STARTED = time.monotonic()


def stamp() -> str:
    return f"{time.monotonic() - STARTED:6.3f}s"


async def lookup_stock(sku: str) -> str:
    """How many of an item are in stock.

    Args:
        sku: The item's code.
    """
    await asyncio.sleep(0.03)  # the application's own inventory service
    return f"{sku}: 14 in stock"


TOOLS = ToolBox([lookup_stock])
# The simulator's Anthropic endpoint: Messages streams end each tool call with its
# own content_block_stop, so a call is whole (ToolCallDone) before the next one
# starts. (OpenAI Chat Completions marks no call's end: its calls are whole when
# the stream finishes.)
MODEL = "sim-anthropic/shop-model"


async def turn(
    engine: swarm.Engine, messages: list[Message]
) -> tuple[Message, list[tuple[ToolCall, asyncio.Task[Message]]]]:
    """One model turn: stream it, print its text, start each tool call's task as
    soon as the call is whole. Returns the assistant message and the running tools."""
    running: list[tuple[ToolCall, asyncio.Task[Message]]] = []
    request = Request(model=MODEL, messages=messages, tools=TOOLS.specs, max_tokens=60)
    async with engine.stream(request) as call:
        async for event in call:
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, ToolCallDone):
                tool_call = ToolCall(id=event.id, name=event.name, arguments=event.arguments)
                print(f"[{stamp()} model asked {event.name}({event.arguments}); started]")

                async def run(c: ToolCall = tool_call) -> Message:
                    outcome = await TOOLS.run(c)  # bad arguments: an error the model reads
                    print(f"[{stamp()} {c.name} -> {outcome.content}]")
                    return outcome.message()

                running.append((tool_call, asyncio.create_task(run())))
            elif isinstance(event, Completed):
                return event.response.message, running
            elif isinstance(event, Failed):
                for _, task in running:
                    task.cancel()
                raise RuntimeError(f"the model call failed: {event.error.message}")
    raise RuntimeError("the stream ended without a terminal event")


async def main() -> None:
    # Paced at 60 tokens a second, so the calls arrive one after another and the
    # first tools finish while the model is still writing the later calls.
    sim = SimConfig(models={"shop-model": ModelProfile(tokens_per_second=60, tool_calls=3)})
    # simulator=True: the built-in simulator even when an API key is set.
    async with swarm.open_engine(swarm.EngineConfig(simulator=True), simulator=sim) as engine:
        messages = [Message.user("Are the blue, red and green notebooks in stock?")]
        for _ in range(4):  # the application's own turn limit
            assistant, running = await turn(engine, messages)
            messages.append(assistant)
            if not running:
                break  # the model answered
            # The tools started while the stream was still going; collect them in order.
            messages.extend(await asyncio.gather(*(task for _, task in running)))
            print(f"[{stamp()} {len(running)} results back to the model]")
        print()
        record = engine.ledger.records()[-1]
        print(
            f"--- {len(engine.ledger.records())} model calls, last one "
            f"{record.usage.output_tokens} output tokens; conversation of {len(messages)} "
            f"messages: {msgspec.json.encode([m.role for m in messages]).decode()}"
        )


if __name__ == "__main__":
    asyncio.run(main())
