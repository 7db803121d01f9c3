"""The Gemini family: recorded ``alt=sse`` streams, request bodies, responses, errors."""

from __future__ import annotations

import json
from typing import Any

import anyio.abc
import httpx
import msgspec
import pytest

from providers.assemble import assemble
from providers.client import complete, stream
from providers.errors import (
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
from providers.families import Endpoint, get_family
from providers.families.gemini import THINKING_BUDGETS, Gemini
from providers.messages import (
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

from ..loopback import LAST_CHUNK, HTTPRequest, chunk, json_response, serve, sse_head
from ..streamcheck import decode_chunks, decode_every_way, recorded

KEY = "AIzaSyD-test-0123456789abcdefghijklmnop"
FAMILY = Gemini()


def endpoint(**kwargs: Any) -> Endpoint:
    options: dict[str, Any] = {
        "provider": "gemini",
        "base_url": Gemini.default_base_url,
        "api_key": Secret(KEY),
    }
    options.update(kwargs)
    return Endpoint(**options)


def body_of(request: Request, *, stream: bool = True) -> dict[str, Any]:
    built = FAMILY.build_request(request, endpoint(), stream=stream)
    result: dict[str, Any] = json.loads(built.body)
    return result


def events_of(name: str) -> list[Any]:
    return decode_every_way("gemini", recorded("gemini", name))


def sse(*objects: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objects)


# ============================================================================ family


def test_family_registration() -> None:
    family = get_family("gemini")
    assert isinstance(family, Gemini)
    assert family.name == "gemini"
    assert family.default_base_url == "https://generativelanguage.googleapis.com/v1beta"


# ============================================================================ streams


def test_text_over_several_chunks() -> None:
    events = events_of("text.sse")
    assert events == [
        Start(id="GkVPaNOqEtWjnvgPk7yF2AU", model="gemini-2.0-flash"),
        TextDelta(text="Hello"),
        TextDelta(text="! How can I help you"),
        TextDelta(text=" today? ☀️\n"),
        Usage(input_tokens=9, output_tokens=11),
        Finish(reason="stop", raw="STOP"),
    ]
    response = assemble(events)
    assert response.text == "Hello! How can I help you today? ☀️\n"
    assert response.finish_reason == "stop"
    assert response.usage.total_tokens == 20


def test_parallel_function_calls_with_signature_on_the_first() -> None:
    events = events_of("parallel_calls.sse")
    rid = "5ZVQaMX3K6CNnvgP2uXa8Ak"
    sig = "CtwCAdHtim9sbXhmM2Fy4GQbMsVOzOc3lSOU1WzHhYzFpa3J4ZhMfYb1SaRK0VD5bqbsHBOWtCaQA=="
    paris = '{"city":"Paris","unit":"celsius"}'
    london = '{"city":"London","unit":"celsius"}'
    tz = '{"timezone":"Europe/London"}'
    assert events == [
        Start(id=rid, model="gemini-3-pro-preview"),
        # The signature comes before the call it was attached to.
        ReasoningDelta(block=0, signature=sig),
        ToolCallStart(index=0, id=f"call_{rid}_0", name="get_weather"),
        ToolCallDelta(index=0, arguments=paris),
        ToolCallDone(index=0, id=f"call_{rid}_0", name="get_weather", arguments=paris),
        ToolCallStart(index=1, id=f"call_{rid}_1", name="get_weather"),
        ToolCallDelta(index=1, arguments=london),
        ToolCallDone(index=1, id=f"call_{rid}_1", name="get_weather", arguments=london),
        ToolCallStart(index=2, id=f"call_{rid}_2", name="get_time"),
        ToolCallDelta(index=2, arguments=tz),
        ToolCallDone(index=2, id=f"call_{rid}_2", name="get_time", arguments=tz),
        # thoughtsTokenCount is part of the output.
        Usage(input_tokens=112, output_tokens=48 + 71, reasoning_tokens=71),
        Finish(reason="tool_calls", raw="STOP"),
    ]
    response = assemble(events)
    assert response.finish_reason == "tool_calls"
    assert [c.name for c in response.tool_calls] == ["get_weather", "get_weather", "get_time"]
    assert json.loads(response.tool_calls[1].arguments) == {"city": "London", "unit": "celsius"}
    assert response.message.content == [ReasoningPart(signature=sig)]


def test_thoughts_and_a_signature_on_an_empty_final_part() -> None:
    events = events_of("thoughts.sse")
    sig = "EqADCp0DAdHtim8Kx2pbq1wR9+fV0bO3c4nLm0aTq8ZlWQ5S2u/7yVf3kE1xRk9dY0FpM2V1dGhvdWdodA=="
    assert events == [
        Start(id="p7ZQaJ2mBL-ZnvgPwLa0qAY", model="gemini-2.5-pro"),
        ReasoningDelta(
            text="**Weighing the options**\n\nThe user asks for the larger of 9.11 and 9.9. "
        ),
        ReasoningDelta(text="Comparing tenths: 0.9 > 0.11."),
        TextDelta(text="9.9 is larger"),
        TextDelta(text=": 9.90 > 9.11."),
        ReasoningDelta(block=0, signature=sig),
        Usage(
            input_tokens=4120,
            output_tokens=13 + 244,
            cache_read_tokens=4096,
            reasoning_tokens=244,
        ),
        Finish(reason="stop", raw="STOP"),
    ]
    response = assemble(events)
    assert response.message.content == [
        ReasoningPart(
            text="**Weighing the options**\n\nThe user asks for the larger of 9.11 and 9.9. "
            "Comparing tenths: 0.9 > 0.11.",
            signature=sig,
        ),
        TextPart(text="9.9 is larger: 9.90 > 9.11."),
    ]
    assert response.usage.cache_read_tokens == 4096
    assert response.usage.reasoning_tokens == 244


def test_max_tokens() -> None:
    response = assemble(events_of("max_tokens.sse"))
    assert response.text == "Once upon a time, in a kingdom far away"
    assert (response.finish_reason, response.raw_finish_reason) == ("length", "MAX_TOKENS")
    assert response.usage == Usage(input_tokens=6, output_tokens=10)


def test_safety_stop() -> None:
    events = events_of("safety.sse")
    assert events[-1] == Finish(reason="content_filter", raw="SAFETY")
    response = assemble(events)
    assert response.text == "Here is how you"
    assert response.finish_reason == "content_filter"


def test_prompt_blocked() -> None:
    events = events_of("prompt_blocked.sse")
    assert events == [
        Start(id="1FVRaOHIBq6fnvgP8MbR2QU", model="gemini-2.5-flash"),
        Usage(input_tokens=21),
        Finish(reason="content_filter", raw="PROHIBITED_CONTENT"),
    ]
    response = assemble(events)
    assert response.text == ""
    assert response.finish_reason == "content_filter"


def test_error_object_mid_stream() -> None:
    events = events_of("error_midstream.sse")
    assert events == [
        Start(id="O1ZRaLmuDY2ynvgPp8Oq6Qk", model="gemini-2.5-flash"),
        TextDelta(text="The first three primes are"),
        ErrorEvent(
            kind="OverloadedError",
            message="The model is overloaded. Please try again later.",
            provider_type="UNAVAILABLE",
            retryable=True,
        ),
    ]
    with pytest.raises(StreamProtocolError, match="OverloadedError"):
        assemble(events)


def test_usage_only_chunk_after_the_finish_reason() -> None:
    # The Finish is held until end(), so usage sent after finishReason is kept.
    events = events_of("usage_after_finish.sse")
    assert events[-2:] == [
        Usage(input_tokens=5, output_tokens=2),
        Finish(reason="stop", raw="STOP"),
    ]
    assert assemble(events).text == "Done."


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("LANGUAGE", "other"),
        ("OTHER", "other"),
        ("FINISH_REASON_UNSPECIFIED", "other"),
        ("SOMETHING_NEW", "other"),
    ],
)
def test_finish_reasons(raw: str, reason: str) -> None:
    data = sse({"candidates": [{"content": {"role": "model"}, "finishReason": raw}]})
    events = decode_every_way("gemini", data)
    assert events[-1] == Finish(reason=reason, raw=raw)  # type: ignore[arg-type]


