"""Anthropic Messages (``POST /v1/messages``), sans-IO.

Request (:meth:`AnthropicMessages.build_request`), with ``anthropic-version:
2023-06-01``:

* The key travels in ``x-api-key`` (or the endpoint's ``auth_header``), only in
  ``HttpRequest.secret_headers``. ``Endpoint.headers`` are added last (put
  ``anthropic-beta`` there).
* ``max_tokens`` is required by Anthropic: ``request.max_tokens``, else
  :data:`DEFAULT_MAX_TOKENS` (plus the thinking budget when thinking is on).
* ``system`` is a list of text blocks made of the *leading* system messages; a
  system message after the conversation started is refused (move it to the front,
  or make it a user message).
* Messages alternate roles: consecutive messages of one role are merged, and tool
  results (``role="tool"``) become ``tool_result`` blocks of a user message.
  Assistant tool calls become ``tool_use`` blocks whose ``input`` is the decoded
  JSON arguments (they must be a JSON object). ``ReasoningPart`` becomes a
  ``thinking`` block with its ``signature``, or ``redacted_thinking`` with its
  data; reasoning without a signature (another family's) is left out, because
  Anthropic verifies signatures. Reasoning is sent back only when thinking is on
  (``reasoning_effort``): with thinking off Anthropic refuses thinking blocks in
  the final assistant turn and ignores them elsewhere. An assistant message that
  holds nothing but thinking (a turn cut short) is left out, since Anthropic
  refuses an assistant message that ends with thinking. Images become ``image``
  blocks (base64, ``data:`` URL or URL source). Empty text parts are not sent
  (Anthropic refuses empty text blocks); ``ImagePart.detail`` has no Anthropic
  equivalent and is ignored.
* ``tool_choice``: ``auto``/``required``/``tool``/``none`` become
  ``auto``/``any``/``tool``/``none``; ``parallel=False`` adds
  ``disable_parallel_tool_use``. ``ToolSpec.strict`` sends ``strict: true``.
* ``metadata``: Anthropic takes only ``user_id``; ``request.metadata["user_id"]``
  is sent and every other key stays local (the runtime keeps it).
* ``reasoning_effort`` turns on extended thinking, ``{"type": "enabled",
  "budget_tokens": N}``, with N from :data:`THINKING_BUDGETS`. Anthropic requires
  ``1024 <= N < max_tokens``: when ``max_tokens`` is set, N is capped so that the
  answer keeps :data:`ANSWER_RESERVE` tokens where possible (never below 1024);
  when it is not, ``max_tokens`` becomes N + :data:`DEFAULT_MAX_TOKENS`. Thinking
  is incompatible with ``temperature``, with ``top_p`` below 0.95 and with a
  forced tool choice: such a request is refused (RequestError), never silently
  changed.
* ``response_format`` uses Anthropic's native JSON outputs, ``output_config:
  {"format": {"type": "json_schema", "schema": ...}}`` (generally available, no
  beta header; models from Claude Sonnet 4.5 / Opus 4.5 / Haiku 4.5 on, older
  models answer 400). Anthropic requires ``additionalProperties: false`` on every
  object, so it is filled in where the schema does not say (likewise for
  ``strict`` tools). The JSON comes back as the reply's text.
* Prompt caching: ``cache_control: {"type": "ephemeral"}`` (with ``"ttl"`` when
  ``request.cache.ttl`` is set) on the blocks :mod:`providers.caching` chooses.
* ``temperature`` must be within 0..1 here. ``request.extra`` is merged last.

Stream (:class:`AnthropicStreamDecoder`): ``message_start`` gives Start and a
Usage snapshot (``input_tokens`` normalized to include cache reads and writes);
text, ``tool_use``, ``thinking`` and ``redacted_thinking`` blocks become
TextDelta, ToolCall*, ReasoningDelta; ``message_delta`` gives the stop reason and
a Usage snapshot (its counts are cumulative); ``message_stop`` the Finish; an
``error`` event an ErrorEvent. Server tool blocks (``server_tool_use``,
``web_search_tool_result``...) are run by Anthropic and are not reported as tool
calls; a ``citations_delta`` with a URL becomes a Citations event.

Errors (:meth:`AnthropicMessages.map_error`): the body ``{"type": "error",
"error": {"type": ..., "message": ...}, "request_id": ...}`` is classified by
status and error type with ``base.classify_error`` (a body that is not JSON, such
as a proxy's HTML page, keeps the status's class and its text as the message);
a 529 is OverloadedError whatever type it names; the request id comes from the ``request-id``
header, else from the body. Rate-limit headers (``anthropic-ratelimit-*``) are
read by the base class's ``rate_limits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from ..caching import CachePlan, leading_system_count, plan_cache_breakpoints, system_parts
from ..errors import (
    APIError,
    RequestError,
    StreamDecodeError,
    StreamProtocolError,
)
from ..events import (
    Citations,
    Finish,
    FinishReason,
    ReasoningDelta,
    Response,
    Start,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    Usage,
)
from ..messages import ImagePart, Message, Part, ReasoningPart, Request, TextPart, ToolCall
from ..secrets import Secret
from ..sse import SSEDecoder
from .base import (
    Endpoint,
    Family,
    HttpRequest,
    StreamDecoder,
    classify_error,
    error_event,
    error_from_event,
    json_body,
)

__all__ = [
    "ANSWER_RESERVE",
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "MIN_THINKING_BUDGET",
    "THINKING_BUDGETS",
    "AnthropicMessages",
    "AnthropicStreamDecoder",
]

ANTHROPIC_VERSION = "2023-06-01"

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` sent when the request sets none (Anthropic requires one)."""

