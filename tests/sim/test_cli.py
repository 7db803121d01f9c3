"""``python -m providers.sim`` serves; the CLI flags build the configuration."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import httpx

from providers.sim.cli import add_arguments, build_config

from .common import decode, finish_of, request

ROOT = Path(__file__).resolve().parents[2]


def test_flags_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--seed",
            "4",
            "--ttft",
            "0.5",
            "--tps",
            "30",
            "--output-tokens",
            "10",
            "--output-tokens-max",
            "20",
            "--rpm",
            "60",
            "--fault",
            '{"kind":"status","status":503,"rate":0.1}',
        ]
    )
    cfg = build_config(args)
    assert (cfg.port, cfg.seed) == (0, 4)
    p = cfg.default_profile
    assert (p.ttft, p.tokens_per_second, p.output_tokens, p.output_tokens_max) == (0.5, 30, 10, 20)
    assert cfg.rate_limit.rpm == 60 and cfg.rate_limit.tpm is None
    assert cfg.faults[0].status == 503
    assert build_config(parser.parse_args([])).port == 8000
    tools = build_config(
        parser.parse_args(
            [
                "--host",
                "0.0.0.0",
                "--tool-calls",
                "3",
                "--tool-rounds",
                "2",
                "--bad-tool-calls",
                "0.25",
            ]
        )
    )
    assert tools.host == "0.0.0.0"
    p = tools.default_profile
    assert (p.tool_calls, p.tool_rounds, p.bad_tool_calls) == (3, 2, 0.25)
    split = build_config(parser.parse_args(["--rpm", "50", "--itpm", "30000", "--otpm", "8000"]))
    assert (split.rate_limit.rpm, split.rate_limit.tpm) == (50, None)
    assert (split.rate_limit.itpm, split.rate_limit.otpm) == (30000, 8000)


def test_python_m_providers_sim_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "providers.sim", "--port", "0", "--output-tokens", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        base = line.split()[-1]
        for family in ("openai", "anthropic", "openai-responses", "gemini"):
            path, body = request(family)
            r = httpx.post(base + path, json=body, timeout=10)
            assert r.status_code == 200
            assert finish_of(decode(family, r.content)) == "stop"
        assert httpx.get(base + "/sim/stats", timeout=10).json()["requests"] == 4
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_busy_port_and_a_missing_config_are_errors_with_their_own_exit_codes(
    tmp_path: Path,
) -> None:
    """A port something else holds: exit 2 and a message naming it and the fix (it
    was a traceback out of the server's nursery); a config file that cannot be read:
    exit 3, as swarm run uses for files."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "providers.sim", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 2, busy.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr and "--port" in busy.stderr
    assert "Traceback" not in busy.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "providers.sim", "--config", str(tmp_path / "nope.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 3, missing.stderr
    assert "nope.toml" in missing.stderr and "Traceback" not in missing.stderr
