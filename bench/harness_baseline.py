"""The load generator most serving benchmarks use, for bench_harness.py to run
beside ``swarm bench``: asyncio, one aiohttp session with an unbounded connector,
Poisson arrivals by ``asyncio.sleep``, one task per request, the response body
read chunk by chunk and split into SSE ``data:`` lines (the approach of vLLM's
``bench serve`` and of most hand-rolled asyncio loops; written here from that
description, not copied).

It writes its per-request records in ``swarm bench``'s RequestRecord shape, so
both are summarized by the same code with the same definitions.

    python bench/harness_baseline.py --url http://127.0.0.1:PORT/v1 --rate 190 \
        --requests 3000 --output-tokens 100 --input-tokens 64 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from typing import Any

import aiohttp


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    records: list[dict[str, Any]] = []
    in_flight = 0
    peak = 0
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    words = "the of and to in is was for on that with as by at from".split()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        origin = loop.time()

        async def one(index: int, intended: float) -> None:
            nonlocal in_flight, peak
            start = loop.time()
            in_flight += 1
            peak = max(peak, in_flight)
            prompt = f"{index} " + " ".join(rng.choice(words) for _ in range(args.input_tokens))
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": args.output_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            first = last = None
            gaps: list[float] = []
            chunks = 0
            usage_out = None
            error = None
            try:
                async with session.post(
                    args.url + "/chat/completions",
                    json=body,
                    headers={"authorization": "Bearer sk-sim"},
                ) as resp:
                    resp.raise_for_status()
                    buffer = b""
                    async for data in resp.content.iter_any():
                        t = loop.time()
                        buffer += data
                        *lines, buffer = buffer.split(b"\n")
                        content = 0
                        for line in lines:
                            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                                continue
                            event = json.loads(line[6:])
                            if event.get("usage"):
                                usage_out = event["usage"].get("completion_tokens")
                            for choice in event.get("choices", ()):
                                if choice.get("delta", {}).get("content"):
                                    content += 1
                        if content:
                            chunks += content
                            if first is None:
                                first = t
                            elif last is not None:
                                gaps.append(t - last)
                            last = t
            except Exception as exc:  # the request's outcome; the run goes on
                error = type(exc).__name__
            end = loop.time()
            in_flight -= 1
            records.append(
                {
                    "index": index,
                    "point": "baseline",
                    "intended": intended,
                    "start": start - origin,
                    "sent": None,
                    "first_token": None if first is None else first - origin,
                    "end": end - origin,
                    "ok": error is None,
                    "error": error,
                    "output_tokens": usage_out or chunks,
                    "token_source": "usage" if usage_out else "chunks",
                    "chunks": chunks,
                    "itl": gaps,
                }
            )

        cpu = time.process_time()
        tasks = []
        due = 0.0
        for index in range(args.requests):
            due += rng.expovariate(args.rate)
            delay = origin + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index, due)))
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu
    return {"records": records, "cpu_seconds": cpu, "max_in_flight": peak}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--output-tokens", type=int, default=100)
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True)
    parser.add_argument("--tune-gc", action="store_true", help="the same collector tuning")
    ns = parser.parse_args()
    if ns.tune_gc:
        gc.set_threshold(100_000, 50, 100)
    result = asyncio.run(main(ns))
    with open(ns.json, "w") as f:
        json.dump(result, f)
