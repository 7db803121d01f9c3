"""The side-by-side client suite runs and its figures are well-formed (no timing asserted)."""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_clients
import clients_worker

# The clients this project's own test environment has (the SDKs are test dependencies);
# httpx-sse and LiteLLM live only in the suite's peer environments.
CLIENTS = [
    "floor", "floor-trio", "httpx-msgspec", "anthropic", "openai", "swarm-client", "swarm-engine"
]  # fmt: skip
TINY = [
    "--no-install", "--runs", "1", "--clients", *CLIENTS,
    "--full", "3", "20", "--paced", "3", "4", "--paced-tps", "200",
    "--many", "10", "5", "--many-tps", "200",
    "--ttft-calls", "5", "--ttft-warmup", "2",
    "--scale", "4", "8", "--scale-tokens", "2", "--scale-interval", "0.05",
]  # fmt: skip
FIG = r"[\d.]+(?: \[[\d.]+-[\d.]+\])?"
ROW = re.compile(
    rf"^(?P<client>\S+)\s+(?P<backend>none|trio|asyncio)\s+(?P<full>{FIG})\s+(?P<paced>{FIG})\s+"
    rf"(?P<reads>[\d.]+)\s+(?P<many_cpu>{FIG})\s+(?P<kb>-?{FIG})\s+(?P<open>\d+)\s+"
    r"(?P<p50>[\d.]+) / (?P<p99>[\d.]+)\s+(?P<added>-|-?[\d.]+ / -?[\d.]+)$"
)


def test_suite_runs_every_client_and_prints_well_formed_figures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "figures.json"
    results = tmp_path / "results"
    assert bench_clients.main([*TINY, "--json", str(out), "--results", str(results)]) == 0
    text = capsys.readouterr().out
    rows = {m["client"]: m for m in map(ROW.match, text.splitlines()) if m}
    assert set(rows) == set(CLIENTS)
    assert rows["floor"]["added"] == "-"
    for client, row in rows.items():
        assert row["backend"] == clients_worker.BACKENDS[client]
        assert float(row["full"].split()[0]) > 0 and float(row["paced"].split()[0]) > 0
        assert int(row["open"]) >= 1
    # Every goal line is there, each judged from this run's figures.
    goals = [line for line in text.splitlines() if re.match(r"^  [1-4]\. ", line)]
    assert [g.split(".")[0].strip() for g in goals] == ["1", "1", "2", "2", "2", "3", "4"]
    assert all(g.endswith(("met", "NOT met", "not measured")) for g in goals)
    # LiteLLM was not asked for: its goal is not measured rather than made up.
    assert next(g for g in goals if "litellm" in g).endswith("not measured")
    assert "scale: 2 tokens 0.05 s apart per stream" in text
    # Every client's process runs with the same collector thresholds, and says which.
    assert "collector thresholds in every client's process: (50000, 20, 100)" in text

    figures = json.loads(out.read_text())
    assert figures["problems"] == [] and figures["missing"] == {}
    for workload, streams in (("full", 3), ("paced", 3), ("many", 10)):
        for client in CLIENTS:
            fig = figures[workload][client]
            assert len(fig["us_tok"]) == 1 and fig["us_tok"][0] > 0, (workload, client)
            assert fig["open"][0] <= streams
        assert figures[workload]["_sim"]["cpu"][0] >= 0
    for client in CLIENTS:
        lat = figures["ttft_ms"][client]
        assert len(lat) == 5 and all(x > 0 and not math.isnan(x) for x in lat)
        assert figures["versions"][client]["python"].startswith("3.")
    assert "openai" in figures["versions"]["openai"]
    assert set(figures["scale"]) == {"4", "8"}
    assert set(figures["scale"]["8"]) == {*bench_clients.SCALE_CLIENTS, "_sim"}
    # --results writes the report and the figures under a dated name.
    (md,) = results.glob("*.md")
    (js,) = results.glob("*.json")
    assert md.stem == js.stem and re.match(r"\d{4}-\d\d-\d\d-", md.stem)
    assert "goals (issue 7)" in md.read_text()


def test_a_client_whose_library_is_missing_is_reported_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # LiteLLM is never a dependency of this project's environment.
    assert importlib.util.find_spec("litellm") is None
    # No peer environment beside this "checkout", and no installing: this interpreter,
    # which has no LiteLLM, so the worker says so and the suite reports it.
    monkeypatch.setattr(bench_clients, "ROOT", tmp_path)
    args = argparse.Namespace(install=False, client_core=None, time_limit=60.0)
    runner = bench_clients.Runner(SimpleNamespace(port=9), args)  # type: ignore[arg-type]
    assert runner.work("litellm", "streams", model="full", streams=1) is None
    assert runner.missing == {"litellm": "litellm"} and runner.problems == []
    assert runner.notes["litellm"] == "this interpreter"


# A recorded simulator response (headers and a chunked SSE body), for the floor's parser.
_CHUNK = (
    'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
    '"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
)
_BODY = (
    'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    + "".join(_CHUNK % w for w in ("One", " two", " three", " four"))
    + "data: [DONE]\n\n"
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + f"{len(_BODY):x}\r\n".encode()
    + _BODY
    + b"\r\n0\r\n\r\n"
)


@given(st.lists(st.integers(min_value=1, max_value=len(RESPONSE) - 1), unique=True))
def test_the_floor_counts_the_same_tokens_however_the_reads_split(cuts: list[int]) -> None:
    state = clients_worker._FloorStream()
    points = [0, *sorted(cuts), len(RESPONSE)]
    ends = [state.feed(RESPONSE[a:b]) for a, b in itertools.pairwise(points)]
    assert state.tokens == 4
    assert ends[-1] and not any(ends[:-1])


def test_the_floor_refuses_an_error_status() -> None:
    state = clients_worker._FloorStream()
    with pytest.raises(RuntimeError, match="429"):
        state.feed(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n")
