"""OpenAI Chat Completions (``POST /v1/chat/completions``), as the simulator writes it.

Stream (``data:`` lines only, no ``event:`` names)::

    data: {"id":"chatcmpl-…","object":"chat.completion.chunk","created":…,"model":"…",
           "service_tier":"default","system_fingerprint":"fp_sim",
           "choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},
                       "logprobs":null,"finish_reason":null}],"obfuscation":"k"}
           (and "usage":null after "choices" with stream_options.include_usage)
    data: {… "delta":{"content":"Hello"} …,"obfuscation":"Q3vX9mW2"}
    data: {… "delta":{},"logprobs":null,"finish_reason":"stop"}],"obfuscation":""}
    data: {… "choices":[],"usage":{"prompt_tokens":…}}  (with include_usage)
    data: [DONE]

Each chunk but the usage one ends with ``"obfuscation"``: 0-15 characters of padding,
as OpenAI sends by default (``stream_options.include_obfuscation: false`` drops it).
Tool calls stream as ``delta.tool_calls`` (the first delta of a call carries its
``id``, ``type`` and ``function.name``; later ones pieces of ``arguments``) and
finish with ``tool_calls``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .codec import (
    OBFUSCATION_PADS,
    Codec,
    Ctx,
    ErrorKind,
    bad_gateway,
    decode_body,
    include_obfuscation,
    jenc,
    need,
    opt_int,
    schema_text,
    text_of,
)
from .model import BadRequest, SimPrompt, ToolDef, Turn

__all__ = ["OpenAIChatCodec", "openai_error_body", "openai_usage"]

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def openai_usage(turn: Turn) -> dict[str, Any]:
    return {
        "prompt_tokens": turn.input_tokens,
        "completion_tokens": turn.output_tokens,
        "total_tokens": turn.input_tokens + turn.output_tokens,
        "prompt_tokens_details": {"cached_tokens": turn.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_error_body(message: str, typ: str, param: str | None, code: str | None) -> bytes:
    body = {"error": {"message": message, "type": typ, "param": param, "code": code}}
    return (json.dumps(body, indent=4, ensure_ascii=False) + "\n").encode()


def openai_error(
    status: int,
    kind: ErrorKind,
    message: str,
    *,
    request_id: str,
    retry_after: float | None,
    param: str | None,
) -> tuple[list[tuple[str, str]], bytes]:
    """An OpenAI-style error (shared by Chat Completions and Responses)."""
    if kind == "bad_gateway":
        return bad_gateway()
    typ, code = {
        "invalid_request": ("invalid_request_error", None),
        "authentication": ("invalid_request_error", "invalid_api_key"),
        "not_found": ("invalid_request_error", "model_not_found"),
        "rate_limit_requests": ("requests", "rate_limit_exceeded"),
        "rate_limit_tokens": ("tokens", "rate_limit_exceeded"),
        "server": ("server_error", None),
        "unavailable": ("server_error", None),
        "overloaded": ("server_error", None),
        "context_length": ("invalid_request_error", "context_length_exceeded"),
    }[kind]
    headers = [("content-type", "application/json; charset=utf-8")]
    return headers, openai_error_body(message, typ, param, code)


class OpenAIChatCodec(Codec):
    name = "openai"

    def parse(self, body: bytes, *, path_model: str | None, stream: bool | None) -> SimPrompt:
        data = decode_body(body)
        model = need(data, "model", str)
        messages = need(data, "messages", list)
        if not messages:
            raise BadRequest(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
            )
        segments: list[tuple[str, bool]] = []
        tools: list[ToolDef] = []
        for i, tool in enumerate(data.get("tools") or []):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise BadRequest(
                    f"Missing required parameter: 'tools[{i}].function'.",
                    param=f"tools[{i}].function",
                )
            schema = fn.get("parameters") or {"type": "object", "properties": {}}
            tools.append(ToolDef(fn["name"], schema))
            segments.append((schema_text(fn["name"], fn.get("description"), schema), False))
        names: dict[str, str] = {}
        last_assistant = -1
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or "role" not in msg:
                raise BadRequest(
                    f"Missing required parameter: 'messages[{i}].role'.",
                    param=f"messages[{i}].role",
                )
            role = msg["role"]
            text = text_of(msg.get("content"))
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                names[call.get("id", "")] = fn.get("name", "")
                text += f"\ncall:{fn.get('name')}:{fn.get('arguments')}"
            if role == "assistant":
                last_assistant = i
            segments.append((f"{role}:{text}", False))
        results: list[tuple[str, str]] = []
        for msg in messages[last_assistant + 1 :]:
            if msg.get("role") == "tool":
                results.append(
                    (names.get(msg.get("tool_call_id", ""), "tool"), text_of(msg.get("content")))
                )
        choice, choice_name = _tool_choice(data.get("tool_choice"))
        opts = data.get("stream_options") or {}
        return SimPrompt(
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=opt_int(data, "max_completion_tokens", "max_tokens"),
            segments=segments,
            tools=tools,
            tool_choice=choice,
            tool_name=choice_name,
            parallel=data.get("parallel_tool_calls", True) is not False,
            tool_results=results,
            include_usage=bool(opts.get("include_usage")) if isinstance(opts, dict) else False,
            obfuscate=include_obfuscation(opts),
        )

    def headers(self, ctx_request_id: str) -> list[tuple[str, str]]:
        return [
            ("access-control-expose-headers", "X-Request-ID"),
            ("openai-organization", "user-sim"),
            ("openai-processing-ms", "1"),
            ("openai-project", "proj_sim"),
            ("openai-version", "2020-10-01"),
            ("x-request-id", ctx_request_id),
        ]

    def _id(self, ctx: Ctx) -> str:
        return "chatcmpl-" + ctx.turn.id_suffix

    def stream(self, ctx: Ctx) -> Iterator[tuple[float, bytes]]:
        turn = ctx.turn
        at = ctx.timing.at
        usage_null = b',"usage":null' if ctx.prompt.include_usage else b""
        common = (
            b'data: {"id":"'
            + self._id(ctx).encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(ctx.created).encode()
            + b',"model":'
            + jenc(ctx.model)
            + b',"service_tier":"default","system_fingerprint":"fp_sim","choices":'
        )
        head = common + b'[{"index":0,"delta":'
        pads = OBFUSCATION_PADS if ctx.prompt.obfuscate else (b"",) * 16
        # Each chunk's tail with its obfuscation pad (16 of them, by chunk number).
        tails = [
            b',"logprobs":null,"finish_reason":null}]' + usage_null + pad + b"}\n\n" for pad in pads
        ]
        n = 0  # chunks sent: picks the pad

        def tail() -> bytes:
            nonlocal n
            n += 1
            return tails[(n * 7 + 3) % 16]

        i = 0
        if turn.tool_calls:
            for j, call in enumerate(turn.tool_calls):
                opener = {
                    "index": j,
                    "id": "call_" + call.suffix,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                if j == 0:
                    delta = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [opener],
                        "refusal": None,
                    }
                else:
                    delta = {"tool_calls": [opener]}
                yield at(i), head + jenc(delta) + tail()
                pre = (
                    head
                    + b'{"tool_calls":[{"index":'
                    + str(j).encode()
                    + b',"function":{"arguments":'
                )
                for chunk in call.chunks:
                    yield at(i), pre + jenc(chunk) + b"}}]}" + tail()
                    i += 1
            last = i - 1
        else:
            yield at(0), head + b'{"role":"assistant","content":"","refusal":null}' + tail()
            pre = head + b'{"content":"'
            # The per-token loop: the 16 suffixes are built once, the pad picked by
            # index (the same sequence tail() would give, without a call a token).
            sufs = [b'"}' + t for t in tails]
            first = n + 1
            for i, tok in enumerate(turn.escaped):
                yield at(i), pre + tok + sufs[((first + i) * 7 + 3) % 16]
            n += len(turn.escaped)
            last = len(turn.escaped) - 1
        finish = _FINISH[turn.finish].encode()
        yield (
            at(last),
            (
                head
                + b'{},"logprobs":null,"finish_reason":"'
                + finish
                + b'"}]'
                + usage_null
                + pads[(n * 7 + 3) % 16]
                + b"}\n\n"
            ),
        )
        if ctx.prompt.include_usage:
            yield at(last), common + b'[],"usage":' + jenc(openai_usage(turn)) + b"}\n\n"
        yield at(last), b"data: [DONE]\n\n"

    def body(self, ctx: Ctx) -> bytes:
        turn = ctx.turn
        message: dict[str, Any]
        if turn.tool_calls:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_" + c.suffix,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in turn.tool_calls
                ],
                "refusal": None,
                "annotations": [],
            }
        else:
            message = {
                "role": "assistant",
                "content": turn.text,
                "refusal": None,
                "annotations": [],
            }
        return jenc(
            {
                "id": self._id(ctx),
                "object": "chat.completion",
                "created": ctx.created,
                "model": ctx.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _FINISH[turn.finish],
                    }
                ],
                "usage": openai_usage(turn),
                "service_tier": "default",
                "system_fingerprint": "fp_sim",
            }
        )

    def error(
        self,
        status: int,
        kind: ErrorKind,
        message: str,
        *,
        request_id: str,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> tuple[list[tuple[str, str]], bytes]:
        return openai_error(
            status, kind, message, request_id=request_id, retry_after=retry_after, param=param
        )

    def stream_error(self, ctx: Ctx, events_sent: int) -> bytes:
        body = {
            "error": {
                "message": _SERVER_ERROR,
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        return b"data: " + jenc(body) + b"\n\n"


def _tool_choice(value: Any) -> tuple[str, str | None]:
    if value is None:
        return "auto", None
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise BadRequest(
                f"Invalid value: '{value}'. Supported values are: 'none', 'auto', and 'required'.",
                param="tool_choice",
            )
        return value, None
    if isinstance(value, dict):
        fn = value.get("function")
        name = fn.get("name") if isinstance(fn, dict) else value.get("name")
        if isinstance(name, str):
            return "tool", name
        if value.get("type") == "allowed_tools":
            return str(value.get("mode", "auto")), None
    raise BadRequest("Invalid 'tool_choice'.", param="tool_choice")
