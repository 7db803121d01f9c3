"""JSON Schema dialects: rewrite one schema into what each provider's API accepts.

Tool parameters and structured-output schemas are written once, as JSON Schema
(2020-12, the way ``msgspec.json.schema`` produces it: ``$defs`` + ``$ref``,
``anyOf`` with ``{"type": "null"}`` for optionals, ``default``). Providers accept
different subsets of it:

* :func:`inline_refs` removes ``$ref``/``$defs`` for APIs that do not follow
  references (Gemini, several OpenAI-compatible servers).
* :func:`openai_strict` gives the subset OpenAI's Structured Outputs accept with
  ``strict: true``: every object closed (``additionalProperties: false``) and
  every property required, optional ones made nullable instead.
* :func:`gemini_schema` gives the OpenAPI 3.0 subset of Gemini's ``Schema``
  object (``functionDeclarations[].parameters``, ``responseSchema``).

All three are pure: they never mutate their input and return fresh dicts that share
no mutable structure with it, so the result can be changed by the caller.

Invariants:
    * Only keywords that hold subschemas are walked (``properties``, ``items``,
      ``anyOf`` ...); data keywords (``enum``, ``const``, ``default``,
      ``examples``) are copied, never interpreted, so a default value that happens
      to contain ``"$ref"`` is left alone.
    * Local references only: ``#/$defs/X``, ``#/definitions/X`` or any JSON pointer
      into the same document. Anything else raises ``RequestError``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from providers.errors import RequestError

__all__ = ["drop_null_optionals", "gemini_schema", "inline_refs", "openai_strict"]

# Keywords whose value is one subschema.
_SCHEMA_KEYS = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
)
# Keywords whose value is a list of subschemas.
_SCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
# Keywords whose value maps names to subschemas.
_SCHEMA_MAP_KEYS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")

# Annotations that describe a value rather than constrain it: when a ``$ref`` is
# wrapped or merged, these stay on the outer schema.
_ANNOTATIONS = ("title", "description", "default", "examples", "example")


# --------------------------------------------------------------------------- references


def _pointer_name(ref: str) -> str:
    """The last segment of a JSON pointer, for messages (``#/$defs/Node`` -> ``Node``)."""
    return ref.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """Follow a local JSON pointer ``ref`` from the document ``root``.

    Raises:
        RequestError: ``ref`` is not local or points at nothing.
    """
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise RequestError(
            f"schema $ref {ref!r} is not a local reference: only '#/$defs/...' references "
            "can be resolved; put the referenced schema under $defs"
        )
    node: Any = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise RequestError(
                f"schema $ref {ref!r} points at nothing: add the definition "
                f"{_pointer_name(ref)!r} under $defs"
            )
    if isinstance(node, bool):
        return {} if node else {"not": {}}
    if not isinstance(node, dict):
        raise RequestError(f"schema $ref {ref!r} does not point at a schema object")
    return node


def _map_subschemas(node: dict[str, Any], fn: Any) -> dict[str, Any]:
    """A copy of ``node`` with ``fn`` applied to each direct subschema.

    Data keywords are deep-copied; ``$defs``/``definitions`` are mapped like any
    other subschema container (callers drop them when they want to).
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYS and isinstance(value, dict):
            out[key] = fn(value)
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [fn(v) if isinstance(v, dict) else copy.deepcopy(v) for v in value]
        elif key == "items" and isinstance(value, list):  # draft-07 tuple form
            out[key] = [fn(v) if isinstance(v, dict) else copy.deepcopy(v) for v in value]
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {
                name: fn(v) if isinstance(v, dict) else copy.deepcopy(v)
                for name, v in value.items()
            }
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_ref(resolved: dict[str, Any], siblings: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``{"$ref": ..., **siblings}`` node means, as one dict.

    The siblings (``description``, ``default``, ...) win over the definition's
    own keys: they describe this use of the type, the definition describes the type.
    """
    merged = dict(resolved)
    merged.pop("$defs", None)
    merged.pop("definitions", None)
    merged.update(siblings)
    return merged


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace every local ``$ref`` by the schema it points at and drop ``$defs``.

    ``{"$ref": "#/$defs/X", "description": "..."}`` becomes the definition of ``X``
    with the sibling keywords laid over it.

    Args:
        schema: A JSON Schema; not modified.

    Returns:
        An equivalent schema without ``$ref``, ``$defs`` or ``definitions``.

    Raises:
        RequestError: The schema is recursive (a type refers to itself, directly or
            through others), so it has no finite inline form; or a reference is
            not local or dangling.
    """

    def walk(node: dict[str, Any], expanding: tuple[str, ...]) -> dict[str, Any]:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in expanding:
                cycle = " -> ".join(
                    _pointer_name(r) for r in (*expanding[expanding.index(ref) :], ref)
                )
                raise RequestError(
                    f"schema is recursive: type {_pointer_name(ref)!r} refers to itself "
                    f"({cycle}), so its $ref cannot be inlined for a provider that does not "
                    "accept $ref; break the cycle (e.g. replace the self-reference with a "
                    "list of ids or a JSON string) or use a provider that accepts $ref "
                    "(OpenAI strict mode does)"
                )
            siblings = {k: v for k, v in node.items() if k not in ("$ref", "$defs", "definitions")}
            merged = _merge_ref(_resolve(schema, ref), siblings)
            return walk(merged, (*expanding, ref))
        # Definitions are reached through the references to them, never on their own.
        node = {k: v for k, v in node.items() if k not in ("$defs", "definitions")}
        return _map_subschemas(node, lambda sub: walk(sub, expanding))

    if not isinstance(schema, dict):
        raise RequestError(f"a JSON Schema must be a dict, got {type(schema).__name__}")
    return walk(schema, ())


# --------------------------------------------------------------------------- helpers


def _is_nullable(node: dict[str, Any]) -> bool:
    """Whether ``node`` already admits ``null``."""
    t = node.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return True
    if "enum" in node and None in node["enum"] and "type" not in node:
        return True
    if "const" in node and node["const"] is None:
        return True
    return any(
        isinstance(branch, dict) and _is_nullable(branch)
        for key in ("anyOf", "oneOf")
        for branch in node.get(key, ())
    )


def _make_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` widened to also accept ``null``, in the forms OpenAI strict accepts."""
    if _is_nullable(node):
        return node
    t = node.get("type")
    simple = "$ref" not in node and "anyOf" not in node and "const" not in node
    if simple and isinstance(t, str):
        out = dict(node, type=[t, "null"])
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    if simple and isinstance(t, list):
        out = dict(node, type=[*t, "null"])
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    if simple and t is None and "enum" in node:
        return dict(node, enum=[*node["enum"], None])
    if "anyOf" in node and not any(k in node for k in ("$ref", "type", "enum", "const")):
        return dict(node, anyOf=[*node["anyOf"], {"type": "null"}])
    outer = {k: node[k] for k in _ANNOTATIONS if k in node}
    inner = {k: v for k, v in node.items() if k not in _ANNOTATIONS}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold ``allOf`` into its parent: properties and ``required`` are unioned,
    other keywords of later members win. Exact for the common use (composing
    object schemas); providers that reject ``allOf`` get the closest equivalent.
    """
    parts = node.get("allOf")
    if not isinstance(parts, list):
        return node
    out = {k: v for k, v in node.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = _merge_all_of(part)
        for key, value in part.items():
            if key == "properties" and isinstance(out.get("properties"), dict):
                out["properties"] = {**out["properties"], **value}
            elif key == "required" and isinstance(out.get("required"), list):
                out["required"] = [
                    *out["required"],
                    *(r for r in value if r not in out["required"]),
                ]
            elif key in _ANNOTATIONS and key in out:
                continue  # the outer schema's own annotation wins
            else:
                out[key] = value
    return out


def _tuple_to_array(node: dict[str, Any]) -> dict[str, Any]:
    """``prefixItems`` (a tuple) as an array of any of the positional types.

    Position-specific types are lost; ``minItems``/``maxItems`` keep the length.
    The argument decoder still checks each position.
    """
    prefix = node.get("prefixItems")
    if not isinstance(prefix, list):
        return node
    out = {k: v for k, v in node.items() if k != "prefixItems"}
    branches: list[Any] = []
    for item in prefix:
        if item not in branches:
            branches.append(item)
    extra = node.get("items")
    if isinstance(extra, dict) and extra not in branches:
        branches.append(extra)
    if not branches:
        out["items"] = {}
    else:
        out["items"] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    out.setdefault("minItems", len(prefix))
    if extra is False or extra is None:
        out.setdefault("maxItems", len(prefix))
    return out


def _is_object(node: dict[str, Any]) -> bool:
    t = node.get("type")
    return (
        t == "object"
        or (isinstance(t, list) and "object" in t)
        or (t is None and "properties" in node)
    )


# --------------------------------------------------------------------------- OpenAI strict

# From OpenAI's Structured Outputs guide, "Supported schemas": the keywords strict
# mode accepts. Anything else (default, examples, minLength, maxLength, uniqueItems,
# minProperties, patternProperties, contentEncoding, discriminator ...) is dropped;
# the argument decoder still enforces the original constraints locally.
_OPENAI_KEYS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const",
        "anyOf", "$ref", "$defs", "title", "description",
        "pattern", "format",
        "multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minItems", "maxItems",
    }
)  # fmt: skip
_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


def openai_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` into the subset OpenAI accepts with ``strict: true``.

    * every object gets ``additionalProperties: false`` and lists all its
      properties in ``required``; a property that was optional becomes nullable
      (``type: [T, "null"]`` or ``anyOf [..., {"type": "null"}]``) so the model can
      still leave it out, by sending ``null``;
    * ``$defs``/``$ref`` stay (strict mode follows them, recursion included), but
      the rules apply inside ``$defs`` too; a ``$ref`` with sibling keywords, which
      strict mode refuses, is replaced by its definition with the siblings merged;
      a root ``$ref`` (msgspec's form for a Struct) is resolved so the root is an
      object;
    * ``oneOf`` becomes ``anyOf``, ``allOf`` is merged, tuples (``prefixItems``)
      become arrays of any of their item types with a fixed length;
    * keywords strict mode rejects (``default``, ``examples``, ``minLength``,
      ``maxLength``, ``uniqueItems``, ``contentEncoding``, ...) and ``format``
      values it does not know are dropped.

    Args:
        schema: A JSON Schema whose root is an object; not modified.

    Returns:
        The strict-mode schema.

    Raises:
        RequestError: The root is not an object, or an object has free-form keys
            (``dict[str, X]``, ``additionalProperties`` other than false), which
            strict mode cannot express: use a Struct with named fields, a list of
            key/value pairs, or ``strict=False``.
    """
    if not isinstance(schema, dict):
        raise RequestError(f"a JSON Schema must be a dict, got {type(schema).__name__}")
    root = schema
    defs: dict[str, Any] = dict(schema.get("$defs") or {})
    if "definitions" in schema and isinstance(schema["definitions"], dict):
        defs = {**schema["definitions"], **defs}
    seen: set[str] = set()
    while "$ref" in root:
        ref = root["$ref"]
        if ref in seen:
            raise RequestError(f"schema root $ref {ref!r} refers to itself in a loop")
        seen.add(ref)
        siblings = {k: v for k, v in root.items() if k not in ("$ref", "$defs", "definitions")}
        root = _merge_ref(_resolve(schema, ref), siblings)

    def walk(
        node: dict[str, Any], where: str, unravelling: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        if "$ref" in node:
            ref = node["$ref"]
            siblings = {k: v for k, v in node.items() if k != "$ref" and k in _OPENAI_KEYS}
            siblings.pop("$defs", None)
            if not siblings or ref in unravelling:
                _resolve(schema, ref)  # a dangling reference fails here, not at OpenAI
                if isinstance(ref, str) and ref.startswith("#/definitions/"):
                    ref = "#/$defs/" + ref[len("#/definitions/") :]
                return {"$ref": ref}
            # Strict mode refuses keywords next to $ref: unravel one level.
            merged = _merge_ref(_resolve(schema, ref), siblings)
            return walk(merged, where, unravelling | {ref})
        node = _tuple_to_array(_merge_all_of(node))
        if "oneOf" in node:
            node = {k: v for k, v in node.items() if k != "oneOf"} | {
                "anyOf": [*node.get("anyOf", []), *node["oneOf"]]
            }
        # Subschemas are rebuilt below; data (enum, const, required) is copied so
        # the result shares nothing mutable with the input.
        out = {k: copy.deepcopy(v) for k, v in node.items() if k in _OPENAI_KEYS}
        if "format" in out and out["format"] not in _OPENAI_FORMATS:
            del out["format"]
        if isinstance(out.get("items"), dict):
            out["items"] = walk(out["items"], f"{where}[]", unravelling)
        elif "items" in out:
            out["items"] = {}
        if isinstance(out.get("anyOf"), list):
            out["anyOf"] = [
                walk(b, where, unravelling) for b in out["anyOf"] if isinstance(b, dict)
            ]
        if _is_object(out):
            extra = out.get("additionalProperties", None)
            props = out.get("properties")
            if extra not in (None, False) or props is None:
                raise RequestError(
                    f"schema at {where} is an object with free-form keys (a dict or "
                    "additionalProperties), which OpenAI strict mode cannot express: "
                    "use a Struct with named fields or a list of key/value pairs, or "
                    "send the tool with strict=False"
                )
            required = set(out.get("required") or ())
            new_props: dict[str, Any] = {}
            for name, sub in props.items():
                sub = sub if isinstance(sub, dict) else ({} if sub else {"not": {}})
                converted = walk(sub, f"{where}.{name}", unravelling)
                if name not in required:
                    # Strict mode has no optional properties and no `default`: the
                    # model sends null to leave the property out (see
                    # drop_null_optionals), and learns the default from the text.
                    if sub.get("default") not in (None, [], {}):
                        hint = f"Default: {json.dumps(sub['default'])}."
                        desc = converted.get("description")
                        converted = dict(converted, description=f"{desc} {hint}" if desc else hint)
                    converted = _make_nullable(converted)
                new_props[name] = converted
            out.setdefault("type", "object")
            out["properties"] = new_props
            out["required"] = list(new_props)
            out["additionalProperties"] = False
        return out

    result = walk({k: v for k, v in root.items() if k not in ("$defs", "definitions")}, "$")
    if not (result.get("type") == "object"):
        raise RequestError(
            "OpenAI strict mode needs a schema whose root is an object "
            f"(got {result.get('type', 'a schema without type')!r}): wrap the value in a Struct"
        )
    if defs:
        converted_defs = {
            name: walk(d, f"$defs.{name}") if isinstance(d, dict) else d for name, d in defs.items()
        }
        # Keep only the definitions still referenced (the root's own definition,
        # resolved above, is usually not).
        keep: set[str] = set()
        todo = _refs_in(result)
        while todo:
            ref = todo.pop()
            name = _pointer_name(ref)
            if ref.startswith("#/$defs/") and name in converted_defs and name not in keep:
                keep.add(name)
                todo |= _refs_in(converted_defs[name])
        if keep:
            result["$defs"] = {n: d for n, d in converted_defs.items() if n in keep}
    return result


def _refs_in(node: Any) -> set[str]:
    """Every ``$ref`` string anywhere under ``node``."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def drop_null_optionals(value: Any, schema: dict[str, Any]) -> Any:
    """Undo :func:`openai_strict`'s nullable stand-ins in a decoded value.

    Strict mode makes every property required, so a model leaves an optional
    property out by sending ``null``. Where the *original* ``schema`` does not
    admit ``null`` for that property, this removes the key so that the default
    applies, at every depth (``$ref`` followed, ``anyOf`` branches that are
    objects tried). Values the schema does not describe are returned unchanged.

    Args:
        value: JSON data as decoded (dicts, lists, scalars); not modified.
        schema: The original schema the data was asked for (before
            :func:`openai_strict`).

    Returns:
        ``value`` with those keys removed (a new container where something changed).
    """
    return _drop_nulls(value, schema, schema, 0)


def _deref(node: Any, root: dict[str, Any]) -> Any:
    """``node`` with a local ``$ref`` resolved (siblings laid over), else ``node``."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        try:
            target = _resolve(root, node["$ref"])
        except RequestError:
            return node
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _drop_nulls(value: Any, node: Any, root: dict[str, Any], depth: int) -> Any:
    # depth bounds the walk on recursive schemas fed adversarial data.
    if not isinstance(value, (dict, list)) or depth > 64:
        return value
    node = _deref(node, root)
    if not isinstance(node, dict):
        return value
    for key in ("anyOf", "oneOf"):
        for branch in node.get(key, ()):
            branch = _deref(branch, root)
            if not isinstance(branch, dict):
                continue
            if (isinstance(value, dict) and _is_object(branch)) or (
                isinstance(value, list) and branch.get("type") == "array"
            ):
                return _drop_nulls(value, branch, root, depth + 1)
    if isinstance(value, dict):
        props = node.get("properties")
        if not isinstance(props, dict):
            return value
        required = set(node.get("required") or ())
        out: dict[str, Any] = {}
        for name, item in value.items():
            sub = props.get(name)
            if item is None and name not in required and isinstance(sub, dict):
                if not _admits_null(sub, root):
                    continue
            out[name] = _drop_nulls(item, sub, root, depth + 1)
        return out
    items = node.get("items")
    if isinstance(items, dict):
        return [_drop_nulls(v, items, root, depth + 1) for v in value]
    return value


def _admits_null(node: dict[str, Any], root: dict[str, Any], depth: int = 0) -> bool:
    """Whether ``node`` accepts ``null``, following ``$ref``."""
    if _is_nullable(node) or node == {} or depth > 64:
        return True
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            return _admits_null(_resolve(root, ref), root, depth + 1)
        except RequestError:
            return True
    return any(
        isinstance(b, dict) and _admits_null(b, root, depth + 1)
        for key in ("anyOf", "oneOf")
        for b in node.get(key, ())
    )


# --------------------------------------------------------------------------- Gemini

# Fields of Gemini's ``Schema`` object (generativelanguage v1beta), an OpenAPI 3.0
# subset. Anything else is dropped.
_GEMINI_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
        "maximum",
    }
)  # fmt: skip
# The Gemini Developer API refuses other formats ("format must be 'enum' or
# 'date-time'" for strings); per type, the ones its Schema reference lists.
_GEMINI_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` into Gemini's ``Schema`` (an OpenAPI 3.0 subset).

    For ``functionDeclarations[].parameters`` and ``generationConfig.responseSchema``.

    * ``$ref`` is inlined (Gemini does not follow references);
    * ``type: [T, "null"]`` and ``anyOf [..., {"type": "null"}]`` become
      ``type: T, nullable: true``; a remaining single ``anyOf`` branch is merged
      into its parent; ``oneOf`` becomes ``anyOf``; ``allOf`` is merged;
    * ``const`` becomes a one-value ``enum``; a string ``enum`` gets
      ``type: "string"``. Gemini enums hold strings only, so an enum of numbers or
      booleans keeps its JSON type (the arguments then decode to the right Python
      type) and lists its values in the description instead;
    * tuples (``prefixItems``) become arrays of any of their item types;
    * ``examples`` becomes ``example`` (its first value);
    * objects get ``propertyOrdering`` in declaration order (Gemini otherwise
      orders keys alphabetically in structured output);
    * every other keyword (``additionalProperties``, ``$schema``, ``$defs``,
      ``exclusiveMinimum``, ``uniqueItems``, ``const``, ...) is dropped, and
      ``format`` is kept only for the values Gemini accepts.

    Args:
        schema: A JSON Schema; not modified.

    Returns:
        The Gemini schema.

    Raises:
        RequestError: The schema is recursive (see :func:`inline_refs`).
    """
    return _gemini_node(inline_refs(schema))


def _gemini_node(node: dict[str, Any]) -> dict[str, Any]:
    node = _tuple_to_array(_merge_all_of(node))
    nullable = bool(node.get("nullable", False))

    # Unions: pull null out, merge a lone remaining branch into this node.
    branches = [*node.get("anyOf", ()), *node.get("oneOf", ())]
    if branches:
        rest = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
        nullable = nullable or len(rest) < len(branches)
        node = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        if len(rest) == 1:
            # The outer node's keys (description, default) describe this use: they win.
            node = {**_merge_all_of(rest[0]), **node}
            return _gemini_node({**node, "nullable": True} if nullable else node)
        if rest:
            node["anyOf"] = rest

    out: dict[str, Any] = {}
    t = node.get("type")
    if isinstance(t, list):
        types = [x for x in t if x != "null"]
        nullable = nullable or len(types) < len(t)
        if len(types) == 1:
            t = types[0]
        elif types:
            # Several JSON types: an anyOf of one branch per type.
            node = {k: v for k, v in node.items() if k != "type"}
            node["anyOf"] = [*node.get("anyOf", []), *({"type": x} for x in types)]
            t = None
        else:
            t = None
    if t == "null":
        t, nullable = None, True

    values: list[Any] | None = None
    if "const" in node:
        values = [node["const"]]
    elif isinstance(node.get("enum"), list):
        values = list(node["enum"])
    if values is not None and None in values:
        nullable = True
        values = [v for v in values if v is not None]
    if values:  # an enum of only null is just "nullable"
        kinds = {_json_type_of(v) for v in values}
        if kinds <= {"string"} and t in (None, "string"):
            t = "string"
            out["enum"] = values
        else:
            if t is None and len(kinds) == 1:
                t = kinds.pop()
            elif t is None and kinds <= {"integer", "number"}:
                t = "number"
            allowed = ", ".join(_render(v) for v in values)
            hint = f"One of: {allowed}."
            desc = node.get("description")
            node = dict(node, description=f"{desc} {hint}" if desc else hint)

    if t is not None:
        out["type"] = t
    for key, value in node.items():
        if key in ("type", "enum", "const", "nullable") or key not in _GEMINI_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {
                name: _gemini_node(sub if isinstance(sub, dict) else {})
                for name, sub in value.items()
            }
        elif key == "items":
            out["items"] = _gemini_node(value) if isinstance(value, dict) else {}
        elif key == "anyOf":
            out["anyOf"] = [_gemini_node(b) for b in value if isinstance(b, dict)]
        elif key == "format":
            if isinstance(t, str) and value in _GEMINI_FORMATS.get(t, ()):
                out["format"] = value
        else:
            out[key] = copy.deepcopy(value)
    if "example" not in out and isinstance(node.get("examples"), list) and node["examples"]:
        out["example"] = copy.deepcopy(node["examples"][0])
    if isinstance(out.get("properties"), dict):
        names = list(out["properties"])
        if "required" in out:
            out["required"] = [r for r in out["required"] if r in out["properties"]]
        if names and "propertyOrdering" not in out:
            out["propertyOrdering"] = names
    if nullable:
        out["nullable"] = True
    return out


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)
