"""What every family encoder of the simulator provides, and shared helpers.

An encoder (one module per family) parses its request body into a
:class:`~providers.sim.model.SimPrompt`, and writes a
:class:`~providers.sim.model.Turn` as its provider does: a stream of
``(offset, bytes)`` items (each bytes one whole SSE event, with the constant
parts of an event pre-encoded once per stream), a JSON body, or an error body.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import msgspec

from .model import BadRequest, SimPrompt, Turn
from .pacing import Timing
from .ratelimit import Decision, format_duration

__all__ = ["Codec", "Ctx", "ErrorKind", "jenc", "text_of"]

ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "not_found",
    "rate_limit_requests",
    "rate_limit_tokens",
    "server",
    "bad_gateway",
    "unavailable",
    "overloaded",
    "context_length",
]

jenc = msgspec.json.encode

_CLOUDFLARE_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def bad_gateway() -> tuple[list[tuple[str, str]], bytes]:
    """A gateway's 502 page (HTML, as real 502s in front of every provider are)."""
    return [("content-type", "text/html")], _CLOUDFLARE_502


@dataclass(slots=True)
class Ctx:
    """One request being answered."""

    prompt: SimPrompt
    turn: Turn
    timing: Timing
    model: str
    request_id: str
    created: int


# OpenAI pads each streamed delta with ``"obfuscation":"<0-15 random characters>"``
# (a side-channel mitigation on by default since 2025; ``stream_options.
# include_obfuscation: false`` turns it off). Sixteen fixed pads, picked by event
# number: every length occurs, and a stream stays reproducible.
_PAD_CHARS = "kQ3vX9mW2pL7zR4tN8cB5hJ1yF6gD0sA"
OBFUSCATION_PADS: tuple[bytes, ...] = tuple(
    b',"obfuscation":"' + (_PAD_CHARS[n:] + _PAD_CHARS[:n])[:n].encode() + b'"' for n in range(16)
)


def obfuscation(i: int) -> bytes:
    """The ``,"obfuscation":"..."`` of event number ``i``."""
    return OBFUSCATION_PADS[(i * 7 + 3) % 16]


def include_obfuscation(options: Any) -> bool:
    """``stream_options.include_obfuscation`` (absent: on, as OpenAI's default)."""
    return not (isinstance(options, dict) and options.get("include_obfuscation") is False)


def text_of(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                t = part.get("text")
                if isinstance(t, str):
                    out.append(t)
                elif part.get("type") in ("image_url", "image", "input_image", "inline_data"):
                    out.append("[image]")
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    if isinstance(content, dict):
        return json.dumps(content, sort_keys=True)
    return str(content)


def schema_text(name: str, description: Any, schema: Any) -> str:
    return f"tool:{name}:{description or ''}:{json.dumps(schema, sort_keys=True)}"


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"We could not parse the JSON body of your request. ({exc})") from exc
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def need(data: dict[str, Any], name: str, typ: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise BadRequest(f"Missing required parameter: '{name}'.", param=name)
    value = data[name]
    if not isinstance(value, typ):
        raise BadRequest(f"Invalid type for '{name}'.", param=name)
    return value


def opt_int(data: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = data.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadRequest(
                    f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                    f"but got {value!r} instead.",
                    param=name,
                )
            return value
    return None


class Codec(abc.ABC):
    """One family's wire format, as the simulator writes it."""

    name: ClassVar[str]
    stream_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    ratelimit_style: ClassVar[Literal["openai", "anthropic", "none"]] = "openai"
    # The status of a refused API key (Gemini's is 400 INVALID_ARGUMENT, API_KEY_INVALID).
    auth_status: ClassVar[int] = 401

    @abc.abstractmethod
    def parse(self, body: bytes, *, path_model: str | None, stream: bool | None) -> SimPrompt:
        """The prompt of a request body.

        Raises:
            BadRequest: the body is not a valid request of this family.
        """

    @abc.abstractmethod
    def headers(self, ctx_request_id: str) -> list[tuple[str, str]]:
        """Family-specific headers of every response (request ids and such)."""

    @abc.abstractmethod
    def stream(self, ctx: Ctx) -> Iterator[tuple[float, bytes]]:
        """The stream's events as ``(offset, bytes)``, in order."""

    @abc.abstractmethod
    def body(self, ctx: Ctx) -> bytes:
        """The non-streaming JSON body."""

    @abc.abstractmethod
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
        """Headers (content-type included) and body of an error response."""

    @abc.abstractmethod
    def stream_error(self, ctx: Ctx, events_sent: int) -> bytes:
        """The in-stream error event that ends a 200 stream (a fault)."""

    def malformed(self, ctx: Ctx) -> bytes:
        """A broken event (truncated JSON)."""
        return (
            b'data: {"id":"' + ctx.request_id.encode() + b'","choices":[{"delta":{"content":"\n\n'
        )

    def stream_terminal_after_error(self) -> bytes:
        return b""

    json_content_type: ClassVar[str] = "application/json"

    def error_message(self, kind: ErrorKind) -> str:
        """The provider's message for a server-side error of this kind."""
        return _DEFAULT_MESSAGES.get(kind, "error")

    def auth_message(self, key: str) -> str:
        shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else key
        return (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )

    def not_found_message(self, model: str) -> str:
        return f"The model `{model}` does not exist or you do not have access to it."

    def context_message(self, tokens: int, window: int) -> str:
        return (
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages."
        )

    def rate_limit_message(self, d: Decision, model: str) -> str:
        unit = "requests per min (RPM)" if d.refused_on == "requests" else "tokens per min (TPM)"
        wait = format_duration(d.retry_after or 0.0)
        return (
            f"Rate limit reached for {model} in organization org-sim on {unit}: Limit {d.limit}, "
            f"Used {d.used}, Requested {d.requested}. Please try again in {wait}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )


_DEFAULT_MESSAGES: dict[str, str] = {
    "server": "The server had an error while processing your request. Sorry about that!",
    "unavailable": "The server is overloaded or not ready yet.",
    "overloaded": "Overloaded",
}
