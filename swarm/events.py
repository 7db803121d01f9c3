"""What a caller of the engine sees on a call's stream.

The provider's normalized events (``providers.events``) pass through unchanged;
the runtime adds its own:

* ``Restart``: the attempt that was streaming failed after it had committed (its
  first byte had reached the caller) and a new attempt starts from scratch. Text
  received so far is void: a consumer discards what it assembled. Only sent when
  the call allows restarts; otherwise such a failure ends the call ``Failed``.
* exactly one terminal event: ``Completed`` (with the assembled response),
  ``Failed`` (with the typed error) or ``Cancelled``.

Invariant: every call the engine accepted ends with exactly one terminal event, and
no event follows it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.events import Response, StreamEvent, Usage

__all__ = [
    "CallEvent",
    "Cancelled",
    "Completed",
    "ErrorInfo",
    "Failed",
    "Restart",
    "Terminal",
]


class ErrorInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A serializable description of why a call failed.

    Attributes:
        kind: The exception class name (``RateLimitError``, ``TimeoutError``...).
        message: Its message (providers' messages never contain a key).
        retryable: Whether a later call may succeed.
        status: The HTTP status, when the provider answered.
        provider: The provider (deployment) that failed last, when known.
    """

    kind: str
    message: str
    retryable: bool = False
    status: int | None = None
    provider: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, provider: str | None = None) -> ErrorInfo:
        return cls(
            kind=type(exc).__name__,
            message=str(exc),
            retryable=bool(getattr(exc, "retryable", False)),
            status=getattr(exc, "status", None),
            provider=getattr(exc, "provider", None) or provider,
        )


class Restart(msgspec.Struct, tag="restart", tag_field="type", kw_only=True, frozen=True):
    """A new attempt starts after a committed one failed: discard what came before."""

    call_id: str
    attempt: int
    reason: str


class Completed(msgspec.Struct, tag="completed", tag_field="type", kw_only=True, frozen=True):
    call_id: str
    response: Response

    @property
    def usage(self) -> Usage:
        return self.response.usage


class Failed(msgspec.Struct, tag="failed", tag_field="type", kw_only=True, frozen=True):
    call_id: str
    error: ErrorInfo


class Cancelled(msgspec.Struct, tag="cancelled", tag_field="type", kw_only=True, frozen=True):
    """The call was stopped before it ended: by its caller (``cancel()``, leaving
    the stream's block) or by the engine shutting down. A deadline that passes is
    not a cancellation: the call ends ``Failed`` with a ``TimeoutError``."""

    call_id: str
    reason: Literal["caller", "shutdown"] = "caller"


Terminal = Completed | Failed | Cancelled
CallEvent = StreamEvent | Restart | Completed | Failed | Cancelled