THINKING_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
"""``reasoning_effort`` -> ``thinking.budget_tokens`` (before the cap by max_tokens)."""

MIN_THINKING_BUDGET = 1024
"""The smallest ``budget_tokens`` Anthropic accepts."""

ANSWER_RESERVE = 1024
"""Tokens of ``max_tokens`` kept for the answer when the thinking budget is capped."""

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "pause",
}


def _finish_reason(raw: str | None) -> FinishReason:
    return _STOP_REASONS.get(raw or "", "other")


# -- request -----------------------------------------------------------------------


def _strict_schema(node: Any) -> Any:
    """A copy of a JSON Schema with ``additionalProperties: false`` on every object
    schema that does not say (Anthropic's structured outputs require it)."""
    if isinstance(node, dict):
        out = {key: _strict_schema(value) for key, value in node.items()}
        kind = out.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
        if is_object and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict_schema(item) for item in node]
    return node


_THINKING_TYPES = ("thinking", "redacted_thinking")


def _image_block(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        url = part.url or ""
        if url.startswith("data:"):
            header, comma, data = url[5:].partition(",")
            media_type, _, encoding = header.partition(";")
            if not comma or encoding != "base64" or not media_type:
                raise RequestError(
                    "ImagePart(url='data:...'): Anthropic takes only base64 data URLs "
                    "('data:image/png;base64,...'); pass data= and media_type= instead"
                )
            source = {"type": "base64", "media_type": media_type, "data": data}
        else:
            source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


class _Builder:
    """Builds one request body; holds the cache plan and its cache_control."""

    def __init__(self, request: Request, plan: CachePlan) -> None:
        self.request = request
        self.cache_control: dict[str, str] = {"type": "ephemeral"}
        if request.cache.ttl is not None:
            self.cache_control["ttl"] = request.cache.ttl
        self.tool_marks = set(plan.tools)
        self.system_marks = set(plan.system)
        self.message_marks = set(plan.messages)
        self.thinking = request.reasoning_effort is not None

    def mark(self, block: dict[str, Any], marked: bool) -> dict[str, Any]:
        if marked:
            block["cache_control"] = dict(self.cache_control)
        return block

    def system(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        for j, part in enumerate(system_parts(self.request)):
            if not isinstance(part, TextPart):
                raise RequestError(
                    f"Anthropic system instructions take only text, not {type(part).__name__}: "
                    "put images and other parts in a user message"
                )
            if part.text:
                blocks.append(
                    self.mark({"type": "text", "text": part.text}, j in self.system_marks)
                )
        return blocks

    def content_block(self, i: int, j: int, part: Part, role: str) -> dict[str, Any] | None:
        marked = (i, j) in self.message_marks
        if isinstance(part, TextPart):
            if not part.text:
                return None
            return self.mark({"type": "text", "text": part.text}, marked)
        if isinstance(part, ImagePart):
            if role == "assistant":
                raise RequestError(
                    f"message {i}: Anthropic takes images only from the user (or in tool results), "
                    "not in assistant messages"
                )
            return self.mark(_image_block(part), marked)
        if role != "assistant":
            raise RequestError(
                f"message {i}: a ReasoningPart belongs to an assistant message, not role={role!r}"
            )
        if not self.thinking:
            return None  # Anthropic refuses thinking blocks in a final turn when thinking is off
        if part.redacted is not None:
            return {"type": "redacted_thinking", "data": part.redacted}
        if part.signature is None:
            return None  # another family's reasoning: Anthropic would refuse it unsigned
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}

    def tool_use(self, i: int, call: ToolCall) -> dict[str, Any]:
        try:
            arguments = msgspec.json.decode(call.arguments or "{}")
        except msgspec.DecodeError as exc:
            raise RequestError(
                f"message {i}: tool call {call.id!r} ({call.name}) has arguments that are not "
                f"valid JSON ({exc}); Anthropic needs a JSON object as tool_use input: fix or "
                "replace the arguments before sending them back"
            ) from None
        if not isinstance(arguments, dict):
            raise RequestError(
                f"message {i}: tool call {call.id!r} ({call.name}) has arguments that are not a "
                "JSON object; Anthropic needs an object as tool_use input"
            )
        return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}

    def tool_result(self, i: int, message: Message) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if isinstance(message.content, str):
            if message.content:
                block["content"] = message.content
            self.mark(block, (i, 0) in self.message_marks)
        else:
            content = []
            for j, part in enumerate(message.content):
                if isinstance(part, ReasoningPart):
                    raise RequestError(f"message {i}: a tool result cannot hold a ReasoningPart")
                rendered = self.content_block(i, j, part, "tool")
                if rendered is not None:
                    content.append(rendered)
            if content:
                block["content"] = content
        if message.is_error:
            block["is_error"] = True
        return block

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = leading_system_count(self.request.messages)
        for i in range(start, len(self.request.messages)):
            message = self.request.messages[i]
            blocks: list[dict[str, Any]] = []
            if message.role == "system":
                raise RequestError(
                    f"message {i} is a system message after the conversation started; Anthropic "
                    "takes system instructions only at the start: move it before the first "
                    "user/assistant message, or send it as a user message"
                )
            if message.role == "tool":
                role = "user"
                blocks.append(self.tool_result(i, message))
            else:
                role = message.role
                for j, part in enumerate(message.parts()):
                    rendered = self.content_block(i, j, part, role)
                    if rendered is not None:
                        blocks.append(rendered)
                for call in message.tool_calls:
                    blocks.append(self.tool_use(i, call))
                if blocks and all(b["type"] in _THINKING_TYPES for b in blocks):
                    continue  # thinking alone (a turn cut short): Anthropic refuses it
            if not blocks:
                raise RequestError(
                    f"message {i} ({message.role}) has no content Anthropic can take; "
                    "give it text, or leave it out"
                )
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
        if not out:
            raise RequestError("Anthropic needs at least one user message besides the system ones")
        return out

    def tools(self) -> list[dict[str, Any]]:
        tools = []
        for index, spec in enumerate(self.request.tools):
            tool: dict[str, Any] = {"name": spec.name}
            if spec.description:
                tool["description"] = spec.description
            tool["input_schema"] = (
                _strict_schema(spec.parameters) if spec.strict else spec.parameters
            )
            if spec.strict:
                tool["strict"] = True
            tools.append(self.mark(tool, index in self.tool_marks))
        return tools


