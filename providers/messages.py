"""The normalized request: one vocabulary for every wire-protocol family.

A :class:`Request` says what to ask a model; a family module (``providers.families``)
turns it into the HTTP request of one provider's API. Nothing here knows about HTTP.

Invariants:
    * A request is plain data (msgspec Structs), so it can be serialized, logged
      (it holds no secret) and sent across processes.
    * Validation that does not depend on the family happens in ``__post_init__``, so
      a malformed request is refused where it is built, with a message naming the
      field and the fix, rather than as a 400 from a provider.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "CacheHint",
    "ImagePart",
    "Message",
    "Part",
    "ReasoningEffort",
    "ReasoningPart",
    "Request",
    "ResponseFormat",
    "Role",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
]

Role = Literal["system", "user", "assistant", "tool"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


class TextPart(msgspec.Struct, tag="text", tag_field="type", kw_only=True, frozen=True):
    """A piece of text.

    Attributes:
        text: The text.
        cache: Ask for a prompt-cache breakpoint after this part (Anthropic
            ``cache_control``). Families without explicit breakpoints ignore it.
    """

    text: str
    cache: bool = False


class ImagePart(msgspec.Struct, tag="image", tag_field="type", kw_only=True, frozen=True):
    """An image, either by URL or as inline base64 data with its media type."""

    url: str | None = None
    data: str | None = None
    """Base64-encoded image bytes (no ``data:`` prefix)."""
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    cache: bool = False

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("ImagePart needs exactly one of url= or data= (base64)")
        if self.data is not None and not self.media_type:
            raise ValueError("ImagePart(data=...) needs media_type=, e.g. 'image/png'")


class ReasoningPart(msgspec.Struct, tag="reasoning", tag_field="type", kw_only=True, frozen=True):
    """Reasoning a model produced, kept so it can be sent back on the next turn.

    Anthropic requires thinking blocks (with their ``signature``) to be returned
    unchanged when a tool loop continues; ``redacted`` holds the opaque data of a
    ``redacted_thinking`` block. OpenAI Responses reasoning items carry an ``id``
    and optional ``encrypted_content``; Gemini's ``thoughtSignature`` goes in
    ``signature``.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    id: str | None = None


Part = TextPart | ImagePart | ReasoningPart


class ToolCall(msgspec.Struct, kw_only=True, frozen=True):
    """A call of a tool by the model, as it appears in an assistant message.

    ``arguments`` is the raw JSON text the model produced: it is kept verbatim so
    that it round-trips exactly, and decoded with ``providers.tools`` when a tool
    runs.
    """

    id: str
    name: str
    arguments: str = "{}"


class Message(msgspec.Struct, kw_only=True, frozen=True):
    """One message of a conversation.

    * ``system``: instructions. Families that keep them apart from the conversation
      (Anthropic, Gemini) take the leading system messages; a system message after
      the first non-system message is refused there.
    * ``user``: text and images.
    * ``assistant``: text, reasoning, and ``tool_calls``.
    * ``tool``: the result of one tool call: ``tool_call_id`` and ``name`` of the
      call it answers (Gemini matches results by name), ``is_error`` when the tool
      failed.
    """

    role: Role
    content: str | list[Part] = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False

    def __post_init__(self) -> None:
        if self.role == "tool":
            if not self.tool_call_id:
                raise ValueError(
                    "a tool message needs tool_call_id= (the id of the call it answers)"
                )
        elif self.tool_call_id is not None or self.is_error:
            raise ValueError(
                "tool_call_id= and is_error= belong to role='tool' messages, "
                f"not role={self.role!r}"
            )
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"tool_calls= belong to assistant messages, not role={self.role!r}")

    @property
    def text(self) -> str:
        """The concatenated text parts (reasoning and images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    def parts(self) -> list[Part]:
        """The content as a list of parts (a plain string becomes one text part)."""
        if isinstance(self.content, str):
            return [TextPart(text=self.content)] if self.content else []
        return list(self.content)

    @classmethod
    def system(cls, text: str, *, cache: bool = False) -> Message:
        return cls(role="system", content=[TextPart(text=text, cache=cache)] if cache else text)

    @classmethod
    def user(cls, text: str, *, cache: bool = False) -> Message:
        return cls(role="user", content=[TextPart(text=text, cache=cache)] if cache else text)

    @classmethod
    def assistant(cls, text: str = "", *, tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=text, tool_calls=tool_calls or [])

    @classmethod
    def tool(
        cls, call_id: str, name: str, result: str | list[Part], *, is_error: bool = False
    ) -> Message:
        """A tool's result: text, or parts (text and images: every family but OpenAI
        Chat takes images in a tool result; there they follow in a user message)."""
        return cls(role="tool", tool_call_id=call_id, name=name, content=result, is_error=is_error)


class ToolSpec(msgspec.Struct, kw_only=True, frozen=True):
    """A tool the model may call: a name, a description and a JSON Schema.

    ``parameters`` is JSON Schema as msgspec produces it (``$defs`` and ``$ref``
    allowed); each family rewrites it into the dialect its API accepts. Build one
    from a Python callable or a Struct with ``providers.tools.tool_spec``.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool = False

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(
                f"tool name {self.name!r} is not accepted by providers: "
                "use letters, digits, '_' or '-'"
            )
        if len(self.name) > 64:
            raise ValueError(
                f"tool name {self.name!r} is longer than the 64 characters providers allow"
            )
        if self.parameters.get("type", "object") != "object":
            raise ValueError(
                f"tool {self.name!r}: parameters must be a JSON Schema of type 'object'"
            )