def test_thought_summary_then_a_signed_call_share_one_block() -> None:
    data = sse(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "Need weather.", "thought": True}],
                    }
                }
            ],
            "responseId": "r1",
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S1"}
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "responseId": "r1",
        },
    )
    response = assemble(decode_every_way("gemini", data))
    assert response.message.content == [ReasoningPart(text="Need weather.", signature="S1")]
    assert response.tool_calls == [ToolCall(id="call_r1_0", name="f", arguments="{}")]


def test_a_call_id_from_the_api_is_kept() -> None:
    data = sse(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"id": "fc-7", "name": "f", "args": {"a": 1}}}],
                    },
                    "finishReason": "STOP",
                }
            ]
        }
    )
    response = assemble(decode_every_way("gemini", data))
    assert response.tool_calls == [ToolCall(id="fc-7", name="f", arguments='{"a":1}')]


def test_grounding_sources_become_citations() -> None:
    data = sse(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "It rained."}]},
                    "finishReason": "STOP",
                    "groundingMetadata": {
                        "groundingChunks": [
                            {"web": {"uri": "https://a.example/1", "title": "a"}},
                            {"web": {"uri": "https://b.example/2", "title": "b"}},
                        ]
                    },
                }
            ]
        }
    )
    assert assemble(decode_every_way("gemini", data)).citations == [
        "https://a.example/1",
        "https://b.example/2",
    ]


