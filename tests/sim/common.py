"""Requests of each family, and decoding of what the simulator sends back."""

from __future__ import annotations

from typing import Any

import httpx

from providers.events import (
    ErrorEvent,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallDone,
    Usage,
)
from providers.families import get_family

FAMILIES = ("openai", "anthropic", "openai-responses", "gemini")

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}


def request(
    family: str,
    *,
    text: str = "hello there",
    stream: bool = True,
    max_tokens: int | None = None,
    tools: list[tuple[str, dict[str, Any]]] | None = None,
    tool_choice: str | None = None,
    messages: list[dict[str, Any]] | None = None,
    model: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of a simple request of ``family``."""
    tools = tools or []
    if family == "openai":
        body: dict[str, Any] = {
            "model": model or "gpt-sim",
            "messages": messages or [{"role": "user", "content": text}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if max_tokens:
            body["max_completion_tokens"] = max_tokens
        if tools:
            body["tools"] = [
                {"type": "function", "function": {"name": n, "parameters": s}} for n, s in tools
            ]
        if tool_choice:
            body["tool_choice"] = tool_choice
        return "/v1/chat/completions", body
    if family == "anthropic":
        body = {
            "model": model or "claude-sim",
            "max_tokens": max_tokens or 1024,
            "messages": messages or [{"role": "user", "content": text}],
            "stream": stream,
        }
        if tools:
            body["tools"] = [{"name": n, "input_schema": s} for n, s in tools]
        if tool_choice:
            body["tool_choice"] = {"type": {"required": "any"}.get(tool_choice, tool_choice)}
        return "/v1/messages", body
    if family == "openai-responses":
        body = {"model": model or "gpt-sim", "input": messages or text, "stream": stream}
        if max_tokens:
            body["max_output_tokens"] = max_tokens
        if tools:
            body["tools"] = [{"type": "function", "name": n, "parameters": s} for n, s in tools]
        if tool_choice:
            body["tool_choice"] = tool_choice
        return "/v1/responses", body
    assert family == "gemini"
    m = model or "gemini-sim"
    path = (
        f"/v1beta/models/{m}:streamGenerateContent?alt=sse"
        if stream
        else f"/v1beta/models/{m}:generateContent"
    )
    body = {"contents": messages or [{"role": "user", "parts": [{"text": text}]}]}
    if max_tokens:
        body["generationConfig"] = {"maxOutputTokens": max_tokens}
    if tools:
        body["tools"] = [{"functionDeclarations": [{"name": n, "parameters": s} for n, s in tools]}]
    if tool_choice:
        mode = {"none": "NONE", "required": "ANY", "auto": "AUTO"}[tool_choice]
        body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    return path, body


def decode(family: str, data: bytes) -> list[StreamEvent]:
    """Decode a whole stream with our own family decoder."""
    dec = get_family(family).stream_decoder()
    return [*dec.feed(data), *dec.end()]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finish_of(events: list[StreamEvent]) -> str:
    last = events[-1]
    assert isinstance(last, Finish), last
    return last.reason


def usage_of(events: list[StreamEvent]) -> Usage:
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages
    return usages[-1]


def tool_calls_of(events: list[StreamEvent]) -> list[ToolCallDone]:
    return [e for e in events if isinstance(e, ToolCallDone)]


def errors_of(events: list[StreamEvent]) -> list[ErrorEvent]:
    return [e for e in events if isinstance(e, ErrorEvent)]


async def post(client: httpx.AsyncClient, base: str, family: str, **kw: Any) -> httpx.Response:
    path, body = request(family, **kw)
    return await client.post(base + path, json=body, headers={"authorization": "Bearer sk-test"})
