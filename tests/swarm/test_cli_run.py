"""``swarm run --calls`` (plain calls) and the commands' help, from the command
line. The swarm side of ``swarm run`` (the demo, specs): test_cli_run_swarm.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from swarm.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from swarm.run import RunReport


def test_run_on_the_simulator_writes_a_consistent_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    code = main(["run", "--calls", "25", "--concurrency", "5", "--quiet", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == EXIT_OK
    report = msgspec.json.decode(out.read_bytes(), type=RunReport)
    summary = report.summary
    assert summary.calls == summary.completed == 25 == len(report.calls)
    assert summary.output_tokens == sum(c.usage.output_tokens for c in report.calls) > 0
    assert summary.attempts >= 25
    assert {c.outcome for c in report.calls} == {"completed"}
    assert "25 (25 completed, 0 failed, 0 cancelled)" in printed


def test_run_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--calls", "0"]) == EXIT_USAGE
    assert "--calls" in capsys.readouterr().err


def test_run_with_a_missing_config_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--calls", "1", "--config", "/no/such/engine.toml"]) == EXIT_INPUT
    assert "cannot read config /no/such/engine.toml" in capsys.readouterr().err


def test_run_with_an_unknown_setting_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "engine.toml"
    config.write_text('default_provider = "x"\nmax_paralelism = 3\n')
    assert main(["run", "--calls", "1", "--config", str(config)]) == EXIT_INPUT
    assert "max_paralelism" in capsys.readouterr().err


def test_installed_commands_answer_help() -> None:
    for command in (
        ["run", "--help"],
        ["sim", "--help"],
        ["bench", "--help"],
        ["providers", "--help"],
        ["--help"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "swarm", *command],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "usage: swarm" in proc.stdout


def test_run_writes_opentelemetry_spans_as_json_lines(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    assert main(["run", "--calls", "6", "--quiet", "--otel-spans", str(spans)]) == EXIT_OK
    lines = [json.loads(line) for line in spans.read_text().splitlines()]
    assert len(lines) == 6
    for span in lines:
        assert span["name"] == "chat gpt-4o-mini" and span["kind"] == "SpanKind.CLIENT"
        attributes = span["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.usage.output_tokens"] > 0
    assert len({s["context"]["span_id"] for s in lines}) == 6


def test_a_swarm_runs_spans_hold_agents_tools_and_calls(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    args = ["run", "--agents", "3", "--inputs", "2", "--quiet", "--otel-spans", str(spans)]
    assert main(args) == EXIT_OK
    names = {json.loads(line)["name"].split(" ")[0] for line in spans.read_text().splitlines()}
    assert {"invoke_agent", "chat", "execute_tool"} <= names


def test_run_refuses_an_unwritable_span_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--calls", "1", "--otel-spans", "/no/such/dir/s.jsonl"]) == EXIT_USAGE
    assert "--otel-spans /no/such/dir/s.jsonl: the directory" in capsys.readouterr().err


def test_span_files_without_the_sdk_say_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from swarm.run import command

    monkeypatch.setattr(command, "_has_module", lambda name: False)
    spans = str(tmp_path / "s.jsonl")
    assert main(["run", "--calls", "1", "--otel-spans", spans]) == EXIT_USAGE
    assert "pip install 'swarm-runtime[otel]'" in capsys.readouterr().err


def test_max_tokens_caps_every_plain_call(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["run", "--calls", "5", "--max-tokens", "3", "--quiet", "--json", str(out)]
    assert main(args) == EXIT_OK
    report = msgspec.json.decode(out.read_bytes(), type=RunReport)
    assert {c.usage.output_tokens for c in report.calls} == {3}


def test_log_writes_the_events_as_json_lines_at_the_level_asked(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    args = ["run", "--calls", "4", "--quiet", "--log", str(log), "--log-level", "debug"]
    assert main(args) == EXIT_OK
    events = [json.loads(line) for line in log.read_text().splitlines()]
    completed = [e for e in events if e["event"] == "call.completed"]
    assert len(completed) == 4 and all(e["level"] == "debug" for e in completed)
    quiet = tmp_path / "info.jsonl"
    assert main(["run", "--calls", "4", "--quiet", "--log", str(quiet)]) == EXIT_OK
    assert "call.completed" not in quiet.read_text()  # info: failures, retries... only


def test_metrics_and_dashboard_hosts_are_where_they_listen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["run", "--agents", "3", "--inputs", "1", "--metrics-port", "0"]
    args += ["--metrics-host", "127.0.0.1", "--dashboard", "--dashboard-host", "0.0.0.0"]
    assert main(args) == EXIT_OK
    err = capsys.readouterr().err
    assert "metrics at http://127.0.0.1:" in err
    # Beyond loopback the dashboard needs its token.
    assert "dashboard at http://127.0.0.1:" in err and "/?token=" in err
