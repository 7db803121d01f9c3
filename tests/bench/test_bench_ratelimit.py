"""The rate-limit benchmark runs and prints well-formed figures (no timing asserted)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_ratelimit

ROW = re.compile(
    r"^(?P<config>none|true|2x|headers)\s+(?P<calls>\d+)\s+(?P<done>\d+)\s+(?P<failed>\d+)\s+"
    r"(?P<cancelled>\d+)\s+(?P<wall>[\d.]+)\s+(?P<req_min>[\d.]+)\s+(?P<tok_min>[\d.]+|-)\s+"
    r"(?P<allow>[\d.]+)\s+(?P<whole>[\d.]+)\s+(?P<sent>\d+)\s+(?P<r429>\d+)\s+"
    r"(?P<pct429>[\d.]+)\s+(?P<eng429>\d+)\s+(?P<attempts>\d+)\s+(?P<retries>\d+)\s+"
    r"(?P<errors>\d+)\s+(?P<one>yes|NO)\s+(?P<cpu>[\d.]+)\s+(?P<goal>MET|not met)$"
)
WORKLOAD = re.compile(r"^workload (?P<name>rpm|tpm): simulator limits rpm=(\d+) tpm=(\d+|-)")

# Small limits, short runs: the whole test takes about 10 s.
TINY = [
    "--workloads", "rpm", "tpm",
    "--duration", "1.5", "--steady-from", "0.5",
    "--rpm", "60", "--tpm", "6000", "--tpm-rpm", "120",
    "--max-concurrency", "16", "--backlog", "32",
    "--ttft", "0", "--ttft-max", "0.05", "--output-tokens", "5", "--output-tokens-max", "10",
    "--tps", "0",
]  # fmt: skip


def test_bench_prints_every_run_well_formed_and_every_call_ends_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "figures.json"
    assert bench_ratelimit.main([*TINY, "--json", str(out_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("python 3.") and "trio " in lines[1]
    assert not [line for line in lines if line.lstrip().startswith("!")], "\n".join(lines)

    # Rows come in workload sections, one row per configuration.
    rows: dict[tuple[str, str], re.Match[str]] = {}
    section = ""
    for line in lines:
        if m := WORKLOAD.match(line):
            section = m["name"]
        elif m := ROW.match(line):
            assert (section, m["config"]) not in rows
            rows[(section, m["config"])] = m
    assert set(rows) == {(w, c) for w in ("rpm", "tpm") for c in bench_ratelimit.CONFIGS}
    for (workload, config), m in rows.items():
        assert m["one"] == "yes", m.string
        calls = int(m["calls"])
        assert calls == int(m["done"]) + int(m["failed"]) + int(m["cancelled"]) > 0
        assert int(m["r429"]) <= int(m["sent"]) <= int(m["attempts"])
        assert int(m["done"]) <= int(m["sent"]) - int(m["r429"])
        assert (m["tok_min"] == "-") == (workload == "rpm")
        # Only a 429 makes a call fail here, and with no client-side limit nothing
        # else holds the flood back.
        if config == "none":
            assert int(m["r429"]) > 0 and int(m["retries"]) > 0
    assert any(line.startswith("goal met: ") for line in lines)

    figures = json.loads(out_file.read_text())
    assert {(r["workload"], r["config"]) for r in figures["runs"]} == set(rows)
    for r in figures["runs"]:
        assert r["one_terminal"] is True and r["duplicates"] == 0
        assert r["sim_429"] == int(rows[(r["workload"], r["config"])]["r429"])
        limited = r["config"] != "none"
        assert (r["limiter"] is not None) == limited
        if limited:
            assert r["limiter"]["inflight"] == 0  # every permit was given back
            assert r["limiter"]["released"] == r["limiter"]["grants"]


def test_limits_scale_and_name_the_binding_one() -> None:
    limits = bench_ratelimit.Limits(rpm=600, tpm=60_000)
    assert limits.scaled(2.0) == bench_ratelimit.Limits(rpm=1200, tpm=120_000)
    assert limits.calls_per_minute(200.0) == 300.0
    assert limits.binding(200.0) == "tpm"
    assert limits.binding(50.0) == "rpm"
    assert bench_ratelimit.Limits(rpm=60, tpm=None).calls_per_minute(1e9) == 60.0


def test_rate_limit_config_per_configuration() -> None:
    limits = bench_ratelimit.Limits(rpm=600, tpm=60_000)
    assert bench_ratelimit.rate_limit_config("none", limits) is None
    true = bench_ratelimit.rate_limit_config("true", limits)
    assert (true.requests_per_minute, true.tokens_per_minute) == (600, 60_000)
    assert true.refund_unused_tokens is False
    double = bench_ratelimit.rate_limit_config("2x", limits)
    assert (double.requests_per_minute, double.tokens_per_minute) == (1200, 120_000)
    headers = bench_ratelimit.rate_limit_config("headers", limits)
    assert (headers.requests_per_minute, headers.tokens_per_minute) == (None, None)
