"""The engine benchmark runs and prints well-formed figures (no timing asserted)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_engine

FIG = r"[\d.]+(?: \[[\d.]+-[\d.]+\])?"  # a median, with its [min-max] over several runs
CPU_ROW = re.compile(
    rf"^(?P<workload>full|paced)\s+(?P<client>\S+)\s+(?P<streams>\d+)\s+(?P<tokens>\d+)\s+"
    rf"(?P<cpu>{FIG})\s+(?P<per_m>{FIG})\s+(?P<ratio>[\d.]+)\s+(?P<reads>[\d.]+)\s+"
    r"(?P<sim_cpu>[\d.]+)\s+(?P<wall>[\d.]+)\s+(?P<errors>\d+)$"
)
MEM_ROW = re.compile(
    r"^(?P<client>engine\.stream(?:/httpx)?|raw-httpx)\s+(?P<streams>\d+)\s+(?P<in_flight>\d+)\s+"
    r"(?P<engine>\d+|-)\s+(?P<sim>-?\d+)\s+(?P<setup_mb>-?[\d.]+)\s+(?P<setup_cpu>[\d.]+)\s+"
    r"(?P<before>[\d.]+)\s+(?P<peak>[\d.]+)\s+"
    r"(?P<kb>-?[\d.]+)\s+(?P<open>[\d.]+|never)\s+(?P<cpu>[\d.]+)\s+(?P<sim_cpu>[\d.]+)\s+"
    r"(?P<retries>\d+|-)\s+(?P<errors>\d+)$"
)
TTFT_ROW = re.compile(
    r"^(?P<client>socket \(floor\)|raw-httpx|providers\.client|engine\.stream)\s+(?P<calls>\d+)\s+"
    r"(?P<p50>[\d.]+)\s+(?P<p99>[\d.]+)\s+(?P<sim_cpu>[\d.]+)\s+(?P<errors>\d+)$"
)
DIFF_ROW = re.compile(r"^engine - raw\s+(?P<p50>[+-][\d.]+)\s+(?P<p99>[+-][\d.]+)$")

TINY = [
    "--runs", "1",
    "--full-streams", "3", "--full-tokens", "40",
    "--paced-streams", "3", "--paced-tokens", "5", "--paced-tps", "100",
    "--mem-streams", "8", "--mem-interval", "0.2", "--mem-ramp-limit", "20", "--mem-hold", "0.2",
    "--ttft-calls", "8", "--ttft-rounds", "1", "--ttft-warmup", "2",
]  # fmt: skip


def test_bench_prints_every_section_well_formed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "figures.json"
    assert bench_engine.main([*TINY, "--json", str(out_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("python 3.") and "httpx " in lines[1] and "trio " in lines[1]
    assert " cores; " in lines[2]
    assert not [line for line in lines if line.lstrip().startswith("!")], "\n".join(lines)

    cpu = [m for line in lines if (m := CPU_ROW.match(line))]
    assert {(m["workload"], m["client"]) for m in cpu} == {
        (w, c) for w in ("full", "paced") for c in bench_engine.CLIENTS
    }
    for m in cpu:
        assert m["errors"] == "0"
        assert m["tokens"] == ("120" if m["workload"] == "full" else "15")
        assert float(m["cpu"]) > 0 and float(m["per_m"]) > 0 and float(m["ratio"]) > 0
        assert float(m["reads"]) > 0
    assert {float(m["ratio"]) for m in cpu if m["client"] == bench_engine.RAW} == {1.0}

    mem = [m for line in lines if (m := MEM_ROW.match(line))]
    assert {m["client"] for m in mem} == set(bench_engine.MEM_CLIENTS)
    for m in mem:
        assert m["streams"] == "8" and m["errors"] == "0"
        assert m["in_flight"] == "8" and m["sim"] == "8", m.string  # all open at once
        engine = m["client"].startswith(bench_engine.ENGINE)
        assert (m["engine"], m["retries"]) == (("8", "0") if engine else ("-", "-"))
        assert float(m["peak"]) >= float(m["before"]) > 0 and float(m["setup_cpu"]) > 0

    ttft = [m for line in lines if (m := TTFT_ROW.match(line))]
    assert {m["client"] for m in ttft} == set(bench_engine.TTFT_CLIENTS)
    for m in ttft:
        assert m["calls"] == "8" and m["errors"] == "0"
        assert 0 < float(m["p50"]) <= float(m["p99"])
    assert any(DIFF_ROW.match(line) for line in lines)

    figures = json.loads(out_file.read_text())
    assert {"versions", "machine", "cpu", "memory", "ttft", "ttft_engine_added_ms"} <= set(figures)
    assert len(figures["cpu"]) == 2 * len(bench_engine.CLIENTS)


def test_percentile_interpolates_between_ranks() -> None:
    assert bench_engine._pct([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert bench_engine._pct([1.0, 2.0], 50) == 1.5
    assert bench_engine._pct([5.0, 1.0], 100) == 5.0
    assert bench_engine._pct([7.0], 99) == 7.0
