"""The OpenAI Responses API (``POST /v1/responses``) as a sans-IO wire family.

Request choices, and why:

* **Stateless** (``store: false`` by default). The runtime sends the whole
  conversation every turn, as it does for every other family, so nothing needs to
  be kept on OpenAI's side: storing would keep prompts and outputs on the
  provider (30 days) for no use, and ``previous_response_id`` chains would tie a
  conversation to one account and break fallback to another provider. The cost of
  statelessness is that reasoning items can only be sent back with their
  ``encrypted_content``, so when ``reasoning_effort`` is set the request also asks
  for ``include: ["reasoning.encrypted_content"]``. ``extra={"store": True}``
  turns storage on (then reasoning items are sent back by id alone).
* **Instructions**: the leading ``system`` messages become ``instructions`` (the
  API reference's place for "high-level instructions ... that take priority over
  the input"; it is re-sent on every stateless turn). A ``system`` message later in
  the conversation becomes a ``developer`` input message, the role the API gives
  application instructions inside ``input``.
* **Tools** use the Responses' flat function shape. The API makes function tools
  strict *by default*, so ``strict`` is always sent, from ``ToolSpec.strict``; a
  strict tool's parameters are rewritten with :func:`providers.schema.openai_strict`.
* **Reasoning**: ``reasoning_effort`` becomes ``reasoning: {effort, summary:
  "auto"}`` so that reasoning summaries stream (OpenAI asks organizations to be
  verified before it returns summaries; override with
  ``extra={"reasoning": {"effort": ...}}``).
* **Not expressible**: stop sequences (the Responses API has none; the ``openai``
  Chat Completions family does) and ``max_tokens`` below 16 (the API's minimum for
  ``max_output_tokens``) are refused with :class:`~providers.errors.RequestError`.

Replaying an assistant turn: its reasoning items come first, then its text as one
``message`` item, then its ``function_call`` items, which is the order the API
produces them and requires (a reasoning item must be followed by the item it led
to). A reasoning part is sent back only when it has an ``id`` and, unless storage
is on, its encrypted content (in ``ReasoningPart.redacted``): a bare id refers to
an item a stateless request cannot see, and the API refuses it.

The stream is typed SSE (``event: <type>`` and a JSON ``data`` with the same
``type`` and a ``sequence_number``), with no ``[DONE]`` sentinel: it ends with
``response.completed``, ``response.incomplete``, ``response.failed`` or
``error``. See :class:`_Decoder` for the mapping onto normalized events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec

from ..errors import APIError, RequestError, StreamDecodeError, StreamProtocolError
from ..events import (
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
from ..messages import (
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    Request,
    TextPart,
    ToolCall,
    ToolSpec,
)
from ..schema import openai_strict
from ..secrets import Secret
from ..sse import ServerSentEvent, SSEDecoder
from .base import (
    Endpoint,
    Family,
    HttpRequest,
    StreamDecoder,
    classify_error,
    error_event,
    error_from_event,
    error_kind,
    json_body,
)

__all__ = ["OpenAIResponses"]

MIN_MAX_OUTPUT_TOKENS = 16
"""The smallest ``max_output_tokens`` the Responses API accepts."""

_ENCRYPTED_REASONING = "reasoning.encrypted_content"

# Codes of ``response.failed`` errors that the request caused (a new attempt with
# the same request fails the same way), as listed in the API reference.
_CLIENT_ERROR_CODES = frozenset(
    {
        "invalid_prompt",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


# -- wire types (tolerant: unknown fields are ignored) ----------------------------


# The wire Structs below are decoded fresh from the wire and hold only what was
# decoded, so they can never be part of a reference cycle: gc=False keeps them out
# of the cycle collector, whose per-token allocations otherwise trigger collections
# (0.1 us per token of the engine's 2.3 at full speed).
class _Typed(msgspec.Struct, gc=False):
    type: str = ""


class _Delta(msgspec.Struct, gc=False):
    """``response.output_text.delta``, ``response.refusal.delta``."""

    delta: str = ""


class _ItemDelta(msgspec.Struct, gc=False):
    """Deltas that belong to one output item (reasoning, function-call arguments)."""

    delta: str = ""
    item_id: str | None = None
    output_index: int | None = None
    summary_index: int = 0
    content_index: int = 0


class _ArgumentsDone(msgspec.Struct, gc=False):
    arguments: str | None = None
    item_id: str | None = None
    output_index: int | None = None


class _TextContent(msgspec.Struct, gc=False):
    """A content part: ``output_text``, ``refusal``, ``summary_text``, ``reasoning_text``."""

    type: str = ""
    text: str = ""
    refusal: str = ""


class _Item(msgspec.Struct, gc=False):
    """An output item. Fields of item types this family does not handle are typed
    loosely (``Any``, ``Raw``) so that a new item type never breaks decoding."""

    type: str = ""
    id: Any = None
    call_id: Any = None
    name: Any = None
    arguments: Any = None
    encrypted_content: Any = None
    status: Any = None
    summary: msgspec.Raw = msgspec.Raw()  # empty when absent
    content: msgspec.Raw = msgspec.Raw()


class _ItemEvent(msgspec.Struct, gc=False):
    """``response.output_item.added`` and ``.done``."""

    item: _Item = msgspec.field(default_factory=_Item)
    output_index: int | None = None


class _InputDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _IncompleteDetails(msgspec.Struct, gc=False):
    reason: str | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    """``response.error``, or the ``error`` object of an error event or error body."""

    message: Any = None
    code: Any = None
    type: Any = None
    param: Any = None


class _Response(msgspec.Struct, gc=False):
    id: str = ""
    model: str = ""
    status: str | None = None
    output: list[_Item] | None = None
    usage: _Usage | None = None
    incomplete_details: _IncompleteDetails | None = None
    error: _ErrorBody | None = None


class _ResponseEvent(msgspec.Struct, gc=False):
    """``response.created``, ``.completed``, ``.incomplete``, ``.failed``."""

    response: _Response = msgspec.field(default_factory=_Response)


class _ErrorStreamEvent(msgspec.Struct, gc=False):
    """The ``error`` event. The reference documents ``code``/``message``/``param``
    at the top level; OpenAI has also been seen sending them nested under
    ``error`` (with a ``type``), so both are read, field by field."""

    message: Any = None
    code: Any = None
    param: Any = None
    error: _ErrorBody | None = None


class _ErrorEnvelope(msgspec.Struct, gc=False):
    error: Any = None


_typed_decoder = msgspec.json.Decoder(_Typed)
_delta_decoder = msgspec.json.Decoder(_Delta)
_item_delta_decoder = msgspec.json.Decoder(_ItemDelta)
_arguments_done_decoder = msgspec.json.Decoder(_ArgumentsDone)
_item_event_decoder = msgspec.json.Decoder(_ItemEvent)
_response_event_decoder = msgspec.json.Decoder(_ResponseEvent)
_error_event_decoder = msgspec.json.Decoder(_ErrorStreamEvent)
_response_decoder = msgspec.json.Decoder(_Response)
_content_decoder = msgspec.json.Decoder(list[_TextContent])
_envelope_decoder = msgspec.json.Decoder(_ErrorEnvelope)


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _contents(raw: msgspec.Raw, what: str) -> list[_TextContent]:
    """Decode an item's ``content`` or ``summary`` list (absent or null: empty).

    Raises:
        StreamDecodeError: it is not a list of content parts.
    """
    if not raw or bytes(raw) == b"null":
        return []
    try:
        return _content_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise StreamDecodeError(
            f"OpenAI Responses: the {what} of an output item is malformed: {exc}"
        ) from exc


def _reasoning_text(item: _Item) -> str:
    """The readable text of a reasoning item: its summary parts, else its
    reasoning-text content, parts separated by a blank line (as streamed)."""
    parts = [p.text for p in _contents(item.summary, "summary") if p.text]
    if not parts:
        parts = [p.text for p in _contents(item.content, "content") if p.text]
    return "\n\n".join(parts)


def _usage(usage: _Usage) -> Usage:
    cached = usage.input_tokens_details.cached_tokens if usage.input_tokens_details else None
    reasoning = (
        usage.output_tokens_details.reasoning_tokens if usage.output_tokens_details else None
    )
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=cached or 0,
        reasoning_tokens=reasoning or 0,
    )


def _incomplete_reason(details: _IncompleteDetails | None) -> tuple[FinishReason, str]:
    reason = details.reason if details is not None else None
    if reason == "max_output_tokens":
        return "length", reason
    if reason == "content_filter":
        return "content_filter", reason
    return "other", reason or "incomplete"


def _pick_type(code: str | None, type_: str | None) -> str | None:
    """The provider type to classify by: the code or the type, whichever names a
    specific kind of error (``insufficient_quota`` beats an unknown code)."""
    default = error_kind(None)
    for candidate in (code, type_):
        if candidate and error_kind(candidate) != default:
            return candidate
    return code or type_


def _stream_error(code: Any, message: Any, type_: Any = None) -> ErrorEvent:
    code_s, type_s = _str_or_none(code), _str_or_none(type_)
    status = 400 if code_s in _CLIENT_ERROR_CODES else 200
    text = _str_or_none(message) or f"the response failed ({code_s or type_s or 'no error code'})"
    return error_event(_pick_type(code_s, type_s), text, status=status)


# -- the stream decoder --------------------------------------------------------------


class _Call:
    """A function call being streamed. Invariant: ``arguments`` is what has been
    emitted as ToolCallDelta for ``index``, in order; ``done`` once ToolCallDone
    has been emitted."""

    __slots__ = ("arguments", "done", "id", "index", "name")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.arguments: list[str] = []
        self.done = False


class _Block:
    """A reasoning item being streamed: its block number, its item id, the
    (kind, index) of the part the last delta belonged to, and whether any text
    has been emitted."""

    __slots__ = ("block", "has_text", "id", "part")

    def __init__(self, block: int, item_id: str | None) -> None:
        self.block = block
        self.id = item_id
        self.part: tuple[str, int] | None = None
        self.has_text = False


_Handler = Callable[["_Decoder", str, list[StreamEvent]], None]


def _decode(decoder: msgspec.json.Decoder[Any], data: str, name: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise StreamDecodeError(
            f"OpenAI Responses stream: the data of event {name!r} is not the documented JSON: {exc}"
        ) from exc


class _Decoder(StreamDecoder):
    """Decodes one Responses stream.

    Mapping: ``response.created`` -> Start; ``response.output_text.delta`` ->
    TextDelta; ``response.refusal.delta`` -> RefusalDelta; reasoning summary and
    reasoning text deltas -> ReasoningDelta (``block`` numbers the reasoning items
    in output order, ``id`` is the item id; the item's ``encrypted_content``
    arrives with ``response.output_item.done`` as ``redacted``; summary parts are
    separated by a blank line); a ``function_call`` output item -> ToolCallStart,
    its argument deltas -> ToolCallDelta, its ``arguments.done`` or
    ``output_item.done`` -> one ToolCallDone; ``response.completed`` /
    ``response.incomplete`` -> Usage then Finish; ``response.failed`` and
    ``error`` -> ErrorEvent. Other event types are checked to be JSON and ignored.

    Tolerated, for Responses-compatible servers: no ``event:`` lines (the type is
    read from the data), a ``data: [DONE]`` line, function calls that appear only in
    ``output_item.done`` or only in the final response. A call still open at the
    end (cut off by ``max_output_tokens``) is closed with the arguments that came.

    Invariants:
        * ``_calls[i].index == i``: our tool-call indexes are 0, 1, ... in the
          order the items were added, whatever the provider's ``output_index``.
        * Once ``done``, nothing more is decoded or emitted.
        * ``_pending`` holds the ErrorEvent of a ``response.failed`` that carried
          no error details; an ``error`` event that follows replaces it, and
          :meth:`end` emits it otherwise.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self.done = False
        self._started = False
        self._calls: list[_Call] = []
        self._calls_by_item: dict[str, _Call] = {}
        self._calls_by_output: dict[int, _Call] = {}
        self._blocks: dict[str, _Block] = {}
        self._blocks_by_output: dict[int, _Block] = {}
        self._block_count = 0
        self._pending: ErrorEvent | None = None

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.feed(b"" if self.done else data):
            if self.done:
                break
            self._dispatch(sse, out)
        return out

    def end(self) -> list[StreamEvent]:
        self._sse.end()
        if not self.done and self._pending is not None:
            self.done = True
            return [self._pending]
        return super().end()

    # -- dispatch

    def _dispatch(self, sse: ServerSentEvent, out: list[StreamEvent]) -> None:
        name = sse.event
        data = sse.data
        if name == "message":
            # A server that sends no ``event:`` lines: the type is in the data.
            if data == "[DONE]":
                return
            name = _decode(_typed_decoder, data, name).type
        handler = _HANDLERS.get(name)
        if handler is None or (self._pending is not None and name != "error"):
            # An ignored type (or anything between a detail-free response.failed
            # and its error event): not decoded further, but it must be JSON.
            _decode(_typed_decoder, data, name)
            return
        handler(self, data, out)

    def _created(self, data: str, out: list[StreamEvent]) -> None:
        response = _decode(_response_event_decoder, data, "response.created").response
        if not self._started:
            self._started = True
            out.append(Start(id=response.id, model=response.model))

    def _text(self, data: str, out: list[StreamEvent]) -> None:
        delta = _decode(_delta_decoder, data, "response.output_text.delta").delta
        if delta:
            out.append(TextDelta(text=delta))

    def _refusal(self, data: str, out: list[StreamEvent]) -> None:
        delta = _decode(_delta_decoder, data, "response.refusal.delta").delta
        if delta:
            out.append(RefusalDelta(text=delta))

    def _summary_delta(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_item_delta_decoder, data, "response.reasoning_summary_text.delta")
        self._reasoning(ev, ("summary", ev.summary_index), out)

    def _reasoning_text_delta(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_item_delta_decoder, data, "response.reasoning_text.delta")
        self._reasoning(ev, ("content", ev.content_index), out)

    def _reasoning(self, ev: _ItemDelta, part: tuple[str, int], out: list[StreamEvent]) -> None:
        if not ev.delta:
            return
        block = self._block(ev.item_id, ev.output_index)
        text = ev.delta
        if block.has_text and block.part != part:
            text = "\n\n" + text  # a new summary part: keep the parts apart
        block.part = part
        block.has_text = True
        out.append(ReasoningDelta(text=text, block=block.block, id=block.id))

    def _item_added(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_item_event_decoder, data, "response.output_item.added")
        item = ev.item
        if item.type == "function_call":
            self._start_call(item, ev.output_index, out)
        elif item.type == "reasoning":
            self._block(_str_or_none(item.id), ev.output_index)

    def _item_done(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_item_event_decoder, data, "response.output_item.done")
        item = ev.item
        if item.type == "function_call":
            call = self._find_call(_str_or_none(item.id), ev.output_index)
            if call is None:  # never announced: the done item says it all
                call = self._start_call(item, ev.output_index, out)
            self._finish_call(call, self._arguments(item), out)
        elif item.type == "reasoning":
            block = self._block(_str_or_none(item.id), ev.output_index)
            text = "" if block.has_text else _reasoning_text(item)
            redacted = _str_or_none(item.encrypted_content)
            if text or redacted is not None or block.id is not None:
                block.has_text = block.has_text or bool(text)
                out.append(
                    ReasoningDelta(text=text, block=block.block, id=block.id, redacted=redacted)
                )

    def _arguments_delta(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_item_delta_decoder, data, "response.function_call_arguments.delta")
        call = self._find_call(ev.item_id, ev.output_index)
        if call is None:
            raise StreamProtocolError(
                f"OpenAI Responses stream: arguments for function call item {ev.item_id!r} "
                "before its response.output_item.added"
            )
        if ev.delta and not call.done:
            call.arguments.append(ev.delta)
            out.append(ToolCallDelta(index=call.index, arguments=ev.delta))

    def _arguments_done(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_arguments_done_decoder, data, "response.function_call_arguments.done")
        call = self._find_call(ev.item_id, ev.output_index)
        if call is None:
            raise StreamProtocolError(
                f"OpenAI Responses stream: function call item {ev.item_id!r} done before "
                "its response.output_item.added"
            )
        self._finish_call(call, ev.arguments, out)

    def _completed(self, data: str, out: list[StreamEvent]) -> None:
        response = _decode(_response_event_decoder, data, "response.completed").response
        self._end_response(response, out)
        reason: FinishReason = "tool_calls" if self._calls else "stop"
        out.append(Finish(reason=reason, raw=response.status or "completed"))
        self.done = True

    def _incomplete(self, data: str, out: list[StreamEvent]) -> None:
        response = _decode(_response_event_decoder, data, "response.incomplete").response
        self._end_response(response, out)
        reason, raw = _incomplete_reason(response.incomplete_details)
        out.append(Finish(reason=reason, raw=raw))
        self.done = True

    def _failed(self, data: str, out: list[StreamEvent]) -> None:
        response = _decode(_response_event_decoder, data, "response.failed").response
        error = response.error
        if error is None or (error.message is None and error.code is None):
            self._pending = _stream_error(None, "the response failed (no error details given)")
            return
        out.append(_stream_error(error.code, error.message, error.type))
        self.done = True

    def _error(self, data: str, out: list[StreamEvent]) -> None:
        ev = _decode(_error_event_decoder, data, "error")
        nested = ev.error or _ErrorBody()
        code = ev.code if ev.code is not None else nested.code
        message = ev.message if ev.message is not None else nested.message
        out.append(_stream_error(code, message, nested.type))
        self._pending = None
        self.done = True

    # -- helpers

    def _end_response(self, response: _Response, out: list[StreamEvent]) -> None:
        """Close what the stream left open, then report usage."""
        for item in response.output or ():
            if item.type == "function_call" and not self._known_call(item):
                # A server that reported the call only in the final response.
                self._finish_call(self._start_call(item, None, out), self._arguments(item), out)
        for call in self._calls:
            if not call.done:  # cut off (max_output_tokens): what arrived is all there is
                self._finish_call(call, None, out)
        if response.usage is not None:
            out.append(_usage(response.usage))

    @staticmethod
    def _arguments(item: _Item) -> str | None:
        if item.arguments is None:
            return None
        if not isinstance(item.arguments, str):
            raise StreamProtocolError(
                "OpenAI Responses stream: function call arguments are not a string"
            )
        return item.arguments

    def _block(self, item_id: str | None, output_index: int | None) -> _Block:
        block = self._blocks.get(item_id) if item_id is not None else None
        if block is None and output_index is not None:
            block = self._blocks_by_output.get(output_index)
        if block is None:
            block = _Block(self._block_count, item_id)
            self._block_count += 1
            if output_index is not None:
                self._blocks_by_output[output_index] = block
        if item_id is not None:
            self._blocks.setdefault(item_id, block)
            if block.id is None:
                block.id = item_id
        return block

    def _known_call(self, item: _Item) -> bool:
        if isinstance(item.id, str) and item.id in self._calls_by_item:
            return True
        return any(call.id == item.call_id for call in self._calls)

    def _find_call(self, item_id: str | None, output_index: int | None) -> _Call | None:
        if item_id is not None:
            call = self._calls_by_item.get(item_id)
            if call is not None:
                return call
        if output_index is not None:
            return self._calls_by_output.get(output_index)
        return None

    def _start_call(self, item: _Item, output_index: int | None, out: list[StreamEvent]) -> _Call:
        call_id = item.call_id if item.call_id is not None else item.id
        if not isinstance(call_id, str) or not isinstance(item.name, str):
            raise StreamProtocolError(
                "OpenAI Responses stream: a function_call item without a string call_id and name"
            )
        call = _Call(len(self._calls), call_id, item.name)
        self._calls.append(call)
        if isinstance(item.id, str):
            self._calls_by_item[item.id] = call
        if output_index is not None:
            self._calls_by_output[output_index] = call
        out.append(ToolCallStart(index=call.index, id=call.id, name=call.name))
        initial = self._arguments(item)
        if initial:
            call.arguments.append(initial)
            out.append(ToolCallDelta(index=call.index, arguments=initial))
        return call

    @staticmethod
    def _finish_call(call: _Call, full: str | None, out: list[StreamEvent]) -> None:
        """Emit ToolCallDone once. ``full`` is the provider's whole argument text;
        when deltas fell short of it, the rest is emitted as one more delta so that
        ToolCallDone still equals the concatenated deltas."""
        if call.done:
            return
        streamed = "".join(call.arguments)
        if full is None:
            full = streamed
        elif full != streamed and full.startswith(streamed):
            rest = full[len(streamed) :]
            call.arguments.append(rest)
            out.append(ToolCallDelta(index=call.index, arguments=rest))
        call.done = True
        out.append(ToolCallDone(index=call.index, id=call.id, name=call.name, arguments=full))


