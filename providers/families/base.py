"""The contract of a wire-protocol family, and what families share.

A family is sans-IO: it turns a normalized :class:`~providers.messages.Request`
into an :class:`HttpRequest` (bytes and headers), and response bytes back into
normalized events, responses and typed errors. It never opens a socket; the thin
client (``providers.client``) and the runtime do the IO.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import msgspec

from ..errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthExceededError,
    NotFoundError,
    OverloadedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from ..events import ErrorEvent, Response, StreamEvent
from ..messages import Request
from ..ratelimits import RateLimitInfo, parse_rate_limit_headers, parse_retry_after
from ..secrets import Secret

__all__ = [
    "Endpoint",
    "Family",
    "HttpRequest",
    "Quirks",
    "StreamDecoder",
    "classify_error",
    "error_event",
    "error_from_event",
    "error_kind",
    "json_body",
]


class Quirks(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How an OpenAI-compatible vendor departs from OpenAI's own API.

    Decoders are tolerant by default (tool calls without ``index``,
    ``reasoning_content``, ``citations``, DeepSeek's cache-hit counters are always
    understood); quirks cover what must change in the *request*.

    Attributes:
        max_tokens_field: ``max_completion_tokens`` (OpenAI's current name) or
            ``max_tokens`` (what most compatible servers take).
        stream_usage: Send ``stream_options.include_usage`` (some servers reject it).
        parallel_tool_calls: Send ``parallel_tool_calls`` (some servers reject it).
        strict_tools: Send ``strict`` on function tools.
        reasoning_effort: Send ``reasoning_effort``.
        azure: Azure OpenAI: the model is a deployment name in the URL path, the
            ``api-version`` query parameter is required, the key goes in ``api-key``.
    """

    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_tokens"
    stream_usage: bool = True
    parallel_tool_calls: bool = True
    strict_tools: bool = True
    reasoning_effort: bool = True
    azure: bool = False


class Endpoint(msgspec.Struct, kw_only=True, frozen=True):
    """Where and how to reach one provider deployment.

    Attributes:
        provider: The name used in errors, metrics and routes (``openai``, ``groq``).
        base_url: The API root, such as ``https://api.openai.com/v1``. For Azure,
            the resource root ``https://NAME.openai.azure.com``.
        api_key: The key; sent in the family's (or preset's) auth header.
        auth_header: Header that carries the key. ``authorization`` is sent as
            ``Bearer KEY``; any other header carries the bare key.
        headers: Extra headers on every request (``anthropic-beta``, ``HTTP-Referer``).
        query: Extra query parameters (Azure ``api-version``).
        quirks: Request-side departures of OpenAI-compatible vendors.
    """

    provider: str
    base_url: str
    api_key: Secret | None = None
    auth_header: str | None = None
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    quirks: Quirks = Quirks()

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"Endpoint {self.provider!r}: base_url must start with http:// or https://, "
                f"got {self.base_url!r}"
            )

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


