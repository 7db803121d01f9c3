"""JSON Schema dialect conversion: inline_refs, openai_strict, gemini_schema."""

from __future__ import annotations

import copy
import datetime
import enum
import json
from collections.abc import Iterator
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import RequestError
from providers.schema import drop_null_optionals, gemini_schema, inline_refs, openai_strict

# --------------------------------------------------------------------------- helpers

GEMINI_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
OPENAI_KEYS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "anyOf", "$ref", "$defs", "title", "description", "pattern", "format", "multipleOf",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
}  # fmt: skip


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema node, reached through keywords that hold subschemas only."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            yield from nodes(schema[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, ()):
            yield from nodes(sub)
    for key in ("properties", "$defs", "definitions"):
        for sub in (schema.get(key) or {}).values():
            yield from nodes(sub)


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from all_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_keys(v)


def is_object(node: dict[str, Any]) -> bool:
    t = node.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t) or "properties" in node


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(msgspec.Struct):
    """A point."""

    x: float
    y: float = 0.0


class Shape(msgspec.Struct):
    name: str
    points: list[Point]
    color: Color = Color.RED
    center: Point | None = None


class Node(msgspec.Struct):
    value: int
    children: list[Node] = []


class A(msgspec.Struct):
    b: B | None = None


class B(msgspec.Struct):
    a: A | None = None


# --------------------------------------------------------------------------- inline_refs


def test_inline_refs_replaces_refs_with_definitions() -> None:
    schema = msgspec.json.schema(Shape)
    out = inline_refs(schema)
    assert "$ref" not in json.dumps(out) and "$defs" not in out
    point = {
        "title": "Point",
        "description": "A point.",
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
    }
    assert out == {
        "title": "Shape",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "points": {"type": "array", "items": point},
            "color": {"title": "Color", "enum": ["blue", "red"], "default": "red"},
            "center": {"anyOf": [point, {"type": "null"}], "default": None},
        },
        "required": ["name", "points"],
    }


def test_inline_refs_siblings_win_over_the_definition() -> None:
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/definitions/P", "description": "this use"}},
        "definitions": {"P": {"type": "string", "description": "the type"}},
    }
    assert inline_refs(schema) == {
        "type": "object",
        "properties": {"p": {"type": "string", "description": "this use"}},
    }


def test_inline_refs_leaves_data_keywords_alone() -> None:
    schema = {"type": "object", "default": {"$ref": "#/$defs/Nope"}, "examples": [{"$ref": 1}]}
    assert inline_refs(schema) == schema


def test_inline_refs_does_not_mutate_and_shares_nothing() -> None:
    schema = msgspec.json.schema(Shape)
    before = copy.deepcopy(schema)
    out = inline_refs(schema)
    assert schema == before
    out["properties"]["points"]["items"]["properties"]["x"]["type"] = "changed"
    assert schema == before


@pytest.mark.parametrize(("tp", "name"), [(Node, "Node"), (A, "A")])
def test_inline_refs_refuses_recursive_schema_naming_the_type(tp: type, name: str) -> None:
    with pytest.raises(RequestError, match=f"recursive: type '{name}'") as info:
        inline_refs(msgspec.json.schema(tp))
    assert "break the cycle" in str(info.value)


def test_inline_refs_ignores_an_unused_recursive_definition() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "$defs": {"Loop": {"$ref": "#/$defs/Loop"}},
    }
    assert inline_refs(schema) == {"type": "object", "properties": {"a": {"type": "integer"}}}


@pytest.mark.parametrize("ref", ["#/$defs/Missing", "other.json#/X", "https://x/y"])
def test_inline_refs_refuses_dangling_or_remote_refs(ref: str) -> None:
    with pytest.raises(RequestError, match="ref"):
        inline_refs({"type": "object", "properties": {"a": {"$ref": ref}}, "$defs": {}})


# --------------------------------------------------------------------------- openai_strict


def test_openai_strict_closes_objects_and_makes_optionals_nullable() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
            "days": {"type": "integer", "default": 1, "description": "How many."},
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "tags": {"type": ["array"], "items": {"type": "string"}, "uniqueItems": True},
        },
        "required": ["city"],
    }
    assert openai_strict(schema) == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {
                "type": ["string", "null"],
                "enum": ["C", "F", None],
                "description": 'Default: "C".',
            },
            "days": {"type": ["integer", "null"], "description": "How many. Default: 1."},
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "required": ["city", "unit", "days", "when", "tags"],
        "additionalProperties": False,
    }


