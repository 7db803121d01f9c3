"""Tool specs from Python callables and msgspec Structs, and argument decoding.

A model calls a tool by sending its arguments as one JSON object. This module
turns a Python function, async function or ``msgspec.Struct`` type into the
:class:`~providers.messages.ToolSpec` sent to the model, and decodes the JSON the
model sends back into checked Python values::

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''Current weather in a city.

        Args:
            city: City name, e.g. "Paris".
            unit: Temperature unit.
        '''

    weather = Tool(get_weather)
    weather.spec                                # ToolSpec(name="get_weather", ...)
    weather.decode_arguments('{"city": "Oslo"}')  # {"city": "Oslo", "unit": "C"}

How a signature becomes a schema: the parameters become the fields of a msgspec
Struct built with ``msgspec.defstruct`` (a parameter with a default is an optional
field) and ``msgspec.json.schema`` writes the schema, so every type msgspec knows
works: ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``, ``Optional``,
``Literal``, ``enum.Enum``, nested Structs (as ``$defs``), ``datetime``, ``UUID``,
``Annotated[..., msgspec.Meta(...)]`` constraints. The function's Google-style
docstring gives the tool description (the text before the first section) and, from
its ``Args:`` section, each property's ``description``. For a Struct, the class
docstring gives the description and its ``Attributes:`` section the properties'.

Decisions a user relies on:
    * Unknown top-level arguments are refused (``ToolArgumentsError``): a model that
      invents a parameter is told so rather than silently ignored. Inside nested
      Structs, the Struct's own ``forbid_unknown_fields`` decides.
    * ``null`` for an optional argument whose type does not admit ``None`` means
      "not given": the default applies. OpenAI strict mode forces models to send
      every property, using ``null`` for the ones they leave out.
    * An empty arguments string means ``{}`` (some providers stream no bytes for
      a tool without parameters).
    * ``param: T = None`` is read as ``T | None``.

Running tools (threads for sync functions, timeouts, results) belongs to the
runtime; this module only describes tools and checks their arguments.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any, Optional, Union, get_args, get_origin

import msgspec

from providers.errors import RequestError, ToolArgumentsError
from providers.messages import ToolSpec
from providers.schema import drop_null_optionals, openai_strict

__all__ = ["SchemaTool", "Tool", "parse_docstring", "tool_spec", "tools_from"]

# Google-style section headers; the description is the text before the first one.
_SECTIONS = frozenset(
    {
        "args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
        "other parameters", "attributes", "returns", "return", "yields", "yield", "raises",
        "exceptions", "example", "examples", "note", "notes", "see also", "warning",
        "warnings", "todo", "references", "methods",
    }
)  # fmt: skip
_ARG_SECTIONS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
)
_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
# "name (type): text" or "name: text"; ``*args`` style names are accepted and ignored.
_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")

_PATH = re.compile(r" - at `(\$[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]*)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]*)`")

_json_decode = msgspec.json.Decoder().decode


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-name texts.

    Args:
        doc: The docstring (raw ``__doc__``; indentation is cleaned), or None.

    Returns:
        ``(description, {name: text})``: the description is the text before the
        first section header, paragraphs kept; the names come from ``Args:``
        (and its aliases) and ``Attributes:``, continuation lines joined with a
        space.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    fields: dict[str, str] = {}
    section: str | None = None
    section_indent = 0
    current: str | None = None
    entry_indent = 0
    for line in lines:
        header = _HEADER.match(line.strip())
        indent = len(line) - len(line.lstrip())
        if (
            header
            and header.group(1).lower() in _SECTIONS
            and (section is None or indent <= section_indent)
        ):
            section, section_indent, current = header.group(1).lower(), indent, None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in _ARG_SECTIONS and section != "attributes":
            continue
        if not line.strip():
            current = None
            continue
        entry = _ENTRY.match(line.strip())
        if entry and indent <= section_indent + 4 and (current is None or indent <= entry_indent):
            current, entry_indent = entry.group(1), indent
            fields[current] = entry.group(2).strip()
        elif current is not None:
            fields[current] = f"{fields[current]} {line.strip()}".strip()
    return "\n".join(summary).strip(), {k: v for k, v in fields.items() if v}


def _admits_none(tp: Any) -> bool:
    if tp is None or tp is type(None) or tp is Any:
        return True
    origin = get_origin(tp)
    if origin is Union or type(tp).__name__ == "UnionType":
        return any(_admits_none(a) for a in get_args(tp))
    if type(tp).__name__ == "_AnnotatedAlias":
        return _admits_none(get_args(tp)[0])
    return False


def _closed_root(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's ``{"$ref": "#/$defs/X", "$defs": ...}`` as an object schema at the root.

    The root definition stays in ``$defs`` only if something still refers to it
    (a recursive Struct); other definitions stay as they are.
    """
    defs: dict[str, Any] = dict(schema.get("$defs") or {})
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return dict(schema)
    name = ref.rsplit("/", 1)[-1]
    root: dict[str, Any] = copy.deepcopy(defs[name])
    used = _refs(root) | {r for n, d in defs.items() if n != name for r in _refs(d)}
    if ref not in used:
        defs.pop(name)
    if defs:
        root["$defs"] = defs
    return root


