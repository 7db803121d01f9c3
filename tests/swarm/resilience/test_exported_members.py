"""The public surface of ``swarm.resilience`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import swarm.resilience as resilience
from swarm.resilience import breaker, budget, retry, timeouts


def test_all_is_exactly_the_public_names() -> None:
    names = {
        name
        for name, value in vars(resilience).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert names == set(resilience.__all__)


def test_every_module_export_exists_and_the_package_reexports_the_same_objects() -> None:
    assert len(resilience.__all__) == len(set(resilience.__all__))
    for module in (breaker, budget, retry, timeouts):
        for name in module.__all__:
            value = getattr(module, name)
            if name in resilience.__all__:
                assert getattr(resilience, name) is value, name
    for name in resilience.__all__:
        assert hasattr(resilience, name), name


def test_misuse_errors_are_runtime_errors() -> None:
    for exc in (
        resilience.BudgetAccountingError,
        resilience.PermitError,
        resilience.PhaseOrderError,
        resilience.RetryStateError,
    ):
        assert issubclass(exc, RuntimeError)
