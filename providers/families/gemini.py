"""Google Gemini (Generative Language API): ``generateContent`` and ``streamGenerateContent``.

Sans-IO, like every family: :meth:`Gemini.build_request` turns a normalized
:class:`~providers.messages.Request` into an :class:`~providers.families.base.HttpRequest`,
:class:`GeminiStreamDecoder` turns the ``alt=sse`` byte stream into normalized events,
:meth:`Gemini.decode_response` reads a whole ``GenerateContentResponse`` and
:meth:`Gemini.map_error` maps an error status to a typed error.

Wire summary (https://ai.google.dev/api/generate-content):

* ``POST {base}/models/{model}:generateContent``, or
  ``:streamGenerateContent?alt=sse`` for a stream of ``data: {GenerateContentResponse}``
  blocks; the stream has no terminal sentinel, it just ends. The key travels in the
  ``x-goog-api-key`` header (never ``?key=``, which would put it in the URL).
* The conversation is ``contents``: ``role`` ``user`` or ``model``, with ``parts``
  (``text``, ``inlineData``, ``fileData``, ``functionCall``, ``functionResponse``).
  Leading system messages become ``systemInstruction``. Tool results are
  ``functionResponse`` parts of a ``user`` content, matched to the calls **by
  name** (and order), so a tool message must carry ``name=``. Consecutive contents
  of the same role are merged into one, which is how the API wants the responses
  to parallel calls.
* Schemas (tool parameters, ``responseSchema``) are rewritten by
  :func:`providers.schema.gemini_schema` into Gemini's OpenAPI 3.0 subset.

Reasoning (``reasoning_effort``) is sent as ``thinkingConfig`` with a token budget
and ``includeThoughts: true``:

=========  ==============  ===============================================================
effort     thinkingBudget  why
=========  ==============  ===============================================================
minimal    512             the smallest budget every 2.5 model takes (Flash-Lite's floor;
                           2.5 Pro cannot turn thinking off, so not 0)
low        2048
medium     8192
high       24576           the ceiling of 2.5 Flash and Flash-Lite (Pro goes to 32768)
=========  ==============  ===============================================================

Gemini 3 models prefer ``thinkingLevel`` but accept ``thinkingBudget`` for
compatibility; to send a level, pass ``generationConfig`` yourself in
``Request.extra`` (it replaces the whole generated ``generationConfig``).

Thought signatures (https://ai.google.dev/gemini-api/docs/thought-signatures) are
opaque tokens on response parts that must be sent back, on the same part, in the
next request of a function-calling turn (Gemini 3 refuses a function call without
its signature with a 400). Here is how they travel:

* **Decoding.** A part's ``thoughtSignature`` becomes
  ``ReasoningDelta(signature=..., block=b)`` for the current reasoning block ``b``,
  emitted *before* the events of the part it was on (before the ``ToolCallStart``
  of a signed ``functionCall``); the block is then sealed, and later thought text
  opens block ``b + 1``. Thought summaries (``thought: true`` text) are
  ``ReasoningDelta(text=...)`` of the current block, so an assembled message holds
  one :class:`~providers.messages.ReasoningPart` per signature, with the summary
  that preceded it. A signature may come on an empty text part (the last chunk of
  a stream); that yields the signature and no text.
* **Encoding.** Signatures are taken from the assistant message's ReasoningParts,
  in order. When the message has tool calls, the i-th signature goes on the i-th
  ``functionCall`` part; Gemini signs the first call of a parallel batch, so one
  signature lands on the first call, as it came. Without tool calls, the last
  signature goes on the last text part (Gemini puts it on the last part of a
  response without calls; sending it back there is recommended, not required).
  Thought summary text is not sent back (the signature carries the reasoning
  state); unsigned ReasoningParts are dropped.

Stream end: Gemini marks the last chunk with ``finishReason`` (and the final
``usageMetadata``), but it has no sentinel and may follow it with usage-only
chunks, so the decoder holds the Finish and emits ``Usage`` then ``Finish`` in
:meth:`GeminiStreamDecoder.end`. A stream that ends without a ``finishReason``
(or a ``promptFeedback.blockReason``) is truncated: ``end()`` raises
:class:`~providers.errors.StreamProtocolError`.

Function calls carry no id on the Generative Language API: the decoder uses the
call's ``id`` when there is one and otherwise synthesizes
``call_<responseId>_<index>`` (``call_<index>`` without a response id), stable for
a given response and unique across the turns of a conversation. Ids are never
sent back: results are matched by name.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import msgspec

from ..assemble import ResponseAssembler
from ..errors import (
    APIError,
    AuthenticationError,
    RateLimitError,
    RequestError,
    StreamDecodeError,
    StreamProtocolError,
)
from ..events import (
    Citations,
    ErrorEvent,
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
from ..messages import ImagePart, Message, ReasoningPart, Request, TextPart, ToolChoice
from ..ratelimits import parse_duration
from ..schema import gemini_schema
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
    limit_hit,
)

__all__ = ["THINKING_BUDGETS", "Gemini", "GeminiStreamDecoder"]

THINKING_BUDGETS: dict[str, int] = {"minimal": 512, "low": 2048, "medium": 8192, "high": 24576}
"""``reasoning_effort`` -> ``thinkingConfig.thinkingBudget`` (see the module docstring)."""

# Candidate.FinishReason values that mean the provider withheld output.
_CONTENT_FILTER_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)

_TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
# ErrorInfo reasons of a 400 INVALID_ARGUMENT that really mean a bad key.
_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


# ============================================================================ request


def _json_object(text: str, what: str) -> dict[str, Any]:
    """Decode ``text`` as a JSON object, or raise RequestError naming ``what``."""
    if not text.strip():
        return {}
    try:
        value = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise RequestError(
            f"{what}: arguments are not valid JSON ({exc}); Gemini takes function-call "
            "arguments as a JSON object"
        ) from None
    if not isinstance(value, dict):
        raise RequestError(
            f"{what}: arguments must be a JSON object, got {type(value).__name__}; "
            "Gemini takes function-call arguments as a JSON object"
        )
    return value


def _image_part(part: ImagePart, where: str) -> dict[str, Any]:
    """``inlineData`` for base64 data (and ``data:`` URLs), ``fileData`` for a URI."""
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    url = part.url or ""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding.lower() != "base64" or not media_type:
            raise RequestError(
                f"{where}: a data: URL image must be base64 with a media type "
                "(data:image/png;base64,...)"
            )
        return {"inlineData": {"mimeType": part.media_type or media_type, "data": data}}
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("https", "gs"):
        raise RequestError(
            f"{where}: Gemini fetches images only from https:// URLs (public or signed), "
            f"gs:// URIs registered with the Files API, or Files API URIs; got "
            f"{url[:60]!r}. Download it and pass "
            "ImagePart(data=<base64>, media_type=...) instead"
        )
    file_data: dict[str, Any] = {"fileUri": url}
    guessed = part.media_type or mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed:
        file_data["mimeType"] = guessed
    return {"fileData": file_data}


def _user_parts(message: Message, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.parts():
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_image_part(part, where))
        # ReasoningPart in a user message: nothing Gemini can take; dropped.
    return parts


def _model_parts(message: Message, where: str) -> list[dict[str, Any]]:
    """The parts of an assistant message, with thought signatures placed (module doc)."""
    parts: list[dict[str, Any]] = []
    signatures: list[str] = []
    for part in message.parts():
        if isinstance(part, ReasoningPart):
            if part.signature:
                signatures.append(part.signature)
        elif isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        else:
            parts.append(_image_part(part, where))
    calls: list[dict[str, Any]] = []
    for call in message.tool_calls:
        args = _json_object(call.arguments, f"{where}, tool call {call.name!r} ({call.id})")
        calls.append({"functionCall": {"name": call.name, "args": args}})
    if calls:
        for call_part, signature in zip(calls, signatures, strict=False):
            call_part["thoughtSignature"] = signature
    elif signatures:
        for part_dict in reversed(parts):
            if "text" in part_dict:
                part_dict["thoughtSignature"] = signatures[-1]
                break
    return parts + calls


def _tool_result_part(
    message: Message, where: str, call_names: Mapping[str, str]
) -> dict[str, Any]:
    if not message.name:
        known = call_names.get(message.tool_call_id or "")
        fix = (
            f"pass name={known!r} (the function that call {message.tool_call_id!r} named)"
            if known
            else "pass name= (the name of the function whose result this is)"
        )
        raise RequestError(
            f"{where}: a tool message needs name= for Gemini, which matches function "
            f"results to calls by name: {fix}, e.g. Message.tool(call_id, name, result)"
        )
    text = message.text
    value: Any
    try:
        value = _decoder.decode(text) if text.strip() else text
    except msgspec.DecodeError:
        value = text
    if message.is_error:
        response = {"error": value}
    elif isinstance(value, dict):
        response = value
    else:
        response = {"result": value}
    return {"functionResponse": {"name": message.name, "response": response}}


def _contents(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system parts, contents)`` for the conversation."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    leading = True
    for i, message in enumerate(messages):
        where = f"messages[{i}] ({message.role})"
        if message.role == "system":
            if not leading:
                raise RequestError(
                    f"{where}: Gemini takes system instructions only before the "
                    "conversation (systemInstruction); move this system message to the "
                    "start, or send it as a user message"
                )
            for part in message.parts():
                if isinstance(part, ImagePart):
                    raise RequestError(
                        f"{where}: Gemini system instructions hold text only; put the "
                        "image in a user message"
                    )
                if isinstance(part, TextPart) and part.text:
                    system.append({"text": part.text})
            continue
        leading = False
        if message.role == "user":
            role, parts = "user", _user_parts(message, where)
            if not parts:
                raise RequestError(
                    f"{where}: the message is empty; Gemini refuses contents without parts"
                )
        elif message.role == "assistant":
            for call in message.tool_calls:
                call_names[call.id] = call.name
            role, parts = "model", _model_parts(message, where)
            if not parts:
                continue  # an empty assistant turn (e.g. a filtered response): nothing to send
        else:  # tool
            role = "user"
            parts = [_tool_result_part(message, where, call_names)]
            parts += [_image_part(p, where) for p in message.parts() if isinstance(p, ImagePart)]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _tool_config(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _TOOL_CHOICE_MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": config}


def _generation_config(request: Request) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.response_format is not None:
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = gemini_schema(request.response_format.schema)
    if request.reasoning_effort is not None:
        config["thinkingConfig"] = {
            "thinkingBudget": THINKING_BUDGETS[request.reasoning_effort],
            "includeThoughts": True,
        }
    return config


def _function_declaration(tool: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = gemini_schema(tool.parameters)
    # Gemini refuses an OBJECT schema with no properties ("properties: should be
    # non-empty for OBJECT type"): a tool without arguments declares no parameters.
    if params.get("properties"):
        decl["parameters"] = params
    return decl


# ============================================================================ decoding


def _finish_reason(raw: str, has_calls: bool) -> FinishReason:
    if raw == "STOP":
        return "tool_calls" if has_calls else "stop"
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _CONTENT_FILTER_REASONS:
        return "content_filter"
    return "other"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(meta: Mapping[str, Any]) -> Usage:
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        # promptTokenCount already includes the cached tokens; toolUsePromptTokenCount
        # (built-in tools' own prompts) is billed as input too.
        input_tokens=_int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount")),
        output_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _error_message(error: Mapping[str, Any]) -> str:
    message = error.get("message")
    return message if isinstance(message, str) and message else "(no message)"


class _Chunks:
    """Turns ``GenerateContentResponse`` objects into events (shared by the stream
    decoder and :meth:`Gemini.decode_response`).

    Invariants: ``Start`` is emitted once, before anything else; ``_block`` is the
    reasoning block that thought text and the next signature belong to; tool-call
    indexes count the calls of the response; ``_finish`` holds the last finish
    reason seen until :meth:`finish` emits it.
    """

    def __init__(self) -> None:
        self._started = False
        self._response_id = ""
        self._block = 0
        self._calls = 0
        # The last usageMetadata seen, converted when the response ends: Gemini
        # repeats it in every chunk, and only the last counts.
        self._usage_meta: Mapping[str, Any] | None = None
        self._finish: Finish | None = None
        self._raw_finish: str | None = None
        self._blocked: str | None = None
        self._citations: set[str] = set()
        self.error: ErrorEvent | None = None

    @property
    def finished(self) -> bool:
        return self._raw_finish is not None or self._blocked is not None

    def chunk(self, obj: Any) -> list[StreamEvent]:
        if not isinstance(obj, dict):
            raise StreamDecodeError(
                f"Gemini sent {type(obj).__name__} where a GenerateContentResponse object belongs"
            )
        error = obj.get("error")
        if isinstance(error, dict):
            status = error.get("status")
            code = error.get("code")
            self.error = error_event(
                status if isinstance(status, str) and status else None,
                _error_message(error),
                status=code if isinstance(code, int) and code >= 400 else 200,
            )
            return [self.error]
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            rid = obj.get("responseId")
            self._response_id = rid if isinstance(rid, str) else ""
            model = obj.get("modelVersion")
            out.append(Start(id=self._response_id, model=model if isinstance(model, str) else ""))
        candidates = obj.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            self._candidate(candidates[0], out)
        feedback = obj.get("promptFeedback")
        if isinstance(feedback, dict):
            reason = feedback.get("blockReason")
            if isinstance(reason, str) and reason and reason != "BLOCK_REASON_UNSPECIFIED":
                self._blocked = reason
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict):
            self._usage_meta = meta
        return out

    def _candidate(self, candidate: Mapping[str, Any], out: list[StreamEvent]) -> None:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict):
                self._part(part, out)
        if "citationMetadata" in candidate or "groundingMetadata" in candidate:
            urls = [u for u in _citation_urls(candidate) if u not in self._citations]
            if urls:
                self._citations.update(urls)
                out.append(Citations(urls=urls))
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            self._raw_finish = reason

    def _part(self, part: Mapping[str, Any], out: list[StreamEvent]) -> None:
        signature = part.get("thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = part.get("text")
        text = text if isinstance(text, str) else ""
        call = part.get("functionCall")
        if part.get("thought") is True:
            if text or signature:
                out.append(ReasoningDelta(text=text, block=self._block, signature=signature))
            if signature:
                self._seal()
            return
        if signature:
            # The signature seals the reasoning that led to this part; it goes
            # before the part's own events (module docstring).
            out.append(ReasoningDelta(block=self._block, signature=signature))
            self._seal()
        if isinstance(call, dict):
            self._function_call(call, out)
        elif text:
            out.append(TextDelta(text=text))

    def _seal(self) -> None:
        self._block += 1

    def _function_call(self, call: Mapping[str, Any], out: list[StreamEvent]) -> None:
        index = self._calls
        self._calls += 1
        name = call.get("name")
        name = name if isinstance(name, str) else ""
        given = call.get("id")
        if isinstance(given, str) and given:
            call_id = given
        elif self._response_id:
            call_id = f"call_{_ID_UNSAFE.sub('_', self._response_id)}_{index}"
        else:
            call_id = f"call_{index}"
        args = call.get("args")
        arguments = _encoder.encode(args if isinstance(args, dict) else {}).decode()
        out.append(ToolCallStart(index=index, id=call_id, name=name))
        out.append(ToolCallDelta(index=index, arguments=arguments))
        out.append(ToolCallDone(index=index, id=call_id, name=name, arguments=arguments))

    def finish(self, *, complete: bool) -> list[StreamEvent]:
        """The closing ``Usage`` and ``Finish``.

        Args:
            complete: The response is known to be whole (a non-streaming body):
                a missing finish reason then means ``stop``.

        Raises:
            StreamProtocolError: the stream carried no finish reason.
        """
        out: list[StreamEvent] = []
        if self._usage_meta is not None:
            out.append(_usage(self._usage_meta))
        if self._blocked is not None and self._raw_finish is None:
            out.append(Finish(reason="content_filter", raw=self._blocked))
        elif self._raw_finish is not None:
            out.append(
                Finish(
                    reason=_finish_reason(self._raw_finish, self._calls > 0), raw=self._raw_finish
                )
            )
        elif complete:
            out.append(Finish(reason="tool_calls" if self._calls else "stop"))
        else:
            raise StreamProtocolError(
                "the Gemini stream ended without a finishReason: the response was cut off"
            )
        return out


def _citation_urls(candidate: Mapping[str, Any]) -> list[str]:
    urls: list[str] = []
    meta = candidate.get("citationMetadata")
    sources = meta.get("citationSources") if isinstance(meta, dict) else None
    for source in sources if isinstance(sources, list) else ():
        uri = source.get("uri") if isinstance(source, dict) else None
        if isinstance(uri, str) and uri and uri not in urls:
            urls.append(uri)
    grounding = candidate.get("groundingMetadata")
    chunks = grounding.get("groundingChunks") if isinstance(grounding, dict) else None
    for chunk in chunks if isinstance(chunks, list) else ():
        web = chunk.get("web") if isinstance(chunk, dict) else None
        uri = web.get("uri") if isinstance(web, dict) else None
        if isinstance(uri, str) and uri and uri not in urls:
            urls.append(uri)
    return urls


def _decode_json(data: str | bytes, what: str) -> Any:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        snippet = data[:200] if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        raise StreamDecodeError(f"{what} is not valid JSON ({exc}): {snippet!r}") from None


class GeminiStreamDecoder(StreamDecoder):
    """Decodes an ``alt=sse`` ``streamGenerateContent`` response.

    Each SSE event's data is one ``GenerateContentResponse``; the Finish (with the
    last usage before it) is held until :meth:`end`, because the stream has no
    terminal sentinel and usage may follow the ``finishReason`` chunk. An
    ``{"error": {...}}`` object ends the stream with an ErrorEvent at once.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._chunks = _Chunks()
        self.done = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self.done:
            return []
        out: list[StreamEvent] = []
        for sse in self._sse.feed_data(data):
            payload = sse if isinstance(sse, str) else sse.data  # the event's type is unused
            if not payload.strip() or payload.strip() == "[DONE]":
                continue
            out.extend(self._chunks.chunk(_decode_json(payload, "a Gemini stream chunk")))
            if self._chunks.error is not None:
                self.done = True
                break
        return out

    def end(self) -> list[StreamEvent]:
        self._sse.end()
        if self.done:
            return []
        events = self._chunks.finish(complete=False)
        self.done = True
        return events


