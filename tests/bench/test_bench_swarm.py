"""The swarm benchmark runs (a small swarm, in its own process since it pins itself
to a core) and prints well-formed figures; every agent finishes its three-turn tool
loop. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_swarm.py"


def test_every_agent_completes_its_tool_loop_and_the_figures_print(tmp_path: Path) -> None:
    out_file = tmp_path / "swarm.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--agents", "40", "--json", str(out_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "swarm: 40 agents x 3-turn tool loops"
    assert "replies 40/40, 120 model turns, 80 tool calls, 0 errors" in lines[1]
    assert "engine CPU" in lines[2] and "simulator CPU" in lines[2]
    figures = json.loads(out_file.read_text())
    assert figures["replies"] == 40 and figures["turns"] == 120 and figures["errors"] == 0
    assert figures["wall_s"] >= 0 and figures["engine_cpu_s"] >= 0
