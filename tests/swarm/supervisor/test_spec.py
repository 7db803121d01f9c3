"""Child and supervisor specs refuse bad values by name; the pure restart rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from swarm.supervisor import ChildContext, ChildSpec, SupervisorSpec
from swarm.supervisor.spec import affected_children, should_restart


async def _idle(ctx: ChildContext) -> None:
    await ctx.wait_stop_requested()


def _child(child_id: str = "a", **kwargs: Any) -> ChildSpec:
    return ChildSpec(id=child_id, start=_idle, **kwargs)


def test_child_spec_defaults_follow_otp() -> None:
    spec = _child()
    assert (spec.restart, spec.shutdown, spec.significant) == ("permanent", 5.0, False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"id": ""}, "ChildSpec.id"),
        ({"id": 3}, "ChildSpec.id"),
        ({"start": "not callable"}, "ChildSpec.start"),
        ({"restart": "sometimes"}, "ChildSpec.restart"),
        ({"shutdown": -1.0}, "ChildSpec.shutdown"),
        ({"shutdown": math.nan}, "ChildSpec.shutdown"),
        ({"shutdown": math.inf}, "use 'infinity'"),
        ({"shutdown": "kill"}, "ChildSpec.shutdown"),
        ({"shutdown": True}, "ChildSpec.shutdown"),
        ({"significant": 1}, "ChildSpec.significant"),
        ({"significant": True}, "significant child must be 'transient' or 'temporary'"),
    ],
)
def test_child_spec_refuses_bad_values_by_field(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {"id": "a", "start": _idle, **kwargs}
    with pytest.raises(ValueError, match=match):
        ChildSpec(**fields)


@pytest.mark.parametrize("shutdown", [0, 0.0, 2.5, "brutal_kill", "infinity"])
def test_child_spec_accepts_every_shutdown_form(shutdown: float | str) -> None:
    assert _child(shutdown=shutdown).shutdown == shutdown


def test_specs_are_keyword_only_frozen_and_refuse_unknown_fields() -> None:
    with pytest.raises(TypeError):
        ChildSpec("a", _idle)  # type: ignore[call-arg]
    spec = _child()
    with pytest.raises(AttributeError):
        spec.restart = "temporary"  # type: ignore[misc]
    with pytest.raises(TypeError, match="stratgey"):
        SupervisorSpec(stratgey="one_for_all")  # type: ignore[call-arg]


def test_supervisor_spec_defaults_follow_otp_and_keep_children_as_a_tuple() -> None:
    children = [_child("a"), _child("b")]
    spec = SupervisorSpec(children=children)
    assert (spec.strategy, spec.intensity, spec.period) == ("one_for_one", 1, 5.0)
    assert spec.children == tuple(children)
    children.append(_child("c"))  # the caller's list is not the spec's
    assert len(spec.children) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "SupervisorSpec.name"),
        ({"strategy": "simple_one_for_one"}, "SupervisorSpec.strategy"),
        ({"intensity": -1}, "SupervisorSpec.intensity must be >= 0"),
        ({"intensity": 2.0}, "SupervisorSpec.intensity must be an int"),
        ({"intensity": False}, "SupervisorSpec.intensity must be an int"),
        ({"period": 0}, "SupervisorSpec.period"),
        ({"period": math.inf}, "SupervisorSpec.period"),
        ({"auto_shutdown": "sometimes"}, "SupervisorSpec.auto_shutdown"),
        ({"children": 3}, "SupervisorSpec.children must be a sequence"),
        ({"children": ["a"]}, "must hold ChildSpec"),
        ({"children": [_child("a"), _child("a")]}, "share the id 'a'"),
        (
            {"children": [_child("a", restart="transient", significant=True)]},
            "auto_shutdown is 'never'",
        ),
    ],
)
def test_supervisor_spec_refuses_bad_values_by_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SupervisorSpec(**kwargs)


def test_significant_children_need_auto_shutdown() -> None:
    child = _child("a", restart="temporary", significant=True)
    spec = SupervisorSpec(auto_shutdown="any_significant", children=[child])
    assert spec.children[0].significant


@pytest.mark.parametrize(
    ("restart", "kind", "expected"),
    [
        ("permanent", "normal", True),
        ("permanent", "shutdown", True),
        ("permanent", "crashed", True),
        ("transient", "normal", False),
        ("transient", "shutdown", False),
        ("transient", "crashed", True),
        ("temporary", "normal", False),
        ("temporary", "crashed", False),
    ],
)
def test_should_restart_by_restart_type(restart: Any, kind: Any, expected: bool) -> None:
    assert should_restart(restart, kind) is expected


ORDER = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        ("one_for_one", "b", ("b",)),
        ("one_for_all", "b", ORDER),
        ("rest_for_one", "b", ("b", "c", "d")),
        ("rest_for_one", "a", ORDER),
        ("rest_for_one", "d", ("d",)),
    ],
)
def test_affected_children_by_strategy(
    strategy: Any, failed: str, expected: tuple[str, ...]
) -> None:
    assert affected_children(strategy, ORDER, failed) == expected


def test_affected_children_refuses_an_unknown_child() -> None:
    with pytest.raises(ValueError, match="'z' is not among"):
        affected_children("one_for_one", ORDER, "z")