_HANDLERS: dict[str, _Handler] = {
    "response.output_text.delta": _Decoder._text,
    "response.function_call_arguments.delta": _Decoder._arguments_delta,
    "response.reasoning_summary_text.delta": _Decoder._summary_delta,
    "response.reasoning_text.delta": _Decoder._reasoning_text_delta,
    "response.refusal.delta": _Decoder._refusal,
    "response.output_item.added": _Decoder._item_added,
    "response.output_item.done": _Decoder._item_done,
    "response.function_call_arguments.done": _Decoder._arguments_done,
    "response.created": _Decoder._created,
    "response.completed": _Decoder._completed,
    "response.incomplete": _Decoder._incomplete,
    "response.failed": _Decoder._failed,
    "error": _Decoder._error,
}


# -- request building ------------------------------------------------------------------


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
    # ``detail`` is required by the API's input_image schema; "auto" is its default.
    return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}


def _input_content(parts: list[Part]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "input_text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append(_image(part))
        # Reasoning parts belong to assistant turns; elsewhere they mean nothing.
    if not content:
        content.append({"type": "input_text", "text": ""})
    return content


def _instructions(messages: list[Message]) -> tuple[str | None, int]:
    """The leading system messages joined as ``instructions``, and how many there were.

    Raises:
        RequestError: a leading system message holds an image.
    """
    texts: list[str] = []
    count = 0
    for message in messages:
        if message.role != "system":
            break
        if any(isinstance(p, ImagePart) for p in message.parts()):
            raise RequestError(
                "OpenAI Responses: instructions (the leading system messages) are text only; "
                "move the image into a user message"
            )
        if message.text:
            texts.append(message.text)
        count += 1
    return ("\n\n".join(texts) if texts else None), count


def _assistant_items(message: Message, *, store: bool) -> list[dict[str, Any]]:
    reasoning: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for part in message.parts():
        if isinstance(part, ReasoningPart):
            # Stateless requests can only replay reasoning that carries its
            # encrypted content; a bare id points at an item nobody stored.
            if part.id is None or (part.redacted is None and not store):
                continue
            item: dict[str, Any] = {
                "type": "reasoning",
                "id": part.id,
                "summary": [{"type": "summary_text", "text": part.text}] if part.text else [],
            }
            if part.redacted is not None:
                item["encrypted_content"] = part.redacted
            reasoning.append(item)
        elif isinstance(part, TextPart):
            if part.text:
                # ``annotations`` is required by the output_text schema (strict
                # Responses servers enforce it; OpenAI tolerates its absence).
                texts.append({"type": "output_text", "text": part.text, "annotations": []})
        else:
            raise RequestError(
                "OpenAI Responses: an assistant message cannot carry an image; "
                "put it in a user message"
            )
    items: list[dict[str, Any]] = []
    if texts:
        items.append({"type": "message", "role": "assistant", "content": texts})
    for call in message.tool_calls:
        items.append(
            {
                "type": "function_call",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    # A reasoning item must be followed by the item it led to; with nothing to
    # follow it the API refuses the request, so it is dropped.
    return reasoning + items if items else []


def _tool_output(message: Message) -> str | list[dict[str, Any]]:
    parts = message.parts()
    if not any(isinstance(p, ImagePart) for p in parts):
        return message.text
    return _input_content(parts)


def _input(messages: list[Message], *, store: bool) -> tuple[str | None, list[dict[str, Any]]]:
    instructions, skip = _instructions(messages)
    items: list[dict[str, Any]] = []
    for message in messages[skip:]:
        role = message.role
        if role == "user":
            items.append(
                {"type": "message", "role": "user", "content": _input_content(message.parts())}
            )
        elif role == "assistant":
            items.extend(_assistant_items(message, store=store))
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": _tool_output(message),
                }
            )
        else:  # a system message inside the conversation
            items.append(
                {
                    "type": "message",
                    "role": "developer",
                    "content": _input_content(message.parts()),
                }
            )
    return instructions, items


def _tool(spec: ToolSpec, *, strict_allowed: bool) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description:
        tool["description"] = spec.description
    strict = spec.strict and strict_allowed
    tool["parameters"] = openai_strict(spec.parameters) if strict else spec.parameters
    if strict_allowed:
        # Sent even when false: Responses function tools are strict by default.
        tool["strict"] = spec.strict
    return tool


class OpenAIResponses(Family):
    """The OpenAI Responses API. See the module docstring for the request choices."""

    name: ClassVar[str] = "openai-responses"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"

    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        """Build ``POST {base}/responses``.

        Raises:
            RequestError: ``stop`` is set (the Responses API has no stop sequences),
                ``max_tokens`` is below 16, an image is where the API takes none, or
                a strict tool's schema cannot be made strict.
        """
        if request.stop:
            raise RequestError(
                "OpenAI Responses has no stop sequences: remove stop=, or use the 'openai' "
                "(Chat Completions) family, which supports them"
            )
        if request.max_tokens is not None and request.max_tokens < MIN_MAX_OUTPUT_TOKENS:
            raise RequestError(
                f"OpenAI Responses takes max_output_tokens >= {MIN_MAX_OUTPUT_TOKENS}, "
                f"got max_tokens={request.max_tokens}; raise max_tokens"
            )
        quirks = endpoint.quirks
        store = request.extra.get("store") is True
        instructions, items = _input(request.messages, store=store)

        body: dict[str, Any] = {"model": request.model}
        if instructions is not None:
            body["instructions"] = instructions
        body["input"] = items
        if request.tools:
            body["tools"] = [_tool(t, strict_allowed=quirks.strict_tools) for t in request.tools]
        choice = request.tool_choice
        if choice is not None:
            if choice.mode == "tool":
                body["tool_choice"] = {"type": "function", "name": choice.name}
            else:
                body["tool_choice"] = choice.mode
            if choice.parallel is not None and quirks.parallel_tool_calls:
                body["parallel_tool_calls"] = choice.parallel
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        fmt = request.response_format
        if fmt is not None:
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": fmt.name,
                    "schema": openai_strict(fmt.schema) if fmt.strict else fmt.schema,
                    "strict": fmt.strict,
                }
            }
        if request.reasoning_effort is not None and quirks.reasoning_effort:
            body["reasoning"] = {"effort": request.reasoning_effort, "summary": "auto"}
            if not store:
                body["include"] = [_ENCRYPTED_REASONING]
        if request.metadata:
            body["metadata"] = dict(request.metadata)
        if request.cache.key is not None:
            body["prompt_cache_key"] = request.cache.key
        body["store"] = False
        if stream:
            body["stream"] = True

        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            **endpoint.headers,
        }
        secret_headers: dict[str, Secret] = {}
        if endpoint.api_key:
            header = endpoint.auth_header or ("api-key" if quirks.azure else "authorization")
            if header.lower() == "authorization":
                secret_headers[header] = Secret("Bearer " + endpoint.api_key.reveal())
            else:
                secret_headers[header] = endpoint.api_key
        # Azure OpenAI serves the Responses API at /openai/v1/responses of the
        # resource root; the model in the body is the deployment name.
        path = "openai/v1/responses" if quirks.azure else "responses"
        return HttpRequest(
            method="POST",
            url=endpoint.url(path),
            headers=headers,
            body=json_body(body, request.extra),
            secret_headers=secret_headers,
            params=dict(endpoint.query),
        )

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        """Decode a whole (``stream: false``) response object.

        Raises:
            StreamDecodeError: the body is not a Responses response object.
            APIError: the response object says it failed (``status: "failed"``);
                the error is the one its ``error`` describes.
        """
        try:
            resp = _response_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise StreamDecodeError(
                f"OpenAI Responses: the response body is not the documented JSON: {exc}"
            ) from exc
        if resp.status == "failed" or (resp.output is None and resp.error is not None):
            # A failed response object, or a bare ``{"error": {...}}`` with a 200.
            error = resp.error or _ErrorBody()
            raise error_from_event(
                _stream_error(error.code, error.message, error.type),
                provider=provider or self.name,
                model=model or resp.model or None,
                in_stream=False,
            )
        if resp.output is None:
            raise StreamDecodeError(
                "OpenAI Responses: the response body has no 'output' (is it a Responses API body?)"
            )
        parts: list[Part] = []
        text: list[str] = []
        refusal: list[str] = []
        calls: list[ToolCall] = []
        for item in resp.output:
            if item.type == "reasoning":
                parts.append(
                    ReasoningPart(
                        text=_reasoning_text(item),
                        id=_str_or_none(item.id),
                        redacted=_str_or_none(item.encrypted_content),
                    )
                )
            elif item.type == "message":
                for piece in _contents(item.content, "content"):
                    if piece.type == "output_text":
                        text.append(piece.text)
                    elif piece.type == "refusal":
                        refusal.append(piece.refusal)
            elif item.type == "function_call":
                call_id = item.call_id if item.call_id is not None else item.id
                arguments = item.arguments if item.arguments is not None else "{}"
                if not (
                    isinstance(call_id, str)
                    and isinstance(item.name, str)
                    and isinstance(arguments, str)
                ):
                    raise StreamDecodeError("OpenAI Responses: a function_call item is malformed")
                calls.append(ToolCall(id=call_id, name=item.name, arguments=arguments))
        finish: FinishReason
        if resp.status == "incomplete":
            finish, raw = _incomplete_reason(resp.incomplete_details)
        else:
            finish, raw = ("tool_calls" if calls else "stop"), resp.status or "completed"
        joined = "".join(text)
        content: str | list[Part]
        if parts:
            if joined:
                parts.append(TextPart(text=joined))
            content = parts
        else:
            content = joined
        return Response(
            id=resp.id,
            model=resp.model,
            message=Message(role="assistant", content=content, tool_calls=calls),
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=_usage(resp.usage) if resp.usage is not None else Usage(),
            refusal="".join(refusal) if refusal else None,
        )

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
        """Map an error response: ``{"error": {"message", "type", "code", "param"}}``,
        or any other body (a proxy's HTML page), whose text becomes the message."""
        message: str | None = None
        type_: str | None = None
        code: str | None = None
        try:
            envelope = _envelope_decoder.decode(body)
        except msgspec.DecodeError:
            envelope = None
        error = envelope.error if envelope is not None else None
        if isinstance(error, dict):
            message = _str_or_none(error.get("message"))
            type_ = _str_or_none(error.get("type"))
            code = _str_or_none(error.get("code"))
        elif isinstance(error, str):
            message = error
        if not message:
            text = body.decode("utf-8", "replace").strip()
            message = text[:1000] if text else f"HTTP {status} with an empty body"
        return classify_error(
            status,
            message,
            provider_type=type_,
            codes=(code,),
            headers=headers,
            provider=provider,
            model=model,
            now=now,
        )
