"""``swarm bench`` end to end against the simulator (a real server in a child
process): the reported figures match the simulator's configured pacing, each
wire family, open and closed loops, limits, datasets, errors, and the outputs."""

from __future__ import annotations

import csv
import json
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from swarm.benchmark import BenchReport
from swarm.benchmark.target import simulator_process
from swarm.cli import EXIT_INPUT, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, main


def bench(tmp_path: Path, args: str) -> tuple[int, BenchReport]:
    out = tmp_path / "bench.json"
    code = main(["bench", *shlex.split(args), "--quiet", "--json", str(out)])
    return code, msgspec.json.decode(out.read_bytes(), type=BenchReport)


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
def test_figures_match_the_simulators_pacing_at_low_load(tmp_path: Path, family: str) -> None:
    # The simulator: 200 ms to the first token, then 100 tokens/s (10 ms a token).
    code, report = bench(
        tmp_path,
        f"--family {family} --sim-ttft 0.2 --sim-tps 100 --concurrency 2 --requests 6 "
        "--warmup 2 --output-tokens 16",
    )
    assert code == EXIT_OK
    (point,) = report.points
    assert (point.requests, point.completed, point.failed) == (6, 6, 0)
    assert report.warmup_ok == 2
    assert point.token_source == "usage"
    assert all(r.output_tokens == 16 for r in report.records)
    # The configured 200 ms comes back within a few milliseconds (it cannot be less).
    assert point.ttft.p50 is not None and 0.2 <= point.ttft.p50 < 0.2 + 0.03
    assert point.tpot.p50 == pytest.approx(0.010, abs=0.003)
    assert point.e2e.p50 == pytest.approx(0.2 + 15 * 0.010, abs=0.04)
    assert point.itl.count >= 6 * 5  # per chunk, several chunks per stream
    assert report.target.kind == "simulator" and report.target.family == family


def test_an_open_loop_keeps_its_schedule_and_records_the_lag(tmp_path: Path) -> None:
    load = "--rate 40 --requests 30 --arrival gamma --burstiness 0.5"
    code, report = bench(tmp_path, f"{load} --sim-ttft 0.05 --output-tokens 4")
    assert code == EXIT_OK
    (point,) = report.points
    assert point.mode == "rate" and point.requests == 30
    assert all(r.intended is not None for r in report.records)
    lags = [r.schedule_lag for r in report.records]
    assert all(lag is not None and lag >= 0 for lag in lags)
    assert point.client.schedule_lag.count == 30
    assert point.client.max_in_flight >= 1


def test_a_sweep_and_a_duration_limit(tmp_path: Path) -> None:
    code, report = bench(
        tmp_path, "--concurrency 1,4 --duration 0.6 --sim-ttft 0.05 --sim-tps 0 --output-tokens 4"
    )
    assert code == EXIT_OK
    assert [p.label for p in report.points] == ["concurrency 1", "concurrency 4"]
    for point in report.points:
        mine = [r for r in report.records if r.point == point.label]
        assert mine and all(r.start < 0.6 for r in mine)  # none started after the limit
    # Four at a time get through about four times as many.
    one, four = (p.completed for p in report.points)
    assert four > 2 * one


def test_datasets_give_the_prompts_and_their_budgets(tmp_path: Path) -> None:
    data = tmp_path / "chats.json"
    data.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "hello there friend"},
                        {"from": "gpt", "value": "one two three"},
                    ]
                },
            ]
        )
    )
    code, report = bench(tmp_path, f"--dataset {data} --requests 3 --sim-ttft 0")
    assert code == EXIT_OK
    assert [r.output_tokens for r in report.records] == [3, 3, 3]
    assert all(r.input_tokens and r.input_tokens >= 3 for r in report.records)
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "a b c", "output_tokens": 5}\n')
    code, report = bench(tmp_path, f"--dataset {lines} --requests 2 --sim-ttft 0")
    assert [r.output_tokens for r in report.records] == [5, 5]


@pytest.fixture
def faulty_sim() -> Iterator[int]:
    """A simulator answering every other request with a 500."""
    with simulator_process(
        {"faults": [{"kind": "status", "status": 500, "rate": 0.5, "seed": 1}]}
    ) as (root, _):
        yield int(root.rsplit(":", 1)[1])


