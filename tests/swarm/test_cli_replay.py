"""``swarm replay``: recorded provider streams to normalized JSON lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from swarm.cli import EXIT_INPUT, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, main

STREAMS = Path(__file__).parent.parent / "providers" / "streams"


def run(
    capsysbinary: pytest.CaptureFixture[bytes], *argv: str
) -> tuple[int, list[dict[str, object]], str]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    lines = [msgspec.json.decode(line) for line in captured.out.splitlines()]
    return code, lines, captured.err.decode()


@pytest.mark.parametrize(
    ("family", "folder"),
    [
        ("openai", "openai_chat"),
        ("openai-responses", "openai_responses"),
        ("anthropic", "anthropic"),
        ("gemini", "gemini"),
    ],
)
def test_every_recorded_stream_replays(
    capsysbinary: pytest.CaptureFixture[bytes], family: str, folder: str
) -> None:
    files = sorted((STREAMS / folder).glob("*.sse"))
    assert files, f"no recordings for {family}"
    for path in files:
        code, lines, _ = run(capsysbinary, "replay", "--family", family, str(path))
        last = lines[-1]
        if last["type"] == "response":
            assert code == EXIT_OK, path.name
            assert lines[-2]["type"] == "finish", path.name
        else:
            # A recording of a failing stream: the error is reported, exit 1.
            assert last["type"] == "replay_error", path.name
            assert code == EXIT_PROBLEM, path.name


def test_replay_of_anthropic_tool_use_assembles_calls(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    path = STREAMS / "anthropic" / "tool_use_parallel.sse"
    code, lines, _ = run(capsysbinary, "replay", "--family", "anthropic", str(path))
    assert code == EXIT_OK
    assert lines[0]["type"] == "start"
    response = lines[-1]
    assert response["type"] == "response"
    message = response["message"]
    assert isinstance(message, dict)
    calls = message["tool_calls"]
    assert isinstance(calls, list) and len(calls) >= 2
    for call in calls:
        msgspec.json.decode(call["arguments"])  # whole, valid JSON after assembly


def test_events_only_leaves_out_the_response(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = STREAMS / "gemini" / "text.sse"
    code, lines, _ = run(capsysbinary, "replay", "--family", "gemini", "--events-only", str(path))
    assert code == EXIT_OK
    assert lines[-1]["type"] == "finish"


def test_truncated_recording_reports_what_it_decoded(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    data = (STREAMS / "anthropic" / "text.sse").read_bytes()
    cut = tmp_path / "cut.sse"
    cut.write_bytes(data[: len(data) // 2])
    code, lines, _ = run(capsysbinary, "replay", "--family", "anthropic", str(cut))
    assert code == EXIT_PROBLEM
    assert lines[0]["type"] == "start"
    assert lines[-1]["type"] == "replay_error"
    assert "ended before" in str(lines[-1]["message"])


def test_missing_file_is_exit_3(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, lines, err = run(capsysbinary, "replay", "--family", "openai", "/no/such/file.sse")
    assert code == EXIT_INPUT
    assert lines == []
    assert "cannot read /no/such/file.sse" in err


def test_unknown_family_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay", "--family", "cohere", "x.sse"])
    assert info.value.code == EXIT_USAGE


def test_installed_command_reads_stdin() -> None:
    data = (STREAMS / "openai_chat" / "text_usage.sse").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "swarm", "replay", "--family", "openai", "-"],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    assert lines[-1]["type"] == "response"
    assert lines[-1]["text" if "text" in lines[-1] else "message"]


def test_readme_main_job_recording_replays(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = Path(__file__).parent.parent.parent / "examples" / "streams" / "anthropic_tool_use.sse"
    code, lines, _ = run(capsysbinary, "replay", "--family", "anthropic", str(path))
    assert code == EXIT_OK
    assert lines[-1]["type"] == "response"
