"""Normalized stream events and the assembled response.

Every family's stream decoder turns provider bytes into these events, so code
above ``providers`` (the runtime, the tool loop, the CLI) never sees a provider's
wire format.

The events of one response, in order::

    Start? (TextDelta | RefusalDelta | ReasoningDelta | ToolCallStart ToolCallDelta* ToolCallDone
            | Citations | Usage)* (Finish | ErrorEvent)

Invariants:
    * ``ToolCallStart(index=i)`` comes before any ``ToolCallDelta(index=i)``, and
      ``ToolCallDone(index=i)`` carries the concatenation of every delta's
      ``arguments`` for ``i``. Indexes are the decoder's own (0, 1, ...), stable
      within one response whatever the provider used.
    * ``Usage`` is a snapshot of the totals known so far: a later one supersedes
      an earlier one (Anthropic reports input at the start and output at the end).
    * A stream ends with exactly one ``Finish`` or one ``ErrorEvent``; the thin
      client raises the typed error an ``ErrorEvent`` describes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .messages import Message, ToolCall

# The events made per token are frozen and hold only str, int, bool and None, so
# they can never be part of a reference cycle: ``gc=False`` keeps them out of the
# cyclic collector (cheaper to make, and 100,000 live tokens add nothing to each
# collection's work). Citations (a list) and Response keep the default.

__all__ = [
    "Citations",
    "ErrorEvent",
    "Finish",
    "FinishReason",
    "ReasoningDelta",
    "RefusalDelta",
    "Response",
    "Start",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolCallStart",
    "Usage",
]

FinishReason = Literal[
    "stop",  # natural end, or a stop sequence
    "length",  # max_tokens (or the context window) reached
    "tool_calls",  # the model wants tool results
    "content_filter",  # the provider withheld output
    "refusal",  # the model refused (Anthropic ``refusal``)
    "pause",  # the provider paused a long turn (Anthropic ``pause_turn``)
    "other",  # anything else; ``Finish.raw`` says what
]


class Start(msgspec.Struct, tag="start", tag_field="type", kw_only=True, frozen=True, gc=False):
    """The response began: the provider's response id and the model that answers."""

    id: str = ""
    model: str = ""


class TextDelta(
    msgspec.Struct, tag="text_delta", tag_field="type", kw_only=True, frozen=True, gc=False
):
    text: str


class RefusalDelta(
    msgspec.Struct, tag="refusal_delta", tag_field="type", kw_only=True, frozen=True, gc=False
):
    """A piece of a refusal (OpenAI ``refusal``): the model declines, in words."""

    text: str


class ReasoningDelta(
    msgspec.Struct, tag="reasoning_delta", tag_field="type", kw_only=True, frozen=True, gc=False
):
    """A piece of reasoning text, or the signature that seals a reasoning block.

    ``block`` numbers the reasoning blocks of the response; a ``signature``
    (Anthropic ``signature_delta``, Gemini ``thoughtSignature``) or ``redacted``
    data belongs to the block it names. ``id`` is the provider's item id
    (OpenAI Responses).
    """

    text: str = ""
    block: int = 0
    signature: str | None = None
    redacted: str | None = None
    id: str | None = None


class ToolCallStart(
    msgspec.Struct, tag="tool_call_start", tag_field="type", kw_only=True, frozen=True, gc=False
):
    index: int
    id: str
    name: str


class ToolCallDelta(
    msgspec.Struct, tag="tool_call_delta", tag_field="type", kw_only=True, frozen=True, gc=False
):
    index: int
    arguments: str


class ToolCallDone(
    msgspec.Struct, tag="tool_call_done", tag_field="type", kw_only=True, frozen=True, gc=False
):
    """A tool call is complete; ``arguments`` is its whole raw JSON text."""

    index: int
    id: str
    name: str
    arguments: str


class Citations(msgspec.Struct, tag="citations", tag_field="type", kw_only=True, frozen=True):
    """Sources the provider attached to the answer (Perplexity ``citations``)."""

    urls: list[str]


class Usage(msgspec.Struct, tag="usage", tag_field="type", kw_only=True, frozen=True, gc=False):
    """Token counts, normalized across families.

    ``input_tokens`` counts every prompt token, cached or not, so that it means
    the same for each family (Anthropic reports cache reads and writes apart from
    ``input_tokens``; its decoder adds them in). ``cache_read_tokens`` and
    ``cache_write_tokens`` say how many of them hit or filled the prompt cache.
    ``reasoning_tokens`` are part of ``output_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class Finish(msgspec.Struct, tag="finish", tag_field="type", kw_only=True, frozen=True, gc=False):
    """The response ended normally. ``raw`` is the provider's own reason string."""

    reason: FinishReason
    raw: str | None = None


class ErrorEvent(
    msgspec.Struct, tag="error", tag_field="type", kw_only=True, frozen=True, gc=False
):
    """The provider reported an error inside a stream that had begun (HTTP 200).

    Attributes:
        kind: The normalized error kind, the name of a ``providers.errors`` class
            (``OverloadedError``, ``RateLimitError``, ``ServerError``...).
        message: The provider's message.
        provider_type: The provider's own error type or code (``overloaded_error``).
        retryable: Whether a new attempt may succeed.
    """

    kind: str
    message: str
    provider_type: str | None = None
    retryable: bool = False


StreamEvent = (
    Start
    | TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallDone
    | Citations
    | Usage
    | Finish
    | ErrorEvent
)


class Response(msgspec.Struct, tag="response", tag_field="type", kw_only=True, frozen=True):
    """A whole response: the assistant message, why it stopped, what it cost."""

    id: str = ""
    model: str = ""
    message: Message = Message(role="assistant")
    finish_reason: FinishReason = "stop"
    raw_finish_reason: str | None = None
    usage: Usage = Usage()
    refusal: str | None = None
    citations: list[str] = []

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls
