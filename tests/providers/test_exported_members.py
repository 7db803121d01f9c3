"""The public surface of ``providers`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import providers


def test_all_is_exactly_the_public_names() -> None:
    names = {
        name
        for name, value in vars(providers).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # subpackages and modules
        and name != "annotations"  # from __future__ import annotations
    }
    assert names == set(providers.__all__)


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(providers.__all__) == len(set(providers.__all__))
    for name in providers.__all__:
        assert hasattr(providers, name), name


def test_exported_errors_share_one_root() -> None:
    for name in providers.__all__:
        value = getattr(providers, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, providers.ProviderError), name
