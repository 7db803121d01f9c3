"""The public surface of ``swarm.supervisor`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import swarm.supervisor as supervisor


def test_all_is_exactly_the_public_names() -> None:
    names = {
        name
        for name, value in vars(supervisor).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert names == set(supervisor.__all__)
    assert len(supervisor.__all__) == len(set(supervisor.__all__))


def test_errors_share_one_root_and_misuse_is_a_runtime_error() -> None:
    for name in supervisor.__all__:
        value = getattr(supervisor, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, supervisor.SupervisorError), name
            if name != "SupervisorEscalation" and name != "SupervisorError":
                assert issubclass(value, RuntimeError), name