class ToolChoice(msgspec.Struct, kw_only=True, frozen=True):
    """How the model may use tools.

    Attributes:
        mode: ``auto`` (the model decides), ``none`` (no tool), ``required`` (some
            tool), ``tool`` (the tool named by ``name``).
        name: The tool to call when ``mode == "tool"``.
        parallel: Allow several tool calls in one turn (``None``: provider default).
    """

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    parallel: bool | None = None

    def __post_init__(self) -> None:
        if (self.mode == "tool") != (self.name is not None):
            raise ValueError("ToolChoice: give name= exactly when mode='tool'")


class ResponseFormat(msgspec.Struct, kw_only=True, frozen=True):
    """Structured output: the reply must be JSON matching ``schema``."""

    schema: dict[str, Any]
    name: str = "response"
    strict: bool = True


class CacheHint(msgspec.Struct, kw_only=True, frozen=True):
    """Prompt-cache policy for a request.

    Attributes:
        auto: Place cache breakpoints on the stable prefix automatically (tools,
            system prompt, long context) where the family needs explicit ones.
        ttl: Cache lifetime where the provider offers a choice (Anthropic ``5m`` or
            ``1h``).
        key: A cache routing key where the provider takes one (OpenAI
            ``prompt_cache_key``).
    """

    auto: bool = True
    ttl: Literal["5m", "1h"] | None = None
    key: str | None = None


class Request(msgspec.Struct, kw_only=True, frozen=True):
    """What to ask a model, in terms every family understands.

    Attributes:
        model: The provider's model name (``gpt-4o-mini``, ``claude-sonnet-4-5``...).
        messages: The conversation; leading ``system`` messages are the instructions.
        tools: Tools the model may call.
        tool_choice: How it may call them.
        max_tokens: Cap on output tokens (Anthropic requires one; a family default
            applies when unset).
        temperature, top_p, stop: Sampling controls.
        response_format: Ask for JSON matching a schema.
        reasoning_effort: Reasoning effort for models that reason (mapped to a
            thinking budget for Anthropic and Gemini).
        metadata: Free-form string pairs, sent where the family has a place for
            them and always kept by the runtime.
        cache: Prompt-cache policy.
        extra: Extra top-level body fields, merged last, for provider options
            this model does not name (an escape hatch; keys override).
    """

    model: str
    messages: list[Message]
    tools: list[ToolSpec] = []
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = []
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    metadata: dict[str, str] = {}
    cache: CacheHint = CacheHint()
    extra: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("Request needs model= (the provider's model name)")
        if not self.messages:
            raise ValueError("Request needs at least one message")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within 0..2, got {self.temperature}")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must be within 0..1, got {self.top_p}")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        tc = self.tool_choice
        if tc is not None and tc.mode in ("required", "tool") and not self.tools:
            raise ValueError(f"tool_choice mode={tc.mode!r} needs tools=")
        if tc is not None and tc.mode == "tool" and tc.name not in names:
            raise ValueError(f"tool_choice names {tc.name!r}, which is not among tools=")