def test_truncated_stream_is_a_protocol_error() -> None:
    data = recorded("gemini", "text.sse")
    cut = data[: data.rindex(b"data: ")]  # everything before the finishReason chunk
    decoder = FAMILY.stream_decoder()
    events = decoder.feed(cut)
    assert [type(e) for e in events] == [Start, TextDelta, TextDelta]
    with pytest.raises(StreamProtocolError, match="finishReason"):
        decoder.end()


def test_invalid_json_is_a_decode_error() -> None:
    decoder = FAMILY.stream_decoder()
    with pytest.raises(StreamDecodeError, match="not valid JSON"):
        decoder.feed(b'data: {"candidates": [\r\n\r\n')


def test_non_object_chunk_is_a_decode_error() -> None:
    with pytest.raises(StreamDecodeError, match="GenerateContentResponse"):
        FAMILY.stream_decoder().feed(b"data: [1, 2]\r\n\r\n")


def test_nothing_after_an_error_event() -> None:
    data = sse({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    decoder = FAMILY.stream_decoder()
    events = decoder.feed(data + sse({"candidates": [{"finishReason": "STOP"}]}))
    assert events == [
        ErrorEvent(
            kind="RateLimitError",
            message="quota",
            provider_type="RESOURCE_EXHAUSTED",
            retryable=True,
        )
    ]
    assert decoder.done
    assert decoder.feed(sse({"candidates": []})) == []
    assert decoder.end() == []


def test_done_only_after_end() -> None:
    decoder = FAMILY.stream_decoder()
    decoder.feed(recorded("gemini", "text.sse"))
    assert not decoder.done  # the Finish waits for end()
    assert decoder.end()[-1] == Finish(reason="stop", raw="STOP")
    assert decoder.done


def test_decode_chunks_with_lf_line_ends() -> None:
    data = recorded("gemini", "text.sse").replace(b"\r\n", b"\n")
    assert decode_chunks("gemini", [data]) == events_of("text.sse")


# ============================================================================ requests


def test_simple_request_url_headers_and_body() -> None:
    request = Request(
        model="gemini-2.5-flash",
        messages=[
            Message.system("Be terse."),
            Message.system("Answer in French."),
            Message.user("Hi"),
        ],
        max_tokens=256,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
    )
    built = FAMILY.build_request(request, endpoint(), stream=True)
    assert built.method == "POST"
    assert built.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    )
    assert built.params == {"alt": "sse"}
    assert built.headers == {"content-type": "application/json", "accept": "text/event-stream"}
    assert json.loads(built.body) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "Answer in French."}]},
        "generationConfig": {
            "maxOutputTokens": 256,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    }