def test_a_url_target_with_failures_reports_them_by_type_and_exits_1(
    tmp_path: Path, faulty_sim: int, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"--target http://127.0.0.1:{faulty_sim}/v1 --model m"
    outputs = f"--csv {tmp_path / 'r.csv'} --html {tmp_path / 'r.html'}"
    code, report = bench(
        tmp_path, f"{target} --requests 20 --output-tokens 3 --slo e2e=2s {outputs}"
    )
    assert code == EXIT_PROBLEM
    (point,) = report.points
    assert point.failed > 0 and point.completed > 0
    assert point.errors == {"ServerError": point.failed}
    assert point.error_examples["ServerError"]
    failed = [r for r in report.records if not r.ok]
    assert all(r.error == "ServerError" and r.error_message for r in failed)
    # Goodput counts completed requests within the SLO, over all requests.
    assert point.goodput_share == pytest.approx(point.completed / 20)
    assert report.target.kind == "url"
    with (tmp_path / "r.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and {row["ok"] for row in rows} == {"True", "False"}
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2 and "concurrency 16" in page
    printed = capsys.readouterr().out
    assert "ServerError" in printed and "(first: " in printed  # what the server said


def test_an_unreachable_target_fails_every_request_with_a_connect_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    code, report = bench(tmp_path, f"--target http://127.0.0.1:{port}/v1 --model m --requests 3")
    assert code == EXIT_PROBLEM
    assert report.points[0].errors == {"ConnectError": 3}


def test_keys_never_reach_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-very-secret-value")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"--target http://127.0.0.1:{port}/v1 --model m"
    code, _ = bench(tmp_path, f"{target} --api-key-env BENCH_TEST_KEY --requests 1")
    assert code == EXIT_PROBLEM
    text = (tmp_path / "bench.json").read_text()
    assert "BENCH_TEST_KEY" in text and "sk-very-secret-value" not in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--rate", "5", "--concurrency", "2"], EXIT_USAGE, "not both"),
        (["--rate", "0"], EXIT_USAGE, "must be positive"),
        (["--concurrency", "x"], EXIT_USAGE, "numbers separated by commas"),
        (["--slo", "ttft<5"], EXIT_USAGE, "METRIC=TIME"),
        (["--burstiness", "0.5"], EXIT_USAGE, "give --rate"),
        (["--input-tokens", "ten"], EXIT_USAGE, "is not a length"),
        (["--target", "http://127.0.0.1:1/v1"], EXIT_USAGE, "--model is required"),
        (["--target", "localhost:8000", "--model", "m"], EXIT_USAGE, "must be sim or an http"),
        (["--family", "cohere"], EXIT_PROBLEM, "unknown --family 'cohere'"),
        (["--dataset", "/no/such.jsonl"], EXIT_INPUT, "cannot read dataset"),
        (
            ["--target", "http://127.0.0.1:1/v1", "--model", "m", "--api-key-env", "NO_SUCH_VAR_X"],
            EXIT_PROBLEM,
            "NO_SUCH_VAR_X is not set",
        ),
        # Outputs that could not be written are refused before the run, not after it.
        (["--json", "/no/such/dir/r.json"], EXIT_USAGE, "the directory /no/such/dir does not"),
        (["--csv", "/no/such/dir/r.csv"], EXIT_USAGE, "--csv /no/such/dir/r.csv"),
        (["--html", "/"], EXIT_USAGE, "--html / is a directory"),
    ],
)
def test_bad_flags_name_the_problem(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(["bench", *args, "--requests", "1", "--quiet"]) == code
    assert message in capsys.readouterr().err


def test_a_preset_without_its_key_names_the_variable_not_a_flag_never_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(["bench", "--preset", "openai", "--model", "gpt-4o-mini", "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_PROBLEM
    assert "preset 'openai' reads its key from OPENAI_API_KEY, which is not set" in err
    assert "--api-key-env OPENAI_API_KEY" not in err


def test_a_ramp_up_starts_the_workers_spread_over_it(tmp_path: Path) -> None:
    code, report = bench(
        tmp_path, "--concurrency 4 --ramp-up 0.8 --requests 4 --sim-ttft 0.05 --output-tokens 100"
    )
    assert code == EXIT_OK
    # Each request streams for a second at the simulator's 100 tok/s, so each worker
    # sends one; worker i waits i * 0.8 / 4 s (a lower bound, whatever the machine).
    first = sorted(r.start for r in report.records)
    assert first[1] >= 0.2 - 0.01 and first[2] >= 0.4 - 0.01 and first[3] >= 0.6 - 0.01
    assert report.settings["ramp_up"] == 0.8


def test_the_dataset_format_can_be_named_for_any_file_name(tmp_path: Path) -> None:
    data = tmp_path / "prompts.txt"  # not .jsonl: read as ShareGPT unless told
    data.write_text('{"prompt": "a b c", "output_tokens": 5}\n')
    code, report = bench(tmp_path, f"--dataset {data} --dataset-format jsonl --requests 2")
    assert code == EXIT_OK
    assert [r.output_tokens for r in report.records] == [5, 5]
