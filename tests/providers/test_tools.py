"""Tool specs from callables and Structs, and decoding a model's tool arguments."""

from __future__ import annotations

import datetime
import enum
import functools
from typing import Annotated, Any, Literal

import msgspec
import pytest

from providers.errors import RequestError, ToolArgumentsError
from providers.messages import ToolSpec
from providers.schema import gemini_schema, inline_refs, openai_strict
from providers.tools import Tool, parse_docstring, tool_spec, tools_from


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Location(msgspec.Struct, forbid_unknown_fields=True):
    """A place on Earth.

    Attributes:
        lat: Latitude in degrees.
        lon: Longitude in degrees.
    """

    lat: float
    lon: float
    label: str | None = None


def forecast(
    city: str,
    days: int,
    at: datetime.datetime,
    places: list[Location],
    unit: Unit = Unit.C,
    detail: Literal["short", "long"] = "short",
    threshold: float | None = None,
    alerts: bool = False,
) -> str:
    """Weather forecast for a city.

    Uses the national service.

    Args:
        city: City name,
            e.g. "Paris".
        days (int): How many days ahead.
        places: Extra places.
        unit: Temperature unit.

    Returns:
        The forecast text.
    """
    return city


async def search(query: str, limit: int = 10) -> list[str]:
    """Search the web."""
    return [query] * limit


class Booking(msgspec.Struct):
    """Book a table.

    Attributes:
        guests: Number of guests.
    """

    name: str
    guests: Annotated[int, msgspec.Meta(ge=1, le=12)]
    when: datetime.date | None = None


# --------------------------------------------------------------------------- specs


def test_function_spec_schema_and_descriptions() -> None:
    spec = tool_spec(forecast)
    assert spec.name == "forecast"
    assert spec.description == "Weather forecast for a city.\n\nUses the national service."
    assert spec.strict is False
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city", "days", "at", "places"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": 'City name, e.g. "Paris".'}
    assert props["days"] == {"type": "integer", "description": "How many days ahead."}
    assert props["at"] == {"type": "string"}
    assert props["places"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/Location"},
        "description": "Extra places.",
    }
    assert props["unit"] == {
        "$ref": "#/$defs/Unit",
        "default": "celsius",
        "description": "Temperature unit.",
    }
    assert props["detail"] == {"enum": ["long", "short"], "default": "short"}
    assert props["threshold"] == {
        "anyOf": [{"type": "number"}, {"type": "null"}],
        "default": None,
    }
    assert props["alerts"] == {"type": "boolean", "default": False}
    # Nested Struct: docstring summary as description, Attributes as properties'.
    assert params["$defs"]["Location"] == {
        "title": "Location",
        "description": "A place on Earth.",
        "type": "object",
        "properties": {
            "lat": {"type": "number", "description": "Latitude in degrees."},
            "lon": {"type": "number", "description": "Longitude in degrees."},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["lat", "lon"],
        "additionalProperties": False,
    }
    assert params["$defs"]["Unit"] == {"title": "Unit", "enum": ["celsius", "fahrenheit"]}
    # The generated arguments Struct's own name never reaches the model.
    assert "title" not in params and "forecast_arguments" not in str(params)


def test_overrides_and_strict() -> None:
    spec = tool_spec(forecast, name="weather", description="Ask the sky.", strict=True)
    assert (spec.name, spec.description, spec.strict) == ("weather", "Ask the sky.", True)
    # parameters stay as msgspec wrote them; families convert them on the way out.
    assert spec.parameters == tool_spec(forecast).parameters


def test_async_function() -> None:
    tool = Tool(search)
    assert tool.is_async and tool.func is search
    assert tool.spec.description == "Search the web."
    assert tool.spec.parameters == {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "default": 10}},
        "required": ["query"],
        "additionalProperties": False,
    }
    assert not Tool(forecast).is_async