def test_non_streaming_url() -> None:
    request = Request(model="gemini-2.5-flash", messages=[Message.user("Hi")])
    built = FAMILY.build_request(request, endpoint(), stream=False)
    assert built.url.endswith("/v1beta/models/gemini-2.5-flash:generateContent")
    assert built.params == {}
    assert json.loads(built.body) == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_model_already_prefixed_and_endpoint_query() -> None:
    request = Request(model="tunedModels/my-model-1", messages=[Message.user("Hi")])
    built = FAMILY.build_request(
        request, endpoint(base_url="https://proxy.example/v1beta/", query={"x": "1"}), stream=True
    )
    assert built.url == "https://proxy.example/v1beta/tunedModels/my-model-1:streamGenerateContent"
    assert built.params == {"x": "1", "alt": "sse"}


def test_key_only_in_secret_headers() -> None:
    request = Request(model="gemini-2.5-flash", messages=[Message.user("Hi")])
    for streaming in (True, False):
        built = FAMILY.build_request(request, endpoint(), stream=streaming)
        assert built.secret_headers == {"x-goog-api-key": Secret(KEY)}
        assert KEY not in built.url
        assert KEY not in repr(built.headers)
        assert KEY not in repr(built.params)
        assert KEY not in repr(built)
        assert KEY.encode() not in built.body
        assert built.wire_headers()["x-goog-api-key"] == KEY


def test_custom_auth_header_and_no_key() -> None:
    request = Request(model="m", messages=[Message.user("Hi")])
    bearer = FAMILY.build_request(request, endpoint(auth_header="Authorization"), stream=True)
    assert bearer.wire_headers()["authorization"] == f"Bearer {KEY}"
    assert "x-goog-api-key" not in bearer.wire_headers()
    keyless = FAMILY.build_request(request, endpoint(api_key=None), stream=True)
    assert keyless.secret_headers == {}


def test_extra_is_merged_last() -> None:
    request = Request(
        model="m",
        messages=[Message.user("Hi")],
        max_tokens=10,
        extra={
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}},
        },
    )
    assert body_of(request) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }


WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"$ref": "#/$defs/Unit", "description": "Temperature unit."},
        },
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"Unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "title": "Unit"}},
    },
)
TIME = ToolSpec(
    name="get_time",
    parameters={"type": "object", "properties": {"timezone": {"type": "string"}}},
)


def test_tools_with_ref_inlined_and_tool_choice() -> None:
    request = Request(
        model="gemini-2.5-flash",
        messages=[Message.user("Weather in Paris?")],
        tools=[WEATHER, TIME, ToolSpec(name="ping", description="No arguments.")],
        tool_choice=ToolChoice(mode="tool", name="get_weather"),
    )
    body = body_of(request)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {
                                "type": "string",
                                "enum": ["celsius", "fahrenheit"],
                                "title": "Unit",
                                "description": "Temperature unit.",
                            },
                        },
                        "required": ["city"],
                        "propertyOrdering": ["city", "unit"],
                    },
                },
                {
                    "name": "get_time",
                    "parameters": {
                        "type": "object",
                        "properties": {"timezone": {"type": "string"}},
                        "propertyOrdering": ["timezone"],
                    },
                },
                # Gemini refuses an object schema without properties: none sent.
                {"name": "ping", "description": "No arguments."},
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert "$ref" not in json.dumps(body) and "$defs" not in json.dumps(body)


@pytest.mark.parametrize(
    ("mode", "wire"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_tool_choice_modes(mode: str, wire: str) -> None:
    request = Request(
        model="m",
        messages=[Message.user("Hi")],
        tools=[TIME],
        tool_choice=ToolChoice(mode=mode),  # type: ignore[arg-type]
    )
    assert body_of(request)["toolConfig"] == {"functionCallingConfig": {"mode": wire}}


def test_no_tool_config_without_tool_choice() -> None:
    body = body_of(Request(model="m", messages=[Message.user("Hi")], tools=[TIME]))
    assert "toolConfig" not in body


def test_response_format_uses_gemini_schema() -> None:
    schema = {
        "$ref": "#/$defs/Answer",
        "$defs": {
            "Answer": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                },
                "required": ["value"],
            }
        },
    }
    request = Request(
        model="m", messages=[Message.user("2+2?")], response_format=ResponseFormat(schema=schema)
    )
    assert body_of(request)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "note": {"type": "string", "default": None, "nullable": True},
            },
            "required": ["value"],
            "propertyOrdering": ["value", "note"],
        },
    }


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high"])
def test_reasoning_effort_maps_to_a_thinking_budget(effort: str) -> None:
    request = Request(model="m", messages=[Message.user("Hi")], reasoning_effort=effort)  # type: ignore[arg-type]
    assert body_of(request)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts": True}
    }
    assert list(THINKING_BUDGETS.values()) == sorted(THINKING_BUDGETS.values())


