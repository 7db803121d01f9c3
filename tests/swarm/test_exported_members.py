"""The public surface of ``swarm`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import swarm


def test_all_is_exactly_the_public_names() -> None:
    names = {
        name
        for name, value in vars(swarm).items()
        if not name.startswith("_") or name == "__version__"
        if not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert names == set(swarm.__all__)


def test_runtime_errors_share_one_root() -> None:
    for name in swarm.__all__:
        value = getattr(swarm, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, swarm.SwarmError | ValueError), name


def test_handles_have_no_public_constructor() -> None:
    import pytest

    with pytest.raises(TypeError, match="open_engine"):
        swarm.Engine(swarm.EngineConfig(), {}, object())
