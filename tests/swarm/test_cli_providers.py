"""``swarm providers``: presets and their key variables, what the engine would
use, and health checks against real loopback servers; keys never printed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.presets import PRESETS
from swarm.benchmark.target import simulator_process
from swarm.cli import EXIT_INPUT, EXIT_OK, EXIT_PROBLEM, main

SECRET = "sk-this-must-never-show-0123456789"


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for preset in PRESETS.values():
        if preset.key_env:
            monkeypatch.delenv(preset.key_env, raising=False)


def test_without_keys_it_lists_the_presets_and_checks_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "providers.json"
    assert main(["providers", "--check", "--json", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    for name in ("openai", "anthropic", "gemini", "groq", "ollama"):
        assert f"\n{name} " in printed
    assert "OPENAI_API_KEY not set" in printed and "OLLAMA_API_KEY not set (optional)" in printed
    assert "uses the built-in simulator" in printed
    found = json.loads(out.read_text())
    checks = {c["provider"]: c for c in found["checks"]}
    assert set(checks) == {"sim", "sim-responses", "sim-anthropic", "sim-gemini"}
    assert all(c["ok"] and c["status"] == 200 and c["models"] >= 1 for c in checks.values())


def test_keys_in_the_environment_are_named_never_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    assert main(["providers"]) == EXIT_OK
    printed = capsys.readouterr()
    assert "OPENAI_API_KEY set" in printed.out and "ANTHROPIC_API_KEY set" in printed.out
    assert "configured from the environment: anthropic (anthropic), openai (openai)" in printed.out
    assert SECRET not in printed.out + printed.err


@pytest.fixture
def guarded_sim() -> Iterator[int]:
    """A simulator that accepts only the key 'sk-good'."""
    with simulator_process({"api_keys": ["sk-good"]}) as (root, _):
        yield int(root.rsplit(":", 1)[1])


def test_a_config_s_providers_are_checked_one_by_one(
    tmp_path: Path,
    guarded_sim: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("GOOD_KEY", "sk-good")
    monkeypatch.setenv("BAD_KEY", SECRET)
    config = tmp_path / "engine.toml"
    base = f"http://127.0.0.1:{guarded_sim}"
    config.write_text(f"""
[providers.good]
family = "openai"
base_url = "{base}/v1"
api_key_env = "GOOD_KEY"
[providers.claude]
family = "anthropic"
base_url = "{base}/v1"
api_key_env = "GOOD_KEY"
[providers.wrongkey]
family = "openai"
base_url = "{base}/v1"
api_key_env = "BAD_KEY"
[providers.nokey]
family = "gemini"
base_url = "{base}/v1beta"
api_key_env = "UNSET_KEY_VARIABLE"
[providers.down]
family = "openai"
base_url = "http://127.0.0.1:{closed}/v1"
api_key_env = "GOOD_KEY"
""")
    out = tmp_path / "found.json"
    code = main(
        ["providers", "--config", str(config), "--check", "--timeout", "5", "--json", str(out)]
    )
    printed = capsys.readouterr()
    assert code == EXIT_PROBLEM
    checks = {c["provider"]: c for c in json.loads(out.read_text())["checks"]}
    assert checks["good"]["ok"] and checks["claude"]["ok"]
    assert not checks["wrongkey"]["ok"] and checks["wrongkey"]["status"] == 401
    assert checks["wrongkey"]["detail"].startswith("AuthenticationError")
    assert (
        not checks["nokey"]["ok"] and "UNSET_KEY_VARIABLE is not set" in checks["nokey"]["detail"]
    )
    assert not checks["down"]["ok"] and "cannot reach" in checks["down"]["detail"]
    assert "configured from the config" in printed.out
    assert SECRET not in printed.out + printed.err + out.read_text()


def test_a_bad_config_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "engine.toml"
    config.write_text("[providers.x]\nfamly = 'openai'\n")
    assert main(["providers", "--config", str(config)]) == EXIT_INPUT
    assert "famly" in capsys.readouterr().err
