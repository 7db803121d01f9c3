"""Google Gemini (``/v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``), as the simulator writes it.

Gemini writes its JSON with a space after each colon and none after commas, and
ends SSE events with ``\\r\\n\\r\\n``::

    data: {"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"},"index": 0}],
           "usageMetadata": {"promptTokenCount": 9,…},"modelVersion": "…","responseId": "…"}

The last chunk carries ``finishReason`` (``STOP``, ``MAX_TOKENS``) and the full
``usageMetadata``; function calls come whole in one chunk (``functionCall`` parts,
``finishReason: STOP``). Non-streaming bodies and errors are pretty-printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .codec import Codec, Ctx, ErrorKind, bad_gateway, decode_body, schema_text, text_of
from .model import BadRequest, SimPrompt, ToolDef, Turn
from .ratelimit import Decision

__all__ = ["GeminiCodec", "gemini_json_array", "gjson"]

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def gjson(value: Any) -> str:
    """JSON the way Gemini's streaming endpoint writes it (``{"a": 1,"b": 2}``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}: {gjson(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(gjson(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def gemini_json_array(items: Iterator[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """SSE events as Gemini streams them without ``alt=sse``: one JSON array,
    ``[{…}\r\n,{…}\r\n]`` (a fault's disconnect marker passes through)."""
    first = True
    last = 0.0
    for offset, data in items:
        last = offset
        if not data.startswith(b"data: "):
            yield offset, data
            continue
        body = data[6:].rstrip(b"\r\n")
        yield offset, (b"[" if first else b",\r\n") + body
        first = False
    yield last, b"[]" if first else b"]"


def _usage(turn: Turn, final: bool) -> dict[str, Any]:
    p = turn.input_tokens
    u: dict[str, Any] = {"promptTokenCount": p}
    if final:
        u["candidatesTokenCount"] = turn.output_tokens
        u["totalTokenCount"] = p + turn.output_tokens
    else:
        u["totalTokenCount"] = p
    if final and turn.cached_tokens:
        u["cachedContentTokenCount"] = turn.cached_tokens
    u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": p}]
    if final and turn.cached_tokens:
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": turn.cached_tokens}]
    if final:
        u["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": turn.output_tokens}]
    return u


def _calls_content(turn: Turn) -> dict[str, Any]:
    """A tool-call turn's candidate content. A call cut by max_tokens is not sent
    (Gemini's calls come whole); with none left the content has no parts."""
    parts = [
        {"functionCall": {"name": c.name, "args": c.args_object}}
        for c in turn.tool_calls
        if c.complete
    ]
    return {"parts": parts, "role": "model"} if parts else {"role": "model"}


