"""OpenAI Responses (``POST /v1/responses``), as the simulator writes it.

Stream (named events, each with a ``sequence_number``)::

    response.created → response.in_progress
    → response.output_item.added (message) → response.content_part.added
    → response.output_text.delta … → response.output_text.done
    → response.content_part.done → response.output_item.done
    → response.completed             (response.incomplete when max_output_tokens is hit)

Tool calls are ``function_call`` output items whose arguments stream as
``response.function_call_arguments.delta``/``.done``. The in-stream error is
``response.failed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .codec import (
    OBFUSCATION_PADS,
    Codec,
    Ctx,
    ErrorKind,
    decode_body,
    include_obfuscation,
    jenc,
    need,
    obfuscation,
    opt_int,
    schema_text,
    text_of,
)
from .model import BadRequest, SimPrompt, ToolDef, Turn
from .openai_chat import openai_error

__all__ = ["OpenAIResponsesCodec"]


def _usage(turn: Turn) -> dict[str, Any]:
    return {
        "input_tokens": turn.input_tokens,
        "input_tokens_details": {"cached_tokens": turn.cached_tokens},
        "output_tokens": turn.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": turn.input_tokens + turn.output_tokens,
    }


def _ev(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + jenc(payload) + b"\n\n"


class OpenAIResponsesCodec(Codec):
    name = "openai-responses"

    def parse(self, body: bytes, *, path_model: str | None, stream: bool | None) -> SimPrompt:
        data = decode_body(body)
        model = need(data, "model", str)
        if "input" not in data:
            raise BadRequest("Missing required parameter: 'input'.", param="input")
        raw_input = data["input"]
        segments: list[tuple[str, bool]] = []
        tools: list[ToolDef] = []
        for i, tool in enumerate(data.get("tools") or []):
            if not isinstance(tool, dict):
                raise BadRequest(f"Invalid 'tools[{i}]'.", param=f"tools[{i}]")
            if tool.get("type") == "function":
                if not isinstance(tool.get("name"), str):
                    raise BadRequest(
                        f"Missing required parameter: 'tools[{i}].name'.", param=f"tools[{i}].name"
                    )
                schema = tool.get("parameters") or {"type": "object", "properties": {}}
                tools.append(ToolDef(tool["name"], schema))
                segments.append((schema_text(tool["name"], tool.get("description"), schema), False))
        if isinstance(data.get("instructions"), str):
            segments.append(("system:" + data["instructions"], False))
        items = (
            [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input
        )
        if not isinstance(items, list):
            raise BadRequest("Invalid type for 'input'.", param="input")
        names: dict[str, str] = {}
        last_model_item = -1
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(f"Invalid 'input[{i}]'.", param=f"input[{i}]")
            typ = item.get("type", "message")
            if typ == "message":
                role = item.get("role", "user")
                if role == "assistant":
                    last_model_item = i
                segments.append((f"{role}:{text_of(item.get('content'))}", False))
            elif typ == "function_call":
                names[item.get("call_id", "")] = item.get("name", "")
                last_model_item = i
                segments.append(
                    (f"assistant:call:{item.get('name')}:{item.get('arguments')}", False)
                )
            elif typ == "function_call_output":
                out = item.get("output")
                segments.append((f"tool:{out if isinstance(out, str) else text_of(out)}", False))
            elif typ == "reasoning":
                last_model_item = i
                segments.append(("reasoning:" + str(item.get("id", "")), False))
        results: list[tuple[str, str]] = []
        for item in items[last_model_item + 1 :]:
            if item.get("type") == "function_call_output":
                out = item.get("output")
                results.append(
                    (
                        names.get(item.get("call_id", ""), "tool"),
                        out if isinstance(out, str) else text_of(out),
                    )
                )
        choice, choice_name = "auto", None
        tc = data.get("tool_choice")
        if isinstance(tc, str):
            choice = tc if tc in ("auto", "none", "required") else "auto"
        elif isinstance(tc, dict) and isinstance(tc.get("name"), str):
            choice, choice_name = "tool", tc["name"]
        echo = {
            "instructions": data.get("instructions"),
            "max_output_tokens": data.get("max_output_tokens"),
            "parallel_tool_calls": data.get("parallel_tool_calls", True),
            "previous_response_id": data.get("previous_response_id"),
            "temperature": data.get("temperature", 1.0),
            "top_p": data.get("top_p", 1.0),
            "tool_choice": tc if tc is not None else "auto",
            "tools": data.get("tools") or [],
            "metadata": data.get("metadata") or {},
            "store": data.get("store", True),
            "prompt_cache_key": data.get("prompt_cache_key"),
            "text": data.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        }
        return SimPrompt(
            model=model,
            stream=bool(data.get("stream")),
            max_tokens=opt_int(data, "max_output_tokens"),
            segments=segments,
            tools=tools,
            tool_choice=choice,
            tool_name=choice_name,
            parallel=data.get("parallel_tool_calls", True) is not False,
            tool_results=results,
            include_usage=True,
            obfuscate=include_obfuscation(data.get("stream_options")),
            echo=echo,
        )

    def headers(self, ctx_request_id: str) -> list[tuple[str, str]]:
        return [
            ("openai-organization", "user-sim"),
            ("openai-processing-ms", "1"),
            ("openai-project", "proj_sim"),
            ("openai-version", "2020-10-01"),
            ("x-request-id", ctx_request_id),
        ]

    def _response(
        self,
        ctx: Ctx,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        e = ctx.prompt.echo
        return {
            "id": "resp_" + ctx.turn.id_suffix,
            "object": "response",
            "created_at": ctx.created,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": e.get("instructions"),
            "max_output_tokens": e.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": ctx.model,
            "output": output,
            "parallel_tool_calls": e.get("parallel_tool_calls", True),
            "previous_response_id": e.get("previous_response_id"),
            "prompt_cache_key": e.get("prompt_cache_key"),
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": None,
            "service_tier": "default",
            "store": e.get("store", True),
            "temperature": e.get("temperature", 1.0),
            "text": e.get("text"),
            "tool_choice": e.get("tool_choice", "auto"),
            "tools": e.get("tools", []),
            "top_logprobs": 0,
            "top_p": e.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": e.get("metadata", {}),
        }

    def _msg_id(self, ctx: Ctx) -> str:
        return "msg_" + ctx.turn.id_suffix

    def _output(self, ctx: Ctx) -> list[dict[str, Any]]:
        turn = ctx.turn
        if turn.tool_calls:
            return [
                {
                    "id": "fc_" + c.suffix,
                    "type": "function_call",
                    "status": "completed" if c.complete else "incomplete",
                    "arguments": c.arguments,
                    "call_id": "call_" + c.suffix,
                    "name": c.name,
                }
                for c in turn.tool_calls
            ]
        return [
            {
                "id": self._msg_id(ctx),
                "type": "message",
                "status": "incomplete" if turn.finish == "length" else "completed",
                "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": turn.text}
                ],
                "role": "assistant",
            }
        ]

    def _final(self, ctx: Ctx) -> tuple[str, dict[str, Any]]:
        turn = ctx.turn
        if turn.finish == "length":
            return "response.incomplete", self._response(
                ctx,
                "incomplete",
                self._output(ctx),
                _usage(turn),
                incomplete={"reason": "max_output_tokens"},
            )
        return "response.completed", self._response(
            ctx, "completed", self._output(ctx), _usage(turn)
        )

    def stream(self, ctx: Ctx) -> Iterator[tuple[float, bytes]]:
        turn = ctx.turn
        at = ctx.timing.at
        seq = 0
        for name in ("response.created", "response.in_progress"):
            yield (
                at(-1),
                _ev(
                    name,
                    {
                        "type": name,
                        "sequence_number": seq,
                        "response": self._response(ctx, "in_progress", [], None),
                    },
                ),
            )
            seq += 1
        i = 0
        if turn.tool_calls:
            for k, c in enumerate(turn.tool_calls):
                item_id = "fc_" + c.suffix
                item: dict[str, Any] = {
                    "id": item_id,
                    "type": "function_call",
                    "status": "in_progress",
                    "arguments": "",
                    "call_id": "call_" + c.suffix,
                    "name": c.name,
                }
                yield (
                    at(i),
                    _ev(
                        "response.output_item.added",
                        {
                            "type": "response.output_item.added",
                            "sequence_number": seq,
                            "output_index": k,
                            "item": item,
                        },
                    ),
                )
                seq += 1
                pre = (
                    b"event: response.function_call_arguments.delta\n"
                    b'data: {"type":"response.function_call_arguments.delta","sequence_number":'
                )
                mid = (
                    b',"item_id":"'
                    + item_id.encode()
                    + b'","output_index":'
                    + str(k).encode()
                    + b',"delta":'
                )
                for chunk in c.chunks:
                    pad = obfuscation(seq) if ctx.prompt.obfuscate else b""
                    yield (
                        at(i),
                        b"".join((pre, str(seq).encode(), mid, jenc(chunk), pad, b"}\n\n")),
                    )
                    seq += 1
                    i += 1
                yield (
                    at(i - 1),
                    _ev(
                        "response.function_call_arguments.done",
                        {
                            "type": "response.function_call_arguments.done",
                            "sequence_number": seq,
                            "item_id": item_id,
                            "output_index": k,
                            "arguments": c.arguments,
                        },
                    ),
                )
                seq += 1
                yield (
                    at(i - 1),
                    _ev(
                        "response.output_item.done",
                        {
                            "type": "response.output_item.done",
                            "sequence_number": seq,
                            "output_index": k,
                            "item": {
                                **item,
                                "status": "completed" if c.complete else "incomplete",
                                "arguments": c.arguments,
                            },
                        },
                    ),
                )
                seq += 1
            last = i - 1
        else:
            msg_id = self._msg_id(ctx)
            item = {
                "id": msg_id,
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            }
            yield (
                at(0),
                _ev(
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "sequence_number": seq,
                        "output_index": 0,
                        "item": item,
                    },
                ),
            )
            seq += 1
            empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            yield (
                at(0),
                _ev(
                    "response.content_part.added",
                    {
                        "type": "response.content_part.added",
                        "sequence_number": seq,
                        "item_id": msg_id,
                        "output_index": 0,
                        "content_index": 0,
                        "part": empty,
                    },
                ),
            )
            seq += 1
            pre = (
                b"event: response.output_text.delta\n"
                b'data: {"type":"response.output_text.delta","sequence_number":'
            )
            mid = (
                b',"item_id":"'
                + msg_id.encode()
                + b'","output_index":0,"content_index":0,"delta":"'
            )
            # The per-token loop: the 16 padded suffixes are built once, picked by
            # sequence number as obfuscation() would.
            pads = OBFUSCATION_PADS if ctx.prompt.obfuscate else (b"",) * 16
            sufs = [b'","logprobs":[]' + pad + b"}\n\n" for pad in pads]
            for i, tok in enumerate(turn.escaped):
                yield at(i), b"".join((pre, str(seq).encode(), mid, tok, sufs[(seq * 7 + 3) % 16]))
                seq += 1
            last = len(turn.escaped) - 1
            text = turn.text
            yield (
                at(last),
                _ev(
                    "response.output_text.done",
                    {
                        "type": "response.output_text.done",
                        "sequence_number": seq,
                        "item_id": msg_id,
                        "output_index": 0,
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    },
                ),
            )
            seq += 1
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            yield (
                at(last),
                _ev(
                    "response.content_part.done",
                    {
                        "type": "response.content_part.done",
                        "sequence_number": seq,
                        "item_id": msg_id,
                        "output_index": 0,
                        "content_index": 0,
                        "part": part,
                    },
                ),
            )
            seq += 1
            yield (
                at(last),
                _ev(
                    "response.output_item.done",
                    {
                        "type": "response.output_item.done",
                        "sequence_number": seq,
                        "output_index": 0,
                        "item": self._output(ctx)[0],
                    },
                ),
            )
            seq += 1
        name, response = self._final(ctx)
        yield at(last), _ev(name, {"type": name, "sequence_number": seq, "response": response})

    def body(self, ctx: Ctx) -> bytes:
        return jenc(self._final(ctx)[1])

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
        error = {
            "code": "server_error",
            "message": "The server had an error while processing your request. Sorry about that!",
        }
        return _ev(
            "response.failed",
            {
                "type": "response.failed",
                "sequence_number": events_sent,
                "response": self._response(ctx, "failed", [], None, error=error),
            },
        )

    def malformed(self, ctx: Ctx) -> bytes:
        return (
            b"event: response.output_text.delta\n"
            b'data: {"type":"response.output_text.delta","sequence_number":\n\n'
        )