def test_openai_strict_keeps_defs_and_applies_rules_inside() -> None:
    out = openai_strict(msgspec.json.schema(Shape))
    # The root $ref (msgspec's form for a Struct) is resolved: the root is an object.
    assert out["type"] == "object" and "$ref" not in out
    assert out["properties"]["points"] == {"type": "array", "items": {"$ref": "#/$defs/Point"}}
    assert out["properties"]["center"] == {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]}
    assert out["properties"]["color"] == {
        "description": 'Default: "red".',
        "anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}],
    }
    # Unused definitions (the root's own) are pruned; the rest are strict too.
    assert set(out["$defs"]) == {"Point", "Color"}
    assert out["$defs"]["Point"]["additionalProperties"] is False
    assert out["$defs"]["Point"]["required"] == ["x", "y"]


def test_openai_strict_keeps_recursion() -> None:
    out = openai_strict(msgspec.json.schema(Node))
    assert out["properties"]["children"] == {
        "type": ["array", "null"],
        "items": {"$ref": "#/$defs/Node"},
    }
    assert out["$defs"]["Node"]["required"] == ["value", "children"]


def test_openai_strict_unravels_ref_with_siblings() -> None:
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P", "description": "where"}},
        "required": ["p"],
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    out = openai_strict(schema)
    assert out["properties"]["p"] == {
        "type": "object",
        "properties": {"x": {"type": ["number", "null"]}},
        "description": "where",
        "required": ["x"],
        "additionalProperties": False,
    }


def test_openai_strict_does_not_add_null_twice() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "c": {"enum": ["x", None]},
        },
    }
    out = openai_strict(schema)
    assert out["properties"] == schema["properties"]


def test_openai_strict_drops_unsupported_keywords_and_formats() -> None:
    schema = {
        "type": "object",
        "properties": {
            "d": {"type": "string", "format": "decimal", "contentEncoding": "base64"},
            "u": {"type": "string", "format": "uuid", "examples": ["x"]},
            "t": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                  "items": False, "minItems": 2, "maxItems": 2},
            "o": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        },
        "required": ["d", "u", "t", "o"],
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }  # fmt: skip
    out = openai_strict(schema)
    assert out["properties"] == {
        "d": {"type": "string"},
        "u": {"type": "string", "format": "uuid"},
        "t": {
            "type": "array",
            "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "minItems": 2,
            "maxItems": 2,
        },
        "o": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    }
    assert "$schema" not in out


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"type": "object"},
        {"type": "object", "properties": {}, "additionalProperties": True},
    ],
)
def test_openai_strict_refuses_free_form_objects(prop: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"m": prop}, "required": ["m"]}
    with pytest.raises(RequestError, match=r"\$\.m is an object with free-form keys"):
        openai_strict(schema)


def test_openai_strict_refuses_non_object_root() -> None:
    with pytest.raises(RequestError, match="root is an object"):
        openai_strict({"type": "array", "items": {"type": "string"}})


def test_outputs_share_nothing_mutable_with_the_input() -> None:
    schema = msgspec.json.schema(Shape)
    before = copy.deepcopy(schema)
    for convert in (openai_strict, gemini_schema, inline_refs):
        out = convert(schema)
        for node in nodes(out):
            for value in node.values():
                if isinstance(value, list):
                    value.append("mutated")
                elif isinstance(value, dict):
                    value["mutated"] = True
        assert schema == before, convert.__name__


# --------------------------------------------------------------------------- drop_null_optionals


def test_drop_null_optionals_lets_defaults_apply_at_every_depth() -> None:
    schema = msgspec.json.schema(Shape)
    sent = {
        "name": "tri",
        "points": [{"x": 1.0, "y": None}],
        "color": None,
        "center": None,
    }
    cleaned = drop_null_optionals(sent, schema)
    # center admits null (Point | None): kept; color and y do not: removed.
    assert cleaned == {"name": "tri", "points": [{"x": 1.0}], "center": None}
    assert sent["color"] is None  # input untouched
    assert msgspec.convert(cleaned, Shape) == Shape(name="tri", points=[Point(1.0)])


def test_drop_null_optionals_keeps_required_nulls() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert drop_null_optionals({"a": None}, schema) == {"a": None}


# --------------------------------------------------------------------------- gemini_schema


