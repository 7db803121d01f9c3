"""Anthropic Messages (``POST /v1/messages``), as the simulator writes it.

Stream (named events)::

    event: message_start
    data: {"type":"message_start","message":{… "content":[],"usage":{…}}}
    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
    event: ping
    data: {"type": "ping"}
    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}
    event: content_block_stop
    data: {"type":"content_block_stop","index":0}
    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"end_turn",…},"usage":{…}}
    event: message_stop
    data: {"type":"message_stop"}

(each event followed by a blank line).

Tool calls are ``tool_use`` blocks whose input streams as ``input_json_delta``
(``stop_reason: tool_use``); ``max_tokens`` ends with ``stop_reason: max_tokens``.
Errors: ``{"type":"error","error":{"type":…,"message":…},"request_id":…}``, and
``event: error`` inside a stream (``overloaded_error``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .codec import Codec, Ctx, ErrorKind, bad_gateway, decode_body, jenc, need, schema_text, text_of
from .model import BadRequest, SimPrompt, ToolDef, Turn
from .ratelimit import Decision

__all__ = ["AnthropicCodec"]

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _usage(turn: Turn, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": turn.uncached_input_tokens,
        "cache_creation_input_tokens": turn.cache_creation_tokens,
        "cache_read_input_tokens": turn.cached_tokens,
        "output_tokens": output_tokens,
    }


def _full_usage(turn: Turn) -> dict[str, Any]:
    return {
        "input_tokens": turn.uncached_input_tokens,
        "cache_creation_input_tokens": turn.cache_creation_tokens,
        "cache_read_input_tokens": turn.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": turn.cache_creation_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": turn.output_tokens,
        "service_tier": "standard",
    }


def _event(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


class AnthropicCodec(Codec):
    name = "anthropic"
    ratelimit_style = "anthropic"

    def parse(self, body: bytes, *, path_model: str | None, stream: bool | None) -> SimPrompt:
        data = decode_body(body)
        model = need(data, "model", str)
        messages = need(data, "messages", list)
        if "max_tokens" not in data:
            raise BadRequest("max_tokens: Field required")
        max_tokens = data["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("max_tokens: Input should be greater than or equal to 1")
        if not messages:
            raise BadRequest("messages: at least one message is required")
        segments: list[tuple[str, bool]] = []
        tools: list[ToolDef] = []
        for i, tool in enumerate(data.get("tools") or []):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise BadRequest(f"tools.{i}.name: Field required")
            schema = tool.get("input_schema") or {"type": "object", "properties": {}}
            if tool.get("type") in (None, "custom"):
                tools.append(ToolDef(tool["name"], schema))
            segments.append(
                (
                    schema_text(tool["name"], tool.get("description"), schema),
                    "cache_control" in tool,
                )
            )
        system = data.get("system")
        if isinstance(system, str):
            if system:
                segments.append(("system:" + system, False))
        elif isinstance(system, list):
            for block in system:
                if isinstance(block, dict):
                    segments.append(("system:" + text_of([block]), "cache_control" in block))
        names: dict[str, str] = {}
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
                raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            role = msg["role"]
            content = msg.get("content")
            if isinstance(content, str):
                segments.append((f"{role}:{content}", False))
                continue
            for block in content or []:
                if not isinstance(block, dict):
                    continue
                typ = block.get("type")
                if typ in ("tool_use", "tool_result") and not data.get("tools"):
                    # The API's own check (a conversation handed to an agent without
                    # the tools it used is refused).
                    raise BadRequest(
                        "Requests which include `tool_use` or `tool_result` blocks must "
                        "define tools."
                    )
                if typ == "tool_use":
                    names[block.get("id", "")] = block.get("name", "")
                    text = f"call:{block.get('name')}:{jenc(block.get('input', {})).decode()}"
                elif typ == "tool_result":
                    if block.get("tool_use_id", "") not in names:
                        raise BadRequest(
                            f"messages.{i}.content: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {block.get('tool_use_id', '')}. Each "
                            "`tool_result` block must have a corresponding `tool_use` block "
                            "in the previous message."
                        )
                    text = "result:" + text_of(block.get("content"))
                elif typ in ("thinking", "redacted_thinking"):
                    text = "thinking:" + str(block.get("thinking") or block.get("data") or "")
                else:
                    text = text_of([block])
                segments.append((f"{role}:{text}", "cache_control" in block))
        results: list[tuple[str, str]] = []
        last = messages[-1]
        if last.get("role") == "user" and isinstance(last.get("content"), list):
            for block in last["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(
                        (
                            names.get(block.get("tool_use_id", ""), "tool"),
                            text_of(block.get("content")),
                        )
                    )
        choice, name, parallel = "auto", None, True
        tc = data.get("tool_choice")
        if isinstance(tc, dict):
            typ = tc.get("type", "auto")
            choice = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}.get(
                typ, "auto"
            )
            name = tc.get("name") if typ == "tool" else None
            parallel = not tc.get("disable_parallel_tool_use", False)
        return SimPrompt(
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=max_tokens,
            segments=segments,
            tools=tools,
            tool_choice=choice,
            tool_name=name,
            parallel=parallel,
            tool_results=results,
            include_usage=True,
        )

    def headers(self, ctx_request_id: str) -> list[tuple[str, str]]:
        return [
            ("request-id", ctx_request_id),
            ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
        ]

    def _id(self, ctx: Ctx) -> str:
        return "msg_01" + ctx.turn.id_suffix[:22]

    def stream(self, ctx: Ctx) -> Iterator[tuple[float, bytes]]:
        turn = ctx.turn
        at = ctx.timing.at
        start = {
            "type": "message_start",
            # The order of recorded API traffic (model first), not of the docs'
            # example (id first, model after content).
            "message": {
                "model": ctx.model,
                "id": self._id(ctx),
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                # The whole usage object, as the body's, with the output so far
                # (the cache_creation breakdown by TTL included).
                "usage": {**_full_usage(turn), "output_tokens": 1},
            },
        }
        yield at(-1), _event(b"message_start", jenc(start))
        i = 0
        if turn.tool_calls:
            for j, call in enumerate(turn.tool_calls):
                block = {
                    "type": "tool_use",
                    "id": "toolu_01" + call.suffix[:22],
                    "name": call.name,
                    "input": {},
                }
                yield (
                    at(i),
                    _event(
                        b"content_block_start",
                        b'{"type":"content_block_start","index":'
                        + str(j).encode()
                        + b',"content_block":'
                        + jenc(block)
                        + b"}",
                    ),
                )
                if j == 0:
                    yield at(i), _event(b"ping", b'{"type": "ping"}')
                pre = (
                    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                    + str(j).encode()
                    + b',"delta":{"type":"input_json_delta","partial_json":'
                )
                yield at(i), pre + b'""}}\n\n'
                for chunk in call.chunks:
                    yield at(i), pre + jenc(chunk) + b"}}\n\n"
                    i += 1
                yield (
                    at(i - 1),
                    _event(
                        b"content_block_stop",
                        b'{"type":"content_block_stop","index":' + str(j).encode() + b"}",
                    ),
                )
            last = i - 1
        else:
            yield (
                at(0),
                _event(
                    b"content_block_start",
                    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
                ),
            )
            yield at(0), _event(b"ping", b'{"type": "ping"}')
            pre = (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                b'"delta":{"type":"text_delta","text":"'
            )
            suf = b'"}}\n\n'
            for i, tok in enumerate(turn.escaped):
                yield at(i), pre + tok + suf
            last = len(turn.escaped) - 1
            yield (
                at(last),
                _event(b"content_block_stop", b'{"type":"content_block_stop","index":0}'),
            )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP[turn.finish], "stop_sequence": None},
            "usage": _usage(turn, turn.output_tokens),
        }
        yield at(last), _event(b"message_delta", jenc(delta))
        yield at(last), _event(b"message_stop", b'{"type":"message_stop"}')

    def body(self, ctx: Ctx) -> bytes:
        turn = ctx.turn
        content: list[dict[str, Any]]
        if turn.tool_calls:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_01" + c.suffix[:22],
                    "name": c.name,
                    "input": c.args_object,
                }
                for c in turn.tool_calls
            ]
        else:
            content = [{"type": "text", "text": turn.text}]
        return jenc(
            {
                "id": self._id(ctx),
                "type": "message",
                "role": "assistant",
                "model": ctx.model,
                "content": content,
                "stop_reason": _STOP[turn.finish],
                "stop_sequence": None,
                "usage": _full_usage(turn),
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
        if kind == "bad_gateway":
            return bad_gateway()
        typ = {
            "invalid_request": "invalid_request_error",
            "authentication": "authentication_error",
            "not_found": "not_found_error",
            "rate_limit_requests": "rate_limit_error",
            "rate_limit_tokens": "rate_limit_error",
            "server": "api_error",
            "unavailable": "api_error",
            "overloaded": "overloaded_error",
            "context_length": "invalid_request_error",
        }[kind]
        body = jenc(
            {"type": "error", "error": {"type": typ, "message": message}, "request_id": request_id}
        )
        retry = "true" if status in (408, 409, 429) or status >= 500 else "false"
        return [("content-type", "application/json"), ("x-should-retry", retry)], body

    def error_message(self, kind: ErrorKind) -> str:
        return {
            "server": "Internal server error",
            "unavailable": "Service unavailable",
            "overloaded": "Overloaded",
        }.get(kind, "error")

    def auth_message(self, key: str) -> str:
        return "invalid x-api-key"

    def not_found_message(self, model: str) -> str:
        return f"model: {model}"

    def context_message(self, tokens: int, window: int) -> str:
        return f"prompt is too long: {tokens} tokens > {window} maximum"

    def rate_limit_message(self, d: Decision, model: str) -> str:
        unit = {
            "requests": "requests per minute",
            "output_tokens": "output tokens per minute",
        }.get(d.refused_on or "", "input tokens per minute")
        return (
            f"This request would exceed the rate limit for your organization "
            f"(00000000-0000-4000-8000-000000000000) of {d.limit} {unit}. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
            "current usage. Please reduce the prompt length or the maximum tokens requested, or "
            "try again later. You may also contact sales at "
            "https://www.anthropic.com/contact-sales "
            "to discuss your options for a rate limit increase."
        )

    def stream_error(self, ctx: Ctx, events_sent: int) -> bytes:
        return _event(
            b"error",
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
        )

    def malformed(self, ctx: Ctx) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_de\n\n'
        )