class HttpRequest(msgspec.Struct, kw_only=True, frozen=True):
    """An HTTP request a family built, ready for any HTTP client.

    Invariant: ``headers`` and ``url`` never hold a secret; the key travels in
    ``secret_headers`` (values are :class:`Secret`), which the sender merges at the
    last moment, so this object can be logged or shown.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secret_headers: dict[str, Secret] = {}
    params: dict[str, str] = {}

    def wire_headers(self) -> dict[str, str]:
        """All headers as sent, secrets revealed. Only for the sender."""
        merged = dict(self.headers)
        for name, secret in self.secret_headers.items():
            merged[name] = secret.reveal()
        return merged


class StreamDecoder(abc.ABC):
    """Turns the bytes of one streaming response into normalized events.

    Feed each chunk as it arrives (any split: a chunk may end mid-line or
    mid-character); :meth:`end` at end of stream. One decoder per response.

    Invariant: once an event ends the stream (Finish or ErrorEvent), the decoder
    emits nothing more; ``done`` says so.
    """

    done: bool = False

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[StreamEvent]:
        """Decode a chunk.

        Raises:
            StreamDecodeError: the bytes are not a valid stream of this family.
        """

    def end(self) -> list[StreamEvent]:
        """The stream is over: flush, and check that it ended properly.

        Raises:
            StreamProtocolError: the stream stopped before its terminal event.
        """
        if not self.done:
            raise StreamProtocolError("the stream ended before the response finished")
        return []


class Family(abc.ABC):
    """A wire-protocol family (OpenAI Chat Completions, Anthropic Messages...)."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]

    @abc.abstractmethod
    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        """Build the HTTP request for ``request``.

        Raises:
            RequestError: the request cannot be expressed in this family.
        """

    @abc.abstractmethod
    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streaming response."""

    @abc.abstractmethod
    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        """Decode a whole (non-streaming) response body.

        ``provider`` and ``model`` name the call in the errors raised (the family's
        own name and no model when not given).

        Raises:
            APIError: the body is an error object, not a response: the typed error
                it describes (``OverloadedError``, ``RateLimitError``...), so a 200
                carrying an error is retried or not exactly as a streamed one is.
            StreamDecodeError: the body is neither this family's response nor an error.
        """

    @abc.abstractmethod
    def map_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        provider: str,
        model: str | None,
        now: float,
    ) -> APIError:
        """Map an error response (non-2xx) to a typed error with retry hints."""

    def rate_limits(self, headers: Mapping[str, str], now: float) -> RateLimitInfo:
        """Read the rate-limit headers of any response, successful or not."""
        return parse_rate_limit_headers(headers, now)


# -- error classification shared by every family ---------------------------------

_CONTEXT_LENGTH_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "exceeds the maximum number of tokens",
    "input token count",
    "string_above_max_length",
    "reduce the length",
)

_TYPE_TO_CLASS: dict[str, type[APIError]] = {
    # Anthropic error types
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "not_found_error": NotFoundError,
    "request_too_large": BadRequestError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "overloaded_error": OverloadedError,
    "timeout_error": APITimeoutError,
    # OpenAI codes and types
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": QuotaExceededError,
    "server_error": ServerError,
    "context_length_exceeded": ContextLengthExceededError,
    "content_filter": ContentFilterError,
    "content_policy_violation": ContentFilterError,
    "model_not_found": NotFoundError,
    "invalid_api_key": AuthenticationError,
    # Gemini statuses
    "RESOURCE_EXHAUSTED": RateLimitError,
    "UNAVAILABLE": OverloadedError,
    "INTERNAL": ServerError,
    "DEADLINE_EXCEEDED": APITimeoutError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
    "NOT_FOUND": NotFoundError,
    "INVALID_ARGUMENT": BadRequestError,
    "FAILED_PRECONDITION": BadRequestError,
}


# Codes that decide the class whatever the status says.
_ALWAYS_WINS = frozenset(
    {"context_length_exceeded", "insufficient_quota", "content_filter", "content_policy_violation"}
)


def _class_for_status(status: int) -> type[APIError]:
    if status == 429:
        return RateLimitError
    if status in (529, 503):
        return OverloadedError
    if status in (408, 504):
        return APITimeoutError
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status >= 500:
        return ServerError
    return BadRequestError


def _is_context_length(message: str, provider_type: str | None) -> bool:
    text = f"{provider_type or ''} {message}".lower()
    return any(marker in text for marker in _CONTEXT_LENGTH_MARKERS)


def classify_error(
    status: int,
    message: str,
    *,
    provider_type: str | None,
    codes: tuple[str | None, ...] = (),
    headers: Mapping[str, str] | None = None,
    provider: str,
    model: str | None,
    now: float,
) -> APIError:
    """Build the typed error for a provider error.

    The HTTP status decides the class unless the provider's own type or code is
    more specific (a 400 ``context_length_exceeded``, a 200 stream's
    ``overloaded_error``). ``retry_after`` comes from the headers.

    Args:
        status: HTTP status (200 for an error inside a stream).
        message: The provider's error message.
        provider_type: The provider's error type (``rate_limit_error``), if any.
        codes: Further codes to consult (OpenAI ``code``, Gemini ``status``).
        headers: Response headers, for ``retry-after``.
    """
    cls = _class_for_status(status) if status != 200 else ServerError
    for code in (*codes, provider_type):
        if code and code in _TYPE_TO_CLASS:
            candidate = _TYPE_TO_CLASS[code]
            # The provider's code refines a generic status (400, 500, or an error
            # inside a 200 stream) but does not override a specific one: a 503 whose
            # type is "server_error" is still overload. A few codes always win
            # because they change what the caller must do.
            if status == 200 or cls in (BadRequestError, ServerError) or code in _ALWAYS_WINS:
                cls = candidate
            break
    if issubclass(cls, BadRequestError) and _is_context_length(message, provider_type):
        cls = ContextLengthExceededError
    retry_after = None
    # A 429's rate-limit headers, parsed once: its wait and which limit it hit.
    info = (
        parse_rate_limit_headers(headers, now)
        if headers is not None and issubclass(cls, RateLimitError)
        else None
    )
    if headers is not None:
        retry_after = parse_retry_after(headers, now)
        if retry_after is None and info is not None:
            retry_after = _exhausted_window_wait(info)
    error = cls(
        message or "(no message)",
        provider=provider,
        model=model,
        status=status,
        provider_type=provider_type,
        request_id=_request_id(headers) if headers is not None else None,
        retry_after=retry_after,
    )
    if isinstance(error, RateLimitError):
        error.limit = limit_hit(message, info)
    return error


# How 429 messages name the limit: OpenAI "... on tokens per min (TPM): Limit 30000,
# Used ...", "... on requests per min (RPM) ..."; Anthropic "... rate limit of 50,000
# input tokens per minute", "... of 50 requests per minute"; Gemini's quota metrics
# "generate_content_free_tier_input_token_count", "..._requests".
_TOKENS_MARKERS = ("tokens per min", "(tpm)", "tokens per day", "(tpd)", "token_count")
_REQUESTS_MARKERS = ("requests per min", "(rpm)", "requests per day", "(rpd)", "_requests")


def limit_hit(text: str, info: RateLimitInfo | None) -> Literal["requests", "tokens"] | None:
    """Which limit a 429 says was hit: ``tokens``, ``requests``, or None (unknown).

    The headers decide when they show one kind of limit exhausted and not the other
    (tokens at 0 while requests remain is a token-limit 429); otherwise the wording
    of the message (or quota metric) does. None lets a limiter cut both, which is
    safe but slower to recover.
    """
    if info is not None:
        tokens_out = 0 in (
            info.tokens_remaining,
            info.input_tokens_remaining,
            info.output_tokens_remaining,
        )
        requests_out = info.requests_remaining == 0
        if tokens_out != requests_out:
            return "tokens" if tokens_out else "requests"
    lowered = text.lower()
    tokens = any(marker in lowered for marker in _TOKENS_MARKERS)
    requests = any(marker in lowered for marker in _REQUESTS_MARKERS)
    if tokens != requests:
        return "tokens" if tokens else "requests"
    return None


def _exhausted_window_wait(info: RateLimitInfo) -> float | None:
    """A 429 without ``retry-after``: the wait until the windows it exhausted reset.

    OpenAI's 429s often carry only ``x-ratelimit-reset-{requests,tokens}``, and
    Anthropic's ``anthropic-ratelimit-*-reset`` instants. The wait is the latest
    reset among the buckets reported empty (every one must refill before a retry
    can pass). With none reported empty (a request larger than what is left) it is
    None: a full window's reset can be minutes away while a partial refill is
    enough, so the caller's backoff decides.
    """
    buckets = (
        (info.requests_remaining, info.requests_reset),
        (info.tokens_remaining, info.tokens_reset),
        (info.input_tokens_remaining, info.input_tokens_reset),
        (info.output_tokens_remaining, info.output_tokens_reset),
    )
    waits = [reset for remaining, reset in buckets if remaining == 0 and reset is not None]
    return max(0.0, max(waits)) if waits else None


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-request-id", "request-id", "anthropic-request-id", "x-goog-request-id"):
        value = headers.get(name)
        if value:
            return value
    return None


def error_kind(provider_type: str | None, status: int = 200) -> tuple[str, bool]:
    """The normalized kind (a class name) and retryability of an in-stream error."""
    cls = _TYPE_TO_CLASS.get(
        provider_type or "", _class_for_status(status) if status != 200 else ServerError
    )
    return cls.__name__, cls.retryable


def error_from_event(
    event: ErrorEvent, *, provider: str, model: str | None, in_stream: bool = True
) -> APIError:
    """The exception an ErrorEvent describes (raised by the client).

    ``in_stream=False`` for the error object of a non-streaming 200 body.
    """
    from .. import errors

    cls = getattr(errors, event.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, APIError)):
        cls = ServerError
    if issubclass(cls, BadRequestError) and _is_context_length(event.message, event.provider_type):
        cls = ContextLengthExceededError
    return cls(
        event.message,
        provider=provider,
        model=model,
        status=200,
        provider_type=event.provider_type,
        in_stream=in_stream,
    )


def error_event(provider_type: str | None, message: str, *, status: int = 200) -> ErrorEvent:
    """An ErrorEvent for an error reported inside a stream."""
    kind, retryable = error_kind(provider_type, status)
    return ErrorEvent(kind=kind, message=message, provider_type=provider_type, retryable=retryable)


def json_body(payload: dict[str, Any], extra: Mapping[str, Any]) -> bytes:
    """Encode a request body, with the caller's ``extra`` fields merged last."""
    if extra:
        payload = {**payload, **extra}
    return _encoder.encode(payload)


_encoder = msgspec.json.Encoder()
