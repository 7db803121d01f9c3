"""Decode throughput on the per-token hot path, measured side by side in one run.

For each wire family, a synthetic stream of N text tokens in that provider's exact
format is decoded by:

* ``json.loads loop``: the floor most hand-rolled clients use: split lines, take
  ``data:`` lines, ``json.loads`` each (no SSE rules, no normalization, no events);
* ``SSEDecoder``: our WHATWG decoder alone (events out, no JSON);
* ``family decoder``: our full path: SSE, typed msgspec decoding, normalized events.

Each is fed two ways: ``whole`` (one buffer, the best case) and ``per-event`` (one
network read per SSE event, which is what a paced stream looks like). Figures are
CPU time from the OS (``time.process_time``), median and range over several runs,
as events per second and CPU seconds per million tokens.

Run: ``python bench/bench_decode.py [--tokens N] [--runs R] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import msgspec

from providers.events import TextDelta
from providers.families import get_family
from providers.sse import SSEDecoder

WORDS = ["the", " swarm", " streams", " tokens", " fast", ",", " and", " é", " 世界", " ok."]


def _enc(obj: object) -> str:
    return msgspec.json.encode(obj).decode()


STOP = "stop"


def openai_stream(n: int) -> list[bytes]:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_1"}  # fmt: skip
    events = []
    for i in range(n):
        chunk = {**head, "choices": [{"index": 0, "delta": {"content": WORDS[i % 10]},
                                      "logprobs": None, "finish_reason": None}]}  # fmt: skip
        events.append(f"data: {_enc(chunk)}\n\n")
    events.append(
        f"data: {_enc({**head, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': STOP}]})}\n\n"
    )
    usage = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": n + 10}
    events.append(f"data: {_enc({**head, 'choices': [], 'usage': usage})}\n\n")
    events.append("data: [DONE]\n\n")
    return [e.encode() for e in events]


def anthropic_stream(n: int) -> list[bytes]:
    def ev(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {_enc(data)}\n\n"

    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [], "stop_reason": None, "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 1}}  # fmt: skip
    events = [
        ev("message_start", {"type": "message_start", "message": msg}),
              ev("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
    ]  # fmt: skip
    for i in range(n):
        events.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                         "delta": {"type": "text_delta", "text": WORDS[i % 10]}}))  # fmt: skip
    events.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                     "stop_sequence": None}, "usage": {"output_tokens": n}}))  # fmt: skip
    events.append(ev("message_stop", {"type": "message_stop"}))
    return [e.encode() for e in events]


def responses_stream(n: int) -> list[bytes]:
    seq = 0

    def ev(data: dict[str, object]) -> str:
        nonlocal seq
        seq += 1
        return f"event: {data['type']}\ndata: {_enc({**data, 'sequence_number': seq})}\n\n"

    resp = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress",
            "model": "gpt-4.1", "output": [], "usage": None}  # fmt: skip
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant",
            "content": []}  # fmt: skip
    events = [ev({"type": "response.created", "response": resp}),
              ev({"type": "response.output_item.added", "output_index": 0, "item": item}),
              ev({"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0,
                  "content_index": 0, "part": {"type": "output_text", "text": "",
                                               "annotations": []}})]  # fmt: skip
    for i in range(n):
        events.append(ev({"type": "response.output_text.delta", "item_id": "msg_1",
                          "output_index": 0, "content_index": 0, "delta": WORDS[i % 10],
                          "logprobs": []}))  # fmt: skip
    text = "".join(WORDS[i % 10] for i in range(n))
    done_item = {**item, "status": "completed",
                 "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
    events.append(ev({"type": "response.output_item.done", "output_index": 0, "item": done_item}))
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": n,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": n + 10}  # fmt: skip
    events.append(ev({"type": "response.completed", "response": {**resp, "status": "completed",
                      "output": [done_item], "usage": usage}}))  # fmt: skip
    return [e.encode() for e in events]


def gemini_stream(n: int) -> list[bytes]:
    events = []
    for i in range(n):
        chunk: dict[str, object] = {
            "candidates": [{"content": {"parts": [{"text": WORDS[i % 10]}], "role": "model"},
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1",
        }  # fmt: skip
        if i == n - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"  # type: ignore[index]
            chunk["usageMetadata"] = {"promptTokenCount": 10, "candidatesTokenCount": n,
                                      "totalTokenCount": n + 10}  # fmt: skip
        events.append(f"data: {_enc(chunk)}\r\n\r\n")
    return [e.encode() for e in events]


STREAMS: dict[str, Callable[[int], list[bytes]]] = {
    "openai": openai_stream,
    "openai-responses": responses_stream,
    "anthropic": anthropic_stream,
    "gemini": gemini_stream,
}


def json_loop(chunks: list[bytes]) -> int:
    """The floor: lines -> data: lines -> json.loads. Handles LF streams only."""
    count = 0
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                json.loads(line[6:])
                count += 1
    return count


def sse_only(chunks: list[bytes]) -> int:
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    return count


def family_decoder(family: str) -> Callable[[list[bytes]], int]:
    fam = get_family(family)

    def run(chunks: list[bytes]) -> int:
        decoder = fam.stream_decoder()
        count = 0
        for chunk in chunks:
            count += len(decoder.feed(chunk))
        count += len(decoder.end())
        return count

    return run


def check(family: str, events: list[bytes], n: int) -> None:
    """The bench decodes what it claims to: n text deltas, the right text."""
    decoder = get_family(family).stream_decoder()
    got = [e for chunk in events for e in decoder.feed(chunk)] + decoder.end()
    text = "".join(e.text for e in got if isinstance(e, TextDelta))
    expected = "".join(WORDS[i % 10] for i in range(n))
    if text != expected:
        raise SystemExit(f"bench stream for {family} does not decode to its text")


def measure(fn: Callable[[list[bytes]], int], chunks: list[bytes], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn(chunks)
        times.append(time.process_time() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=50_000, help="text tokens per stream")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median shown)")
    parser.add_argument("--quick", action="store_true", help="5,000 tokens, 3 runs")
    args = parser.parse_args(argv)
    n, runs = (5_000, 3) if args.quick else (args.tokens, args.runs)

    print(f"decode throughput, {n:,} tokens per stream, median of {runs} runs (CPU time)")
    print(
        f"python {platform.python_version()} on {platform.machine()}, msgspec {msgspec.__version__}"
    )
    print()
    header = (
        f"{'family':<17}{'decoder':<18}{'feed':<10}{'events/s':>12}"
        f"{'CPU s / M tok':>15}{'range':>17}"
    )
    print(header)
    print("-" * len(header))
    for family, make in STREAMS.items():
        events = make(n)
        check(family, events, n)
        whole = [b"".join(events)]
        rows: list[tuple[str, Callable[[list[bytes]], int]]] = [
            ("json.loads loop", json_loop),
            ("SSEDecoder", sse_only),
            ("family decoder", family_decoder(family)),
        ]
        for name, fn in rows:
            for feed, chunks in (("whole", whole), ("per-event", events)):
                produced = fn(chunks)
                times = measure(fn, chunks, runs)
                med = statistics.median(times)
                rate = produced / med if med else float("inf")
                per_m = med / n * 1e6
                spread = f"{min(times) / n * 1e6:.2f}-{max(times) / n * 1e6:.2f}"
                print(f"{family:<17}{name:<18}{feed:<10}{rate:>12,.0f}{per_m:>15.2f}{spread:>17}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
