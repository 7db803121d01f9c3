"""examples/asyncio_web.py runs as a user would run it (uvicorn on asyncio, the
built-in simulator) and streams tokens to an HTTP client as Server-Sent Events."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "asyncio_web.py"


@pytest.fixture
def server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        # Paced at 40 tokens a second, so arrival over time can be seen.
        [sys.executable, str(EXAMPLE), "--port", str(port), "--tokens-per-second", "40"],
        env={"PATH": "/usr/bin:/bin"},  # no API key: the built-in simulator
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            for _ in range(300):  # up to 30 s to start, then give up (bounded)
                try:
                    httpx.get(f"{base}/chat", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        assert proc.stderr is not None
                        raise AssertionError(proc.stderr.read().decode()) from None
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(10)


def events(base: str, **params: str) -> list[dict[str, object]]:
    out = []
    with httpx.stream("GET", f"{base}/chat", params=params, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[len("data: ") :]))
    return out


def test_the_web_app_streams_the_engines_tokens(server: str) -> None:
    got = events(server, q="Tell me about Oslo", max_tokens="12")
    texts = [e["text"] for e in got if "text" in e]
    assert got[-1] == {"done": True, "output_tokens": 12}
    assert len(texts) == 12 and "".join(map(str, texts)).strip()
    # Several clients at once share the one engine.
    for _ in range(3):
        assert events(server, q="again", max_tokens="5")[-1]["done"] is True


def test_the_web_app_refuses_bad_input_clearly(server: str) -> None:
    missing = httpx.get(f"{server}/chat", timeout=10)
    assert missing.status_code == 400 and "?q=" in missing.json()["error"]
    bad = httpx.get(f"{server}/chat", params={"q": "x", "max_tokens": "lots"}, timeout=10)
    assert bad.status_code == 400 and "max_tokens" in bad.json()["error"]


def test_tokens_reach_the_client_as_they_are_made_not_at_the_end(server: str) -> None:
    arrivals: list[float] = []
    with httpx.stream(
        "GET", f"{server}/chat", params={"q": "Tell me about Rome", "max_tokens": "20"}, timeout=30
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"text"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) == 20
    # 20 tokens at the simulator's 40 a second take at least ~0.5 s to make; the
    # client saw them spread over that time (a lower bound: no machine is faster).
    assert arrivals[-1] - arrivals[0] >= 0.3


def test_a_client_that_disconnects_cancels_its_model_call(server: str) -> None:
    with httpx.stream(
        "GET", f"{server}/chat", params={"q": "A long story", "max_tokens": "400"}, timeout=30
    ) as response:  # 10 s of tokens at 40 a second
        lines = response.iter_lines()
        while not next(lines).startswith("data: "):
            pass
        assert httpx.get(f"{server}/stats", timeout=10).json()["in_flight"] == 1
    # Left after one token: the engine cancels the call (bounded wait, then fail).
    for _ in range(100):
        stats = httpx.get(f"{server}/stats", timeout=10).json()
        if stats["cancelled"] == 1:
            break
        time.sleep(0.05)
    assert stats["cancelled"] == 1 and stats["in_flight"] == 0
    assert stats["completed"] == 0