# ============================================================================ family


class Gemini(Family):
    """The Gemini ``generateContent`` family (Generative Language API, v1beta)."""

    name: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com/v1beta"

    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        system, contents = _contents(request.messages)
        if not contents:
            raise RequestError(
                "Gemini needs at least one user message after the system instructions"
            )
        payload: dict[str, Any] = {"contents": contents}
        if system:
            payload["systemInstruction"] = {"parts": system}
        if request.tools:
            payload["tools"] = [
                {"functionDeclarations": [_function_declaration(t) for t in request.tools]}
            ]
            if request.tool_choice is not None:
                payload["toolConfig"] = _tool_config(request.tool_choice)
        generation = _generation_config(request)
        if generation:
            payload["generationConfig"] = generation

        model = request.model
        if not model.startswith(("models/", "tunedModels/")):
            model = "models/" + model
        verb = "streamGenerateContent" if stream else "generateContent"
        url = endpoint.url(f"{quote(model, safe='/._-')}:{verb}")

        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            **endpoint.headers,
        }
        secret_headers: dict[str, Secret] = {}
        if endpoint.api_key:
            header = (endpoint.auth_header or "x-goog-api-key").lower()
            if header == "authorization":
                secret_headers[header] = Secret("Bearer " + endpoint.api_key.reveal())
            else:
                secret_headers[header] = endpoint.api_key
            headers = {k: v for k, v in headers.items() if k.lower() != header}
        params = dict(endpoint.query)
        if stream:
            params["alt"] = "sse"
        return HttpRequest(
            method="POST",
            url=url,
            headers=headers,
            body=json_body(payload, request.extra),
            secret_headers=secret_headers,
            params=params,
        )

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        obj = _decode_json(body, "the Gemini response")
        chunks = _Chunks()
        events = chunks.chunk(obj)
        if chunks.error is not None:
            raise error_from_event(
                chunks.error, provider=provider or self.name, model=model, in_stream=False
            )
        events += chunks.finish(complete=True)
        assembler = ResponseAssembler()
        for event in events:
            assembler.feed(event)
        return assembler.result()

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
        error = _error_object(body)
        g_status: str | None = None
        details: list[Any] = []
        if error is not None:
            message = _error_message(error)
            raw_status = error.get("status")
            g_status = raw_status if isinstance(raw_status, str) and raw_status else None
            raw_details = error.get("details")
            details = raw_details if isinstance(raw_details, list) else []
        else:
            message = body.decode("utf-8", "replace").strip()[:2000] or f"HTTP {status}"
        err = classify_error(
            status,
            message,
            provider_type=g_status,
            codes=(g_status,),
            headers=headers,
            provider=provider,
            model=model,
            now=now,
        )
        reason = _detail(details, _ERROR_INFO, "reason")
        if reason in _KEY_REASONS and not isinstance(err, AuthenticationError):
            err = AuthenticationError(
                message,
                provider=provider,
                model=model,
                status=status,
                provider_type=g_status,
                request_id=err.request_id,
                retry_after=err.retry_after,
            )
        if err.retry_after is None:
            delay = _detail(details, _RETRY_INFO, "retryDelay")
            if isinstance(delay, str):
                err.retry_after = parse_duration(delay)
        if isinstance(err, RateLimitError) and err.limit is None:
            # The message is generic ("You exceeded your current quota"); the
            # QuotaFailure's metric names the limit.
            violations = _detail(details, _QUOTA_FAILURE, "violations")
            if isinstance(violations, list):
                metrics = " ".join(
                    f"{v.get('quotaMetric', '')} {v.get('quotaId', '')}"
                    for v in violations
                    if isinstance(v, dict)
                )
                err.limit = limit_hit(metrics, None)
        return err


def _error_object(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an error body: ``{"error": {...}}``, or the same in a
    one-element list (``streamGenerateContent`` without ``alt=sse``); None when the
    body is not JSON (a proxy's HTML page)."""
    try:
        obj = _decoder.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        error: dict[str, Any] = obj["error"]
        return error
    return None


def _detail(details: list[Any], type_url: str, field: str) -> Any:
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == type_url:
            return detail.get(field)
    return None
