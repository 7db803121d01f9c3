"""The swarm pattern examples run as a user would run them (no API key: the
built-in simulator), on trio and asyncio, and show what each pattern promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "swarms"


def run(name: str, backend: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), backend],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # no API key: the built-in simulator
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


BACKENDS = pytest.mark.parametrize("backend", ["trio", "asyncio"])


@BACKENDS
def test_map_example(backend: str) -> None:
    out = run("map", backend)
    lines = out.splitlines()
    assert [line.split(":")[0].strip() for line in lines[:8]] == [
        "Oslo",
        "Rome",
        "Lima",
        "Cairo",
        "Hanoi",
        "Quito",
        "Perth",
        "Dakar",
    ]  # input order
    assert "--- 8 inputs, 8 answered" in out


@BACKENDS
def test_pipeline_example(backend: str) -> None:
    out = run("pipeline", backend)
    assert out.count("...") == 6 and "failed" not in out
    assert "{'outliner': 6, 'writer': 6, 'editor': 6}" in out


@BACKENDS
def test_consensus_example(backend: str) -> None:
    out = run("consensus", backend)
    for model in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.0-flash"):
        assert f"({model}): " in out
    assert "  judge: " in out
    assert "--- vote: 'Paris' with 67% agreement, tally {'paris': 2, 'lyon': 1}" in out


@BACKENDS
def test_handoff_example(backend: str) -> None:
    out = run("handoff", backend)
    assert "get_forecast(" in out and "14 C, light rain" in out
    assert "transfer_to_weather" not in out  # the specialist never sees the transfer
    assert "--- answered by weather via triage -> weather" in out


@BACKENDS
def test_supervisor_worker_example(backend: str) -> None:
    out = run("supervisor_worker", backend)
    assert "ask_researcher returned" in out
    assert "researcher: 1 messages, 2 model turns, 1 tool calls" in out
    assert "of 20000 tokens" in out
