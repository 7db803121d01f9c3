"""What README.md shows must keep working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swarm.config import load_config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_engine_config_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert blocks, "README lost its TOML example"
    for n, block in enumerate(blocks):
        path = tmp_path / f"example{n}.toml"
        path.write_text(block)
        config = load_config(path)
        assert config.providers


@pytest.mark.parametrize(
    "command",
    [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/swarm run",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ],
)
def test_the_two_setup_commands_are_in_the_readme(command: str) -> None:
    assert command in README
