"""OpenAI Chat Completions, and every server that speaks it (sans-IO).

One module serves OpenAI itself, Azure OpenAI and the OpenAI-compatible vendors
(Groq, DeepSeek, Mistral, OpenRouter, vLLM, Ollama ...): what they reject in a
*request* is described by :class:`~providers.families.base.Quirks` on the
endpoint; what they add to a *response* is always understood, so the decoder has
no switches:

* ``delta.reasoning_content`` (DeepSeek, vLLM) and ``delta.reasoning``
  (OpenRouter, Ollama) are reasoning text;
* tool calls without ``index`` (Mistral) arrive whole, one id per call;
* ``prompt_cache_hit_tokens`` (DeepSeek) counts cache hits like OpenAI's
  ``prompt_tokens_details.cached_tokens``;
* a top-level ``citations`` array (Perplexity) becomes one Citations event;
* an ``{"error": {...}}`` object inside a 200 stream (and vLLM's
  ``{"object": "error", ...}``) becomes an ErrorEvent.

Choices of this module, each the answer to "what does OpenAI do with it":

* ``Request.metadata`` is not sent. OpenAI accepts ``metadata`` only together
  with ``store: true`` (it is how stored completions are tagged), and most
  compatible servers reject or ignore it. Put ``metadata`` (and ``store``) in
  ``Request.extra`` to send them.
* Reasoning parts of assistant messages are dropped: Chat Completions has no way
  to send reasoning back.
* Images in a tool result (a screenshot tool) go in one user message after the
  turn's last tool message, each labelled with its call: a tool message takes
  text only, and a user message between two tool messages is refused.
* ``Message.name`` is not sent (Groq answers 400 to ``messages[].name``; a tool
  result is matched by ``tool_call_id``), nor ``is_error`` (there is no such
  field: say so in the result text).
* A request field the endpoint's quirks say the server rejects is left out
  rather than refused: ``parallel_tool_calls``, ``reasoning_effort``, and
  ``strict`` on tools (the tool is then sent as a plain one; the runtime still
  validates the arguments against the schema).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from ..errors import APIError, RequestError, StreamDecodeError, StreamProtocolError
from ..events import (
    Citations,
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

__all__ = ["OpenAIChat", "OpenAIChatDecoder", "map_finish_reason"]


# -- wire types (responses) ---------------------------------------------------------
# Every field is optional and may be null: compatible servers leave out or null
# what OpenAI always sends. Unknown fields are ignored.


# The wire Structs below are decoded fresh from the wire and hold only what was
# decoded, so they can never be part of a reference cycle: gc=False keeps them out
# of the cycle collector, whose per-token allocations otherwise trigger collections
# (0.1 us per token of the engine's 2.3 at full speed).
class _FunctionDelta(msgspec.Struct, gc=False):
    name: str | None = None
    # A string on the wire; a few servers send the arguments as a JSON object.
    arguments: str | dict[str, Any] | None = None


class _ToolCallDelta(msgspec.Struct, gc=False):
    index: int | None = None
    id: str | None = None
    function: _FunctionDelta | None = None


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _ChunkChoice(msgspec.Struct, gc=False):
    index: int | None = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek


class _XGroq(msgspec.Struct, gc=False):
    usage: _Usage | None = None


class _SearchResult(msgspec.Struct, gc=False):
    url: str | None = None


class _Chunk(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    object: str | None = None
    choices: list[_ChunkChoice] | None = None
    usage: _Usage | None = None
    x_groq: _XGroq | None = None
    citations: list[str] | None = None
    search_results: list[_SearchResult] | None = None
    error: Any = None
    message: Any = None  # vLLM's top-level error object
    type: Any = None
    code: Any = None


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _ToolCall(msgspec.Struct, gc=False):
    id: str | None = None
    function: _Function | None = None


class _Message(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int | None = 0
    message: _Message | None = None
    finish_reason: str | None = None


class _Completion(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    citations: list[str] | None = None
    search_results: list[_SearchResult] | None = None
    error: Any = None
    # vLLM's error object (``{"object": "error", "message", "type", "code"}``).
    object: str | None = None
    message: Any = None
    type: Any = None
    code: Any = None


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_completion_decoder = msgspec.json.Decoder(_Completion)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


# -- shared helpers -----------------------------------------------------------------

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",  # Together, older TGI
    "end_turn": "stop",
    "length": "length",
    "model_length": "length",  # Mistral: the context window is full
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "tool_call": "tool_calls",
    "function_call": "tool_calls",  # the deprecated functions API
    "content_filter": "content_filter",
}


def map_finish_reason(raw: str | None, *, has_tool_calls: bool = False) -> FinishReason:
    """The normalized finish reason for a Chat Completions ``finish_reason``.

    ``stop`` with tool calls in the message is reported as ``tool_calls``: some
    compatible servers (older Ollama, llama.cpp) say ``stop`` when the model
    called tools, and the tool loop needs to know.
    """
    reason = _FINISH_REASONS.get(raw or "", "other")
    if reason == "stop" and has_tool_calls:
        return "tool_calls"
    return reason


def _usage(wire: _Usage) -> Usage:
    cached = 0
    if wire.prompt_tokens_details is not None and wire.prompt_tokens_details.cached_tokens:
        cached = wire.prompt_tokens_details.cached_tokens
    elif wire.prompt_cache_hit_tokens:
        cached = wire.prompt_cache_hit_tokens
    reasoning = 0
    if wire.completion_tokens_details is not None:
        reasoning = wire.completion_tokens_details.reasoning_tokens or 0
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _arguments_text(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return _encoder.encode(arguments).decode()


def _citation_urls(
    citations: list[str] | None, search_results: list[_SearchResult] | None
) -> list[str]:
    if citations:
        return [c for c in citations if c]
    if search_results:
        return [r.url for r in search_results if r.url]
    return []


def _error_fields(error: Any) -> tuple[str, str | None, str | None, int | None]:
    """(message, type, code, numeric code) of an OpenAI-style error value."""
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, dict):
        return _compact(error), None, None, None
    message = error.get("message")
    if not isinstance(message, str):
        message = _compact(message) if message is not None else ""
        if not message and error.get("detail") is not None:
            message = _compact(error["detail"])
    etype = error.get("type")
    code = error.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    return (
        message,
        etype if isinstance(etype, str) and etype else None,
        code if isinstance(code, str) and code else None,
        status,
    )


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _encoder.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def _excerpt(data: str | bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


# -- the stream decoder -------------------------------------------------------------


class _Call:
    __slots__ = ("args", "id", "index", "name", "started")

    def __init__(self, index: int, call_id: str | None, name: str | None) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.args: list[str] = []
        self.started = False


class OpenAIChatDecoder(StreamDecoder):
    """Decodes a Chat Completions SSE stream into normalized events.

    Invariants:
        * ``Start`` is emitted once, before any other event but an error.
        * ``_open`` holds the tool calls of the current choice not yet done, in our
          index order; ``_by_index`` and ``_by_id`` map the provider's keys (its
          ``index``, or the call id where there is no index) to them.
        * A call is started (``ToolCallStart``) as soon as its name is known;
          argument pieces that came before the name are held in ``args`` and sent
          right after the start, so the ToolCallDelta events of a call always add
          up to its ToolCallDone arguments.
        * ``_finish`` holds the Finish while the usage chunk may still come: it is
          emitted at ``[DONE]`` (or at :meth:`end` when a server omits ``[DONE]``),
          so that Usage always comes before Finish.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._started = False
        self._next_index = 0
        self._open: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self._by_id: dict[str, _Call] = {}
        self._had_calls = False
        self._finish: Finish | None = None
        self._last_usage: Usage | None = None
        self._cited = False
        self.done = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self.done:
            return []
        out: list[StreamEvent] = []
        decode = _chunk_decoder.decode
        # Invariant: ``hot`` is ``self._started and not self.done``; only the slow
        # paths (_event, _decoded) change either, and it is read again after them.
        hot = self._started and not self.done
        for sse in self._sse.feed_data(data):
            # The hot path, inline (no call per token): an unnamed event whose data
            # is one choice's text delta and nothing else. Anything more, and any
            # chunk the decoder refuses, takes _event, which names the problem.
            if hot and isinstance(sse, str) and sse.startswith("{"):
                try:
                    chunk = decode(sse)
                except msgspec.DecodeError:
                    self._event("message", sse, out)
                    hot = self._started and not self.done
                    continue
                choices = chunk.choices
                if (
                    choices
                    and len(choices) == 1
                    and chunk.error is None
                    and chunk.object != "error"
                    and chunk.usage is None
                    and chunk.x_groq is None
                    and (self._cited or not (chunk.citations or chunk.search_results))
                ):
                    choice = choices[0]
                    delta = choice.delta
                    if (
                        delta is not None
                        and delta.content
                        and not choice.finish_reason
                        and choice.index in (0, None)
                        and delta.tool_calls is None
                        and not (delta.reasoning_content or delta.reasoning or delta.refusal)
                    ):
                        out.append(TextDelta(text=delta.content))
                        continue
                self._decoded("message", chunk, sse, out)
            elif isinstance(sse, str):
                self._event("message", sse, out)
            else:
                self._event(sse.event, sse.data, out)
            hot = self._started and not self.done
        return out

    def end(self) -> list[StreamEvent]:
        self._sse.end()
        if self.done:
            return []
        if self._finish is not None:
            # The server sent finish_reason but no [DONE]: the response is whole.
            self.done = True
            return [self._finish]
        raise StreamProtocolError(
            "the stream ended before the response finished (no finish_reason and no [DONE])"
        )

    # -- one SSE event ------------------------------------------------------------

    def _event(self, name: str, data: str, out: list[StreamEvent]) -> None:
        if self.done:
            return
        if data.startswith("{"):  # the hot path: a chunk as servers send it
            stripped = data
        else:
            stripped = data.strip()
            if not stripped:
                return
            if stripped == "[DONE]":
                self._done(out)
                return
        try:
            chunk = _chunk_decoder.decode(stripped)
        except msgspec.DecodeError as exc:
            if name == "error":
                self._error(stripped, None, None, None, out)
                return
            raise StreamDecodeError(
                f"OpenAI chat stream: a data line is not a valid completion chunk ({exc}): "
                f"{_excerpt(stripped)!r}"
            ) from exc
        self._decoded(name, chunk, stripped, out)

    def _decoded(self, name: str, chunk: _Chunk, data: str, out: list[StreamEvent]) -> None:
        """One decoded chunk (``data`` is its text, for error messages)."""
        if chunk.error is not None:
            self._error(*_error_fields(chunk.error), out)
            return
        if chunk.object == "error" or name == "error":
            if isinstance(chunk.message, str):
                message = chunk.message
            elif chunk.message is not None:
                message = _compact(chunk.message)
            else:
                message = _excerpt(data)
            etype = chunk.type if isinstance(chunk.type, str) else None
            status = chunk.code if isinstance(chunk.code, int) else None
            self._error(message, etype, None, status, out)
            return
        if self._started:
            self._chunk(chunk, out)
            return
        # Start waits for a chunk that names the response or carries something:
        # Azure opens with a prompt_filter_results chunk whose id and model are "".
        events: list[StreamEvent] = []
        self._chunk(chunk, events)
        if events or chunk.id or chunk.model:
            self._started = True
            out.append(Start(id=chunk.id or "", model=chunk.model or ""))
            out.extend(events)

    def _chunk(self, chunk: _Chunk, out: list[StreamEvent]) -> None:
        for choice in chunk.choices or ():
            if choice.index not in (0, None):
                continue  # n > 1 is not part of the normalized request
            if choice.delta is not None:
                self._delta(choice.delta, out)
            if choice.finish_reason:
                self._finish_choice(choice.finish_reason, out)
        if not self._cited and (chunk.citations or chunk.search_results):
            urls = _citation_urls(chunk.citations, chunk.search_results)
            if urls:
                self._cited = True
                out.append(Citations(urls=urls))
        wire_usage = chunk.usage
        if wire_usage is None and chunk.x_groq is not None:
            wire_usage = chunk.x_groq.usage
        if wire_usage is not None:
            usage = _usage(wire_usage)
            if usage != self._last_usage:
                self._last_usage = usage
                out.append(usage)

    def _delta(self, delta: _Delta, out: list[StreamEvent]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            out.append(ReasoningDelta(text=reasoning))
        if delta.content:
            out.append(TextDelta(text=delta.content))
        if delta.refusal:
            out.append(RefusalDelta(text=delta.refusal))
        for wire in delta.tool_calls or ():
            self._tool_call(wire, out)

    def _tool_call(self, wire: _ToolCallDelta, out: list[StreamEvent]) -> None:
        fn = wire.function
        name = fn.name if fn is not None else None
        piece = _arguments_text(fn.arguments if fn is not None else None)
        call_id = wire.id or None
        call: _Call | None
        if wire.index is not None:
            call = self._by_index.get(wire.index)
            # A new id at a known index is a new call: some servers number every
            # call 0. OpenAI sends the id only on a call's first piece.
            if call is not None and call_id and call.id and call_id != call.id:
                call = None
        elif call_id:
            # Mistral style: no index, each call whole with its own id.
            call = self._by_id.get(call_id)
        else:
            call = self._open[-1] if self._open else None
        if call is None:
            call = _Call(self._next_index, call_id, name)
            self._next_index += 1
            self._open.append(call)
            self._had_calls = True
            if wire.index is not None:
                self._by_index[wire.index] = call
        else:
            if call.id is None and call_id:
                call.id = call_id
            if call.name is None and name:
                call.name = name
        if call.id:
            self._by_id[call.id] = call
        if piece:
            call.args.append(piece)
        if not call.started:
            if call.name:
                call.started = True
                out.append(ToolCallStart(index=call.index, id=self._call_id(call), name=call.name))
                if call.args:
                    out.append(ToolCallDelta(index=call.index, arguments="".join(call.args)))
        elif piece:
            out.append(ToolCallDelta(index=call.index, arguments=piece))

    @staticmethod
    def _call_id(call: _Call) -> str:
        if not call.id:
            # Servers that give no id (some local ones): one is needed to send the
            # result back, and it only has to be unique within the conversation turn.
            call.id = f"call_{call.index}"
        return call.id

    def _close_calls(self, out: list[StreamEvent]) -> None:
        for call in self._open:
            if not call.started:
                raise StreamProtocolError(f"tool call {call.index} ended without a function name")
            out.append(
                ToolCallDone(
                    index=call.index,
                    id=self._call_id(call),
                    name=call.name or "",
                    arguments="".join(call.args),
                )
            )
        self._open.clear()
        self._by_index.clear()
        self._by_id.clear()

    def _finish_choice(self, raw: str, out: list[StreamEvent]) -> None:
        self._close_calls(out)
        if self._finish is None:
            self._finish = Finish(
                reason=map_finish_reason(raw, has_tool_calls=self._had_calls), raw=raw
            )

    def _done(self, out: list[StreamEvent]) -> None:
        if self._finish is None:
            if not self._started:
                raise StreamProtocolError("[DONE] before any completion chunk")
            raise StreamProtocolError("[DONE] before any choice finished (no finish_reason)")
        self.done = True
        out.append(self._finish)

    def _error(
        self,
        message: str,
        etype: str | None,
        code: str | None,
        status: int | None,
        out: list[StreamEvent],
    ) -> None:
        # The code (rate_limit_exceeded, context_length_exceeded) is more specific
        # than the type (invalid_request_error, server_error) when both are given.
        provider_type = code or etype
        event = error_event(provider_type, message or "(no message)", status=status or 200)
        self.done = True
        out.append(event)


# -- the family ---------------------------------------------------------------------

_ROLES_WITH_TEXT_ONLY = ("system", "assistant")


class OpenAIChat(Family):
    """OpenAI Chat Completions (``POST /chat/completions``)."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"

    # -- requests -------------------------------------------------------------------

    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        quirks = endpoint.quirks
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": _messages(request.messages),
        }
        if request.tools:
            payload["tools"] = [_tool(t, strict_ok=quirks.strict_tools) for t in request.tools]
        choice = request.tool_choice
        # OpenAI refuses tool_choice and parallel_tool_calls without tools; with no
        # tools, "auto" and "none" mean the same as leaving them out.
        if choice is not None and request.tools:
            if choice.mode == "tool":
                payload["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
            else:
                payload["tool_choice"] = choice.mode
            if choice.parallel is not None and quirks.parallel_tool_calls:
                payload["parallel_tool_calls"] = choice.parallel
        if request.max_tokens is not None:
            payload[quirks.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.response_format is not None:
            fmt = request.response_format
            schema = fmt.schema
            if fmt.strict:
                from ..schema import openai_strict

                schema = openai_strict(schema)
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": fmt.name, "schema": schema, "strict": fmt.strict},
            }
        if request.reasoning_effort is not None and quirks.reasoning_effort:
            payload["reasoning_effort"] = request.reasoning_effort
        if request.cache.key:
            payload["prompt_cache_key"] = request.cache.key
        if stream:
            payload["stream"] = True
            if quirks.stream_usage:
                payload["stream_options"] = {"include_usage": True}

        if quirks.azure:
            if "api-version" not in endpoint.query:
                raise RequestError(
                    f"Azure OpenAI endpoint {endpoint.provider!r} needs the api-version query "
                    "parameter: set Endpoint(query={'api-version': '2024-10-21'}) (or the "
                    "AZURE_OPENAI_API_VERSION variable with the 'azure' preset)"
                )
            deployment = quote(request.model, safe="")
            url = endpoint.url(f"openai/deployments/{deployment}/chat/completions")
            default_auth = "api-key"
        else:
            url = endpoint.url("chat/completions")
            default_auth = "authorization"

        auth_name = (endpoint.auth_header or default_auth).lower()
        headers: dict[str, str] = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        for key, value in endpoint.headers.items():
            lower = key.lower()
            if lower == auth_name:
                raise RequestError(
                    f"endpoint {endpoint.provider!r} sets the {key!r} header in headers=; "
                    "give the key as api_key= so that it is never logged"
                )
            headers[lower] = value
        secret_headers: dict[str, Secret] = {}
        if endpoint.api_key:
            if auth_name == "authorization":
                secret_headers[auth_name] = Secret("Bearer " + endpoint.api_key.reveal())
            else:
                secret_headers[auth_name] = endpoint.api_key
        return HttpRequest(
            method="POST",
            url=url,
            headers=headers,
            body=json_body(payload, request.extra),
            secret_headers=secret_headers,
            params=dict(endpoint.query),
        )

    # -- responses ------------------------------------------------------------------

    def stream_decoder(self) -> OpenAIChatDecoder:
        return OpenAIChatDecoder()

    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        try:
            completion = _completion_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise StreamDecodeError(
                "OpenAI chat: the response body is not a chat.completion "
                f"({exc}): {_excerpt(body)!r}"
            ) from exc
        if completion.error is not None or completion.object == "error":
            if completion.error is not None:
                message, etype, code, status = _error_fields(completion.error)
            else:  # vLLM
                message, etype, code, status = _error_fields(
                    {
                        "message": completion.message,
                        "type": completion.type,
                        "code": completion.code,
                    }
                )
            # As in the stream: the code is more specific than the type.
            event = error_event(code or etype, message or "(no message)", status=status or 200)
            raise error_from_event(
                event, provider=provider or self.name, model=model, in_stream=False
            )
        choice = next((c for c in completion.choices or () if c.index in (0, None)), None)
        if choice is None:
            raise StreamDecodeError("OpenAI chat: the response has no choices")
        wire = choice.message or _Message()
        calls = [
            ToolCall(
                id=tc.id or f"call_{i}",
                name=(tc.function.name if tc.function else None) or "",
                arguments=_arguments_text(tc.function.arguments if tc.function else None) or "{}",
            )
            for i, tc in enumerate(wire.tool_calls or ())
        ]
        for call in calls:
            if not call.name:
                raise StreamDecodeError(f"OpenAI chat: tool call {call.id!r} has no function name")
        reasoning = wire.reasoning_content or wire.reasoning
        text = wire.content or ""
        content: str | list[Part] = text
        if reasoning:
            parts: list[Part] = [ReasoningPart(text=reasoning)]
            if text:
                parts.append(TextPart(text=text))
            content = parts
        raw = choice.finish_reason
        return Response(
            id=completion.id or "",
            model=completion.model or "",
            message=Message(role="assistant", content=content, tool_calls=calls),
            finish_reason=map_finish_reason(raw, has_tool_calls=bool(calls)),
            raw_finish_reason=raw,
            usage=_usage(completion.usage) if completion.usage is not None else Usage(),
            refusal=wire.refusal or None,
            citations=_citation_urls(completion.citations, completion.search_results),
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
        message, etype, code = _parse_error_body(body, status)
        error = classify_error(
            status,
            message,
            provider_type=etype,
            codes=(code,),
            headers=headers,
            provider=provider,
            model=model,
            now=now,
        )
        return error


# -- request pieces -----------------------------------------------------------------


# Chat Completions takes text only in a tool message. Images a tool returned (a
# screenshot, a chart) go in one user message right after the turn's last tool
# message, each introduced by the call it came from; the tool message says so.
# Tool messages must directly follow their assistant message, so the user message
# cannot come between them.
_TOOL_IMAGES_NOTE = "[the image(s) this tool returned follow in the next user message]"


def _tool_images_message(pending: list[tuple[Message, list[ImagePart]]]) -> dict[str, Any]:
    parts: list[Part] = []
    for message, images in pending:
        label = f"Image(s) returned by tool {message.name or 'call'} (call {message.tool_call_id}):"
        parts.append(TextPart(text=label))
        parts.extend(images)
    return {"role": "user", "content": _user_content(parts)}


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    call_ids: set[str] = set()
    pending: list[tuple[Message, list[ImagePart]]] = []  # tool images not yet sent
    for i, message in enumerate(messages):
        role = message.role
        if pending and role != "tool":
            out.append(_tool_images_message(pending))
            pending = []
        parts: list[Part] = [p for p in message.parts() if not isinstance(p, ReasoningPart)]
        if role in _ROLES_WITH_TEXT_ONLY:
            for part in parts:
                if isinstance(part, ImagePart):
                    raise RequestError(
                        f"messages[{i}]: OpenAI chat takes images only in user messages, "
                        f"not in a {role!r} message; move the image to a user message"
                    )
        if role == "tool":
            if message.tool_call_id not in call_ids:
                raise RequestError(
                    f"messages[{i}]: the tool result for {message.tool_call_id!r} answers no "
                    "tool call of an earlier assistant message; OpenAI refuses it"
                )
            images = [p for p in parts if isinstance(p, ImagePart)]
            text = _text(parts)
            if images:
                pending.append((message, images))
                text = f"{text}\n{_TOOL_IMAGES_NOTE}" if text else _TOOL_IMAGES_NOTE
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": text})
        elif role == "assistant":
            entry: dict[str, Any] = {"role": "assistant"}
            text = _text(parts)
            if message.tool_calls:
                entry["content"] = text or None
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
                call_ids.update(call.id for call in message.tool_calls)
            else:
                entry["content"] = text
            out.append(entry)
        elif role == "system":
            out.append({"role": "system", "content": _text(parts)})
        else:
            out.append({"role": "user", "content": _user_content(parts)})
    if pending:
        out.append(_tool_images_message(pending))
    return out


def _text(parts: list[Part]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def _user_content(parts: list[Part]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts) and len(parts) <= 1:
        return _text(parts)
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
            image: dict[str, Any] = {"url": url}
            if part.detail is not None:
                image["detail"] = part.detail
            content.append({"type": "image_url", "image_url": image})
    return content


def _tool(spec: ToolSpec, *, strict_ok: bool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": spec.name}
    if spec.description:
        function["description"] = spec.description
    if spec.strict and strict_ok:
        from ..schema import openai_strict

        function["parameters"] = openai_strict(spec.parameters)
        function["strict"] = True
    else:
        function["parameters"] = spec.parameters
    return {"type": "function", "function": function}


# -- error bodies -------------------------------------------------------------------

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _parse_error_body(body: bytes, status: int) -> tuple[str, str | None, str | None]:
    """(message, type, code) of an error response body, whatever its shape.

    Understands OpenAI's ``{"error": {"message", "type", "code", "param"}}``, a
    bare ``{"error": "text"}``, vLLM's and Mistral's top-level ``message`` /
    ``type`` / ``code`` and FastAPI's ``detail``; anything else (an HTML page from a
    proxy, plain text) gives a short excerpt of its text.
    """
    if not body.strip():
        return f"empty response body (HTTP {status})", None, None
    try:
        parsed = _any_decoder.decode(body)
    except msgspec.DecodeError:
        return _text_excerpt(body), None, None
    if isinstance(parsed, dict):
        if "error" in parsed and parsed["error"] is not None:
            message, etype, code, _ = _error_fields(parsed["error"])
            param = parsed["error"].get("param") if isinstance(parsed["error"], dict) else None
            if param and isinstance(param, str) and param not in message:
                message = f"{message} (param: {param})"
            return message or _excerpt(body), etype, code
        if "message" in parsed or "detail" in parsed:
            message, etype, code, _ = _error_fields(parsed)
            return message or _excerpt(body), etype, code
    return _excerpt(body), None, None


def _text_excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            return _excerpt(title.group(1))
        text = _TAG.sub(" ", text)
    return _excerpt(text)
