"""The exception tree of ``providers``.

Split by whose fault it is and whether a retry may help::

    ProviderError                     root of every error this package raises
    ├── RequestError (ValueError)     the request cannot be sent as given (caller's fault)
    │   └── ToolArgumentsError        a model's tool arguments do not fit the tool's schema
    ├── APIError                      the provider answered with an error
    │   ├── RateLimitError            429                                    retryable, retry_after
    │   ├── QuotaExceededError        429 insufficient_quota: billing, not rate; never retried
    │   ├── OverloadedError           529, 503, overloaded_error in stream   retryable
    │   ├── ServerError               other 5xx, api_error in stream         retryable
    │   ├── APITimeoutError           408, the provider's own timeout        retryable
    │   ├── AuthenticationError       401, 403                               never retried
    │   ├── NotFoundError             404 (a model or deployment that does not exist)
    │   ├── BadRequestError           400, 413, 422 ...
    │   │   └── ContextLengthExceededError   the prompt does not fit the model's window
    │   └── ContentFilterError        the provider refused the content
    ├── TransportError                no usable HTTP response (httpx errors, mapped once)
    │   ├── ConnectError              retryable
    │   ├── ReadError                 the connection broke mid-response; retryable
    │   └── TimeoutError              a phase deadline passed; ``phase`` names it; retryable
    └── StreamDecodeError             the response bytes are not what the family expects
        ├── SSEError                  the byte stream is not valid SSE / UTF-8
        └── StreamProtocolError       the events break the stream grammar

Every error has ``retryable`` (a new attempt may help) and ``retry_after`` (seconds
the provider asked us to wait, or None). Messages name the provider, the model and
the status, and never contain a key: keys live in ``providers.secrets.Secret``,
whose repr hides them, and bodies are scrubbed of anything that looks like one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .ratelimits import RateLimitInfo

__all__ = [
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectError",
    "ContentFilterError",
    "ContextLengthExceededError",
    "NotFoundError",
    "OverloadedError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitError",
    "ReadError",
    "RequestError",
    "SSEError",
    "ServerError",
    "StreamDecodeError",
    "StreamProtocolError",
    "TimeoutError",
    "ToolArgumentsError",
    "TransportError",
    "scrub",
]

# Shapes of API keys as providers issue them; anything matching is masked in
# error messages, whatever the provider echoed back.
_KEY_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|xai-[A-Za-z0-9]{16,}|gsk_[A-Za-z0-9]{16,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{12,})"
)


# Shorter exact secrets are not redacted (see ProviderError.redact).
MIN_REDACTED = 4


def scrub(text: str) -> str:
    """Mask anything in ``text`` that looks like an API key."""
    return _KEY_PATTERN.sub(lambda m: m.group(0)[:3] + "***", text)


class ProviderError(Exception):
    """Root of every error ``providers`` raises."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))
        self.retry_after: float | None = None

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def redact(self, secret: str) -> None:
        """Mask every occurrence of ``secret`` (a key the caller knows) in this error.

        Shape-based scrubbing catches keys as providers issue them; this catches the
        exact key in use, whatever its shape (providers echo a wrong key back). A
        "secret" shorter than ``MIN_REDACTED`` characters (a local server's ``"k"``)
        is left alone: replacing it would mangle the message ("tok***ens") and hide
        nothing worth hiding.
        """
        if len(secret) < MIN_REDACTED:
            return
        masked = secret[:3] + "***"
        self.args = tuple(
            arg.replace(secret, masked) if isinstance(arg, str) else arg for arg in self.args
        )
        body = getattr(self, "body", None)
        if isinstance(body, str):
            self.body = body.replace(secret, masked)


class RequestError(ProviderError, ValueError):
    """The request cannot be sent as given: the caller must change it."""


class ToolArgumentsError(RequestError):
    """A model's tool arguments do not fit the tool's schema.

    Attributes:
        tool: The tool's name.
        path: Where in the arguments the problem is (``$.city``), when known.
    """

    def __init__(self, message: str, *, tool: str, path: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        self.path = path


class APIError(ProviderError):
    """The provider answered with an error.

    Attributes:
        provider: Provider (or preset) name, such as ``openai`` or ``groq``.
        model: The model asked for.
        status: HTTP status; 200 for an error event inside a stream.
        provider_type: The provider's own error type or code, when it gave one.
        request_id: The provider's request id, for support tickets.
        retry_after: Seconds the provider asked us to wait, when it said.
        body: The provider's error message (scrubbed).
        rate_limits: What the error response's rate-limit headers said (a 429's
            ``x-ratelimit-remaining-*`` tell which limit was hit and when it
            resets), or None when the error did not come with an HTTP response.
    """

    rate_limits: RateLimitInfo | None

    def __init__(
        self,
        body: str,
        *,
        provider: str,
        model: str | None,
        status: int,
        provider_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        in_stream: bool = True,
    ) -> None:
        where = f"{provider} ({model})" if model else provider
        if status != 200:
            what = f"{status} from {where}"
        elif in_stream:
            what = f"error event in stream from {where}"
        else:
            # A non-streaming answer whose 200 body is an error object (gateways,
            # vLLM, Gemini behind some proxies do this).
            what = f"error object in a 200 response from {where}"
        kind = f" [{provider_type}]" if provider_type else ""
        super().__init__(f"{what}{kind}: {body}")
        self.provider = provider
        self.model = model
        self.status = status
        self.provider_type = provider_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = scrub(body)
        self.rate_limits = None  # set by the client from the response's headers


class RateLimitError(APIError):
    """429: a rate limit. ``limit`` says which one, when the provider told.

    Attributes:
        limit: ``"requests"`` or ``"tokens"`` (input or output tokens included) when
            the response's headers or wording name the limit that was hit, else None.
    """

    retryable = True
    limit: Literal["requests", "tokens"] | None = None


class QuotaExceededError(APIError):
    """The account is out of credit or quota (OpenAI ``insufficient_quota``).

    Sent as a 429 but not a rate limit: waiting does not help, paying does.
    """


class OverloadedError(APIError):
    retryable = True


class ServerError(APIError):
    retryable = True


class APITimeoutError(APIError):
    retryable = True


class AuthenticationError(APIError):
    """401 or 403: the key is missing, wrong or lacks permission. Never retried."""


class NotFoundError(APIError):
    """404: usually a model or deployment name that does not exist."""


class BadRequestError(APIError):
    """The provider refused the request as malformed or unacceptable."""


class ContextLengthExceededError(BadRequestError):
    """The prompt (plus max_tokens) does not fit the model's context window.

    A fallback to a model with a larger window may help; a retry does not.
    """


class ContentFilterError(APIError):
    """The provider's content policy blocked the request or the response."""


class TransportError(ProviderError):
    """No usable HTTP response: the connection failed, broke, or timed out."""

    retryable = True


class ConnectError(TransportError):
    pass


class ReadError(TransportError):
    pass


class TimeoutError(TransportError):
    """A phase deadline passed. ``phase`` is one of connect, pool, write,
    first_token, idle, total."""

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class StreamDecodeError(ProviderError):
    """The response is not what the wire family expects.

    Retryable: a corrupt stream is almost always a broken proxy or connection, and
    a new attempt usually gets a clean one (the runtime still never splices output
    of a stream that had committed).
    """

    retryable = True


class SSEError(StreamDecodeError):
    """The byte stream is not valid Server-Sent Events (invalid UTF-8, a line
    longer than the decoder's limit)."""


class StreamProtocolError(StreamDecodeError):
    """The stream's events break the expected order (see ``providers.events``)."""
