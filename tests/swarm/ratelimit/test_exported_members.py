"""The public surface of ``swarm.ratelimit`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import swarm.ratelimit


def test_all_is_exactly_the_public_names() -> None:
    names = {
        name
        for name, value in vars(swarm.ratelimit).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert names == set(swarm.ratelimit.__all__)


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(swarm.ratelimit.__all__) == len(set(swarm.ratelimit.__all__))
    for name in swarm.ratelimit.__all__:
        assert hasattr(swarm.ratelimit, name), name


def test_exported_errors_are_runtime_misuse_errors_under_swarm_error() -> None:
    from swarm.errors import SwarmError

    for name in swarm.ratelimit.__all__:
        value = getattr(swarm.ratelimit, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, SwarmError), name
            assert issubclass(value, RuntimeError), name
