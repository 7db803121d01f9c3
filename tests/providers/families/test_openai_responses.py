"""The OpenAI Responses family: request bodies, recorded streams, whole responses, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.assemble import assemble
from providers.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    NotFoundError,
    RateLimitError,
    RequestError,
    ServerError,
    StreamDecodeError,
    StreamProtocolError,
)
from providers.events import (
    ErrorEvent,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from providers.families import get_family
from providers.families.base import Endpoint, HttpRequest, Quirks, error_from_event
from providers.families.openai_responses import OpenAIResponses
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
from providers.schema import openai_strict
from providers.secrets import Secret
from tests.providers.streamcheck import decode_chunks, decode_every_way, recorded

FAMILY = "openai-responses"
DIR = "openai_responses"
KEY = "sk-proj-TESTKEY0123456789abcdefABCDEF"
ENDPOINT = Endpoint(provider="openai", base_url="https://api.openai.com/v1", api_key=Secret(KEY))

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
        "required": ["city"],
    },
)


def family() -> OpenAIResponses:
    fam = get_family(FAMILY)
    assert isinstance(fam, OpenAIResponses)
    return fam


def build(request: Request, endpoint: Endpoint = ENDPOINT, *, stream: bool = True) -> HttpRequest:
    return family().build_request(request, endpoint, stream=stream)


def body(request: Request, endpoint: Endpoint = ENDPOINT, *, stream: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(build(request, endpoint, stream=stream).body)
    return result


def stream_events(name: str) -> list[StreamEvent]:
    return decode_every_way(FAMILY, recorded(DIR, name))


def sse(*events: dict[str, Any], named: bool = True) -> bytes:
    """A stream of the given event payloads, with ``event:`` lines unless told not to."""
    out = []
    for seq, payload in enumerate(events):
        data = json.dumps({**payload, "sequence_number": seq}, separators=(",", ":"))
        head = f"event: {payload['type']}\n" if named else ""
        out.append(f"{head}data: {data}\n\n")
    return "".join(out).encode()


CREATED = {
    "type": "response.created",
    "response": {"id": "resp_1", "model": "gpt-test", "output": []},
}


def completed(**response: Any) -> dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {"id": "resp_1", "model": "gpt-test", "status": "completed", **response},
    }


# -- registry ----------------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    fam = get_family("openai-responses")
    assert type(fam) is OpenAIResponses
    assert fam.name == "openai-responses"
    assert fam.default_base_url == "https://api.openai.com/v1"


# -- request building ------------------------------------------------------------------------


def test_minimal_request_is_stateless_streaming_post_to_responses() -> None:
    http = build(Request(model="gpt-4.1-mini", messages=[Message.user("Hi")]))
    assert http.method == "POST"
    assert http.url == "https://api.openai.com/v1/responses"
    assert http.params == {}
    assert http.headers == {"content-type": "application/json", "accept": "text/event-stream"}
    assert json.loads(http.body) == {
        "model": "gpt-4.1-mini",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
        ],
        "store": False,
        "stream": True,
    }
    assert http.wire_headers()["authorization"] == f"Bearer {KEY}"


def test_non_streaming_request_asks_for_json_and_omits_stream() -> None:
    http = build(Request(model="gpt-4.1", messages=[Message.user("Hi")]), stream=False)
    assert http.headers["accept"] == "application/json"
    assert "stream" not in json.loads(http.body)


def test_every_option_maps_to_its_documented_field() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["answer"],
    }
    request = Request(
        model="o4-mini",
        messages=[
            Message.system("You are terse."),
            Message.system("Answer in French."),
            Message(
                role="user",
                content=[
                    TextPart(text="What is in these images?", cache=True),
                    ImagePart(url="https://example.com/cat.png", detail="low"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                ],
            ),
        ],
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="tool", name="get_weather", parallel=False),
        max_tokens=512,
        temperature=0.2,
        top_p=0.9,
        response_format=ResponseFormat(schema=schema, name="verdict"),
        reasoning_effort="high",
        metadata={"run": "r-17"},
        cache=CacheHint(key="tenant-42"),
    )
    assert body(request) == {
        "model": "o4-mini",
        "instructions": "You are terse.\n\nAnswer in French.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these images?"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "low",
                    },
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "auto",
                    },
                ],
            }
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER.parameters,
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "max_output_tokens": 512,
        "temperature": 0.2,
        "top_p": 0.9,
        "text": {
            "format": {
                "type": "json_schema",
                "name": "verdict",
                "schema": openai_strict(schema),
                "strict": True,
            }
        },
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "metadata": {"run": "r-17"},
        "prompt_cache_key": "tenant-42",
        "store": False,
        "stream": True,
    }


def test_strict_tool_parameters_are_rewritten_and_strict_is_always_sent() -> None:
    strict = ToolSpec(name="lookup", parameters=WEATHER.parameters, strict=True)
    tools = body(Request(model="gpt-4.1", messages=[Message.user("x")], tools=[WEATHER, strict]))[
        "tools"
    ]
    # Responses tools are strict by default, so a non-strict tool must say strict: false.
    assert tools[0]["strict"] is False
    assert tools[0]["parameters"] == WEATHER.parameters
    assert tools[1] == {
        "type": "function",
        "name": "lookup",
        "parameters": openai_strict(WEATHER.parameters),
        "strict": True,
    }
    # What strict mode needs: a closed object whose properties are all required.
    assert tools[1]["parameters"]["additionalProperties"] is False
    assert sorted(tools[1]["parameters"]["required"]) == ["city", "units"]


def test_vendor_without_strict_support_gets_neither_strict_nor_a_rewrite() -> None:
    strict = ToolSpec(name="lookup", parameters=WEATHER.parameters, strict=True)
    endpoint = Endpoint(
        provider="vllm", base_url="http://localhost:8000/v1", quirks=Quirks(strict_tools=False)
    )
    tools = body(Request(model="m", messages=[Message.user("x")], tools=[strict]), endpoint)[
        "tools"
    ]
    assert tools == [{"type": "function", "name": "lookup", "parameters": WEATHER.parameters}]


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_tool_choice_modes(mode: str) -> None:
    choice = ToolChoice(mode=mode)  # type: ignore[arg-type]
    sent = body(
        Request(model="m", messages=[Message.user("x")], tools=[WEATHER], tool_choice=choice)
    )
    assert sent["tool_choice"] == mode
    assert "parallel_tool_calls" not in sent


def test_parallel_tool_calls_follows_tool_choice() -> None:
    choice = ToolChoice(parallel=True)
    sent = body(
        Request(model="m", messages=[Message.user("x")], tools=[WEATHER], tool_choice=choice)
    )
    assert sent["parallel_tool_calls"] is True


def test_later_system_messages_become_developer_messages() -> None:
    request = Request(
        model="m",
        messages=[
            Message.system("Be brief."),
            Message.user("Hi"),
            Message.assistant("Hello."),
            Message.system("From now on, answer in German."),
            Message.user("Bye"),
        ],
    )
    sent = body(request)
    assert sent["instructions"] == "Be brief."
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
        },
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "From now on, answer in German."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Bye"}]},
    ]


def test_tool_loop_round_trip_replays_reasoning_calls_and_results() -> None:
    """A streamed turn (encrypted reasoning + a function call) goes back as input items."""
    turn = assemble(stream_events("reasoning_tool_call.sse"))
    call = turn.tool_calls[0]
    request = Request(
        model="gpt-5-mini",
        messages=[
            Message.system("Use tools."),
            Message.user("Weather in Oslo?"),
            turn.message,
            Message.tool(call.id, call.name, '{"temp_c": -3}'),
        ],
        tools=[WEATHER],
        reasoning_effort="low",
    )
    sent = body(request)
    assert sent["instructions"] == "Use tools."
    assert sent["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Weather in Oslo?"}],
        },
        {
            "type": "reasoning",
            "id": "rs_68af43d2aa288193a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
            "summary": [{"type": "summary_text", "text": "Need the weather tool."}],
            "encrypted_content": "gAAAAABorzr0ZW5jcnlwdGVkLXJlYXNvbmluZy10d28=",
        },
        {
            "type": "function_call",
            "call_id": "call_Lr8vN2xQ5kT1wZ7cB3mJ9pD6",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {
            "type": "function_call_output",
            "call_id": "call_Lr8vN2xQ5kT1wZ7cB3mJ9pD6",
            "output": '{"temp_c": -3}',
        },
    ]
    assert sent["include"] == ["reasoning.encrypted_content"]


def test_assistant_turn_order_is_reasoning_then_text_then_calls() -> None:
    message = Message(
        role="assistant",
        content=[
            TextPart(text="Checking."),
            ReasoningPart(text="think", id="rs_1", redacted="enc1"),
        ],
        tool_calls=[ToolCall(id="call_a", name="get_weather", arguments='{"city":"Rome"}')],
    )
    items = body(Request(model="m", messages=[Message.user("q"), message]))["input"][1:]
    assert [item["type"] for item in items] == ["reasoning", "message", "function_call"]


def test_reasoning_without_encrypted_content_is_only_replayed_when_stored() -> None:
    message = Message(
        role="assistant",
        content=[ReasoningPart(text="t", id="rs_1"), ReasoningPart(text="no id", redacted="e")],
        tool_calls=[ToolCall(id="call_a", name="get_weather")],
    )
    request = Request(model="m", messages=[Message.user("q"), message])
    # Stateless: a bare id refers to nothing the API kept, and a part without an id
    # cannot be an input item; both are left out.
    assert [i["type"] for i in body(request)["input"]] == ["message", "function_call"]
    stored = Request(model="m", messages=[Message.user("q"), message], extra={"store": True})
    sent = body(stored)
    assert sent["store"] is True
    assert sent["input"][1] == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "t"}],
    }


def test_reasoning_with_nothing_after_it_is_dropped() -> None:
    message = Message(role="assistant", content=[ReasoningPart(text="t", id="rs_1", redacted="e")])
    sent = body(Request(model="m", messages=[Message.user("q"), message, Message.user("again")]))
    assert [i["role"] for i in sent["input"]] == ["user", "user"]


def test_tool_result_with_an_image_is_a_content_list() -> None:
    result = Message(
        role="tool",
        tool_call_id="call_a",
        name="screenshot",
        content=[TextPart(text="here"), ImagePart(url="https://example.com/s.png")],
    )
    call = Message.assistant(tool_calls=[ToolCall(id="call_a", name="screenshot")])
    sent = body(Request(model="m", messages=[Message.user("q"), call, result]))
    assert sent["input"][-1] == {
        "type": "function_call_output",
        "call_id": "call_a",
        "output": [
            {"type": "input_text", "text": "here"},
            {"type": "input_image", "image_url": "https://example.com/s.png", "detail": "auto"},
        ],
    }


def test_extra_is_merged_last_and_overrides() -> None:
    request = Request(
        model="m",
        messages=[Message.user("x")],
        reasoning_effort="low",
        extra={"reasoning": {"effort": "low"}, "truncation": "auto"},
    )
    sent = body(request)
    assert sent["reasoning"] == {"effort": "low"}
    assert sent["truncation"] == "auto"


def test_stop_sequences_are_refused_with_the_fix() -> None:
    with pytest.raises(RequestError, match="stop") as info:
        build(Request(model="m", messages=[Message.user("x")], stop=["\n"]))
    assert "'openai'" in str(info.value)


def test_max_tokens_below_the_api_minimum_is_refused() -> None:
    with pytest.raises(RequestError, match="16"):
        build(Request(model="m", messages=[Message.user("x")], max_tokens=8))
    assert (
        body(Request(model="m", messages=[Message.user("x")], max_tokens=16))["max_output_tokens"]
        == 16
    )


def test_images_where_the_api_takes_none_are_refused() -> None:
    image = ImagePart(url="https://example.com/a.png")
    with pytest.raises(RequestError, match="user message"):
        build(
            Request(
                model="m", messages=[Message(role="system", content=[image]), Message.user("x")]
            )
        )
    with pytest.raises(RequestError, match="user message"):
        build(
            Request(
                model="m", messages=[Message.user("x"), Message(role="assistant", content=[image])]
            )
        )


def test_endpoint_headers_query_and_custom_auth_header() -> None:
    endpoint = Endpoint(
        provider="gateway",
        base_url="https://gw.example.com/openai/v1/",
        api_key=Secret(KEY),
        auth_header="x-api-key",
        headers={"x-team": "research"},
        query={"tenant": "t1"},
    )
    http = build(Request(model="m", messages=[Message.user("x")]), endpoint)
    assert http.url == "https://gw.example.com/openai/v1/responses"
    assert http.params == {"tenant": "t1"}
    assert http.headers["x-team"] == "research"
    assert http.secret_headers == {"x-api-key": Secret(KEY)}
    assert http.wire_headers()["x-api-key"] == KEY


def test_azure_uses_the_v1_route_and_api_key_header() -> None:
    endpoint = Endpoint(
        provider="azure",
        base_url="https://myres.openai.azure.com",
        api_key=Secret(KEY),
        quirks=Quirks(azure=True),
    )
    http = build(Request(model="my-deployment", messages=[Message.user("x")]), endpoint)
    assert http.url == "https://myres.openai.azure.com/openai/v1/responses"
    assert http.wire_headers()["api-key"] == KEY
    assert json.loads(http.body)["model"] == "my-deployment"


def test_no_key_means_no_auth_header() -> None:
    endpoint = Endpoint(provider="local", base_url="http://127.0.0.1:8080/v1")
    http = build(Request(model="m", messages=[Message.user("x")]), endpoint)
    assert http.secret_headers == {}


def test_the_key_never_shows_outside_secret_headers() -> None:
    http = build(Request(model="m", messages=[Message.user("x")]))
    assert KEY not in http.url
    assert all(KEY not in value for value in http.headers.values())
    assert KEY.encode() not in http.body
    assert KEY not in repr(http)
    assert KEY not in str(http.secret_headers)
    assert KEY in http.wire_headers()["authorization"]


# -- recorded streams ---------------------------------------------------------------------------


def terminal(events: list[StreamEvent]) -> list[StreamEvent]:
    return [e for e in events if isinstance(e, (Finish, ErrorEvent))]


def test_text_stream() -> None:
    events = stream_events("text.sse")
    assert events == [
        Start(
            id="resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b",
            model="gpt-4.1-mini-2025-04-14",
        ),
        TextDelta(text="Bonjour"),
        TextDelta(text=" !"),
        TextDelta(text=" Ça"),
        TextDelta(text=" va"),
        TextDelta(text=" très"),
        TextDelta(text=" bien"),
        TextDelta(text=" 🙂"),
        Usage(input_tokens=1534, output_tokens=9, cache_read_tokens=1280),
        Finish(reason="stop", raw="completed"),
    ]
    response = assemble(events)
    assert response.text == "Bonjour ! Ça va très bien 🙂"
    assert response.finish_reason == "stop"


def test_parallel_function_calls_stream() -> None:
    events = stream_events("parallel_tool_calls.sse")
    paris, tokyo = "call_9fHLx2VAbQw8LzJr6Yt0mN1c", "call_Qm3TzK7pWcX1vB5nR8sD2hJ4"
    assert events[1:] == [
        ToolCallStart(index=0, id=paris, name="get_weather"),
        ToolCallDelta(index=0, arguments='{"'),
        ToolCallDelta(index=0, arguments="city"),
        ToolCallDelta(index=0, arguments='":"'),
        ToolCallDelta(index=0, arguments="Paris"),
        ToolCallDelta(index=0, arguments='"}'),
        ToolCallDone(index=0, id=paris, name="get_weather", arguments='{"city":"Paris"}'),
        ToolCallStart(index=1, id=tokyo, name="get_weather"),
        ToolCallDelta(index=1, arguments='{"city":'),
        ToolCallDelta(index=1, arguments='"Tōkyō"'),
        ToolCallDelta(index=1, arguments="}"),
        ToolCallDone(index=1, id=tokyo, name="get_weather", arguments='{"city":"Tōkyō"}'),
        Usage(input_tokens=312, output_tokens=41),
        Finish(reason="tool_calls", raw="completed"),
    ]
    response = assemble(events)
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        (paris, '{"city":"Paris"}'),
        (tokyo, '{"city":"Tōkyō"}'),
    ]


def test_interleaved_argument_deltas_are_matched_by_item_and_output_index() -> None:
    def added(i: int) -> dict[str, Any]:
        item = {
            "id": f"fc_{i}",
            "type": "function_call",
            "call_id": f"call_{i}",
            "name": "f",
            "arguments": "",
            "status": "in_progress",
        }
        return {"type": "response.output_item.added", "output_index": i + 1, "item": item}

    data = sse(
        CREATED,
        added(0),
        added(1),
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '{"b":',
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_0",
            "output_index": 1,
            "delta": '{"a":',
        },
        # No item_id: matched by output_index.
        {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "2}"},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_0",
            "output_index": 1,
            "delta": "1}",
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 2,
            "arguments": '{"b":2}',
        },
        # Both the arguments.done and the item.done of a call: one ToolCallDone.
        {
            "type": "response.output_item.done",
            "output_index": 2,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "f",
                "arguments": '{"b":2}',
                "status": "completed",
            },
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "id": "fc_0",
                "type": "function_call",
                "call_id": "call_0",
                "name": "f",
                "arguments": '{"a":1}',
                "status": "completed",
            },
        },
        completed(),
    )
    events = decode_every_way(FAMILY, data)
    dones = [e for e in events if isinstance(e, ToolCallDone)]
    assert dones == [
        ToolCallDone(index=1, id="call_1", name="f", arguments='{"b":2}'),
        ToolCallDone(index=0, id="call_0", name="f", arguments='{"a":1}'),
    ]
    assert [c.arguments for c in assemble(events).tool_calls] == ['{"a":1}', '{"b":2}']


def test_reasoning_summary_and_encrypted_item_stream() -> None:
    events = stream_events("reasoning.sse")
    rs = "rs_68af42ba1d3c8190b3e1f2a4c5d6e7f8091a2b3c4d5e6f70"
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert all(e.block == 0 and e.id == rs for e in reasoning)
    assert reasoning[4].text.startswith("\n\n**Listing**")  # a new summary part
    assert reasoning[-1] == ReasoningDelta(
        text="",
        block=0,
        id=rs,
        redacted="gAAAAABorzq9mZ2V0aGluZy1lbmNyeXB0ZWQtb3BhcXVlLWJsb2I9PQ_dGhpcyBpcyBub3QgcmVhbA==",
    )
    assert events[-2:] == [
        Usage(input_tokens=2048, output_tokens=412, cache_read_tokens=1920, reasoning_tokens=384),
        Finish(reason="stop", raw="completed"),
    ]
    response = assemble(events)
    assert response.message.content == [
        ReasoningPart(
            text="**Counting primes**\n\nThe user wants primes below 20.\n\n"
            "**Listing**\n\n2, 3, 5, 7, 11, 13, 17, 19.",
            id=rs,
            redacted=reasoning[-1].redacted,
        ),
        TextPart(text="There are 8 primes below 20."),
    ]


def test_reasoning_items_are_numbered_in_output_order() -> None:
    def item(i: int, done: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"id": f"rs_{i}", "type": "reasoning", "summary": []}
        if done:
            body["encrypted_content"] = f"enc{i}"
        kind = "done" if done else "added"
        return {"type": f"response.output_item.{kind}", "output_index": i, "item": body}

    def delta(i: int, text: str) -> dict[str, Any]:
        return {
            "type": "response.reasoning_text.delta",
            "item_id": f"rs_{i}",
            "output_index": i,
            "content_index": 0,
            "delta": text,
        }

    data = sse(
        CREATED,
        item(0, False),
        delta(0, "a"),
        item(0, True),
        item(1, False),
        delta(1, "b"),
        item(1, True),
        completed(),
    )
    parts = assemble(decode_every_way(FAMILY, data)).message.content
    assert parts == [
        ReasoningPart(text="a", id="rs_0", redacted="enc0"),
        ReasoningPart(text="b", id="rs_1", redacted="enc1"),
    ]


def test_reasoning_summary_only_in_the_done_item_is_kept() -> None:
    done = {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            "id": "rs_9",
            "type": "reasoning",
            "encrypted_content": "e",
            "summary": [
                {"type": "summary_text", "text": "x"},
                {"type": "summary_text", "text": "y"},
            ],
        },
    }
    parts = assemble(decode_every_way(FAMILY, sse(CREATED, done, completed()))).message.content
    assert parts == [ReasoningPart(text="x\n\ny", id="rs_9", redacted="e")]


def test_incomplete_for_max_output_tokens_finishes_with_length() -> None:
    events = stream_events("incomplete_length.sse")
    assert events[-2:] == [
        Usage(input_tokens=22, output_tokens=16),
        Finish(reason="length", raw="max_output_tokens"),
    ]
    response = assemble(events)
    assert response.finish_reason == "length"
    assert response.text == "Once upon a time, in a land"


def test_incomplete_for_content_filter() -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {
            "id": "resp_1",
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
        },
    }
    events = decode_every_way(FAMILY, sse(CREATED, incomplete))
    assert events[-1] == Finish(reason="content_filter", raw="content_filter")


def test_incomplete_cut_inside_a_function_call_closes_it() -> None:
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": "",
        },
    }
    delta = {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 0,
        "delta": '{"a": "tru',
    }
    incomplete = {
        "type": "response.incomplete",
        "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
    }
    response = assemble(decode_every_way(FAMILY, sse(CREATED, added, delta, incomplete)))
    assert response.finish_reason == "length"
    assert response.tool_calls == [ToolCall(id="call_1", name="f", arguments='{"a": "tru')]


def test_response_failed_mid_stream_is_an_error_event() -> None:
    events = stream_events("failed.sse")
    assert [type(e) for e in events] == [Start, TextDelta, TextDelta, TextDelta, ErrorEvent]
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.provider_type, error.retryable) == (
        "ServerError",
        "server_error",
        True,
    )
    assert error.message.startswith("The model produced invalid content.")
    with pytest.raises(StreamProtocolError, match="ServerError"):
        assemble(events)
    raised = error_from_event(error, provider="openai", model="gpt-4.1")
    assert isinstance(raised, ServerError)


def test_response_failed_for_a_bad_prompt_is_not_retryable() -> None:
    failed = {
        "type": "response.failed",
        "response": {
            "status": "failed",
            "error": {"code": "invalid_prompt", "message": "Invalid prompt: flagged."},
        },
    }
    error = decode_every_way(FAMILY, sse(CREATED, failed))[-1]
    assert isinstance(error, ErrorEvent)
    assert error.kind == "BadRequestError"
    assert not error.retryable
    assert isinstance(error_from_event(error, provider="openai", model=None), BadRequestError)


def test_documented_error_event() -> None:
    events = stream_events("error_event.sse")
    assert len(events) == 2
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.provider_type, error.retryable) == (
        "RateLimitError",
        "rate_limit_exceeded",
        True,
    )
    assert error.message.startswith("Rate limit reached for gpt-4.1")
    raised = error_from_event(error, provider="openai", model="gpt-4.1")
    assert isinstance(raised, RateLimitError)


def test_nested_error_event_then_response_failed_ends_once() -> None:
    events = stream_events("error_event_nested.sse")
    assert len(terminal(events)) == 1
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.provider_type == "insufficient_quota"
    assert error.message == (
        "You exceeded your current quota, please check your plan and billing details."
    )


def test_response_failed_without_details_waits_for_the_error_event() -> None:
    failed = {"type": "response.failed", "response": {"status": "failed", "error": None}}
    error = {"type": "error", "code": "server_error", "message": "Upstream broke."}
    events = decode_every_way(FAMILY, sse(CREATED, failed, error))
    assert events[1:] == [
        ErrorEvent(
            kind="ServerError",
            message="Upstream broke.",
            provider_type="server_error",
            retryable=True,
        )
    ]
    # No error event follows: the failure is still reported, at the end of the stream.
    alone = decode_every_way(FAMILY, sse(CREATED, failed))
    assert len(alone) == 2 and isinstance(alone[-1], ErrorEvent)


def test_refusal_stream() -> None:
    events = stream_events("refusal.sse")
    assert [e for e in events if isinstance(e, RefusalDelta)] == [
        RefusalDelta(text="I'm sorry,"),
        RefusalDelta(text=" I can't help"),
        RefusalDelta(text=" with that."),
    ]
    response = assemble(events)
    assert response.refusal == "I'm sorry, I can't help with that."
    assert response.text == ""


@pytest.mark.parametrize(
    "name",
    [
        "text.sse",
        "parallel_tool_calls.sse",
        "reasoning.sse",
        "reasoning_tool_call.sse",
        "incomplete_length.sse",
        "failed.sse",
        "error_event.sse",
        "error_event_nested.sse",
        "refusal.sse",
    ],
)
def test_every_recording_ends_once_and_decodes_nothing_after(name: str) -> None:
    data = recorded(DIR, name)
    decoder = family().stream_decoder()
    events = decoder.feed(data)
    events += decoder.end()
    assert decoder.done
    assert len(terminal(events)) == 1 and events[-1] is terminal(events)[0]
    assert decoder.feed(b'event: response.output_text.delta\ndata: {"delta":"late"}\n\n') == []


def test_stream_without_event_lines_and_with_a_done_sentinel() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
        "delta": "hi",
    }
    data = sse(CREATED, delta, completed(), named=False) + b"data: [DONE]\n\n"
    events = decode_every_way(FAMILY, data)
    assert events == [
        Start(id="resp_1", model="gpt-test"),
        TextDelta(text="hi"),
        Finish(reason="stop", raw="completed"),
    ]


def test_function_calls_reported_only_in_the_final_response_are_kept() -> None:
    final = completed(
        output=[
            {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "f",
                "arguments": "{}",
            }
        ]
    )
    response = assemble(decode_every_way(FAMILY, sse(CREATED, final)))
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [ToolCall(id="call_1", name="f", arguments="{}")]


def test_truncated_stream_is_a_protocol_error() -> None:
    data = recorded(DIR, "text.sse")
    cut = data[: data.index(b"event: response.completed")]
    with pytest.raises(StreamProtocolError):
        decode_chunks(FAMILY, [cut])


@pytest.mark.parametrize(
    "event",
    [
        b'event: response.output_text.delta\ndata: {"delta": "a"\n\n',
        b"event: response.in_progress\ndata: not json\n\n",
        b"data: {oops}\n\n",
        b'event: response.output_text.delta\ndata: {"delta": 5}\n\n',
    ],
)
def test_invalid_json_is_a_decode_error(event: bytes) -> None:
    with pytest.raises(StreamDecodeError):
        decode_chunks(FAMILY, [sse(CREATED) + event])


def test_arguments_for_an_unknown_call_are_a_protocol_error() -> None:
    delta = {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_x",
        "output_index": 3,
        "delta": "{}",
    }
    with pytest.raises(StreamProtocolError, match="fc_x"):
        decode_chunks(FAMILY, [sse(CREATED, delta)])


def test_unknown_and_ignored_event_types_are_skipped() -> None:
    data = sse(
        CREATED,
        {"type": "response.in_progress", "response": {}},
        {"type": "response.output_text.annotation.added", "annotation": {"type": "url_citation"}},
        {"type": "response.mcp_call_arguments.delta", "delta": {"not": "a string"}},
        {"type": "response.something_new", "payload": [1, 2, 3]},
        completed(),
    )
    assert decode_every_way(FAMILY, data) == [
        Start(id="resp_1", model="gpt-test"),
        Finish(reason="stop", raw="completed"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_raise_only_the_decoders_errors(chunks: list[bytes]) -> None:
    decoder = family().stream_decoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.end()
    except StreamDecodeError:
        pass


# -- whole responses ------------------------------------------------------------------------------


def test_decode_response_text_and_usage() -> None:
    raw = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 3,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 39,
        },
    }
    response = family().decode_response(json.dumps(raw).encode())
    assert (response.id, response.model, response.text) == (
        "resp_1",
        "gpt-4.1-2025-04-14",
        "Hello.",
    )
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=36, output_tokens=3)


def test_decode_response_reasoning_and_function_call() -> None:
    raw = {
        "id": "resp_2",
        "status": "completed",
        "model": "o4-mini",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "encrypted_content": "enc",
                "summary": [{"type": "summary_text", "text": "Think."}],
            },
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Lima"}',
            },
        ],
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 32},
            "output_tokens": 90,
            "output_tokens_details": {"reasoning_tokens": 64},
            "total_tokens": 140,
        },
    }
    response = family().decode_response(json.dumps(raw).encode())
    assert response.finish_reason == "tool_calls"
    assert response.message.content == [ReasoningPart(text="Think.", id="rs_1", redacted="enc")]
    assert response.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Lima"}')
    ]
    assert response.usage == Usage(
        input_tokens=50, output_tokens=90, cache_read_tokens=32, reasoning_tokens=64
    )


def test_decode_response_incomplete_and_refusal() -> None:
    raw = {
        "id": "resp_3",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "model": "gpt-4o",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "incomplete",
                "content": [{"type": "refusal", "refusal": "No."}],
            }
        ],
    }
    response = family().decode_response(json.dumps(raw).encode())
    assert (response.finish_reason, response.raw_finish_reason) == ("length", "max_output_tokens")
    assert response.refusal == "No."
    assert response.usage == Usage()


def test_decode_response_that_failed_raises_its_error() -> None:
    raw = {
        "id": "r",
        "status": "failed",
        "model": "gpt-4.1",
        "output": [],
        "error": {"code": "rate_limit_exceeded", "message": "Slow down."},
    }
    with pytest.raises(RateLimitError, match="Slow down") as info:
        family().decode_response(json.dumps(raw).encode())
    assert "error object in a 200 response from openai-responses (gpt-4.1)" in str(info.value)


def test_decode_response_bare_error_object_raises_its_error() -> None:
    raw = {"error": {"type": "server_error", "message": "The server had an error."}}
    with pytest.raises(ServerError, match="server had an error") as info:
        family().decode_response(json.dumps(raw).encode(), provider="azure", model="gpt-4.1")
    assert (info.value.provider, info.value.model) == ("azure", "gpt-4.1")


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"choices": []}', b'{"output": [{"type": "message", "content": 3}]}'],
)
def test_decode_response_rejects_what_is_not_a_response(raw: bytes) -> None:
    with pytest.raises(StreamDecodeError):
        family().decode_response(raw)


# -- errors ---------------------------------------------------------------------------------


def map_error(status: int, raw: bytes, headers: dict[str, str] | None = None) -> Exception:
    return family().map_error(
        status, headers or {}, raw, provider="openai", model="gpt-4.1", now=1_700_000_000.0
    )


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


def test_rate_limit_error_with_retry_after() -> None:
    raw = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    error = map_error(429, raw, {"retry-after": "2", "x-request-id": "req_abc"})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0
    assert error.request_id == "req_abc"
    assert "Rate limit reached" in str(error)


def test_context_length_error() -> None:
    raw = error_body(
        "Your input exceeds the context window of this model.",
        "invalid_request_error",
        "context_length_exceeded",
        "input",
    )
    assert isinstance(map_error(400, raw), ContextLengthExceededError)


def test_authentication_and_not_found_errors() -> None:
    bad_key = error_body(
        "Incorrect API key provided: sk-proj-abcdefghijklmnop.",
        "invalid_request_error",
        "invalid_api_key",
    )
    error = map_error(401, bad_key)
    assert isinstance(error, AuthenticationError)
    assert "sk-proj-abcdefghijklmnop" not in str(error)
    missing = error_body(
        "The model 'gpt-9' does not exist", "invalid_request_error", "model_not_found"
    )
    assert isinstance(map_error(404, missing), NotFoundError)


def test_plain_bad_request_keeps_its_message() -> None:
    raw = error_body("Unsupported parameter: 'stop'.", "invalid_request_error", None, "stop")
    error = map_error(400, raw)
    assert type(error) is BadRequestError
    assert error.provider_type == "invalid_request_error"
    assert "Unsupported parameter: 'stop'." in str(error)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "502 Bad Gateway"),
        (b"", "empty body"),
        (b'{"error": "upstream timeout"}', "upstream timeout"),
    ],
)
def test_non_json_or_odd_error_bodies_are_tolerated(raw: bytes, expected: str) -> None:
    error = map_error(502, raw)
    assert isinstance(error, ServerError)
    assert expected in str(error)
