"""Assemble a stream of normalized events into a :class:`~providers.events.Response`.

Sans-IO: feed events in order, then call :meth:`ResponseAssembler.result`. The
assembler also checks the stream's grammar (see ``providers.events``), so a decoder
bug or a truncated stream is caught here instead of producing a silently wrong
message.
"""

from __future__ import annotations

from .errors import StreamProtocolError
from .events import (
    Citations,
    ErrorEvent,
    Finish,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    Response,
    Start,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from .messages import Message, Part, ReasoningPart, TextPart, ToolCall

__all__ = ["ResponseAssembler", "assemble"]


class _Reasoning:
    __slots__ = ("id", "redacted", "signature", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.signature: str | None = None
        self.redacted: str | None = None
        self.id: str | None = None


class ResponseAssembler:
    """Builds a Response from stream events.

    Invariant: ``_open_calls`` holds the tool calls started and not yet done;
    a call's arguments are appended only while it is open.
    """

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._reasoning: dict[int, _Reasoning] = {}
        self._open_calls: dict[int, tuple[str, str, list[str]]] = {}
        self._calls: dict[int, ToolCall] = {}
        self._usage = Usage()
        self._citations: list[str] = []
        self._finish: Finish | None = None
        self._error: ErrorEvent | None = None

    @property
    def finished(self) -> bool:
        return self._finish is not None or self._error is not None

    def feed_until_error(self, events: list[StreamEvent]) -> int:
        """Take ``events`` in order up to the first ``ErrorEvent`` (not taken); its
        index, or ``len(events)``. The same as :meth:`feed` on each, with text deltas
        (nearly every event) taken inline: this runs for every token.

        Raises:
            StreamProtocolError: as :meth:`feed`.
        """
        text = self._text.append
        feed = self.feed
        for i, event in enumerate(events):
            kind = type(event)
            if kind is TextDelta and self._finish is None and self._error is None:
                text(event.text)  # type: ignore[union-attr]
            elif kind is ErrorEvent:
                return i
            else:
                feed(event)
        return len(events)

    def feed(self, event: StreamEvent) -> None:
        """Take one event.

        Raises:
            StreamProtocolError: the event breaks the stream grammar (an event after
                the end, arguments for a tool call that was never started...).
        """
        if self.finished:
            raise StreamProtocolError(f"{type(event).__name__} event after the end of the stream")
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            open_call = self._open_calls.get(event.index)
            if open_call is None:
                raise StreamProtocolError(
                    f"arguments for tool call {event.index}, which is not open"
                )
            open_call[2].append(event.arguments)
        elif isinstance(event, ReasoningDelta):
            block = self._reasoning.get(event.block)
            if block is None:
                block = self._reasoning[event.block] = _Reasoning()
            if event.text:
                block.text.append(event.text)
            if event.signature is not None:
                block.signature = event.signature
            if event.redacted is not None:
                block.redacted = event.redacted
            if event.id is not None:
                block.id = event.id
        elif isinstance(event, ToolCallStart):
            if event.index in self._open_calls or event.index in self._calls:
                raise StreamProtocolError(f"tool call {event.index} started twice")
            self._open_calls[event.index] = (event.id, event.name, [])
        elif isinstance(event, ToolCallDone):
            open_call = self._open_calls.pop(event.index, None)
            if open_call is None:
                raise StreamProtocolError(f"tool call {event.index} done, but it was never started")
            self._calls[event.index] = ToolCall(
                id=event.id, name=event.name, arguments=event.arguments
            )
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Start):
            self._id = event.id or self._id
            self._model = event.model or self._model
        elif isinstance(event, RefusalDelta):
            self._refusal.append(event.text)
        elif isinstance(event, Citations):
            self._citations.extend(u for u in event.urls if u not in self._citations)
        elif isinstance(event, Finish):
            if self._open_calls:
                raise StreamProtocolError(
                    f"stream finished with tool calls {sorted(self._open_calls)} still open"
                )
            self._finish = event
        elif isinstance(event, ErrorEvent):
            self._error = event
        else:  # pragma: no cover - the union is closed
            raise StreamProtocolError(f"unknown event {event!r}")

    @property
    def error(self) -> ErrorEvent | None:
        return self._error

    @property
    def usage(self) -> Usage:
        return self._usage

    def result(self) -> Response:
        """The assembled response.

        Raises:
            StreamProtocolError: the stream has not finished (no Finish event), or
                ended with an error event.
        """
        if self._error is not None:
            raise StreamProtocolError(
                f"the stream ended with an error ({self._error.kind}): {self._error.message}"
            )
        if self._finish is None:
            raise StreamProtocolError("the stream ended before the response finished")
        parts: list[Part] = []
        for _, block in sorted(self._reasoning.items()):
            parts.append(
                ReasoningPart(
                    text="".join(block.text),
                    signature=block.signature,
                    redacted=block.redacted,
                    id=block.id,
                )
            )
        text = "".join(self._text)
        content: str | list[Part]
        if parts:
            if text:
                parts.append(TextPart(text=text))
            content = parts
        else:
            content = text
        calls = [call for _, call in sorted(self._calls.items())]
        reason: FinishReason = self._finish.reason
        return Response(
            id=self._id,
            model=self._model,
            message=Message(role="assistant", content=content, tool_calls=calls),
            finish_reason=reason,
            raw_finish_reason=self._finish.raw,
            usage=self._usage,
            refusal="".join(self._refusal) if self._refusal else None,
            citations=self._citations,
        )


def assemble(events: list[StreamEvent]) -> Response:
    """Assemble a whole list of events (see :class:`ResponseAssembler`)."""
    assembler = ResponseAssembler()
    for event in events:
        assembler.feed(event)
    return assembler.result()
