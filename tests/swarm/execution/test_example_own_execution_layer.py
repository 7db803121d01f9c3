"""examples/own_execution_layer.py runs as a user would run it (asyncio, no key):
an application's own loop over engine.stream, its tools started while the
stream is still going."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "own_execution_layer.py"


def test_the_applications_own_loop_runs_tools_while_the_stream_goes_on() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-not-used"},  # simulator=True wins
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    asked = [i for i, line in enumerate(lines) if "model asked lookup_stock(" in line]
    answered = [
        i for i, line in enumerate(lines) if re.search(r"lookup_stock -> .* in stock", line)
    ]
    assert len(asked) == 3 and len(answered) == 3
    # Each tool was started from inside the stream (its ToolCallDone), and the
    # results went back once all were in. (When each one finishes against the
    # model's pacing is timing: the example prints it, a test does not bet on it.)
    back = next(i for i, line in enumerate(lines) if "3 results back to the model" in line)
    assert max(asked) < back and max(answered) < back
    assert '"user","assistant","tool","tool","tool","assistant"' in done.stdout
