"""The Anthropic Messages family: requests, recorded streams, responses, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.assemble import assemble
from providers.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    RequestError,
    ServerError,
    StreamDecodeError,
    StreamProtocolError,
)
from providers.events import (
    Citations,
    ErrorEvent,
    Finish,
    ReasoningDelta,
    Start,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from providers.families import get_family
from providers.families.anthropic import (
    DEFAULT_MAX_TOKENS,
    THINKING_BUDGETS,
    AnthropicMessages,
)
from providers.families.base import Endpoint, HttpRequest, error_from_event
from providers.messages import (
    CacheHint,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from providers.secrets import Secret
from tests.providers.streamcheck import decode_every_way, decode_whole, recorded

KEY = "sk-ant-api03-SECRETSECRETSECRET"
MODEL = "claude-sonnet-4-5-20250929"
FAMILY = AnthropicMessages()

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
)


def endpoint(**kw: Any) -> Endpoint:
    kw.setdefault("provider", "anthropic")
    kw.setdefault("base_url", "https://api.anthropic.com/v1")
    kw.setdefault("api_key", Secret(KEY))
    return Endpoint(**kw)


def build(req: Request, *, stream: bool = False, **kw: Any) -> HttpRequest:
    return FAMILY.build_request(req, endpoint(**kw), stream=stream)


def body(req: Request, **kw: Any) -> dict[str, Any]:
    return json.loads(build(req, **kw).body)  # type: ignore[no-any-return]


def req(messages: list[Message], **kw: Any) -> Request:
    kw.setdefault("model", MODEL)
    return Request(messages=messages, **kw)


def text_block(text: str, **kw: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, **kw}


# -- the family ----------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    family = get_family("anthropic")
    assert isinstance(family, AnthropicMessages)
    assert family.name == "anthropic"
    assert family.default_base_url == "https://api.anthropic.com/v1"


# -- requests ------------------------------------------------------------------------


def test_minimal_request() -> None:
    http = build(req([Message.user("Hello, Claude")]))
    assert http.method == "POST"
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers == {
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "accept": "application/json",
    }
    assert http.secret_headers == {"x-api-key": Secret(KEY)}
    assert http.wire_headers()["x-api-key"] == KEY
    assert json.loads(http.body) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [text_block("Hello, Claude")]}],
    }


def test_key_never_in_headers_url_body_or_repr() -> None:
    http = build(
        req([Message.user("hi")], metadata={"user_id": "u-1"}),
        stream=True,
        headers={"anthropic-beta": "context-1m-2025-08-07"},
        query={"beta": "true"},
    )
    assert KEY not in repr(http)
    assert KEY not in str(http.headers)
    assert KEY not in http.url
    assert KEY not in str(http.params)
    assert KEY.encode() not in http.body
    assert KEY not in repr(endpoint())


def test_endpoint_headers_query_and_bearer_auth() -> None:
    http = build(
        req([Message.user("hi")]),
        base_url="https://gateway.example/anthropic/v1/",
        headers={"Anthropic-Beta": "context-1m-2025-08-07"},
        query={"tenant": "t1"},
        auth_header="Authorization",
    )
    assert http.url == "https://gateway.example/anthropic/v1/messages"
    assert http.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert http.params == {"tenant": "t1"}
    assert http.secret_headers == {"authorization": Secret("Bearer " + KEY)}
    assert "authorization" not in http.headers


def test_no_key_no_auth_header() -> None:
    http = build(req([Message.user("hi")]), api_key=None)
    assert http.secret_headers == {}


def test_streaming_request() -> None:
    http = build(req([Message.user("hi")]), stream=True)
    assert http.headers["accept"] == "text/event-stream"
    assert json.loads(http.body)["stream"] is True


def test_sampling_stop_metadata_and_max_tokens() -> None:
    assert body(
        req(
            [Message.user("hi")],
            max_tokens=300,
            temperature=0.2,
            top_p=0.9,
            stop=["\n\nHuman:", "END"],
            metadata={"user_id": "user-42", "run": "r-7", "team": "blue"},
        )
    ) == {
        "model": MODEL,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [text_block("hi")]}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:", "END"],
        # Anthropic takes only user_id; the other keys stay local
        "metadata": {"user_id": "user-42"},
    }


def test_metadata_without_user_id_is_not_sent() -> None:
    assert "metadata" not in body(req([Message.user("hi")], metadata={"run": "r-7"}))


def test_temperature_above_one_is_refused() -> None:
    with pytest.raises(RequestError, match=r"temperature within 0\.\.1"):
        build(req([Message.user("hi")], temperature=1.5))


def test_extra_is_merged_last() -> None:
    out = body(req([Message.user("hi")], max_tokens=10, extra={"top_k": 5, "max_tokens": 20}))
    assert out["top_k"] == 5
    assert out["max_tokens"] == 20


REDACTED = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2Yf"
    "WXGmKDxH4mPnZ5sQ7vB5URj2pXmN3qE7LxM1aGx5cQ2gT"
)
THOUGHT = "The user wants the weather in Paris; I should call get_weather."
SIGNATURE = (
    "ErUBCkYIBRgCIkB0bGJvZGVfc2lnbmF0dXJlX2Zvcl90ZXN0c19vbmx5X25vdF9yZWFsX2RhdGFfMDEyMzQ1Njc4OQ=="
)


def test_full_tool_loop_round_trip_with_thinking() -> None:
    """A second turn of a tool loop: the first turn's thinking (signed and redacted),
    text and parallel tool calls go back unchanged, the results as tool_result blocks."""
    turn_one = assemble(
        decode_every_way("anthropic", recorded("anthropic", "redacted_thinking_tool.sse"))
    )
    messages = [
        Message.system("You are a weather bot."),
        Message.system("Answer in one sentence."),
        Message.user("Weather in Paris and in Rome?"),
        turn_one.message,
        Message.tool("toolu_01CqVp8sNn3aXj5kRtYw2LmE", "get_weather", "18C, sunny"),
        Message.assistant(
            "And Rome:",
            tool_calls=[
                ToolCall(id="toolu_02", name="get_weather", arguments='{"location": "Rome"}'),
                ToolCall(id="toolu_03", name="get_weather", arguments=""),
            ],
        ),
        Message.tool("toolu_02", "get_weather", "24C, clear"),
        Message.tool("toolu_03", "get_weather", "missing location", is_error=True),
        Message.user("Thanks!"),
    ]
    out = body(
        req(
            messages,
            tools=[WEATHER],
            reasoning_effort="low",
            max_tokens=8000,
            cache=CacheHint(auto=False),
        )
    )
    assert out == {
        "model": MODEL,
        "max_tokens": 8000,
        "system": [text_block("You are a weather bot."), text_block("Answer in one sentence.")],
        "messages": [
            {"role": "user", "content": [text_block("Weather in Paris and in Rome?")]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "redacted_thinking",
                        "data": REDACTED,
                    },
                    {
                        "type": "thinking",
                        "thinking": THOUGHT,
                        "signature": SIGNATURE,
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01CqVp8sNn3aXj5kRtYw2LmE",
                        "name": "get_weather",
                        "input": {"location": "Paris, France"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01CqVp8sNn3aXj5kRtYw2LmE",
                        "content": "18C, sunny",
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    text_block("And Rome:"),
                    {
                        "type": "tool_use",
                        "id": "toolu_02",
                        "name": "get_weather",
                        "input": {"location": "Rome"},
                    },
                    {"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": "24C, clear"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_03",
                        "content": "missing location",
                        "is_error": True,
                    },
                    text_block("Thanks!"),
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather in a city",
                "input_schema": WEATHER.parameters,
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": THINKING_BUDGETS["low"]},
    }


def test_consecutive_same_role_messages_are_merged() -> None:
    out = body(
        req([Message.user("a"), Message.user("b"), Message.assistant("c"), Message.assistant("d")])
    )
    assert out["messages"] == [
        {"role": "user", "content": [text_block("a"), text_block("b")]},
        {"role": "assistant", "content": [text_block("c"), text_block("d")]},
    ]


def test_system_message_after_the_conversation_is_refused() -> None:
    with pytest.raises(RequestError, match="move it before the first"):
        build(req([Message.user("hi"), Message.system("late rules")]))


def test_only_system_messages_is_refused() -> None:
    with pytest.raises(RequestError, match="at least one user message"):
        build(req([Message.system("rules")]))


def test_message_with_nothing_to_send_is_refused() -> None:
    with pytest.raises(RequestError, match="message 0"):
        build(req([Message.user("")]))


@pytest.mark.parametrize("arguments", ['{"location": ', "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    messages = [
        Message.user("hi"),
        Message.assistant(tool_calls=[ToolCall(id="c1", name="get_weather", arguments=arguments)]),
        Message.tool("c1", "get_weather", "x"),
    ]
    with pytest.raises(RequestError, match="c1"):
        build(req(messages, tools=[WEATHER]))


def test_images() -> None:
    content: list[Part] = [
        TextPart(text="Compare:"),
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg", detail="high"),
        ImagePart(url="data:image/webp;base64,UklGRg=="),
    ]
    assert body(req([Message(role="user", content=content)]))["messages"][0]["content"] == [
        text_block("Compare:"),
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
        },
    ]


def test_image_results_of_a_tool() -> None:
    messages = [
        Message.user("screenshot please"),
        Message.assistant(tool_calls=[ToolCall(id="c1", name="shot")]),
        Message(
            role="tool",
            tool_call_id="c1",
            name="shot",
            content=[TextPart(text="here"), ImagePart(data="AAAA", media_type="image/png")],
        ),
    ]
    out = body(req(messages, tools=[ToolSpec(name="shot")], cache=CacheHint(auto=False)))
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "c1",
                "content": [
                    text_block("here"),
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        (
            [Message(role="system", content=[ImagePart(url="https://e/i.png")]), Message.user("x")],
            "only text",
        ),
        (
            [
                Message.user("x"),
                Message(role="assistant", content=[ImagePart(url="https://e/i.png")]),
            ],
            "images",
        ),
        (
            [Message(role="user", content=[ReasoningPart(text="r", signature="s")])],
            "assistant message",
        ),
    ],
)
def test_parts_in_the_wrong_place_are_refused(messages: list[Message], match: str) -> None:
    with pytest.raises(RequestError, match=match):
        build(req(messages))


def test_non_base64_data_url_is_refused() -> None:
    with pytest.raises(RequestError, match="base64 data URLs"):
        build(req([Message(role="user", content=[ImagePart(url="data:image/png,abc")])]))


def test_unsigned_reasoning_from_another_family_is_left_out() -> None:
    messages = [
        Message.user("q"),
        Message(
            role="assistant", content=[ReasoningPart(text="summary", id="rs_1"), TextPart(text="a")]
        ),
        Message.user("q2"),
    ]
    assert body(req(messages))["messages"][1] == {"role": "assistant", "content": [text_block("a")]}


def test_reasoning_is_sent_back_only_when_thinking_is_on() -> None:
    messages = [
        Message.user("q"),
        Message(
            role="assistant",
            content=[
                ReasoningPart(text="t", signature="s"),
                ReasoningPart(redacted="r"),
                TextPart(text="a"),
            ],
        ),
        Message.user("q2"),
    ]
    assert body(req(messages))["messages"][1] == {"role": "assistant", "content": [text_block("a")]}
    assert body(req(messages, reasoning_effort="low"))["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "redacted_thinking", "data": "r"},
            text_block("a"),
        ],
    }


def test_assistant_turn_of_thinking_alone_is_left_out() -> None:
    messages = [
        Message.user("q"),
        Message(role="assistant", content=[ReasoningPart(text="t", signature="s")]),
        Message.user("go on"),
    ]
    assert body(req(messages, reasoning_effort="low"))["messages"] == [
        {"role": "user", "content": [text_block("q"), text_block("go on")]}
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode="auto"), {"type": "auto"}),
        (ToolChoice(mode="required"), {"type": "any"}),
        (ToolChoice(mode="tool", name="get_weather"), {"type": "tool", "name": "get_weather"}),
        (ToolChoice(mode="none"), {"type": "none"}),
        (
            ToolChoice(mode="auto", parallel=False),
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        (
            ToolChoice(mode="required", parallel=False),
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        (
            ToolChoice(mode="tool", name="get_weather", parallel=False),
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        (ToolChoice(mode="auto", parallel=True), {"type": "auto"}),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    assert (
        body(req([Message.user("hi")], tools=[WEATHER], tool_choice=choice))["tool_choice"]
        == expected
    )


def test_no_tool_choice_without_tools() -> None:
    out = body(req([Message.user("hi")], tool_choice=ToolChoice(mode="none")))
    assert "tool_choice" not in out
    assert "tools" not in out


def test_strict_tools_get_additional_properties_false() -> None:
    spec = ToolSpec(
        name="book",
        parameters={
            "type": "object",
            "properties": {
                "guest": {"$ref": "#/$defs/Guest"},
                "nights": {"type": "integer"},
            },
            "required": ["guest", "nights"],
            "$defs": {"Guest": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        strict=True,
    )
    assert body(req([Message.user("hi")], tools=[spec]))["tools"] == [
        {
            "name": "book",
            "input_schema": {
                "type": "object",
                "properties": {"guest": {"$ref": "#/$defs/Guest"}, "nights": {"type": "integer"}},
                "required": ["guest", "nights"],
                "$defs": {
                    "Guest": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "additionalProperties": False,
                    }
                },
                "additionalProperties": False,
            },
            "strict": True,
        }
    ]


def test_response_format_uses_output_config() -> None:
    fmt = ResponseFormat(
        name="contact",
        schema={
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name"],
        },
    )
    assert body(req([Message.user("Extract: Jane")], response_format=fmt))["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        }
    }


# -- extended thinking ---------------------------------------------------------------


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high"])
def test_reasoning_effort_without_max_tokens(effort: str) -> None:
    out = body(req([Message.user("hi")], reasoning_effort=effort))
    budget = THINKING_BUDGETS[effort]
    assert budget >= 1024
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == budget + DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [
        ("high", 64000, 24576),  # the effort's budget fits
        ("high", 10000, 8976),  # capped: the answer keeps 1024 tokens
        ("medium", 1500, 1024),  # never below Anthropic's minimum
        ("minimal", 1025, 1024),
    ],
)
def test_thinking_budget_stays_within_max_tokens(effort: str, max_tokens: int, budget: int) -> None:
    out = body(req([Message.user("hi")], reasoning_effort=effort, max_tokens=max_tokens))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == max_tokens
    assert 1024 <= budget < max_tokens


def test_thinking_needs_max_tokens_above_1024() -> None:
    with pytest.raises(RequestError, match="raise max_tokens"):
        build(req([Message.user("hi")], reasoning_effort="low", max_tokens=1024))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"temperature": 0.5}, "temperature"),
        ({"top_p": 0.5}, "top_p"),
        ({"tools": [WEATHER], "tool_choice": ToolChoice(mode="required")}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": ToolChoice(mode="tool", name="get_weather")},
            "tool_choice",
        ),
    ],
)
def test_thinking_refuses_incompatible_options(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(RequestError, match=match):
        build(req([Message.user("hi")], reasoning_effort="low", **kw))


def test_thinking_accepts_top_p_from_095() -> None:
    assert body(req([Message.user("hi")], reasoning_effort="low", top_p=0.95))["top_p"] == 0.95


# -- prompt caching ------------------------------------------------------------------


def test_cache_breakpoints_applied_to_tools_system_and_messages() -> None:
    long_rules = "rule " * 1000  # 5000 characters, about 1250 tokens
    messages = [
        Message.system(long_rules),
        Message.user("What's the weather?", cache=True),
        Message.assistant(
            tool_calls=[ToolCall(id="c1", name="get_weather", arguments='{"location":"Oslo"}')]
        ),
        Message.tool("c1", "get_weather", "-3C, snow"),
    ]
    big = ToolSpec(name="search", description="d" * 4400)
    out = body(req(messages, tools=[WEATHER, big], cache=CacheHint(ttl="1h")))
    cc = {"type": "ephemeral", "ttl": "1h"}
    assert out["tools"][0] == {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": WEATHER.parameters,
    }
    assert out["tools"][1]["cache_control"] == cc
    assert out["system"] == [text_block(long_rules, cache_control=cc)]
    assert out["messages"][0] == {
        "role": "user",
        "content": [text_block("What's the weather?", cache_control=cc)],
    }
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "c1",
                "content": "-3C, snow",
                "cache_control": cc,
            }
        ],
    }
    assert json.dumps(out).count("cache_control") == 4


def test_cache_control_without_ttl() -> None:
    out = body(req([Message.user("hi", cache=True)]))
    assert out["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_short_prompts_carry_no_cache_control() -> None:
    out = build(req([Message.system("Be brief."), Message.user("hi")], tools=[WEATHER]))
    assert b"cache_control" not in out.body


def test_cache_hint_on_a_part_of_a_tool_result() -> None:
    messages = [
        Message.user("x"),
        Message.assistant(tool_calls=[ToolCall(id="c1", name="get_weather")]),
        Message(
            role="tool",
            tool_call_id="c1",
            content=[TextPart(text="a"), TextPart(text="b", cache=True)],
        ),
    ]
    out = body(req(messages, tools=[WEATHER]))
    assert out["messages"][2]["content"][0]["content"] == [
        text_block("a"),
        text_block("b", cache_control={"type": "ephemeral"}),
    ]


def test_too_many_explicit_cache_hints_is_refused() -> None:
    with pytest.raises(RequestError, match="at most 4"):
        build(req([Message.user(str(i), cache=True) for i in range(5)]))


# -- streams -------------------------------------------------------------------------


def stream(name: str) -> list[Any]:
    return decode_every_way("anthropic", recorded("anthropic", name))


def test_text_stream_with_ping() -> None:
    events = stream("text.sse")
    assert events == [
        Start(id="msg_01XFDUDYJgAACzvnptvVoYEL", model="claude-sonnet-4-5-20250929"),
        Usage(input_tokens=25, output_tokens=1),
        TextDelta(text="Hello"),
        TextDelta(text="! Grüße aus Zürich — how can I help? 👋"),
        Usage(input_tokens=25, output_tokens=15),
        Finish(reason="stop", raw="end_turn"),
    ]
    response = assemble(events)
    assert response.text == "Hello! Grüße aus Zürich — how can I help? 👋"
    assert response.usage == Usage(input_tokens=25, output_tokens=15)


def test_crlf_stream_decodes_the_same() -> None:
    data = recorded("anthropic", "text.sse")
    assert decode_every_way("anthropic", data.replace(b"\n", b"\r\n")) == stream("text.sse")


def test_parallel_tool_use_stream() -> None:
    events = stream("tool_use_parallel.sse")
    calls = [e for e in events if isinstance(e, ToolCallStart | ToolCallDelta | ToolCallDone)]
    assert calls == [
        ToolCallStart(index=0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"location":'),
        ToolCallDelta(index=0, arguments=' "San Franc'),
        ToolCallDelta(index=0, arguments='isco, CA", "unit": "fah'),
        ToolCallDelta(index=0, arguments='renheit"}'),
        ToolCallDone(
            index=0,
            id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            name="get_weather",
            arguments='{"location": "San Francisco, CA", "unit": "fahrenheit"}',
        ),
        ToolCallStart(index=1, id="toolu_01RbbAzKXQ9vJ8oGpUwvXS7V", name="get_weather"),
        ToolCallDelta(index=1, arguments='{"location": "Montréal, QC"'),
        ToolCallDelta(index=1, arguments=', "unit": "celsius"}'),
        ToolCallDone(
            index=1,
            id="toolu_01RbbAzKXQ9vJ8oGpUwvXS7V",
            name="get_weather",
            arguments='{"location": "Montréal, QC", "unit": "celsius"}',
        ),
    ]
    assert events[-1] == Finish(reason="tool_calls", raw="tool_use")
    response = assemble(events)
    assert response.text == "I'll check the weather in both cities."
    assert [json.loads(c.arguments)["location"] for c in response.tool_calls] == [
        "San Francisco, CA",
        "Montréal, QC",
    ]
    assert response.usage == Usage(input_tokens=472, output_tokens=89)


def test_tool_use_without_input_deltas_has_empty_object_arguments() -> None:
    events = stream("tool_use_no_input.sse")
    assert (
        ToolCallDone(index=0, id="toolu_01NoArgs7hVq2ZxWm4Lk9sTe", name="get_time", arguments="{}")
        in events
    )
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assert assemble(events).tool_calls == [
        ToolCall(id="toolu_01NoArgs7hVq2ZxWm4Lk9sTe", name="get_time")
    ]


def test_extended_thinking_stream() -> None:
    events = stream("thinking.sse")
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert [e.block for e in reasoning] == [0, 0, 0]
    assert reasoning[2].signature is not None and reasoning[2].signature.startswith("EqQBCgIYAhIM")
    response = assemble(events)
    assert isinstance(response.message.content, list)
    thinking, answer = response.message.content
    assert isinstance(thinking, ReasoningPart)
    assert thinking.text.startswith("I need to find the GCD") and thinking.text.endswith(
        "So GCD = 21."
    )
    assert thinking.signature == reasoning[2].signature
    assert answer == TextPart(text="The greatest common divisor of 1071 and 462 is **21**.")
    assert response.finish_reason == "stop"


def test_thinking_tokens_in_the_usage_are_reasoning_tokens() -> None:
    """Anthropic reports the tokens spent thinking as
    ``usage.output_tokens_details.thinking_tokens`` (part of ``output_tokens``), in
    ``message_delta`` and in a whole response: they are ``reasoning_tokens``."""
    data = recorded("anthropic", "thinking.sse").replace(
        b'"usage": {"output_tokens": 178}',
        b'"usage": {"output_tokens": 178, "output_tokens_details": {"thinking_tokens": 151}}',
    )
    assert b"thinking_tokens" in data
    usage = assemble(decode_every_way("anthropic", data)).usage
    assert (usage.output_tokens, usage.reasoning_tokens) == (178, 151)
    assert assemble(stream("thinking.sse")).usage.reasoning_tokens == 0  # not reported
    raw = {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "21"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 90,
            "output_tokens_details": {"thinking_tokens": 80},
        },
    }
    response = FAMILY.decode_response(json.dumps(raw).encode())
    assert response.usage == Usage(input_tokens=12, output_tokens=90, reasoning_tokens=80)


def test_redacted_thinking_stream() -> None:
    events = stream("redacted_thinking_tool.sse")
    first = next(e for e in events if isinstance(e, ReasoningDelta))
    assert first.block == 0 and first.redacted is not None and first.redacted.startswith("EmwKAhgB")
    response = assemble(events)
    assert isinstance(response.message.content, list)
    redacted, thinking = response.message.content
    assert isinstance(redacted, ReasoningPart) and redacted.redacted == first.redacted
    assert isinstance(thinking, ReasoningPart) and thinking.signature is not None
    assert response.tool_calls == [
        ToolCall(
            id="toolu_01CqVp8sNn3aXj5kRtYw2LmE",
            name="get_weather",
            arguments='{"location": "Paris, France"}',
        )
    ]
    assert response.finish_reason == "tool_calls"


def test_cache_read_and_write_usage() -> None:
    events = stream("cache_usage.sse")
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [
        Usage(
            input_tokens=21 + 1843 + 188086,
            output_tokens=1,
            cache_read_tokens=188086,
            cache_write_tokens=1843,
        ),
        Usage(
            input_tokens=21 + 1843 + 188086,
            output_tokens=393,
            cache_read_tokens=188086,
            cache_write_tokens=1843,
        ),
    ]
    assert assemble(events).usage == usages[-1]


def test_max_tokens_stop() -> None:
    response = assemble(stream("max_tokens.sse"))
    assert response.finish_reason == "length"
    assert response.raw_finish_reason == "max_tokens"
    assert response.text == "Once upon a time, in a kingdom far"


def test_error_event_mid_stream() -> None:
    events = stream("error_overloaded.sse")
    assert events[-1] == ErrorEvent(
        kind="OverloadedError",
        message="Overloaded",
        provider_type="overloaded_error",
        retryable=True,
    )
    assert events[-2] == TextDelta(text="Let me think about")
    with pytest.raises(StreamProtocolError, match="OverloadedError"):
        assemble(events)
    error = error_from_event(events[-1], provider="anthropic", model=MODEL)
    assert isinstance(error, OverloadedError) and error.retryable


def test_nothing_after_the_end() -> None:
    data = recorded("anthropic", "error_overloaded.sse") + recorded("anthropic", "text.sse")
    decoder = FAMILY.stream_decoder()
    events = decoder.feed(data)
    assert decoder.done
    assert isinstance(events[-1], ErrorEvent)
    assert decoder.feed(b"event: ping\ndata: {not json}\n\n") == []
    assert decoder.end() == []


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": MODEL,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        ("pause_turn", "pause"),
        ("something_new", "other"),
    ],
)
def test_stop_reasons(raw: str, reason: str) -> None:
    events = decode_whole(
        "anthropic",
        sse(
            START,
            {
                "type": "message_delta",
                "delta": {"stop_reason": raw, "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
            {"type": "message_stop"},
        ),
    )
    assert events[-1] == Finish(reason=reason, raw=raw)  # type: ignore[arg-type]


def test_server_tools_are_not_tool_calls_and_citations_are_reported() -> None:
    events = decode_whole(
        "anthropic",
        sse(
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {},
                },
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [],
                },
            },
            {"type": "content_block_stop", "index": 1},
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {
                    "type": "citations_delta",
                    "citation": {
                        "type": "web_search_result_location",
                        "url": "https://example.com/a",
                        "title": "A",
                        "cited_text": "x",
                        "encrypted_index": "e",
                    },
                },
            },
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "text_delta", "text": "Found."},
            },
            {"type": "content_block_stop", "index": 2},
            {"type": "some_future_event", "detail": 1},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 9},
            },
            {"type": "message_stop"},
        ),
    )
    assert not any(isinstance(e, ToolCallStart | ToolCallDelta | ToolCallDone) for e in events)
    assert Citations(urls=["https://example.com/a"]) in events
    response = assemble(events)
    assert response.text == "Found."
    assert response.citations == ["https://example.com/a"]


def test_whole_tool_input_in_block_start_is_used_when_no_delta_comes() -> None:
    events = decode_whole(
        "anthropic",
        sse(
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9},
            },
            {"type": "message_stop"},
        ),
    )
    assert ToolCallDone(index=0, id="t1", name="f", arguments='{"a": 1}') in events


def test_invalid_json_is_a_decode_error() -> None:
    decoder = FAMILY.stream_decoder()
    with pytest.raises(StreamDecodeError):
        decoder.feed(b'event: message_start\ndata: {"type": "message_start", "message": \n\n')


def test_wrong_shape_is_a_decode_error() -> None:
    decoder = FAMILY.stream_decoder()
    with pytest.raises(StreamDecodeError):
        decoder.feed(
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": "x"}\n\n'
        )


def test_delta_for_a_block_never_started_is_a_protocol_error() -> None:
    decoder = FAMILY.stream_decoder()
    decoder.feed(sse(START))
    with pytest.raises(StreamProtocolError):
        decoder.feed(
            sse(
                {
                    "type": "content_block_delta",
                    "index": 4,
                    "delta": {"type": "text_delta", "text": "x"},
                }
            )
        )


def test_truncated_stream_is_a_protocol_error() -> None:
    data = recorded("anthropic", "text.sse")
    decoder = FAMILY.stream_decoder()
    decoder.feed(data[: data.index(b"event: message_stop")])
    assert not decoder.done
    with pytest.raises(StreamProtocolError):
        decoder.end()


# -- whole responses -----------------------------------------------------------------


def test_decode_response() -> None:
    raw = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Paris first.", "signature": "sig=="},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Checking "},
            {"type": "text", "text": "now."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "cache_creation_input_tokens": 1200,
            "cache_read_input_tokens": 4000,
            "output_tokens": 75,
        },
    }
    response = FAMILY.decode_response(json.dumps(raw).encode())
    assert response.id == "msg_01"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.message.content == [
        ReasoningPart(text="Paris first.", signature="sig=="),
        ReasoningPart(redacted="opaque"),
        TextPart(text="Checking now."),
    ]
    assert response.tool_calls == [
        ToolCall(id="toolu_1", name="get_weather", arguments='{"location": "Paris"}'),
        ToolCall(id="toolu_2", name="get_time", arguments="{}"),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.raw_finish_reason == "tool_use"
    assert response.usage == Usage(
        input_tokens=5230, output_tokens=75, cache_read_tokens=4000, cache_write_tokens=1200
    )


def test_decode_plain_text_response() -> None:
    raw = (
        b'{"id":"msg_2","type":"message","role":"assistant","model":"m",'
        b'"content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn",'
        b'"usage":{"input_tokens":3,"output_tokens":2}}'
    )
    response = FAMILY.decode_response(raw)
    assert response.message.content == "Hi"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=3, output_tokens=2)


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>bad gateway</html>",
        b'{"type":"completion"}',
        b"[1]",
    ],
)
def test_decode_response_refuses_what_is_not_a_message(raw: bytes) -> None:
    with pytest.raises(StreamDecodeError):
        FAMILY.decode_response(raw)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("overloaded_error", OverloadedError),
        ("rate_limit_error", RateLimitError),
        ("api_error", ServerError),
        ("authentication_error", AuthenticationError),
        ("invalid_request_error", BadRequestError),
    ],
)
def test_decode_response_error_object_is_the_typed_error(kind: str, cls: type) -> None:
    """A 200 whose body is an error object raises what the same error in a stream
    raises, so retries treat both alike."""
    raw = json.dumps({"type": "error", "error": {"type": kind, "message": "boom"}}).encode()
    with pytest.raises(cls, match="boom") as info:
        FAMILY.decode_response(raw, provider="my-proxy", model="claude-x")
    assert type(info.value) is cls
    assert (info.value.provider, info.value.model) == ("my-proxy", "claude-x")
    assert info.value.provider_type == kind
    assert "error object in a 200 response from my-proxy (claude-x)" in str(info.value)


# -- errors and rate limits ----------------------------------------------------------


def error_body(kind: str, message: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_body"}
    ).encode()


def map_error(status: int, raw: bytes, headers: dict[str, str] | None = None) -> APIError:
    return FAMILY.map_error(
        status, headers or {}, raw, provider="anthropic", model=MODEL, now=1_700_000_000.0
    )


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
            ContextLengthExceededError,
        ),
        (400, "invalid_request_error", "messages: roles must alternate", BadRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (403, "permission_error", "Your API key does not have permission", AuthenticationError),
        (404, "not_found_error", "model: claude-nope", NotFoundError),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            BadRequestError,
        ),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
            RateLimitError,
        ),
        (500, "api_error", "Internal server error", ServerError),
        (529, "overloaded_error", "Overloaded", OverloadedError),
    ],
)
def test_map_error(status: int, kind: str, message: str, cls: type[APIError]) -> None:
    error = map_error(status, error_body(kind, message))
    assert type(error) is cls
    assert error.status == status
    assert error.provider_type == kind
    assert error.body == message
    assert error.request_id == "req_body"
    assert error.retryable == (status in (429, 500, 529))


def test_request_too_large_is_not_a_context_length_error() -> None:
    error = map_error(
        413, error_body("request_too_large", "Request exceeds the maximum allowed number of bytes.")
    )
    assert not isinstance(error, ContextLengthExceededError)


def test_rate_limit_with_retry_after_and_headers() -> None:
    headers = {
        "retry-after": "30",
        "request-id": "req_018EeWyXxfu5pfWkrYcMdjWG",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50Z",
        "anthropic-ratelimit-tokens-limit": "400000",
        "anthropic-ratelimit-tokens-remaining": "12000",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:30Z",
        "anthropic-ratelimit-input-tokens-limit": "300000",
        "anthropic-ratelimit-input-tokens-remaining": "10000",
        "anthropic-ratelimit-input-tokens-reset": "2023-11-14T22:13:30Z",
        "anthropic-ratelimit-output-tokens-limit": "100000",
        "anthropic-ratelimit-output-tokens-remaining": "2000",
        "anthropic-ratelimit-output-tokens-reset": "2023-11-14T22:13:25Z",
    }
    error = map_error(429, error_body("rate_limit_error", "rate limited"), headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 30.0
    assert error.request_id == "req_018EeWyXxfu5pfWkrYcMdjWG"  # the header wins over the body's
    info = FAMILY.rate_limits(headers, now=1_700_000_000.0)  # 2023-11-14T22:13:20Z
    assert info.requests_limit == 4000
    assert info.requests_remaining == 0
    assert info.requests_reset == 30.0
    assert info.tokens_limit == 400000
    assert info.tokens_remaining == 12000
    assert info.tokens_reset == 10.0
    assert info.input_tokens_remaining == 10000
    assert info.output_tokens_limit == 100000
    assert info.output_tokens_reset == 5.0
    assert info.retry_after == 30.0


def test_overloaded_529_with_vague_type_stays_overloaded() -> None:
    assert isinstance(map_error(529, error_body("api_error", "busy")), OverloadedError)


@pytest.mark.parametrize(
    ("status", "raw", "cls"),
    [
        (502, b"<html><body>502 Bad Gateway</body></html>", ServerError),
        (529, b"", OverloadedError),
        (400, b'{"message": "odd proxy"}', BadRequestError),
    ],
)
def test_map_error_tolerates_bodies_that_are_not_anthropic_errors(
    status: int, raw: bytes, cls: type[APIError]
) -> None:
    error = map_error(status, raw)
    assert type(error) is cls
    assert error.provider_type is None
    assert error.body


def test_error_messages_never_show_a_key() -> None:
    error = map_error(401, error_body("authentication_error", f"invalid x-api-key {KEY}"))
    assert KEY not in str(error)
    assert KEY not in error.body