def test_function_without_parameters() -> None:
    def now() -> str:
        """The time."""
        return ""

    tool = Tool(now)
    assert tool.spec.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
    assert tool.decode_arguments("") == {}
    assert tool.decode_arguments("{}") == {}


def test_methods_callables_and_partials() -> None:
    class Service:
        def lookup(self, key: str) -> str:
            """Look a key up."""
            return key

        async def __call__(self, n: int) -> int:
            """Count."""
            return n

    bound = Tool(Service().lookup)
    assert bound.spec.name == "lookup" and bound.spec.parameters["required"] == ["key"]
    assert bound.spec.description == "Look a key up."
    obj = Tool(Service(), name="counter")
    assert obj.is_async and obj.spec.description == "Count."
    part = Tool(functools.partial(forecast, days=3))
    assert part.spec.name == "forecast"
    assert "days" not in part.spec.parameters["required"]


def test_none_default_makes_the_type_nullable() -> None:
    def f(note: str = None) -> None:  # type: ignore[assignment]  # noqa: RUF013
        pass

    tool = Tool(f)
    assert tool.spec.parameters["properties"]["note"]["anyOf"] == [
        {"type": "string"},
        {"type": "null"},
    ]
    assert tool.decode_arguments('{"note": null}') == {"note": None}


def test_mutable_defaults_are_fresh_per_call() -> None:
    def f(tags: list[str] = ["a"]) -> None:  # noqa: B006 - the case under test
        pass

    tool = Tool(f)
    first = tool.decode_arguments("{}")
    first["tags"].append("b")
    assert tool.decode_arguments("{}") == {"tags": ["a"]}


def test_user_meta_description_wins_over_docstring() -> None:
    def f(n: Annotated[int, msgspec.Meta(description="From Meta.", ge=0)]) -> None:
        """Do.

        Args:
            n: From the docstring.
        """

    prop = tool_spec(f).parameters["properties"]["n"]
    assert prop == {"description": "From Meta.", "type": "integer", "minimum": 0}


# --------------------------------------------------------------------------- refused callables


def _no_hint(city, days: int) -> None:  # type: ignore[no-untyped-def]
    pass


def _star_args(*cities: str) -> None:
    pass


def _star_kwargs(**options: str) -> None:
    pass


def _positional_only(city: str, /) -> None:
    pass


class Opaque:
    pass


