"""An asyncio web application (Starlette on uvicorn) that streams the engine's
tokens to its HTTP clients as they arrive, as Server-Sent Events.

    python examples/asyncio_web.py --port 8001
    curl -N 'http://127.0.0.1:8001/chat?q=Tell+me+about+Oslo'
    curl 'http://127.0.0.1:8001/stats'       # the engine's calls: in flight, done, cancelled

``--tokens-per-second 20`` paces the simulator's answers, to watch them arrive.

The engine is opened once in the application's lifespan (no key: the built-in
simulator) and shared by every request; the library runs on asyncio through anyio.
A client that disconnects cancels its model call (the stream's block is left).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

import swarm
from providers import Message, Request, TextDelta
from providers.sim import ModelProfile, SimConfig
from swarm.events import Completed, Failed


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pace = getattr(app.state, "tokens_per_second", 0.0)
    sim = SimConfig(default_profile=ModelProfile(tokens_per_second=pace))
    async with swarm.open_engine(simulator=sim) as engine:  # sim: used when no key is set
        app.state.engine = engine
        yield


async def stats(http: HttpRequest) -> JSONResponse:
    ledger = http.app.state.engine.statistics().ledger
    return JSONResponse(
        {
            "in_flight": ledger.in_flight,
            "completed": ledger.completed,
            "failed": ledger.failed,
            "cancelled": ledger.cancelled,
        }
    )


async def chat(http: HttpRequest) -> StreamingResponse | JSONResponse:
    question = http.query_params.get("q", "").strip()
    if not question:
        return JSONResponse({"error": "pass the question as ?q=..."}, status_code=400)
    max_tokens = http.query_params.get("max_tokens", "64")
    if not max_tokens.isdigit() or int(max_tokens) < 1:
        return JSONResponse({"error": "max_tokens must be a whole number >= 1"}, status_code=400)
    request = Request(
        model=http.query_params.get("model", "gpt-4o-mini"),
        messages=[Message.user(question)],
        max_tokens=int(max_tokens),
    )
    engine = http.app.state.engine

    async def events() -> AsyncIterator[bytes]:
        async with engine.stream(request) as call:
            async for event in call:
                if isinstance(event, TextDelta):
                    yield b"data: " + json.dumps({"text": event.text}).encode() + b"\n\n"
                elif isinstance(event, Completed):
                    usage = event.response.usage
                    done = {"done": True, "output_tokens": usage.output_tokens}
                    yield b"data: " + json.dumps(done).encode() + b"\n\n"
                elif isinstance(event, Failed):
                    error = {"error": event.error.message, "kind": event.error.kind}
                    yield b"data: " + json.dumps(error).encode() + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(routes=[Route("/chat", chat), Route("/stats", stats)], lifespan=lifespan)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--tokens-per-second", type=float, default=0.0, help="the simulator's pace (0: unpaced)"
    )
    args = parser.parse_args()
    app.state.tokens_per_second = args.tokens_per_second
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="asyncio", log_level="warning")