def test_tool_loop_round_trip() -> None:
    """Decode a parallel-call stream, answer the calls, and build the next request."""
    first = assemble(events_of("parallel_calls.sse"))
    sig = "CtwCAdHtim9sbXhmM2Fy4GQbMsVOzOc3lSOU1WzHhYzFpa3J4ZhMfYb1SaRK0VD5bqbsHBOWtCaQA=="
    calls = first.tool_calls
    request = Request(
        model="gemini-3-pro-preview",
        messages=[
            Message.system("You are a weather bot."),
            Message.user("Weather in Paris and London, and the time in London?"),
            first.message,
            Message.tool(calls[0].id, "get_weather", '{"temp": 21, "sky": "clear"}'),
            Message.tool(calls[1].id, "get_weather", "light rain, 14C"),
            Message.tool(calls[2].id, "get_time", "unknown timezone", is_error=True),
        ],
        tools=[WEATHER, TIME],
    )
    body = body_of(request)
    assert body["systemInstruction"] == {"parts": [{"text": "You are a weather bot."}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "Weather in Paris and London, and the time in London?"}],
        },
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris", "unit": "celsius"},
                    },
                    "thoughtSignature": sig,
                },
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "London", "unit": "celsius"},
                    }
                },
                {"functionCall": {"name": "get_time", "args": {"timezone": "Europe/London"}}},
            ],
        },
        # The three results are one user content, in call order.
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"temp": 21, "sky": "clear"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "light rain, 14C"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"error": "unknown timezone"},
                    }
                },
            ],
        },
    ]


def test_signature_without_calls_goes_on_the_last_text_part() -> None:
    assistant = Message(
        role="assistant",
        content=[
            ReasoningPart(text="summary, not sent back", signature="SIG"),
            TextPart(text="First."),
            TextPart(text="Second."),
            ReasoningPart(text="unsigned summary"),
        ],
    )
    request = Request(model="m", messages=[Message.user("Q"), assistant, Message.user("More")])
    assert body_of(request)["contents"] == [
        {"role": "user", "parts": [{"text": "Q"}]},
        {
            "role": "model",
            "parts": [{"text": "First."}, {"text": "Second.", "thoughtSignature": "SIG"}],
        },
        {"role": "user", "parts": [{"text": "More"}]},
    ]


def test_same_role_contents_are_merged_and_empty_assistant_turns_dropped() -> None:
    request = Request(
        model="m",
        messages=[
            Message.user("a"),
            Message.user("b"),
            Message.assistant(""),
            Message.user("c"),
            Message.assistant("x"),
            Message.assistant("y"),
        ],
    )
    assert body_of(request)["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
        {"role": "model", "parts": [{"text": "x"}, {"text": "y"}]},
    ]


def test_tool_result_values() -> None:
    def response_of(result: str, *, is_error: bool = False) -> Any:
        request = Request(
            model="m",
            messages=[
                Message.user("go"),
                Message.assistant(tool_calls=[ToolCall(id="c1", name="f", arguments="{}")]),
                Message.tool("c1", "f", result, is_error=is_error),
            ],
        )
        return body_of(request)["contents"][-1]["parts"][0]["functionResponse"]["response"]

    assert response_of('{"ok": true}') == {"ok": True}
    assert response_of("[1, 2]") == {"result": [1, 2]}
    assert response_of("42") == {"result": 42}
    assert response_of("plain text") == {"result": "plain text"}
    assert response_of("") == {"result": ""}
    assert response_of('{"code": 404}', is_error=True) == {"error": {"code": 404}}
    assert response_of("boom", is_error=True) == {"error": "boom"}