def test_gemini_schema_example() -> None:
    out = gemini_schema(msgspec.json.schema(Shape))
    point = {
        "type": "object",
        "title": "Point",
        "description": "A point.",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
        "propertyOrdering": ["x", "y"],
    }
    assert out == {
        "type": "object",
        "title": "Shape",
        "properties": {
            "name": {"type": "string"},
            "points": {"type": "array", "items": point},
            "color": {
                "type": "string",
                "enum": ["blue", "red"],
                "title": "Color",
                "default": "red",
            },
            "center": {**point, "default": None, "nullable": True},
        },
        "required": ["name", "points"],
        "propertyOrdering": ["name", "points", "color", "center"],
    }


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        (
            {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"},
            {"type": "integer", "description": "n", "nullable": True},
        ),
        (
            {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
            {"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
        ),
        (
            {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        ),
        ({"type": ["integer", "string"]}, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        ({"const": "only"}, {"type": "string", "enum": ["only"]}),
        ({"enum": ["a", None]}, {"type": "string", "enum": ["a"], "nullable": True}),
        ({"enum": [1, 2]}, {"type": "integer", "description": "One of: 1, 2."}),
        ({"enum": [None]}, {"nullable": True}),
        (
            {"type": "number", "enum": [1.5, 2], "description": "Rate."},
            {"type": "number", "description": "Rate. One of: 1.5, 2."},
        ),
        ({"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time"}),
        ({"type": "string", "format": "uuid"}, {"type": "string"}),
        ({"type": "integer", "format": "int64"}, {"type": "integer", "format": "int64"}),
        ({"type": "number", "format": "int64"}, {"type": "number"}),
        (
            {"type": "integer", "exclusiveMinimum": 0, "minimum": 1, "examples": [3, 4]},
            {"type": "integer", "minimum": 1, "example": 3},
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}, "$comment": "x"},
            {"type": "object"},
        ),
        (
            {"type": "array", "prefixItems": [{"type": "integer"}], "items": False},
            {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 1},
        ),
        (
            {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                       {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
             "required": ["b"], "propertyOrdering": ["a", "b"]},
        ),
    ],
)  # fmt: skip
def test_gemini_schema_rewrites(given_: dict[str, Any], expected: dict[str, Any]) -> None:
    assert gemini_schema(given_) == expected


def test_gemini_schema_int_enum_and_datetime_from_msgspec() -> None:
    class Q(msgspec.Struct):
        level: Level
        at: datetime.datetime
        mode: Literal["fast", "slow"] = "fast"

    out = gemini_schema(msgspec.json.schema(Q))
    assert out["properties"]["level"] == {
        "type": "integer",
        "title": "Level",
        "description": "One of: 1, 2.",
    }
    assert out["properties"]["mode"] == {
        "type": "string",
        "enum": ["fast", "slow"],
        "default": "fast",
    }


def test_gemini_schema_refuses_recursive() -> None:
    with pytest.raises(RequestError, match="recursive: type 'Node'"):
        gemini_schema(msgspec.json.schema(Node))


# --------------------------------------------------------------------------- properties

# Random msgspec types: the schemas the tool layer actually feeds these functions.
_counter = iter(range(10**9))

_leaves = st.sampled_from(
    [str, int, float, bool, bytes, datetime.datetime, datetime.date, Color, Level,
     Literal["a", "b"], Literal[1, 2, 3], Any]
)  # fmt: skip


def _struct(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    field = st.tuples(children, st.booleans())

    def build(fields: list[tuple[Any, bool]]) -> Any:
        spec: list[Any] = []
        # Required fields first: defstruct refuses a required after an optional.
        for i, (tp, optional) in enumerate(sorted(fields, key=lambda f: f[1])):
            spec.append((f"f{i}", tp | None, None) if optional else (f"f{i}", tp))
        doc = "A generated struct.\n\nAttributes:\n    f0: The first field.\n"
        return msgspec.defstruct(f"S{next(_counter)}", spec, namespace={"__doc__": doc})

    return st.lists(field, max_size=4).map(build)


def _types(allow_dict: bool) -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        options = [
            children.map(lambda t: list[t]),  # type: ignore[valid-type]
            children.map(lambda t: t | None),
            _struct(children),
        ]
        if allow_dict:
            options.append(children.map(lambda t: dict[str, t]))  # type: ignore[valid-type]
        return st.one_of(*options)

    return st.recursive(_leaves, extend, max_leaves=8)


def _root(allow_dict: bool) -> st.SearchStrategy[dict[str, Any]]:
    return _struct(_types(allow_dict)).map(msgspec.json.schema)


@settings(max_examples=150, deadline=None)
@given(_root(allow_dict=True))
def test_property_inline_refs_leaves_no_ref(schema: dict[str, Any]) -> None:
    before = json.dumps(schema, sort_keys=True)
    out = inline_refs(schema)
    assert json.dumps(schema, sort_keys=True) == before
    text = json.dumps(out)
    assert '"$ref"' not in text and '"$defs"' not in text
    assert out["type"] == "object"


@settings(max_examples=150, deadline=None)
@given(_root(allow_dict=False))
def test_property_openai_strict_closes_every_object(schema: dict[str, Any]) -> None:
    before = json.dumps(schema, sort_keys=True)
    out = openai_strict(schema)
    assert json.dumps(schema, sort_keys=True) == before
    json.dumps(out)
    assert out["type"] == "object"
    defs = out.get("$defs", {})
    for node in nodes(out):
        assert set(node) <= OPENAI_KEYS
        if "$ref" in node:
            assert set(node) == {"$ref"}
            assert node["$ref"].removeprefix("#/$defs/") in defs
        if is_object(node):
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
        assert "default" not in node


@settings(max_examples=100, deadline=None)
@given(_root(allow_dict=True))
def test_property_openai_strict_refuses_maps_or_closes(schema: dict[str, Any]) -> None:
    has_map = any(
        isinstance(n.get("additionalProperties"), dict)
        or (n.get("type") == "object" and "properties" not in n)
        for n in nodes(schema)
    )
    if has_map:
        with pytest.raises(RequestError, match="free-form keys"):
            openai_strict(schema)
    else:
        openai_strict(schema)


@settings(max_examples=150, deadline=None)
@given(_root(allow_dict=True))
def test_property_gemini_keeps_only_allowed_keywords(schema: dict[str, Any]) -> None:
    before = json.dumps(schema, sort_keys=True)
    out = gemini_schema(schema)
    assert json.dumps(schema, sort_keys=True) == before
    json.dumps(out)
    for node in nodes(out):
        assert set(node) <= GEMINI_KEYS
        if "type" in node:
            assert node["type"] in {"string", "number", "integer", "boolean", "array", "object"}
        if "enum" in node:
            assert node["type"] == "string"
            assert all(isinstance(v, str) for v in node["enum"])
        if "required" in node:
            assert set(node["required"]) <= set(node["properties"])
        if "propertyOrdering" in node:
            assert node["propertyOrdering"] == list(node["properties"])


# Hand-built schemas with keywords msgspec never writes.
_extra_keywords = st.dictionaries(
    st.sampled_from(
        ["minLength", "uniqueItems", "$comment", "default", "examples", "format", "deprecated",
         "readOnly", "minProperties", "exclusiveMaximum", "contentMediaType", "title"]
    ),
    st.one_of(st.integers(0, 5), st.booleans(), st.sampled_from(["date-time", "email", "x"])),
    max_size=3,
)  # fmt: skip


def _hand_schemas() -> st.SearchStrategy[dict[str, Any]]:
    base: st.SearchStrategy[dict[str, Any]] = st.one_of(
        st.sampled_from(["string", "integer", "number", "boolean", "null"]).map(
            lambda t: {"type": t}
        ),
        st.lists(
            st.one_of(st.text(max_size=3), st.integers(), st.none()), min_size=1, max_size=3
        ).map(lambda v: {"enum": v}),
        st.one_of(st.text(max_size=3), st.integers()).map(lambda v: {"const": v}),
    )
    leaf = st.tuples(base, _extra_keywords).map(lambda p: {**p[1], **p[0]})

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        props = st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), children, max_size=4)
        obj = props.map(
            lambda p: {
                "type": "object",
                "properties": p,
                "required": sorted(p)[: len(p) // 2],
                "additionalProperties": False,
            }
        )
        return st.one_of(
            obj,
            children.map(lambda c: {"type": "array", "items": c, "minItems": 0}),
            st.lists(children, min_size=1, max_size=3).map(lambda cs: {"anyOf": cs}),
            children.map(lambda c: {"anyOf": [c, {"type": "null"}]}),
            children.map(
                lambda c: (
                    {**c, "type": [c["type"], "null"]}
                    if isinstance(c.get("type"), str) and c["type"] != "null"
                    else c
                )
            ),
        )

    tree = st.recursive(leaf, extend, max_leaves=10)
    return st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), tree, max_size=4).map(
        lambda props: {"type": "object", "properties": props, "required": sorted(props)[:1]}
    )


@settings(max_examples=200, deadline=None)
@given(_hand_schemas())
def test_property_hand_built_schemas(schema: dict[str, Any]) -> None:
    before = json.dumps(schema, sort_keys=True)
    strict = openai_strict(schema)
    gemini = gemini_schema(schema)
    assert json.dumps(schema, sort_keys=True) == before
    json.dumps(strict)
    json.dumps(gemini)
    for node in nodes(strict):
        assert set(node) <= OPENAI_KEYS
        if is_object(node):
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    for node in nodes(gemini):
        assert set(node) <= GEMINI_KEYS
        assert "$ref" not in node
    # Optional properties stay optional in meaning: null is accepted for them.
    for name, prop in strict["properties"].items():
        if name not in schema["required"]:
            assert admits_null(prop), prop


def admits_null(node: dict[str, Any]) -> bool:
    t = node.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return "enum" not in node or None in node["enum"]
    if "type" not in node and None in node.get("enum", [0]):
        return True
    if "const" in node:
        return node["const"] is None
    return any(admits_null(b) for b in node.get("anyOf", ()))
