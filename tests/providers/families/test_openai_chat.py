"""OpenAI Chat Completions family: request building, stream decoding, responses, errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.assemble import ResponseAssembler, assemble
from providers.errors import (
    APITimeoutError,
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
    RefusalDelta,
    Start,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from providers.families import get_family
from providers.families.base import Endpoint, Quirks, error_from_event
from providers.families.openai_chat import OpenAIChat, map_finish_reason
from providers.messages import (
    CacheHint,
    ImagePart,
    Message,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from providers.secrets import Secret
from tests.providers.streamcheck import decode_chunks, decode_every_way, recorded

KEY = "sk-test-0123456789abcdefSECRET"
FAMILY = OpenAIChat()


def openai_endpoint(**kw: Any) -> Endpoint:
    defaults: dict[str, Any] = {
        "provider": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": Secret(KEY),
        "quirks": Quirks(max_tokens_field="max_completion_tokens"),
    }
    defaults.update(kw)
    return Endpoint(**defaults)


def body_of(request: Request, endpoint: Endpoint | None = None, *, stream: bool = False) -> Any:
    built = FAMILY.build_request(request, endpoint or openai_endpoint(), stream=stream)
    return json.loads(built.body)


def stream_events(name: str) -> list[Any]:
    return decode_every_way("openai", recorded("openai_chat", name))


WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
)


# -- the family ------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    family = get_family("openai")
    assert isinstance(family, OpenAIChat)
    assert family.name == "openai"
    assert family.default_base_url == "https://api.openai.com/v1"


# -- request building ------------------------------------------------------------


def test_minimal_request_exact_http() -> None:
    request = Request(model="gpt-4o-mini", messages=[Message.user("Hi")])
    built = FAMILY.build_request(request, openai_endpoint(), stream=False)
    assert built.method == "POST"
    assert built.url == "https://api.openai.com/v1/chat/completions"
    assert built.headers == {"content-type": "application/json", "accept": "application/json"}
    assert json.loads(built.body) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert built.params == {}
    assert built.wire_headers()["authorization"] == f"Bearer {KEY}"


def test_streaming_request_asks_for_usage() -> None:
    request = Request(model="gpt-4o-mini", messages=[Message.user("Hi")])
    built = FAMILY.build_request(request, openai_endpoint(), stream=True)
    assert built.headers["accept"] == "text/event-stream"
    assert json.loads(built.body) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_stream_options_left_out_when_the_server_rejects_them() -> None:
    request = Request(model="mistral-large-latest", messages=[Message.user("Hi")])
    endpoint = openai_endpoint(quirks=Quirks(stream_usage=False))
    body = body_of(request, endpoint, stream=True)
    assert body["stream"] is True
    assert "stream_options" not in body


def test_full_request_exact_body() -> None:
    request = Request(
        model="gpt-4.1",
        messages=[
            Message.system("Be brief."),
            Message(
                role="user",
                content=[
                    TextPart(text="What is in these pictures?"),
                    ImagePart(url="https://example.com/a.png", detail="low"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                ],
            ),
            Message(
                role="assistant",
                content=[
                    ReasoningPart(text="hidden", signature="sig"),
                    TextPart(text="Let me check."),
                ],
                tool_calls=[
                    ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
                ],
            ),
            Message.tool("call_1", "get_weather", '{"temp": 21}'),
            Message.assistant(tool_calls=[ToolCall(id="call_2", name="get_weather")]),
            Message.tool("call_2", "get_weather", "boom", is_error=True),
        ],
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="tool", name="get_weather", parallel=False),
        max_tokens=256,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        response_format=ResponseFormat(
            schema={"type": "object", "properties": {"a": {"type": "integer"}}}, strict=False
        ),
        reasoning_effort="low",
        metadata={"run": "42"},
        cache=CacheHint(key="tenant-7"),
    )
    assert body_of(request) == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these pictures?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "boom"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "response",
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "strict": False,
            },
        },
        "reasoning_effort": "low",
        "prompt_cache_key": "tenant-7",
    }


def test_metadata_is_sent_only_through_extra() -> None:
    request = Request(
        model="gpt-4o",
        messages=[Message.user("Hi")],
        metadata={"run": "1"},
        extra={"metadata": {"run": "1"}, "store": True},
    )
    body = body_of(request)
    assert body["metadata"] == {"run": "1"}
    assert body["store"] is True


def test_extra_is_merged_last_and_overrides() -> None:
    request = Request(
        model="gpt-4o",
        messages=[Message.user("Hi")],
        temperature=0.5,
        extra={"temperature": 1.0, "seed": 7},
    )
    body = body_of(request, stream=True)
    assert body["temperature"] == 1.0
    assert body["seed"] == 7
    assert list(body)[-1] == "seed"


@pytest.mark.parametrize(
    ("mode", "wire"),
    [("auto", "auto"), ("none", "none"), ("required", "required")],
)
def test_tool_choice_modes(mode: str, wire: str) -> None:
    request = Request(
        model="gpt-4o",
        messages=[Message.user("Hi")],
        tools=[WEATHER],
        tool_choice=ToolChoice(mode=mode),  # type: ignore[arg-type]
    )
    body = body_of(request)
    assert body["tool_choice"] == wire
    assert "parallel_tool_calls" not in body  # parallel=None: the provider's default


def test_tool_choice_without_tools_is_left_out() -> None:
    request = Request(
        model="gpt-4o", messages=[Message.user("Hi")], tool_choice=ToolChoice(parallel=True)
    )
    body = body_of(request)
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body


def test_max_tokens_field_follows_quirks() -> None:
    request = Request(model="llama-3.3-70b", messages=[Message.user("Hi")], max_tokens=100)
    assert body_of(request, openai_endpoint(quirks=Quirks()))["max_tokens"] == 100
    assert "max_completion_tokens" not in body_of(request, openai_endpoint(quirks=Quirks()))
    assert body_of(request)["max_completion_tokens"] == 100


def test_fields_the_server_rejects_are_left_out() -> None:
    strict_tool = ToolSpec(name="t", parameters={"type": "object", "properties": {}}, strict=True)
    request = Request(
        model="m",
        messages=[Message.user("Hi")],
        tools=[strict_tool],
        tool_choice=ToolChoice(parallel=True),
        reasoning_effort="high",
    )
    quirks = Quirks(parallel_tool_calls=False, strict_tools=False, reasoning_effort=False)
    body = body_of(request, openai_endpoint(quirks=quirks))
    assert "parallel_tool_calls" not in body
    assert "reasoning_effort" not in body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "t", "parameters": {"type": "object", "properties": {}}},
        }
    ]


def test_strict_tool_parameters_are_rewritten_for_strict_mode() -> None:
    spec = ToolSpec(
        name="search",
        parameters={
            "type": "object",
            "properties": {"q": {"type": "string"}, "limit": {"type": "integer", "default": 5}},
            "required": ["q"],
        },
        strict=True,
    )
    request = Request(model="gpt-4o", messages=[Message.user("Hi")], tools=[spec])
    function = body_of(request)["tools"][0]["function"]
    assert function["strict"] is True
    params = function["parameters"]
    assert params["additionalProperties"] is False
    assert sorted(params["required"]) == ["limit", "q"]
    assert "default" not in json.dumps(params)
    # The spec itself is left untouched.
    assert "additionalProperties" not in spec.parameters


def test_strict_response_format_schema_is_rewritten() -> None:
    request = Request(
        model="gpt-4o",
        messages=[Message.user("Hi")],
        response_format=ResponseFormat(
            name="answer",
            schema={"type": "object", "properties": {"a": {"type": "integer"}}},
        ),
    )
    fmt = body_of(request)["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "answer"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert fmt["json_schema"]["schema"]["required"] == ["a"]


def test_user_text_parts_and_cache_flag() -> None:
    request = Request(
        model="m",
        messages=[
            Message.user("cached prefix", cache=True),
            Message(role="user", content=[TextPart(text="a"), TextPart(text="b")]),
            Message(role="system", content=[TextPart(text="x"), TextPart(text="y")]),
        ],
    )
    assert body_of(request)["messages"] == [
        {"role": "user", "content": "cached prefix"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "system", "content": "xy"},
    ]


def test_non_leading_system_message_is_kept_in_place() -> None:
    request = Request(
        model="m",
        messages=[Message.user("a"), Message.system("late"), Message.user("b")],
    )
    roles = [m["role"] for m in body_of(request)["messages"]]
    assert roles == ["user", "system", "user"]


def test_image_outside_user_message_is_refused() -> None:
    request = Request(
        model="m",
        messages=[Message(role="system", content=[ImagePart(url="https://x/y.png")])],
    )
    with pytest.raises(RequestError, match="user message"):
        FAMILY.build_request(request, openai_endpoint(), stream=False)


def test_images_a_tool_returned_follow_the_turns_results_in_a_user_message() -> None:
    # Chat Completions takes text only in a tool message; the images go right
    # after the turn's last tool message (not between two, which OpenAI refuses).
    png = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    calls = [
        ToolCall(id="call_1", name="shot", arguments="{}"),
        ToolCall(id="call_2", name="clock", arguments="{}"),
    ]
    request = Request(
        model="m",
        messages=[
            Message.user("look"),
            Message.assistant(tool_calls=calls),
            Message.tool("call_1", "shot", [TextPart(text="the page"), png]),
            Message.tool("call_2", "clock", "12:00"),
            Message.user("and now?"),
        ],
    )
    messages = body_of(request)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user", "user"]
    assert messages[2]["content"] == (
        "the page\n[the image(s) this tool returned follow in the next user message]"
    )
    assert messages[3]["content"] == "12:00"
    assert messages[4]["content"] == [
        {"type": "text", "text": "Image(s) returned by tool shot (call call_1):"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    assert messages[5]["content"] == "and now?"
    # At the end of the conversation (the usual case in a tool loop) too.
    request = Request(model="m", messages=request.messages[:3])
    assert body_of(request)["messages"][-1]["role"] == "user"


def test_tool_result_without_its_call_is_refused() -> None:
    request = Request(
        model="m", messages=[Message.user("a"), Message.tool("call_x", "t", "result")]
    )
    with pytest.raises(RequestError, match="call_x"):
        FAMILY.build_request(request, openai_endpoint(), stream=False)


def test_endpoint_headers_query_and_custom_auth_header() -> None:
    endpoint = openai_endpoint(
        base_url="https://gateway.example.com/openai/v1/",
        auth_header="X-Api-Key",
        headers={"HTTP-Referer": "https://app.example", "Content-Type": "application/json"},
        query={"tenant": "t1"},
    )
    built = FAMILY.build_request(
        Request(model="m", messages=[Message.user("x")]), endpoint, stream=False
    )
    assert built.url == "https://gateway.example.com/openai/v1/chat/completions"
    assert built.headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "http-referer": "https://app.example",
    }
    assert built.params == {"tenant": "t1"}
    assert built.secret_headers == {"x-api-key": Secret(KEY)}
    assert built.wire_headers()["x-api-key"] == KEY


def test_key_in_plain_headers_is_refused() -> None:
    endpoint = openai_endpoint(headers={"Authorization": f"Bearer {KEY}"})
    with pytest.raises(RequestError, match="api_key") as info:
        FAMILY.build_request(
            Request(model="m", messages=[Message.user("x")]), endpoint, stream=False
        )
    assert KEY not in str(info.value)


def test_no_key_no_auth_header() -> None:
    endpoint = Endpoint(provider="ollama", base_url="http://localhost:11434/v1")
    built = FAMILY.build_request(
        Request(model="llama3", messages=[Message.user("x")]), endpoint, stream=True
    )
    assert built.secret_headers == {}
    assert "authorization" not in built.wire_headers()


@pytest.mark.parametrize("stream", [False, True])
def test_key_never_in_headers_url_or_repr(stream: bool) -> None:
    request = Request(model="gpt-4o", messages=[Message.user("x")])
    for endpoint in (
        openai_endpoint(),
        openai_endpoint(
            base_url="https://res.openai.azure.com",
            quirks=Quirks(azure=True),
            query={"api-version": "2024-10-21"},
        ),
    ):
        built = FAMILY.build_request(request, endpoint, stream=stream)
        assert KEY not in built.url
        assert all(KEY not in v for v in built.headers.values())
        assert KEY not in repr(built)
        assert KEY not in str(built.params)
        assert KEY not in built.body.decode()
        assert KEY not in repr(endpoint)
        assert any(KEY in v for v in built.wire_headers().values())


def test_azure_url_headers_and_query() -> None:
    endpoint = Endpoint(
        provider="azure",
        base_url="https://myres.openai.azure.com/",
        api_key=Secret(KEY),
        query={"api-version": "2024-10-21"},
        quirks=Quirks(max_tokens_field="max_completion_tokens", azure=True),
    )
    request = Request(model="gpt-4o prod/eu", messages=[Message.user("x")], max_tokens=5)
    built = FAMILY.build_request(request, endpoint, stream=True)
    assert (
        built.url
        == "https://myres.openai.azure.com/openai/deployments/gpt-4o%20prod%2Feu/chat/completions"
    )
    assert built.params == {"api-version": "2024-10-21"}
    assert built.secret_headers == {"api-key": Secret(KEY)}
    assert "authorization" not in built.wire_headers()
    body = json.loads(built.body)
    assert body["max_completion_tokens"] == 5
    assert body["stream_options"] == {"include_usage": True}


def test_azure_with_entra_token_uses_bearer() -> None:
    endpoint = Endpoint(
        provider="azure",
        base_url="https://myres.openai.azure.com",
        api_key=Secret("eyJ0eXAiOiJKV1Q"),
        auth_header="Authorization",
        query={"api-version": "2024-10-21"},
        quirks=Quirks(azure=True),
    )
    built = FAMILY.build_request(
        Request(model="d", messages=[Message.user("x")]), endpoint, stream=False
    )
    assert built.wire_headers()["authorization"] == "Bearer eyJ0eXAiOiJKV1Q"


def test_azure_without_api_version_is_refused_naming_the_fix() -> None:
    endpoint = Endpoint(
        provider="azure",
        base_url="https://myres.openai.azure.com",
        api_key=Secret(KEY),
        quirks=Quirks(azure=True),
    )
    with pytest.raises(RequestError, match="api-version"):
        FAMILY.build_request(
            Request(model="d", messages=[Message.user("x")]), endpoint, stream=False
        )


# -- recorded streams -----------------------------------------------------------


def test_stream_text_with_usage_and_done() -> None:
    events = stream_events("text_usage.sse")
    assert events == [
        Start(id="chatcmpl-BhQ3vGJ2mT8kLp0xYz7wq1eRtNc4F", model="gpt-4o-mini-2024-07-18"),
        TextDelta(text="Hello"),
        TextDelta(text="! Größe: "),
        TextDelta(text="42 🚀"),
        Usage(input_tokens=19, output_tokens=6),
        Finish(reason="stop", raw="stop"),
    ]
    response = assemble(events)
    assert response.text == "Hello! Größe: 42 🚀"
    assert response.usage.total_tokens == 25
    assert response.finish_reason == "stop"


def test_stream_usage_comes_before_finish_even_though_finish_reason_came_first() -> None:
    data = recorded("openai_chat", "text_usage.sse")
    head, _, _ = data.partition(b'"finish_reason":"stop"')
    # Up to the finish_reason chunk nothing ends the stream yet.
    decoder = FAMILY.stream_decoder()
    cut = data.index(b"\n\n", len(head)) + 2
    events = decoder.feed(data[:cut])
    assert not any(isinstance(e, Finish) for e in events)
    assert not decoder.done
    rest = decoder.feed(data[cut:])
    assert [type(e) for e in rest] == [Usage, Finish]
    assert decoder.done
    assert decoder.end() == []


def test_stream_parallel_tool_calls_in_pieces() -> None:
    events = stream_events("parallel_tools.sse")
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert starts == [
        ToolCallStart(index=0, id="call_Qd4xWm2hY8bT1sLk0aPz9cVn", name="get_weather"),
        ToolCallStart(index=1, id="call_Ht7pGv3nR0kX5wJq2mLs8bYe", name="get_time"),
    ]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 0, 0, 1, 1]
    dones = [e for e in events if isinstance(e, ToolCallDone)]
    assert dones == [
        ToolCallDone(
            index=0,
            id="call_Qd4xWm2hY8bT1sLk0aPz9cVn",
            name="get_weather",
            arguments='{"location": "Paris, France"}',
        ),
        ToolCallDone(
            index=1,
            id="call_Ht7pGv3nR0kX5wJq2mLs8bYe",
            name="get_time",
            arguments='{"tz": "Europe/Paris"}',
        ),
    ]
    for done in dones:
        pieces = "".join(d.arguments for d in deltas if d.index == done.index)
        assert pieces == done.arguments
    assert events[-2:] == [
        Usage(input_tokens=82, output_tokens=47),
        Finish(reason="tool_calls", raw="tool_calls"),
    ]
    response = assemble(events)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_Qd4xWm2hY8bT1sLk0aPz9cVn", "get_weather", {"location": "Paris, France"}),
        ("call_Ht7pGv3nR0kX5wJq2mLs8bYe", "get_time", {"tz": "Europe/Paris"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""


def test_stream_refusal() -> None:
    events = stream_events("refusal.sse")
    assert [e for e in events if isinstance(e, RefusalDelta)] == [
        RefusalDelta(text="I'm sorry, "),
        RefusalDelta(text="I can't assist with that."),
    ]
    response = assemble(events)
    assert response.refusal == "I'm sorry, I can't assist with that."
    assert response.text == ""


@pytest.mark.parametrize(
    ("name", "reason", "text"),
    [("length.sse", "length", "Once upon a"), ("content_filter.sse", "content_filter", "Here is")],
)
def test_stream_length_and_content_filter(name: str, reason: str, text: str) -> None:
    events = stream_events(name)
    assert events[-1] == Finish(reason=reason, raw=reason)  # type: ignore[arg-type]
    response = assemble(events)
    assert response.finish_reason == reason
    assert response.text == text


def test_stream_cached_and_reasoning_tokens() -> None:
    events = stream_events("cached_reasoning_usage.sse")
    usage = assemble(events).usage
    assert usage == Usage(
        input_tokens=2048, output_tokens=211, cache_read_tokens=1920, reasoning_tokens=192
    )


def test_stream_deepseek_reasoning_and_cache_hits() -> None:
    events = stream_events("deepseek_reasoning.sse")
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == [
        "9.11 has more digits, ",
        "but 0.9 > 0.11.",
    ]
    response = assemble(events)
    assert response.text == "9.9 is greater."
    content = response.message.content
    assert isinstance(content, list)
    assert content[0] == ReasoningPart(text="9.11 has more digits, but 0.9 > 0.11.")
    assert response.usage == Usage(
        input_tokens=150, output_tokens=40, cache_read_tokens=128, reasoning_tokens=28
    )
    assert response.model == "deepseek-reasoner"


def test_stream_openrouter_reasoning_field_and_keepalive_comments() -> None:
    events = stream_events("openrouter_reasoning.sse")
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["The user", " greets me."]
    response = assemble(events)
    assert response.text == "Hi there!"
    assert response.usage.reasoning_tokens == 8
    assert events[-1] == Finish(reason="stop", raw="stop")


def test_stream_mistral_tool_calls_without_index() -> None:
    events = stream_events("mistral_tools.sse")
    assert [e for e in events if isinstance(e, (ToolCallStart, ToolCallDone))] == [
        ToolCallStart(index=0, id="HkYEGXLbW", name="get_weather"),
        ToolCallStart(index=1, id="TjU2Ph0Rp", name="get_weather"),
        ToolCallDone(index=0, id="HkYEGXLbW", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCallDone(index=1, id="TjU2Ph0Rp", name="get_weather", arguments='{"city": "Lyon"}'),
    ]
    response = assemble(events)
    assert [c.arguments for c in response.tool_calls] == ['{"city": "Paris"}', '{"city": "Lyon"}']
    assert response.usage == Usage(input_tokens=96, output_tokens=40)
    assert response.finish_reason == "tool_calls"


def test_stream_perplexity_citations_once_and_no_done() -> None:
    events = stream_events("perplexity_citations.sse")
    citations = [e for e in events if isinstance(e, Citations)]
    assert citations == [
        Citations(
            urls=[
                "https://en.wikipedia.org/wiki/Mount_Everest",
                "https://www.britannica.com/place/Mount-Everest",
            ]
        )
    ]
    # Usage is repeated in every chunk; only changes are emitted, the last one wins.
    assert [e for e in events if isinstance(e, Usage)] == [
        Usage(input_tokens=7, output_tokens=1),
        Usage(input_tokens=7, output_tokens=9),
    ]
    assert events[-1] == Finish(reason="stop", raw="stop")  # from end(): no [DONE]
    response = assemble(events)
    assert response.text == "Mount Everest is 8,849 m tall [1][2]."
    assert response.citations == citations[0].urls


def test_stream_error_object_midstream() -> None:
    events = stream_events("error_midstream.sse")
    assert events[-1] == ErrorEvent(
        kind="ServerError",
        message="The server had an error while processing your request. Sorry about that!",
        provider_type="server_error",
        retryable=True,
    )
    assembler = ResponseAssembler()
    for event in events:
        assembler.feed(event)
    assert assembler.error == events[-1]
    with pytest.raises(StreamProtocolError, match="ServerError"):
        assembler.result()
    error = error_from_event(events[-1], provider="openai", model="gpt-4o-mini")
    assert isinstance(error, ServerError)
    assert error.retryable


def test_stream_vllm_error_with_numeric_code() -> None:
    events = stream_events("vllm_error.sse")
    event = events[-1]
    assert isinstance(event, ErrorEvent)
    assert event.kind == "BadRequestError"
    assert not event.retryable
    error = error_from_event(event, provider="vllm", model="Qwen/Qwen3-8B")
    assert isinstance(error, ContextLengthExceededError)


# -- decoder edge cases -----------------------------------------------------------


def chunk(**fields: Any) -> bytes:
    base: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    base.update(fields)
    return b"data: " + json.dumps(base).encode() + b"\n\n"


def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish}


DONE = b"data: [DONE]\n\n"


def test_invalid_json_chunk_raises_stream_decode_error() -> None:
    decoder = FAMILY.stream_decoder()
    with pytest.raises(StreamDecodeError, match="not a valid completion chunk"):
        decoder.feed(b'data: {"id": "x", "choices": [\n\n')


def test_wrongly_typed_chunk_raises_stream_decode_error() -> None:
    decoder = FAMILY.stream_decoder()
    with pytest.raises(StreamDecodeError):
        decoder.feed(b'data: {"choices": "nope"}\n\n')


def test_stream_cut_before_finish_is_a_protocol_error() -> None:
    decoder = FAMILY.stream_decoder()
    decoder.feed(chunk(choices=[choice({"content": "Hel"})]))
    with pytest.raises(StreamProtocolError, match="ended before"):
        decoder.end()


def test_done_before_finish_reason_is_a_protocol_error() -> None:
    decoder = FAMILY.stream_decoder()
    decoder.feed(chunk(choices=[choice({"content": "Hel"})]))
    with pytest.raises(StreamProtocolError, match="finish_reason"):
        decoder.feed(DONE)


def test_nothing_after_done_or_error() -> None:
    data = chunk(choices=[choice({"content": "a"}, "stop")]) + DONE
    data += chunk(choices=[choice({"content": "late"})]) + b"data: not json\n\n"
    events = decode_chunks("openai", [data])
    assert events[-1] == Finish(reason="stop", raw="stop")
    assert TextDelta(text="late") not in events

    data = b'data: {"error": {"message": "overloaded", "type": "overloaded_error"}}\n\n'
    data += chunk(choices=[choice({"content": "late"})]) + DONE
    events = decode_chunks("openai", [data])
    assert events == [
        ErrorEvent(
            kind="OverloadedError",
            message="overloaded",
            provider_type="overloaded_error",
            retryable=True,
        )
    ]


def test_error_code_is_preferred_over_type() -> None:
    data = (
        b'data: {"error": {"message": "Rate limit reached for gpt-4o", '
        b'"type": "requests", "code": "rate_limit_exceeded", "param": null}}\n\n'
    )
    (event,) = decode_chunks("openai", [data])
    assert isinstance(event, ErrorEvent)
    assert event.kind == "RateLimitError"
    assert event.provider_type == "rate_limit_exceeded"
    assert event.retryable


def test_top_level_error_object_and_plain_string_error() -> None:
    data = (
        b'data: {"object": "error", "message": "engine dead", '
        b'"type": "InternalServerError", "code": 500}\n\n'
    )
    (event,) = decode_chunks("openai", [data])
    assert isinstance(event, ErrorEvent)
    assert (event.kind, event.message, event.retryable) == ("ServerError", "engine dead", True)

    (event,) = decode_chunks("openai", [b'data: {"error": "upstream timed out"}\n\n'])
    assert isinstance(event, ErrorEvent)
    assert event.message == "upstream timed out"


def test_error_named_event_with_plain_text() -> None:
    (event,) = decode_chunks("openai", [b"event: error\ndata: upstream connect error\n\n"])
    assert isinstance(event, ErrorEvent)
    assert event.message == "upstream connect error"


def test_same_index_with_a_new_id_is_a_new_call() -> None:
    data = chunk(
        choices=[
            choice(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}
                    ]
                }
            )
        ]
    )
    data += chunk(
        choices=[
            choice(
                {
                    "tool_calls": [
                        {"index": 0, "id": "b", "function": {"name": "g", "arguments": '{"x":1}'}}
                    ]
                },
                "tool_calls",
            )
        ]
    )
    events = decode_chunks("openai", [data + DONE])
    calls = assemble(events).tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [("a", "f", "{}"), ("b", "g", '{"x":1}')]


def test_tool_call_without_id_gets_one_and_arguments_before_name_are_kept() -> None:
    data = chunk(
        choices=[choice({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]})]
    )
    data += chunk(
        choices=[
            choice({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]})
        ]
    )
    data += chunk(choices=[choice({}, "tool_calls")])
    events = decode_chunks("openai", [data + DONE])
    assert events[1:4] == [
        ToolCallStart(index=0, id="call_0", name="f"),
        ToolCallDelta(index=0, arguments='{"a":1}'),
        ToolCallDone(index=0, id="call_0", name="f", arguments='{"a":1}'),
    ]


def test_tool_call_arguments_as_an_object_and_stop_reason_with_calls() -> None:
    data = chunk(
        choices=[
            choice(
                {
                    "tool_calls": [
                        {"id": "t1", "function": {"name": "f", "arguments": {"city": "Oslo"}}}
                    ]
                },
                "stop",
            )
        ]
    )
    events = decode_chunks("openai", [data + DONE])
    assert ToolCallDone(index=0, id="t1", name="f", arguments='{"city":"Oslo"}') in events
    assert events[-1] == Finish(reason="tool_calls", raw="stop")


def test_tool_call_that_never_gets_a_name_is_a_protocol_error() -> None:
    data = chunk(
        choices=[
            choice({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, "tool_calls")
        ]
    )
    with pytest.raises(StreamProtocolError, match="name"):
        decode_chunks("openai", [data + DONE])


def test_groq_x_groq_usage_and_other_choices_ignored() -> None:
    data = chunk(choices=[choice({"content": "a"}), {"index": 1, "delta": {"content": "b"}}])
    data += chunk(
        choices=[choice({}, "stop")],
        x_groq={"id": "req_1", "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    )
    events = decode_chunks("openai", [data + DONE])
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(text="a")]
    assert Usage(input_tokens=3, output_tokens=1) in events


def test_crlf_line_endings() -> None:
    data = recorded("openai_chat", "text_usage.sse").replace(b"\n", b"\r\n")
    assert decode_every_way("openai", data) == stream_events("text_usage.sse")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("function_call", "tool_calls"),
        ("eos", "stop"),
        ("model_length", "length"),
        ("insufficient_system_resource", "other"),
        (None, "other"),
    ],
)
def test_finish_reason_mapping(raw: str | None, reason: str) -> None:
    assert map_finish_reason(raw) == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    decoder = FAMILY.stream_decoder()
    try:
        decoder.feed(data)
        decoder.end()
    except StreamDecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"data: ", b"{", b"}", b"[DONE]", b"\n", b'"choices"', b":", b"[]", b"null"]
        ),
        max_size=40,
    )
)
def test_sse_shaped_garbage_raises_only_decode_errors(pieces: list[bytes]) -> None:
    decoder = FAMILY.stream_decoder()
    try:
        decoder.feed(b"".join(pieces))
        decoder.end()
    except StreamDecodeError:
        pass


# -- non-streaming responses -----------------------------------------------------


def completion(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1749820000,
        "model": "gpt-4o-2024-08-06",
        "choices": [],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 10,
            "total_tokens": 60,
            "prompt_tokens_details": {"cached_tokens": 32, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_x",
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_decode_response_text() -> None:
    body = completion(
        choices=[
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello!",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ]
    )
    response = FAMILY.decode_response(body)
    assert response.id == "chatcmpl-123"
    assert response.model == "gpt-4o-2024-08-06"
    assert response.text == "Hello!"
    assert response.message.content == "Hello!"
    assert response.finish_reason == "stop"
    assert response.raw_finish_reason == "stop"
    assert response.refusal is None
    assert response.usage == Usage(
        input_tokens=50, output_tokens=10, cache_read_tokens=32, reasoning_tokens=4
    )


def test_decode_response_tool_calls() -> None:
    body = completion(
        choices=[
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    )
    response = FAMILY.decode_response(body)
    assert response.tool_calls == [
        ToolCall(id="call_a", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="call_b", name="get_time", arguments="{}"),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""


def test_decode_response_refusal_reasoning_and_citations() -> None:
    body = completion(
        model="deepseek-reasoner",
        usage={"prompt_tokens": 20, "completion_tokens": 9, "prompt_cache_hit_tokens": 16},
        citations=["https://a.example", "https://b.example"],
        choices=[
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "42",
                    "reasoning_content": "6 times 7",
                    "refusal": "no",
                },
                "finish_reason": "length",
            }
        ],
    )
    response = FAMILY.decode_response(body)
    assert response.message.content == [ReasoningPart(text="6 times 7"), TextPart(text="42")]
    assert response.text == "42"
    assert response.refusal == "no"
    assert response.citations == ["https://a.example", "https://b.example"]
    assert response.finish_reason == "length"
    assert response.usage == Usage(input_tokens=20, output_tokens=9, cache_read_tokens=16)


def test_decode_response_refuses_what_is_not_a_completion() -> None:
    with pytest.raises(StreamDecodeError, match=r"not a chat\.completion"):
        FAMILY.decode_response(b"<html>502</html>")
    with pytest.raises(StreamDecodeError, match="no choices"):
        FAMILY.decode_response(completion())


@pytest.mark.parametrize(
    ("body", "cls", "provider_type"),
    [
        ({"error": {"message": "m", "type": "server_error"}}, ServerError, "server_error"),
        (
            {"error": {"message": "m", "type": "requests", "code": "rate_limit_exceeded"}},
            RateLimitError,
            "rate_limit_exceeded",
        ),
        (
            {"error": {"message": "m", "type": "invalid_request_error"}},
            BadRequestError,
            "invalid_request_error",
        ),
        (
            {"error": {"message": "m", "code": "context_length_exceeded"}},
            ContextLengthExceededError,
            "context_length_exceeded",
        ),
        ({"error": "m"}, ServerError, None),
        # vLLM's shape
        (
            {"object": "error", "message": "m", "type": "BadRequestError", "code": 400},
            BadRequestError,
            "BadRequestError",
        ),
    ],
)
def test_decode_response_error_object_is_the_typed_error(
    body: dict[str, Any], cls: type, provider_type: str | None
) -> None:
    """A 200 whose body is an error object raises the typed error the same object
    raises inside a stream, so a retry policy treats both alike."""
    with pytest.raises(cls, match="m") as info:
        FAMILY.decode_response(json.dumps(body).encode(), provider="groq", model="llama")
    assert type(info.value) is cls
    assert info.value.provider_type == provider_type
    assert "error object in a 200 response from groq (llama)" in str(info.value)


# -- error responses ---------------------------------------------------------------


def error_body(
    message: str, etype: str | None, code: str | None, param: str | None = None
) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": message, "type": etype, "param": param, "code": code}}
    )


def map_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return FAMILY.map_error(
        status, headers or {}, body, provider="openai", model="gpt-4o-mini", now=1_700_000_000.0
    )


def test_map_error_context_length() -> None:
    body = error_body(
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 130000 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )
    error = map_error(400, body, {"x-request-id": "req_abc"})
    assert isinstance(error, ContextLengthExceededError)
    assert error.status == 400
    assert error.provider_type == "invalid_request_error"
    assert error.request_id == "req_abc"
    assert not error.retryable
    assert "maximum context length" in str(error)
    assert "openai (gpt-4o-mini)" in str(error)


def test_map_error_401_never_shows_the_key() -> None:
    body = error_body(
        f"Incorrect API key provided: {KEY}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )
    error = map_error(401, body)
    assert isinstance(error, AuthenticationError)
    assert not error.retryable
    assert KEY not in str(error)
    assert "Incorrect API key provided" in str(error)


def test_map_error_404_model_not_found() -> None:
    body = error_body(
        "The model `gpt-5-turbo` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )
    error = map_error(404, body)
    assert isinstance(error, NotFoundError)
    assert "gpt-5-turbo" in error.body


def test_map_error_429_with_retry_after() -> None:
    body = error_body(
        "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): "
        "Limit 200000, Used 199000, Requested 2000.",
        "tokens",
        "rate_limit_exceeded",
    )
    error = map_error(
        429,
        body,
        {
            "retry-after": "20",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "6m0s",
        },
    )
    assert isinstance(error, RateLimitError)
    assert error.retryable
    assert error.retry_after == 20.0


def test_map_error_429_falls_back_to_the_exhausted_window_reset() -> None:
    body = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    error = map_error(
        429,
        body,
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1.5s",
            "x-ratelimit-remaining-tokens": "150000",
            "x-ratelimit-reset-tokens": "6m0s",
        },
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 1.5


def test_map_error_429_without_any_hint() -> None:
    error = map_error(429, error_body("slow down", None, None))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def test_map_error_500_and_503() -> None:
    body = error_body("The server had an error processing your request.", "server_error", None)
    error = map_error(500, body)
    assert isinstance(error, ServerError)
    assert error.retryable
    error = map_error(503, error_body("The engine is currently overloaded", None, None))
    assert isinstance(error, OverloadedError)
    assert error.retryable
    # With OpenAI's type "server_error" base.classify_error picks ServerError; either
    # way the call is retried.
    error = map_error(503, error_body("The engine is currently overloaded", "server_error", None))
    assert isinstance(error, (OverloadedError, ServerError))
    assert error.retryable


def test_map_error_html_body_gives_a_short_excerpt() -> None:
    html = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
        b"Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        + b"<!-- pad -->" * 200
        + b"</body></html>"
    )
    error = map_error(502, html)
    assert isinstance(error, ServerError)
    assert error.body == "502 Bad Gateway"
    plain = b"upstream request timeout " * 40
    error = map_error(504, plain)
    assert isinstance(error, APITimeoutError)
    assert len(error.body) <= 210
    error = map_error(500, b"")
    assert "empty response body" in error.body


def test_map_error_mistral_and_fastapi_shapes() -> None:
    body = (
        b'{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body",'
        b'"stream_options"],"msg":"Extra inputs are not permitted",'
        b'"input":{"include_usage":true}}]},'
        b'"type":"invalid_request_error","param":null,"code":null}'
    )
    error = map_error(422, body)
    assert isinstance(error, BadRequestError)
    assert "Extra inputs are not permitted" in error.body
    assert error.provider_type == "invalid_request_error"
    error = map_error(400, b'{"detail": "Not a valid model"}')
    assert isinstance(error, BadRequestError)
    assert error.body == "Not a valid model"
    error = map_error(400, b'{"error": "bad things"}')
    assert error.body == "bad things"


def test_stream_azure_prompt_filter_chunk_does_not_hide_the_response_id() -> None:
    events = stream_events("azure_filter_results.sse")
    assert events == [
        Start(id="chatcmpl-BhQEz9AzureXq", model="gpt-4o-2024-11-20"),
        TextDelta(text="Bonjour"),
        Usage(input_tokens=9, output_tokens=2),
        Finish(reason="stop", raw="stop"),
    ]
    assert assemble(events).id == "chatcmpl-BhQEz9AzureXq"