def test_tool_result_with_an_image() -> None:
    request = Request(
        model="m",
        messages=[
            Message.user("screenshot please"),
            Message.assistant(tool_calls=[ToolCall(id="c1", name="shot", arguments="{}")]),
            Message(
                role="tool",
                tool_call_id="c1",
                name="shot",
                content=[TextPart(text="captured"), ImagePart(data="AAAA", media_type="image/png")],
            ),
        ],
    )
    assert body_of(request)["contents"][-1] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "shot", "response": {"result": "captured"}}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        ],
    }


def test_images() -> None:
    request = Request(
        model="m",
        messages=[
            Message(
                role="user",
                content=[
                    TextPart(text="Compare:"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                    ImagePart(url="https://example.com/cat.jpg"),
                    ImagePart(url="gs://bucket/dog.webp"),
                    ImagePart(url="https://generativelanguage.googleapis.com/v1beta/files/abc"),
                    ImagePart(url="data:image/gif;base64,R0lGODlh"),
                ],
            )
        ],
    )
    assert body_of(request)["contents"][0]["parts"] == [
        {"text": "Compare:"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "gs://bucket/dog.webp", "mimeType": "image/webp"}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lGODlh"}},
    ]


@pytest.mark.parametrize(
    "url", ["http://example.com/cat.png", "file:///tmp/cat.png", "ftp://x/y.png"]
)
def test_unsupported_image_urls_are_refused(url: str) -> None:
    request = Request(model="m", messages=[Message(role="user", content=[ImagePart(url=url)])])
    with pytest.raises(RequestError, match=r"https://.*ImagePart\(data="):
        FAMILY.build_request(request, endpoint(), stream=True)


def _refused(messages: list[Message], match: str) -> None:
    with pytest.raises(RequestError, match=match):
        FAMILY.build_request(Request(model="m", messages=messages), endpoint(), stream=True)


def test_a_later_system_message_is_refused() -> None:
    _refused(
        [Message.system("a"), Message.user("b"), Message.system("c")],
        r"messages\[2\].*systemInstruction",
    )


def test_a_tool_message_without_name_is_refused_with_the_fix() -> None:
    call = ToolCall(id="c9", name="get_time", arguments="{}")
    _refused(
        [
            Message.user("time?"),
            Message.assistant(tool_calls=[call]),
            Message(role="tool", tool_call_id="c9", content="12:00"),
        ],
        r"name=.*pass name='get_time'",
    )
    _refused(
        [Message.user("x"), Message(role="tool", tool_call_id="zz", content="1")],
        r"matches function results to calls by name",
    )


@pytest.mark.parametrize(
    ("arguments", "match"), [("{not json", "not valid JSON"), ("[1]", "JSON object")]
)
def test_bad_tool_call_arguments_are_refused(arguments: str, match: str) -> None:
    _refused(
        [
            Message.user("go"),
            Message.assistant(tool_calls=[ToolCall(id="c1", name="f", arguments=arguments)]),
        ],
        match,
    )


def test_empty_arguments_are_an_empty_object() -> None:
    request = Request(
        model="m",
        messages=[
            Message.user("go"),
            Message.assistant(tool_calls=[ToolCall(id="c1", name="f", arguments="")]),
        ],
    )
    assert body_of(request)["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]


def test_other_refusals() -> None:
    _refused([Message.system("only instructions")], "at least one user message")
    _refused([Message.user("")], "empty")
    _refused(
        [Message(role="system", content=[ImagePart(url="https://x/y.png")]), Message.user("hi")],
        "text only",
    )


# ============================================================================ decode_response


def test_decode_response_text() -> None:
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Paris."}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 7,
            "candidatesTokenCount": 2,
            "totalTokenCount": 9,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }
    response = FAMILY.decode_response(json.dumps(body).encode())
    assert response.id == "abc"
    assert response.model == "gemini-2.5-flash"
    assert response.text == "Paris."
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=7, output_tokens=2, cache_read_tokens=4)


