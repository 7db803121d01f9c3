"""examples/tool_loop.py runs as a user would run it, on trio and asyncio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tool_loop.py"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_the_tool_loop_example_calls_a_tool_and_answers(backend: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), backend],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # no API key: the built-in simulator
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "--- turn 1" in out and "--- turn 2" in out
    assert "[calling get_weather(" in out and "[get_weather ok: " in out
    assert "--- answered after 2 turns, 1 tool calls" in out
