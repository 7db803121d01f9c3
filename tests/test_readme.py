"""What README.md shows must keep working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swarm.cli import EXIT_OK, main
from swarm.config import load_config
from swarm.run import parse_spec

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_engine_config_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert blocks, "README lost its TOML example"
    for n, block in enumerate(blocks):
        if block.startswith("# swarm spec"):
            continue  # the next test's
        path = tmp_path / f"example{n}.toml"
        path.write_text(block)
        config = load_config(path)
        assert config.providers


def test_the_readme_swarm_spec_runs(tmp_path: Path) -> None:
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", README, re.S) if b.startswith("# swarm")]
    assert blocks, "README lost its swarm spec example"
    for block in blocks:
        spec = parse_spec(block, source="README spec")
        assert spec.agents and spec.routes and spec.budget.tokens
        path = tmp_path / "triage.toml"
        path.write_text(block)
        assert main(["run", str(path), "--quiet"]) == EXIT_OK


@pytest.mark.parametrize(
    "command",
    [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/swarm run",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ],
)
def test_the_two_setup_commands_are_in_the_readme(command: str) -> None:
    assert command in README