def test_decode_response_calls_and_thoughts() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Let me check.", "thought": True},
                        {"text": "Checking."},
                        {
                            "functionCall": {"name": "get_time", "args": {"timezone": "UTC"}},
                            "thoughtSignature": "SIG",
                        },
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 20,
        },
        "responseId": "r",
    }
    response = FAMILY.decode_response(json.dumps(body).encode())
    assert response.finish_reason == "tool_calls"
    assert response.message.content == [
        ReasoningPart(text="Let me check.", signature="SIG"),
        TextPart(text="Checking."),
    ]
    assert response.tool_calls == [
        ToolCall(id="call_r_0", name="get_time", arguments='{"timezone":"UTC"}')
    ]
    assert response.usage == Usage(input_tokens=10, output_tokens=25, reasoning_tokens=20)


def test_decode_response_prompt_blocked() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    response = FAMILY.decode_response(json.dumps(body).encode())
    assert (response.finish_reason, response.raw_finish_reason) == ("content_filter", "SAFETY")


def test_decode_response_refuses_garbage() -> None:
    with pytest.raises(StreamDecodeError):
        FAMILY.decode_response(b"<html>oops</html>")
    with pytest.raises(StreamDecodeError):
        FAMILY.decode_response(b'["not", "a", "response"]')


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (500, "INTERNAL", ServerError),
        (503, "UNAVAILABLE", OverloadedError),
        (429, "RESOURCE_EXHAUSTED", RateLimitError),
        (400, "INVALID_ARGUMENT", BadRequestError),
        (403, "PERMISSION_DENIED", AuthenticationError),
    ],
)
def test_decode_response_error_object_is_the_typed_error(code: int, status: str, cls: type) -> None:
    """A 200 whose body is ``{"error": {...}}`` raises the typed error the same
    object raises inside a stream (retryable or not alike)."""
    raw = json.dumps({"error": {"code": code, "message": "x went wrong", "status": status}})
    with pytest.raises(cls, match="x went wrong") as info:
        FAMILY.decode_response(raw.encode(), provider="vertex-proxy", model="gemini-2.5-pro")
    assert type(info.value) is cls
    assert (info.value.provider, info.value.model, info.value.status) == (
        "vertex-proxy",
        "gemini-2.5-pro",
        200,
    )
    assert "error object in a 200 response" in str(info.value)


def test_response_round_trips_through_a_request() -> None:
    """What decode_response returns is a message build_request takes back."""
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "f", "args": {"x": [1, 2]}},
                            "thoughtSignature": "S",
                        }
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ]
    }
    message = FAMILY.decode_response(json.dumps(body).encode()).message
    request = Request(
        model="m",
        messages=[
            Message.user("go"),
            message,
            Message.tool(message.tool_calls[0].id, "f", "done"),
        ],
    )
    assert body_of(request)["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "f", "args": {"x": [1, 2]}}, "thoughtSignature": "S"}
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "f", "response": {"result": "done"}}}],
        },
    ]


# ============================================================================ errors


def _error(status: int, g_status: str, message: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": g_status}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


def _map(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return FAMILY.map_error(
        status,
        headers or {},
        body,
        provider="gemini",
        model="gemini-2.5-flash",
        now=1_700_000_000.0,
    )


def test_400_invalid_argument() -> None:
    err = _map(400, _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
    assert type(err) is BadRequestError
    assert err.provider_type == "INVALID_ARGUMENT"
    assert err.status == 400
    assert "Invalid JSON payload" in str(err)
    assert not err.retryable


def test_400_bad_api_key_is_an_authentication_error() -> None:
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]
    err = _map(
        400,
        _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details),
    )
    assert type(err) is AuthenticationError
    assert err.provider_type == "INVALID_ARGUMENT"


def test_400_input_token_count_exceeds() -> None:
    message = (
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
    )
    err = _map(400, _error(400, "INVALID_ARGUMENT", message))
    assert type(err) is ContextLengthExceededError


def test_403_permission_denied() -> None:
    err = _map(403, _error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."))
    assert type(err) is AuthenticationError
    assert err.provider_type == "PERMISSION_DENIED"


def test_404_not_found() -> None:
    message = (
        "models/gemini-9 is not found for API version v1beta, "
        "or is not supported for generateContent."
    )
    err = _map(404, _error(404, "NOT_FOUND", message))
    assert type(err) is NotFoundError


def test_429_retry_info_becomes_retry_after() -> None:
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
    ]
    body = _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)
    err = _map(429, body)
    assert type(err) is RateLimitError
    assert err.retryable
    assert err.retry_after == 30.0
    # A retry-after header, when present, wins.
    assert _map(429, body, {"retry-after": "5"}).retry_after == 5.0
    fractional = _error(
        429,
        "RESOURCE_EXHAUSTED",
        "q",
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}],
    )
    assert _map(429, fractional).retry_after == 1.5