def _unsupported(lock: Opaque) -> None:
    pass


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (_no_hint, "parameter 'city' has no type hint.*`city: str`"),
        (_star_args, r"\*cities cannot be filled.*`cities: list\[str\]`"),
        (_star_kwargs, r"\*\*options cannot be described"),
        (_positional_only, "parameter 'city' is positional-only.*remove the '/'"),
        (_unsupported, "parameter 'lock': msgspec cannot describe.*is not supported"),
    ],
)
def test_refused_signatures(fn: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Tool(fn)


def test_unresolvable_hint() -> None:
    def f(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    class Local(msgspec.Struct):
        child: Local | None = None

    with pytest.raises(TypeError, match=r"tool 'f': a type hint cannot be resolved.*module level"):
        Tool(f)
    with pytest.raises(TypeError, match=r"tool 'Local': a type hint cannot be resolved"):
        Tool(Local)


def test_bad_objects_and_names() -> None:
    with pytest.raises(TypeError, match="pass a function"):
        Tool(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass a function"):
        Tool(dict)
    with pytest.raises(ValueError, match="'<lambda>' is not accepted"):
        Tool(lambda: None)
    assert Tool(lambda: None, name="noop").spec.name == "noop"


def test_strict_refuses_free_form_dict() -> None:
    def f(options: dict[str, str]) -> None:
        pass

    assert tool_spec(f).parameters["properties"]["options"]["type"] == "object"
    with pytest.raises(TypeError, match=r"tool 'f' cannot be strict.*free-form keys"):
        tool_spec(f, strict=True)


def test_array_like_struct_is_refused() -> None:
    class Pair(msgspec.Struct, array_like=True):
        a: int
        b: int

    with pytest.raises(TypeError, match="array_like"):
        Tool(Pair)


# --------------------------------------------------------------------------- Struct tools


def test_struct_tool_spec() -> None:
    spec = tool_spec(Booking)
    assert spec.name == "Booking"
    assert spec.description == "Book a table."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "guests": {
                "type": "integer",
                "minimum": 1,
                "maximum": 12,
                "description": "Number of guests.",
            },
            "when": {
                "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["name", "guests"],
        "additionalProperties": False,
    }


def test_struct_tool_decodes_to_an_instance() -> None:
    tool = Tool(Booking, name="book")
    assert tool.func is None
    got = tool.decode_arguments('{"name": "Ada", "guests": 2, "when": "2025-01-31"}')
    assert got == Booking(name="Ada", guests=2, when=datetime.date(2025, 1, 31))
    with pytest.raises(ToolArgumentsError, match=r"\$\.guests.*>= 1") as info:
        tool.decode_arguments('{"name": "Ada", "guests": 0}')
    assert info.value.path == "$.guests" and info.value.tool == "book"
    # Unknown top-level arguments are refused even though Booking allows them.
    with pytest.raises(ToolArgumentsError, match="unknown argument 'table'") as info:
        tool.decode_arguments('{"name": "Ada", "guests": 2, "table": 5}')
    assert info.value.path == "$.table"


class Folder(msgspec.Struct):
    name: str
    children: list[Folder] = []


def test_recursive_struct_keeps_its_definition() -> None:
    params = tool_spec(Folder).parameters
    assert params["properties"]["children"]["items"] == {"$ref": "#/$defs/Folder"}
    assert set(params["$defs"]) == {"Folder"}
    assert openai_strict(params)["$defs"]["Folder"]["additionalProperties"] is False
    with pytest.raises(RequestError, match="recursive: type 'Folder'"):
        gemini_schema(params)
    got = Tool(Folder).decode_arguments('{"name": "a", "children": [{"name": "b"}]}')
    assert got == Folder("a", [Folder("b")])


# --------------------------------------------------------------------------- decoding


def test_decode_fills_defaults_and_converts_types() -> None:
    tool = Tool(forecast)
    args = tool.decode_arguments(
        b'{"city": "Oslo", "days": 2, "at": "2025-03-01T12:00:00Z",'
        b' "places": [{"lat": 59.9, "lon": 10.7}], "unit": "fahrenheit"}'
    )
    assert args == {
        "city": "Oslo",
        "days": 2,
        "at": datetime.datetime(2025, 3, 1, 12, tzinfo=datetime.UTC),
        "places": [Location(lat=59.9, lon=10.7)],
        "unit": Unit.F,
        "detail": "short",
        "threshold": None,
        "alerts": False,
    }
    assert forecast(**args) == "Oslo"


def test_decode_null_for_optional_means_default() -> None:
    # What a model in OpenAI strict mode sends: every property, null when unused.
    tool = Tool(forecast)
    args = tool.decode_arguments(
        '{"city": "Oslo", "days": 1, "at": "2025-03-01T12:00:00Z",'
        ' "places": [{"lat": 1, "lon": 2, "label": null}],'
        ' "unit": null, "detail": null, "threshold": null, "alerts": null}'
    )
    assert args["unit"] is Unit.C and args["detail"] == "short" and args["alerts"] is False
    assert args["threshold"] is None
    assert args["places"] == [Location(1.0, 2.0)]


@pytest.mark.parametrize(
    ("raw", "path", "match"),
    [
        ('{"city": 3}', "$.city", r"invalid value at \$\.city: expected `str`, got `int`"),
        ('{"city": "x"}', "$.days", r"missing required argument 'days' at \$\.days"),
        (
            '{"city": "x", "days": 1, "at": "2025-03-01T12:00:00Z", "places": [{"lat": 1}]}',
            "$.places[0].lon",
            r"missing required argument 'lon' at \$\.places\[0\]\.lon",
        ),
        (
            '{"city": "x", "days": 1, "at": "2025-03-01T12:00:00Z",'
            ' "places": [{"lat": 1, "lon": 2, "alt": 3}]}',
            "$.places[0].alt",
            r"unknown field 'alt' at \$\.places\[0\]\.alt",
        ),
        (
            '{"city": "x", "days": 1.5}',
            "$.days",
            r"invalid value at \$\.days: expected `int`, got `float`",
        ),
        (
            '{"city": "x", "days": 1, "at": "yesterday", "places": []}',
            "$.at",
            r"invalid value at \$\.at: invalid RFC3339 encoded datetime",
        ),
        (
            '{"city": "x", "days": 1, "at": "2025-03-01T12:00:00Z", "places": [], "unit": "K"}',
            "$.unit",
            r"invalid value at \$\.unit: invalid enum value 'K'",
        ),
        ('{"town": "x"}', "$.town", "unknown argument 'town' at .*the tool takes: city, days"),
        ("[1, 2]", "$", "must be a JSON object, got array"),
        ('"Oslo"', "$", "must be a JSON object, got str"),
        ('{"city": "Os', None, "not valid JSON"),
    ],
)
def test_decode_errors_name_tool_and_field(raw: str, path: str | None, match: str) -> None:
    tool = Tool(forecast)
    with pytest.raises(ToolArgumentsError, match=match) as info:
        tool.decode_arguments(raw)
    error = info.value
    assert error.tool == "forecast" and error.path == path
    assert str(error).startswith("tool 'forecast': ")
    assert isinstance(error, RequestError)


# --------------------------------------------------------------------------- dialects


def test_round_trip_through_dialects() -> None:
    params = tool_spec(forecast).parameters
    inlined = inline_refs(params)
    assert "$defs" not in inlined
    assert inlined["properties"]["places"]["items"]["required"] == ["lat", "lon"]

    strict = openai_strict(params)
    assert strict["required"] == list(strict["properties"])
    assert strict["$defs"]["Location"]["required"] == ["lat", "lon", "label"]

    gemini = gemini_schema(params)
    assert gemini["properties"]["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "title": "Unit",
        "default": "celsius",
        "description": "Temperature unit.",
    }
    assert gemini["properties"]["threshold"] == {
        "type": "number",
        "default": None,
        "nullable": True,
    }
    assert gemini["propertyOrdering"][:2] == ["city", "days"]

    # An answer that follows either dialect decodes to the same arguments.
    tool = Tool(forecast)
    base = '"city": "Oslo", "days": 1, "at": "2025-03-01T12:00:00Z", "places": []'
    strict_answer = (
        "{" + base + ', "unit": null, "detail": null, "threshold": null, "alerts": null}'
    )
    gemini_answer = "{" + base + "}"
    assert tool.decode_arguments(strict_answer) == tool.decode_arguments(gemini_answer)


def test_tools_from() -> None:
    existing = ToolSpec(name="raw", parameters={"type": "object", "properties": {}})
    specs = tools_from([forecast, Tool(search, name="web"), Booking, existing])
    assert [s.name for s in specs] == ["forecast", "web", "Booking", "raw"]
    assert specs[3] is existing
    with pytest.raises(ValueError, match="two tools are named 'forecast'"):
        tools_from([forecast, forecast])


# --------------------------------------------------------------------------- docstrings


def test_parse_docstring() -> None:
    doc = """Summary line.

        Second paragraph
        on two lines.

        Args:
            a: First,
                continued.
            b (list[int]): Second.
            *rest: Ignored name form.

        Raises:
            ValueError: not an argument.
        """
    summary, fields = parse_docstring(doc)
    assert summary == "Summary line.\n\nSecond paragraph\non two lines."
    assert fields == {"a": "First, continued.", "b": "Second.", "rest": "Ignored name form."}
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Just this.") == ("Just this.", {})