class GeminiCodec(Codec):
    name = "gemini"
    ratelimit_style = "none"
    auth_status = 400
    stream_content_type = "text/event-stream"
    json_content_type = "application/json; charset=UTF-8"

    def parse(self, body: bytes, *, path_model: str | None, stream: bool | None) -> SimPrompt:
        data = decode_body(body)
        contents = data.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
        segments: list[tuple[str, bool]] = []
        tools: list[ToolDef] = []
        for tool in data.get("tools") or []:
            decls = (
                (tool.get("functionDeclarations") or tool.get("function_declarations") or [])
                if isinstance(tool, dict)
                else []
            )
            for d in decls:
                schema = (
                    d.get("parametersJsonSchema")
                    or d.get("parameters_json_schema")
                    or d.get("parameters")
                )
                schema = schema or {"type": "object", "properties": {}}
                tools.append(ToolDef(d.get("name", ""), schema))
                segments.append(
                    (schema_text(d.get("name", ""), d.get("description"), schema), False)
                )
        system = data.get("systemInstruction") or data.get("system_instruction")
        if isinstance(system, dict):
            segments.append(("system:" + text_of(system.get("parts")), False))
        names_seen: list[str] = []
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise BadRequest(f"* GenerateContentRequest.contents[{i}]: invalid content\n")
            role = content.get("role", "user")
            pieces = []
            for part in content.get("parts") or []:
                if not isinstance(part, dict):
                    continue
                call = part.get("functionCall") or part.get("function_call")
                resp = part.get("functionResponse") or part.get("function_response")
                if call:
                    names_seen.append(call.get("name", ""))
                    pieces.append(
                        f"call:{call.get('name')}:"
                        + json.dumps(call.get("args", {}), sort_keys=True)
                    )
                elif resp:
                    pieces.append(f"result:{json.dumps(resp.get('response', {}), sort_keys=True)}")
                elif "text" in part:
                    pieces.append(str(part["text"]))
                else:
                    pieces.append("[data]")
            segments.append((f"{role}:{''.join(pieces)}", False))
        results: list[tuple[str, str]] = []
        for part in contents[-1].get("parts") or []:
            resp = (
                part.get("functionResponse") or part.get("function_response")
                if isinstance(part, dict)
                else None
            )
            if resp:
                payload = resp.get("response", {})
                text = payload if isinstance(payload, str) else json.dumps(payload)
                results.append((resp.get("name", "tool"), text))
        choice, name = "auto", None
        cfg = (data.get("toolConfig") or data.get("tool_config") or {}).get(
            "functionCallingConfig"
        ) or {}
        mode = str(cfg.get("mode", "AUTO")).upper()
        if mode == "NONE":
            choice = "none"
        elif mode in ("ANY", "VALIDATED"):
            allowed = cfg.get("allowedFunctionNames") or cfg.get("allowed_function_names") or []
            choice, name = ("tool", allowed[0]) if len(allowed) == 1 else ("required", None)
        gen = data.get("generationConfig") or data.get("generation_config") or {}
        max_tokens = gen.get("maxOutputTokens", gen.get("max_output_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise BadRequest(
                "* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n"
            )
        return SimPrompt(
            model=path_model or "gemini",
            stream=bool(stream),
            max_tokens=max_tokens,
            segments=segments,
            tools=tools,
            tool_choice=choice,
            tool_name=name,
            parallel=True,
            tool_results=results,
            include_usage=True,
        )

    def headers(self, ctx_request_id: str) -> list[tuple[str, str]]:
        return [
            ("vary", "Origin, X-Origin, Referer"),
            ("server", "scaffolding on HTTPServer2"),
            ("x-xss-protection", "0"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-content-type-options", "nosniff"),
            ("server-timing", "gfet4t7; dur=1"),
        ]

    def _tail(self, ctx: Ctx, final: bool) -> str:
        return (
            ',"usageMetadata": '
            + gjson(_usage(ctx.turn, final))
            + ',"modelVersion": '
            + json.dumps(ctx.model)
            + ',"responseId": '
            + json.dumps(ctx.turn.id_suffix[:22])
            + "}\r\n\r\n"
        )

    def stream(self, ctx: Ctx) -> Iterator[tuple[float, bytes]]:
        turn = ctx.turn
        at = ctx.timing.at
        finish = _FINISH[turn.finish]
        if turn.tool_calls:
            cand = {
                "content": _calls_content(turn),
                "finishReason": finish,
                "index": 0,
            }
            last = sum(len(c.chunks) for c in turn.tool_calls) - 1
            yield (
                at(last),
                ('data: {"candidates": [' + gjson(cand) + "]" + self._tail(ctx, True)).encode(),
            )
            return
        pre = b'data: {"candidates": [{"content": {"parts": [{"text": "'
        mid = b'"}],"role": "model"},"index": 0}]'
        tail = self._tail(ctx, False).encode()
        escaped = turn.escaped
        n = len(escaped)
        for i in range(n - 1):
            yield at(i), pre + escaped[i] + mid + tail
        yield (
            at(n - 1),
            (
                pre
                + escaped[n - 1]
                + b'"}],"role": "model"},"finishReason": "'
                + finish.encode()
                + b'","index": 0}]'
                + self._tail(ctx, True).encode()
            ),
        )

    def body(self, ctx: Ctx) -> bytes:
        turn = ctx.turn
        content = (
            _calls_content(turn)
            if turn.tool_calls
            else {"parts": [{"text": turn.text}], "role": "model"}
        )
        body = {
            "candidates": [
                {
                    "content": content,
                    "finishReason": _FINISH[turn.finish],
                    "index": 0,
                }
            ],
            "usageMetadata": _usage(turn, True),
            "modelVersion": ctx.model,
            "responseId": turn.id_suffix[:22],
        }
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()

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
        code_status = {
            "invalid_request": "INVALID_ARGUMENT",
            # A bad key is 400 on the Gemini API (not 401), told apart by its reason.
            "authentication": "INVALID_ARGUMENT",
            "not_found": "NOT_FOUND",
            "rate_limit_requests": "RESOURCE_EXHAUSTED",
            "rate_limit_tokens": "RESOURCE_EXHAUSTED",
            "server": "INTERNAL",
            "unavailable": "UNAVAILABLE",
            "overloaded": "UNAVAILABLE",
            "context_length": "INVALID_ARGUMENT",
        }[kind]
        err: dict[str, Any] = {"code": status, "message": message, "status": code_status}
        if kind == "authentication":
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ]
        elif kind.startswith("rate_limit"):
            # A paid-tier key's quota names: the metric and the quota id both say
            # which limit was hit (requests, or input tokens per minute).
            if kind == "rate_limit_requests":
                metric = "generate_content_paid_tier_requests"
                quota_id = "GenerateRequestsPerMinutePerProjectPerModel"
            else:
                metric = "generate_content_paid_tier_input_token_count"
                quota_id = "GenerateContentPaidTierInputTokensPerModelPerMinute"
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
                            "quotaId": quota_id,
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{max(1, round(retry_after or 1))}s",
                },
            ]
        body = (json.dumps({"error": err}, indent=2) + "\n").encode()
        return [("content-type", "application/json; charset=UTF-8")], body

    def error_message(self, kind: ErrorKind) -> str:
        return {
            "server": "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            "unavailable": "The model is overloaded. Please try again later.",
            "overloaded": "The model is overloaded. Please try again later.",
        }.get(kind, "error")

    def auth_message(self, key: str) -> str:
        return "API key not valid. Please pass a valid API key."

    def not_found_message(self, model: str) -> str:
        return (
            f"models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods."
        )

    def context_message(self, tokens: int, window: int) -> str:
        return (
            f"The input token count ({tokens}) exceeds the maximum number of tokens "
            f"allowed ({window})."
        )

    def rate_limit_message(self, d: Decision, model: str) -> str:
        return (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
        )

    def stream_error(self, ctx: Ctx, events_sent: int) -> bytes:
        err = {
            "error": {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
        }
        return ("data: " + gjson(err) + "\r\n\r\n").encode()

    def malformed(self, ctx: Ctx) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n'