def _thinking(request: Request) -> tuple[int, dict[str, Any] | None]:
    """``max_tokens`` and the ``thinking`` field."""
    effort = request.reasoning_effort
    if effort is None:
        return (request.max_tokens or DEFAULT_MAX_TOKENS), None
    if request.temperature is not None:
        raise RequestError(
            "Anthropic's extended thinking (reasoning_effort) does not take temperature: "
            "drop temperature=, or drop reasoning_effort="
        )
    if request.top_p is not None and request.top_p < 0.95:
        raise RequestError(
            "Anthropic's extended thinking (reasoning_effort) takes top_p only within 0.95..1: "
            "raise or drop top_p=, or drop reasoning_effort="
        )
    choice = request.tool_choice
    if choice is not None and choice.mode in ("required", "tool"):
        raise RequestError(
            "Anthropic's extended thinking (reasoning_effort) allows tool_choice 'auto' or "
            f"'none', not {choice.mode!r}: change tool_choice=, or drop reasoning_effort="
        )
    budget = THINKING_BUDGETS[effort]
    if request.max_tokens is None:
        return budget + DEFAULT_MAX_TOKENS, {"type": "enabled", "budget_tokens": budget}
    max_tokens = request.max_tokens
    budget = max(MIN_THINKING_BUDGET, min(budget, max_tokens - ANSWER_RESERVE))
    if budget >= max_tokens:
        raise RequestError(
            f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on Anthropic (the "
            f"thinking budget must be at least {MIN_THINKING_BUDGET} and below max_tokens), got "
            f"max_tokens={max_tokens}: raise max_tokens, or drop reasoning_effort="
        )
    return max_tokens, {"type": "enabled", "budget_tokens": budget}


def _tool_choice(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None or not request.tools:
        return None
    if choice.mode == "none":
        return {"type": "none"}
    out: dict[str, Any]
    if choice.mode == "auto":
        out = {"type": "auto"}
    elif choice.mode == "required":
        out = {"type": "any"}
    else:
        out = {"type": "tool", "name": choice.name}
    if choice.parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


# -- stream ------------------------------------------------------------------------


# The wire Structs below are decoded fresh from the wire and hold only what was
# decoded, so they can never be part of a reference cycle: gc=False keeps them out
# of the cycle collector, whose per-token allocations otherwise trigger collections
# (0.1 us per token of the engine's 2.3 at full speed).
class _OutputDetails(msgspec.Struct, gc=False):
    thinking_tokens: int | None = None  # part of output_tokens


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


def _thinking_tokens(usage: _Usage) -> int | None:
    details = usage.output_tokens_details
    return None if details is None else details.thinking_tokens


class _Citation(msgspec.Struct, gc=False):
    url: str | None = None


class _Block(msgspec.Struct, gc=False):
    type: str = ""
    text: str = ""
    id: str = ""
    name: str = ""
    input: msgspec.Raw = msgspec.Raw()
    thinking: str = ""
    signature: str | None = None
    data: str = ""


class _Delta(msgspec.Struct, gc=False):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str | None = None
    stop_reason: str | None = None
    citation: _Citation | None = None


class _MessageHead(msgspec.Struct, gc=False):
    id: str = ""
    model: str = ""
    usage: _Usage | None = None


class _Error(msgspec.Struct, gc=False):
    type: str | None = None
    message: str = ""


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    index: int = -1
    message: _MessageHead | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


_event_decoder = msgspec.json.Decoder(_Event)

_TEXT, _TOOL, _THINKING, _OTHER = 0, 1, 2, 3


def _raw_text(raw: msgspec.Raw) -> str:
    """A tool_use ``input`` as the JSON text the provider sent ("" when absent)."""
    return bytes(raw).decode("utf-8").strip()


class _Open:
    """A content block of the stream that has started and not stopped."""

    __slots__ = ("arguments", "id", "index", "initial", "kind", "name")

    def __init__(self, kind: int, index: int = 0, id: str = "", name: str = "") -> None:
        self.kind = kind
        self.index = index  # our tool call index, or reasoning block number
        self.id = id
        self.name = name
        self.arguments: list[str] = []
        self.initial = ""  # a tool_use input given whole in content_block_start


class AnthropicStreamDecoder(StreamDecoder):
    """Decodes one Anthropic Messages SSE stream into normalized events.

    Invariants: ``_blocks`` maps Anthropic's content-block index to the open block;
    ``_input``, ``_cache_read`` and ``_cache_write`` hold the latest counts, so each
    Usage event is a full snapshot.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._blocks: dict[int, _Open] = {}
        self._tools = 0
        self._reasoning = 0
        self._input = 0
        self._output = 0
        self._cache_read = 0
        self._cache_write = 0
        self._thinking = 0
        self._stop_reason: str | None = None
        self.done = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            if self.done:
                break
            try:
                event = _event_decoder.decode(sse.data)
            except msgspec.DecodeError as exc:
                raise StreamDecodeError(
                    f"anthropic stream: {sse.event!r} event is not valid JSON of the expected "
                    f"shape ({exc}): {sse.data[:200]!r}"
                ) from None
            self._handle(event, event.type or sse.event, out)
        return out

    def end(self) -> list[StreamEvent]:
        self._sse.end()
        return super().end()

    def _usage(self, usage: _Usage | None) -> Usage:
        if usage is not None:
            if usage.input_tokens is not None:
                self._input = usage.input_tokens
            if usage.output_tokens is not None:
                self._output = usage.output_tokens
            if usage.cache_read_input_tokens is not None:
                self._cache_read = usage.cache_read_input_tokens
            if usage.cache_creation_input_tokens is not None:
                self._cache_write = usage.cache_creation_input_tokens
            thinking = _thinking_tokens(usage)
            if thinking is not None:
                self._thinking = thinking
        return Usage(
            input_tokens=self._input + self._cache_read + self._cache_write,
            output_tokens=self._output,
            cache_read_tokens=self._cache_read,
            cache_write_tokens=self._cache_write,
            reasoning_tokens=self._thinking,
        )

    def _block(self, event: _Event) -> _Open:
        block = self._blocks.get(event.index)
        if block is None:
            raise StreamProtocolError(
                f"anthropic stream: {event.type} for content block {event.index}, which is not open"
            )
        return block

    def _handle(self, event: _Event, kind: str, out: list[StreamEvent]) -> None:
        if kind == "content_block_delta":
            delta = event.delta
            if delta is None:
                raise StreamProtocolError("anthropic stream: content_block_delta without delta")
            block = self._block(event)
            dtype = delta.type
            if dtype == "text_delta":
                if delta.text:
                    out.append(TextDelta(text=delta.text))
            elif dtype == "input_json_delta":
                if block.kind == _TOOL and delta.partial_json:
                    block.arguments.append(delta.partial_json)
                    out.append(ToolCallDelta(index=block.index, arguments=delta.partial_json))
            elif dtype == "thinking_delta":
                if delta.thinking:
                    out.append(ReasoningDelta(text=delta.thinking, block=block.index))
            elif dtype == "signature_delta":
                if delta.signature is not None:
                    out.append(ReasoningDelta(block=block.index, signature=delta.signature))
            elif dtype == "citations_delta":
                if delta.citation is not None and delta.citation.url:
                    out.append(Citations(urls=[delta.citation.url]))
        elif kind == "content_block_start":
            self._start_block(event, out)
        elif kind == "content_block_stop":
            block = self._block(event)
            del self._blocks[event.index]
            if block.kind == _TOOL:
                arguments = "".join(block.arguments) or block.initial or "{}"
                out.append(
                    ToolCallDone(
                        index=block.index, id=block.id, name=block.name, arguments=arguments
                    )
                )
        elif kind == "message_start":
            head = event.message or _MessageHead()
            out.append(Start(id=head.id, model=head.model))
            out.append(self._usage(head.usage))
        elif kind == "message_delta":
            if event.delta is not None and event.delta.stop_reason is not None:
                self._stop_reason = event.delta.stop_reason
            if event.usage is not None:
                out.append(self._usage(event.usage))
        elif kind == "message_stop":
            if self._blocks:
                raise StreamProtocolError(
                    "anthropic stream: message_stop while content blocks "
                    f"{sorted(self._blocks)} are open"
                )
            out.append(Finish(reason=_finish_reason(self._stop_reason), raw=self._stop_reason))
            self.done = True
        elif kind == "error":
            error = event.error or _Error()
            out.append(error_event(error.type, error.message or "(no message)"))
            self.done = True
        # "ping" and event types this decoder does not know are ignored.

    def _start_block(self, event: _Event, out: list[StreamEvent]) -> None:
        block = event.content_block
        if block is None:
            raise StreamProtocolError("anthropic stream: content_block_start without content_block")
        if event.index in self._blocks:
            raise StreamProtocolError(
                f"anthropic stream: content block {event.index} started twice"
            )
        if block.type == "text":
            self._blocks[event.index] = _Open(_TEXT)
            if block.text:
                out.append(TextDelta(text=block.text))
        elif block.type == "tool_use":
            opened = _Open(_TOOL, self._tools, block.id, block.name)
            self._tools += 1
            initial = _raw_text(block.input)
            if initial not in ("{}", "null", ""):
                opened.initial = initial
            self._blocks[event.index] = opened
            out.append(ToolCallStart(index=opened.index, id=block.id, name=block.name))
        elif block.type in ("thinking", "redacted_thinking"):
            number = self._reasoning
            self._reasoning += 1
            self._blocks[event.index] = _Open(_THINKING, number)
            if block.type == "redacted_thinking":
                out.append(ReasoningDelta(block=number, redacted=block.data))
            elif block.thinking or block.signature:
                out.append(
                    ReasoningDelta(
                        text=block.thinking, block=number, signature=block.signature or None
                    )
                )
        else:
            self._blocks[event.index] = _Open(_OTHER)


# -- whole response and errors -----------------------------------------------------


class _FullMessage(msgspec.Struct, gc=False):
    type: str = ""
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage | None = None
    error: _Error | None = None


_message_decoder = msgspec.json.Decoder(_FullMessage)


class _ErrorBody(msgspec.Struct, gc=False):
    error: _Error | None = None
    request_id: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


class AnthropicMessages(Family):
    """The Anthropic Messages API (see the module's docstring)."""

    name: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com/v1"

    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        builder = _Builder(request, plan_cache_breakpoints(request))
        max_tokens, thinking = _thinking(request)
        if request.temperature is not None and request.temperature > 1.0:
            raise RequestError(
                f"Anthropic takes temperature within 0..1, got {request.temperature}"
            )
        payload: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
        system = builder.system()
        if system:
            payload["system"] = system
        payload["messages"] = builder.messages()
        if request.tools:
            payload["tools"] = builder.tools()
        tool_choice = _tool_choice(request)
        if tool_choice is not None:
            payload["tool_choice"] = tool_choice
        if thinking is not None:
            payload["thinking"] = thinking
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        if request.stop:
            payload["stop_sequences"] = list(request.stop)
        user_id = request.metadata.get("user_id")
        if user_id:
            payload["metadata"] = {"user_id": user_id}
        if request.response_format is not None:
            payload["output_config"] = {
                "format": {
                    "type": "json_schema",
                    "schema": _strict_schema(request.response_format.schema),
                }
            }
        if stream:
            payload["stream"] = True

        headers = {
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        headers.update({k.lower(): v for k, v in endpoint.headers.items()})
        secret_headers: dict[str, Secret] = {}
        if endpoint.api_key is not None:
            auth = (endpoint.auth_header or "x-api-key").lower()
            if auth == "authorization":
                secret_headers[auth] = Secret("Bearer " + endpoint.api_key.reveal())
            else:
                secret_headers[auth] = endpoint.api_key
        return HttpRequest(
            method="POST",
            url=endpoint.url("messages"),
            headers=headers,
            body=json_body(payload, request.extra),
            secret_headers=secret_headers,
            params=dict(endpoint.query),
        )

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        try:
            message = _message_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise StreamDecodeError(
                f"anthropic: the response is not a Messages response ({exc}): {body[:200]!r}"
            ) from None
        if message.error is not None:
            # ``{"type": "error", "error": {...}}`` with a 200: the typed error, as
            # the same object inside a stream would give.
            event = error_event(message.error.type, message.error.message or "(no message)")
            raise error_from_event(
                event, provider=provider or self.name, model=model, in_stream=False
            )
        if message.type not in ("message", ""):
            raise StreamDecodeError(
                f"anthropic: the response is not a message: type={message.type!r}"
            )
        reasoning: list[Part] = []
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "thinking":
                reasoning.append(ReasoningPart(text=block.thinking, signature=block.signature))
            elif block.type == "redacted_thinking":
                reasoning.append(ReasoningPart(redacted=block.data))
            elif block.type == "tool_use":
                arguments = _raw_text(block.input)
                if arguments in ("", "null"):
                    arguments = "{}"
                calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
        joined = "".join(text)
        content: str | list[Part]
        if reasoning:
            content = [*reasoning, TextPart(text=joined)] if joined else reasoning
        else:
            content = joined
        usage = message.usage or _Usage()
        cache_read = usage.cache_read_input_tokens or 0
        cache_write = usage.cache_creation_input_tokens or 0
        return Response(
            id=message.id,
            model=message.model,
            message=Message(role="assistant", content=content, tool_calls=calls),
            finish_reason=_finish_reason(message.stop_reason),
            raw_finish_reason=message.stop_reason,
            usage=Usage(
                input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
                output_tokens=usage.output_tokens or 0,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=_thinking_tokens(usage) or 0,
            ),
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
        provider_type: str | None = None
        request_id: str | None = None
        try:
            parsed = _error_decoder.decode(body)
        except msgspec.DecodeError:
            message = body.decode("utf-8", "replace").strip()[:500]
        else:
            request_id = parsed.request_id
            if parsed.error is not None:
                provider_type = parsed.error.type
                message = parsed.error.message
            else:
                message = body.decode("utf-8", "replace").strip()[:500]
        error = classify_error(
            status,
            message or f"HTTP {status}",
            provider_type=provider_type,
            headers=headers,
            provider=provider,
            model=model,
            now=now,
        )
        if error.request_id is None:
            error.request_id = request_id
        return error