def _tidy_definition(definition: Any) -> None:
    """Turn the raw docstring msgspec copies into a nested Struct's description
    into a clean summary plus per-property descriptions (from ``Attributes:``)."""
    if not isinstance(definition, dict) or not isinstance(definition.get("description"), str):
        return
    summary, field_docs = parse_docstring(definition["description"])
    if summary:
        definition["description"] = summary
    else:
        del definition["description"]
    props = definition.get("properties")
    if isinstance(props, dict):
        for field, text in field_docs.items():
            prop = props.get(field)
            if isinstance(prop, dict) and "description" not in prop:
                prop["description"] = text


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("$ref"), str):
                found.add(item["$ref"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _signature(fn: Callable[..., Any], label: str) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except NameError as exc:
        raise TypeError(
            f"tool {label!r}: a type hint cannot be resolved ({exc}); define the type at "
            "module level (not inside a function or under `if TYPE_CHECKING:`)"
        ) from exc
    except ValueError as exc:
        raise TypeError(f"tool {label!r}: cannot read the signature of {fn!r}: {exc}") from exc


def _callable_name(fn: Any) -> str:
    target = fn.func if hasattr(fn, "func") and callable(fn.func) else fn  # functools.partial
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) else type(target).__name__


def _last_line(exc: BaseException) -> str:
    """The gist of a multi-line exception message (msgspec's end with the cause)."""
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _copier(value: Any) -> Callable[[], Any]:
    """A default factory returning a fresh deep copy of ``value``."""
    return lambda: copy.deepcopy(value)


def _doc_of(fn: Any) -> str | None:
    """The docstring that describes calling ``fn``."""
    if hasattr(fn, "func") and callable(fn.func):  # functools.partial
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn):
        return fn.__doc__
    call_doc = getattr(type(fn).__call__, "__doc__", None)
    return call_doc or type(fn).__doc__


def _is_async(fn: Any) -> bool:
    target = fn.func if hasattr(fn, "func") and callable(fn.func) else fn
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an async __call__ on an object
    )