def test_500_and_503() -> None:
    err = _map(500, _error(500, "INTERNAL", "An internal error has occurred."))
    assert type(err) is ServerError and err.retryable
    err = _map(503, _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    assert type(err) is OverloadedError and err.retryable
    assert err.provider_type == "UNAVAILABLE"


def test_non_json_and_list_wrapped_bodies() -> None:
    err = _map(502, b"<html><body>Bad Gateway</body></html>")
    assert type(err) is ServerError
    assert "Bad Gateway" in str(err)
    assert err.provider_type is None
    listed = b"[" + _error(429, "RESOURCE_EXHAUSTED", "quota") + b"]"
    assert type(_map(429, listed)) is RateLimitError
    assert type(_map(400, b"")) is BadRequestError


def test_error_messages_never_show_the_key() -> None:
    err = _map(400, _error(400, "INVALID_ARGUMENT", f"API key {KEY} not valid."))
    assert KEY not in str(err)
    assert KEY not in err.body


# ============================================================================ over HTTP


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_stream_over_http() -> None:
    seen: list[HTTPRequest] = []
    data = recorded("gemini", "thoughts.sse")

    async def handler(req: HTTPRequest, sock: anyio.abc.SocketStream) -> None:
        seen.append(req)
        await sock.send(sse_head())
        for i in range(0, len(data), 97):
            await sock.send(chunk(data[i : i + 97]))
        await sock.send(LAST_CHUNK)

    request = Request(model="gemini-2.5-pro", messages=[Message.user("9.11 or 9.9?")])
    async with serve(handler) as url, httpx.AsyncClient() as http:
        async with stream(
            http, endpoint(base_url=url + "/v1beta"), request, family="gemini"
        ) as events:
            response = await events.response()
    assert response.text == "9.9 is larger: 9.90 > 9.11."
    assert response.usage.reasoning_tokens == 244
    (req,) = seen
    assert req.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert req.headers["x-goog-api-key"] == KEY
    assert msgspec.json.decode(req.body) == {
        "contents": [{"role": "user", "parts": [{"text": "9.11 or 9.9?"}]}]
    }


@pytest.mark.anyio
async def test_error_object_in_a_200_over_http() -> None:
    """``complete`` raises the typed error of a 200 error body, named for the
    endpoint and model, with the key masked where the body echoed it."""
    body = _error(503, "UNAVAILABLE", f"overloaded, key {KEY}", [])

    async def handler(req: HTTPRequest, sock: anyio.abc.SocketStream) -> None:
        await sock.send(json_response(200, body))

    request = Request(model="gemini-2.5-flash", messages=[Message.user("hi")])
    async with serve(handler) as url, httpx.AsyncClient() as http:
        with pytest.raises(OverloadedError) as info:
            await complete(http, endpoint(base_url=url), request, family="gemini")
    assert info.value.retryable
    assert info.value.model == "gemini-2.5-flash"
    assert KEY not in str(info.value) and KEY not in info.value.body


@pytest.mark.anyio
async def test_error_status_over_http() -> None:
    body = _error(
        429,
        "RESOURCE_EXHAUSTED",
        "quota",
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    )

    async def handler(req: HTTPRequest, sock: anyio.abc.SocketStream) -> None:
        await sock.send(json_response(429, body))

    request = Request(model="gemini-2.5-flash", messages=[Message.user("hi")])
    async with serve(handler) as url, httpx.AsyncClient() as http:
        with pytest.raises(RateLimitError) as info:
            await complete(http, endpoint(base_url=url), request, family="gemini")
    assert info.value.retry_after == 7.0