class Tool:
    """A tool: its :class:`ToolSpec` and how to check the arguments a model sends.

    Built from a function (sync or async) or a ``msgspec.Struct`` type. For a
    function, :meth:`decode_arguments` returns the keyword arguments to call it
    with; for a Struct, an instance of it.

    Attributes:
        spec: What is sent to the model.
        func: The function, or None for a Struct tool.
        arguments_type: The Struct the arguments decode into (built from the
            signature for a function).
        is_async: Whether calling ``func`` returns an awaitable.

    Raises:
        TypeError: (from the constructor) ``obj`` is neither a callable nor a
            Struct type; a parameter is ``*args``/``**kwargs``, positional-only or
            has no type hint; a type is one msgspec cannot describe; or
            ``strict=True`` and the parameters cannot be expressed in OpenAI
            strict mode (free-form dicts).
        ValueError: The tool name is not one providers accept.
    """

    __slots__ = ("_fields", "_names", "_schema", "arguments_type", "func", "is_async", "spec")

    def __init__(
        self,
        obj: Callable[..., Any] | type[msgspec.Struct],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool = False,
    ) -> None:
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            label = name or obj.__name__
            doc, field_docs = parse_docstring(obj.__dict__.get("__doc__"))
            self.func: Callable[..., Any] | None = None
            self.arguments_type: type[msgspec.Struct] = obj
            self.is_async = False
            schema = self._schema_of(obj, label)
            schema.pop("title", None)
            schema.pop("description", None)
            # Unknown top-level arguments are refused whatever the Struct says.
            schema["additionalProperties"] = False
        elif callable(obj) and not isinstance(obj, type):
            label = name or _callable_name(obj)
            doc, field_docs = parse_docstring(_doc_of(obj))
            self.func = obj
            self.arguments_type = self._struct_from(obj, label)
            self.is_async = _is_async(obj)
            schema = self._schema_of(self.arguments_type, label)
            schema.pop("title", None)
            schema.pop("description", None)
        else:
            raise TypeError(
                f"cannot make a tool from {obj!r}: pass a function, an async function or "
                "a msgspec.Struct type"
            )
        props = schema.setdefault("properties", {})
        for field, text in field_docs.items():
            prop = props.get(field)
            if isinstance(prop, dict) and "description" not in prop:
                prop["description"] = text
        if strict:
            try:
                openai_strict(schema)
            except RequestError as exc:
                raise TypeError(f"tool {label!r} cannot be strict: {exc}") from exc
        self._schema = schema
        self._fields: tuple[str, ...] = self.arguments_type.__struct_fields__
        self._names = tuple(f.encode_name for f in msgspec.structs.fields(self.arguments_type))
        self.spec = ToolSpec(
            name=label,
            description=doc if description is None else description,
            parameters=schema,
            strict=strict,
        )

    @property
    def name(self) -> str:
        """The tool's name, as the model sees it."""
        return self.spec.name

    def __repr__(self) -> str:
        return f"Tool({self.spec.name!r})"

    @staticmethod
    def _schema_of(struct: type[msgspec.Struct], label: str) -> dict[str, Any]:
        try:
            schema = _closed_root(msgspec.json.schema(struct))
        except NameError as exc:
            raise TypeError(
                f"tool {label!r}: a type hint cannot be resolved ({exc}); define the type at "
                "module level (not inside a function or under `if TYPE_CHECKING:`)"
            ) from exc
        except TypeError as exc:
            raise TypeError(
                f"tool {label!r}: msgspec cannot describe a type in it ({_last_line(exc)}); "
                "use types msgspec supports (str, int, float, bool, list, dict, Literal, Enum, "
                "Struct, datetime, ...)"
            ) from exc
        for definition in (schema.get("$defs") or {}).values():
            _tidy_definition(definition)
        if schema.get("type") != "object":
            raise TypeError(
                f"tool {label!r}: arguments must be a JSON object, but the Struct encodes "
                "as an array (array_like=True); use a Struct without array_like"
            )
        return schema

    @staticmethod
    def _struct_from(fn: Callable[..., Any], label: str) -> type[msgspec.Struct]:
        """A Struct whose fields are ``fn``'s parameters (defaults make them optional)."""
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for param in _signature(fn, label).parameters.values():
            where = f"tool {label!r}: parameter {param.name!r}"
            if param.kind is param.VAR_POSITIONAL:
                raise TypeError(
                    f"tool {label!r}: parameter *{param.name} cannot be filled by a model "
                    "(arguments are a JSON object with named fields); replace it with a "
                    f"named parameter such as `{param.name}: list[str]`"
                )
            if param.kind is param.VAR_KEYWORD:
                raise TypeError(
                    f"tool {label!r}: parameter **{param.name} cannot be described to a "
                    "model; list the arguments as named, typed parameters, or take one "
                    f"`{param.name}: dict[str, str]` parameter"
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise TypeError(
                    f"{where} is positional-only, but tool arguments are passed by "
                    "name; remove the '/' from the signature"
                )
            if param.annotation is param.empty:
                raise TypeError(
                    f"{where} has no type hint, so the model cannot be told what to "
                    f"send; annotate it, e.g. `{param.name}: str`"
                )
            hint = param.annotation
            try:
                msgspec.json.schema(hint)
            except TypeError as exc:
                raise TypeError(
                    f"{where}: msgspec cannot describe its type {hint!r} "
                    f"({_last_line(exc)}); use a "
                    "type msgspec supports (str, int, float, bool, list, dict, Literal, "
                    "Enum, Struct, datetime, ...)"
                ) from exc
            if param.default is param.empty:
                fields.append((param.name, hint))
                continue
            default = param.default
            if default is None and not _admits_none(hint):
                hint = Optional[hint]  # noqa: UP045 - hint may be any typing form
            if isinstance(default, (list, dict, set, bytearray)):
                # msgspec refuses mutable defaults; a fresh copy per call is the
                # behaviour callers expect from a tool anyway.
                default = msgspec.field(default_factory=_copier(default))
            fields.append((param.name, hint, default))
        try:
            return msgspec.defstruct(
                f"{label}_arguments",
                fields,
                kw_only=True,
                forbid_unknown_fields=True,
                module=getattr(fn, "__module__", None),
            )
        except (TypeError, ValueError) as exc:
            raise TypeError(f"tool {label!r}: cannot build its arguments type: {exc}") from exc

    def decode_arguments(self, raw: str | bytes) -> Any:
        """Check the arguments a model sent and return them as Python values.

        Args:
            raw: The JSON text of the arguments, as the provider sent it.

        Returns:
            For a function tool, a ``dict`` of keyword arguments covering every
            parameter (defaults filled in), ready for ``func(**args)``; for a
            Struct tool, an instance of the Struct.

        Raises:
            ToolArgumentsError: The text is not a JSON object, an argument is
                missing, unknown or of the wrong type. The message names the tool,
                the argument (``path``, e.g. ``$.city``) and what was expected, and
                is written to be shown to the model so it can correct its call.
        """
        tool = self.spec.name
        value = drop_null_optionals(_arguments_object(tool, raw), self._schema)
        known = self._names
        for key in value:
            if key not in known:
                expected = ", ".join(known) or "no arguments"
                raise ToolArgumentsError(
                    f"tool {tool!r}: unknown argument {key!r} at $.{key}; the tool takes: "
                    f"{expected}",
                    tool=tool,
                    path=f"$.{key}",
                )
        try:
            decoded = msgspec.convert(value, self.arguments_type)
        except msgspec.ValidationError as exc:
            raise self._error(str(exc)) from exc
        if self.func is None:
            return decoded
        return {f: getattr(decoded, f) for f in self._fields}

    def _error(self, message: str) -> ToolArgumentsError:
        """A ``ToolArgumentsError`` from a msgspec ``ValidationError`` message."""
        tool = self.spec.name
        at = _PATH.search(message)
        base = at.group(1) if at else "$"
        text = message[: at.start()] if at else message
        missing = _MISSING.match(text)
        unknown = _UNKNOWN.match(text)
        if missing:
            path = f"{base}.{missing.group(1)}"
            what = f"missing required argument {missing.group(1)!r} at {path}"
        elif unknown:
            path = f"{base}.{unknown.group(1)}"
            what = f"unknown field {unknown.group(1)!r} at {path}"
        else:
            path = base
            what = f"invalid value at {path}: {text[0].lower() + text[1:] if text else text}"
        return ToolArgumentsError(f"tool {tool!r}: {what}", tool=tool, path=path)


def _arguments_object(tool: str, raw: str | bytes) -> dict[str, Any]:
    """The arguments a model sent, as one JSON object (empty text: no arguments).

    Raises:
        ToolArgumentsError: not JSON, or JSON that is not an object.
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
    if not text.strip():
        return {}
    try:
        value = _json_decode(text)
    except msgspec.DecodeError as exc:
        raise ToolArgumentsError(
            f"tool {tool!r}: the arguments are not valid JSON ({exc}); send one "
            "JSON object with the parameters as keys",
            tool=tool,
        ) from exc
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise ToolArgumentsError(
            f"tool {tool!r}: the arguments must be a JSON object, got {kind}; send "
            "one object with the parameters as keys",
            tool=tool,
            path="$",
        )
    return value


class SchemaTool(Tool):
    """A tool described by a JSON Schema rather than a Python signature: tools from
    MCP servers, OpenAPI operations, or any schema a program is handed.

    The arguments a model sends are checked against ``parameters`` with a JSON
    Schema validator (the draft its ``$schema`` names, else 2020-12) before ``func``
    runs; ``func`` is called with them as keyword arguments (``func(**arguments)``,
    so a ``**kwargs`` function takes names that are not Python identifiers).

    Raises:
        TypeError: ``parameters`` is not an object schema, or not a valid schema.
        ValueError: The tool name is not one providers accept.
    """

    def __init__(
        self,
        name: str,
        parameters: dict[str, Any],
        func: Callable[..., Any],
        *,
        description: str = "",
        is_async: bool | None = None,
    ) -> None:
        import jsonschema  # imported here: only schema tools need it

        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise TypeError(
                f"tool {name!r}: parameters must be a JSON Schema for an object, got {parameters!r}"
            )
        schema = dict(parameters)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        validator_type = jsonschema.validators.validator_for(
            schema, jsonschema.Draft202012Validator
        )
        try:
            validator_type.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise TypeError(
                f"tool {name!r}: its parameters are not a valid JSON Schema: {exc.message}"
            ) from exc
        self._validator = validator_type(schema)
        self.func = func
        self.is_async = _is_async(func) if is_async is None else is_async
        self._schema = schema
        self._fields = ()
        self._names = tuple(schema["properties"])
        self.spec = ToolSpec(name=name, description=description, parameters=schema)
        self.arguments_type = _NO_ARGUMENTS_TYPE

    def decode_arguments(self, raw: str | bytes) -> Any:
        """Check the arguments against the schema; return them as a ``dict``.

        Raises:
            ToolArgumentsError: not a JSON object, or it breaks the schema (the
                message gives the path and the rule, for the model to read).
        """
        tool = self.spec.name
        value = drop_null_optionals(_arguments_object(tool, raw), self._schema)
        # str keys: a path mixes property names and array indices.
        errors = sorted(self._validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
        if errors:
            paths = [
                "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
                for e in errors
            ]
            pairs = zip(paths[:3], errors[:3], strict=True)
            shown = "; ".join(f"at {p}: {e.message}" for p, e in pairs)
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise ToolArgumentsError(
                f"tool {tool!r}: bad arguments {shown}{more}", tool=tool, path=paths[0]
            )
        return value


class _NoArguments(msgspec.Struct):
    pass


_NO_ARGUMENTS_TYPE: type[msgspec.Struct] = _NoArguments


def tool_spec(
    obj: Callable[..., Any] | type[msgspec.Struct],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> ToolSpec:
    """The :class:`ToolSpec` of a function, async function or Struct type.

    Args:
        obj: What the model may call.
        name: The tool name; the function's or class's name by default.
        description: The tool description; the docstring's description by default.
        strict: Ask providers that support it (OpenAI) to constrain the arguments
            to the schema exactly.

    Returns:
        The spec; its ``parameters`` are a JSON Schema of type object.

    Raises:
        TypeError: See :class:`Tool`.
        ValueError: The name is not one providers accept.
    """
    return Tool(obj, name=name, description=description, strict=strict).spec


def tools_from(
    objs: Iterable[Tool | ToolSpec | Callable[..., Any] | type[msgspec.Struct]],
) -> list[ToolSpec]:
    """The specs of several tools, in order.

    Args:
        objs: Tools, specs (kept as they are), functions or Struct types.

    Returns:
        One ToolSpec per item.

    Raises:
        TypeError: See :class:`Tool`.
        ValueError: Two tools have the same name (the model could not tell them
            apart); give one of them ``name=`` through :class:`Tool`.
    """
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for obj in objs:
        if isinstance(obj, Tool):
            spec = obj.spec
        elif isinstance(obj, ToolSpec):
            spec = obj
        else:
            spec = tool_spec(obj)
        if spec.name in seen:
            raise ValueError(
                f"two tools are named {spec.name!r}; give one a different name, e.g. "
                f"Tool(fn, name='{spec.name}_2')"
            )
        seen.add(spec.name)
        specs.append(spec)
    return specs
