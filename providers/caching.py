"""Where to put prompt-cache breakpoints (Anthropic ``cache_control``).

Anthropic caches a prompt *prefix* (tools, then system, then messages, in that
order) up to a block marked ``cache_control``, and only when a request marks one.
This module chooses the blocks to mark. It is a pure function over the normalized
:class:`~providers.messages.Request`, so the choice is testable on its own;
``providers.families.anthropic`` applies it to the body it builds.

The rules, in order:

1. **Explicit hints first.** Every ``TextPart(cache=True)`` and
   ``ImagePart(cache=True)`` (in the leading system messages or the conversation)
   is marked, whatever ``request.cache.auto`` says. Anthropic allows at most
   :data:`MAX_BREAKPOINTS` (4) breakpoints in a request; more explicit hints than
   that is a :class:`~providers.errors.RequestError`.
2. **Automatic breakpoints** (only when ``request.cache.auto``) fill the slots
   the hints left, in this order of priority:

   a. the *last tool definition*, when the tools alone reach the model's minimum
      cacheable length;
   b. the *last system block*, when tools plus system reach it;
   c. the *conversation tail*: the last markable block of the last message, when
      the request is a conversation in progress (more than one non-system
      message, as in every tool loop) and the whole prompt reaches the minimum.
      The next turn re-sends this prefix and reads it from the cache (Anthropic
      finds an earlier breakpoint up to 20 blocks back);
   d. *long context blocks*: each text block whose own estimate reaches the
      minimum (a pasted document, a long tool result), earliest first, because
      the earliest blocks are the most stable part of the prefix.

   A position already marked by a hint is not marked twice and takes no slot.

A breakpoint on a prefix shorter than the model's minimum is harmless (Anthropic
processes the request without caching, no error), but it would waste one of the
four slots, hence the thresholds.

Token estimate (documented, deliberately rough): ``ceil(characters / 4)`` for text
and for tools (their JSON definition), :data:`IMAGE_TOKENS` per image, the
arguments' characters / 4 for a tool call. Only placement depends on it; the
provider reports the real counts in ``Usage.cache_read_tokens`` and
``Usage.cache_write_tokens``.

Minimum cacheable lengths (:func:`min_cacheable_tokens`), from Anthropic's prompt
caching documentation ("minimum cacheable prompt length"), as read in 2026:

==========================================================  ======
model                                                        tokens
==========================================================  ======
Claude Opus 4.7, Opus 4.6, Opus 4.5, Haiku 4.5, Mythos        4096
Claude Haiku 3.5, Haiku 3                                     2048
Claude Opus 4.8, Opus 4.1, Opus 4, Sonnet 4.6, Sonnet 4.5,    1024
Sonnet 4, Sonnet 3.7, Sonnet 3.5, Opus 3
any other model (:data:`DEFAULT_MIN_CACHEABLE_TOKENS`)        1024
==========================================================  ======
"""

from __future__ import annotations

import re

import msgspec

from .errors import RequestError
from .messages import ImagePart, Message, Part, ReasoningPart, Request, TextPart

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "IMAGE_TOKENS",
    "MAX_BREAKPOINTS",
    "CachePlan",
    "estimate_tokens",
    "leading_system_count",
    "min_cacheable_tokens",
    "plan_cache_breakpoints",
    "system_parts",
]

MAX_BREAKPOINTS = 4
"""Anthropic accepts at most four ``cache_control`` blocks in one request."""

CHARS_PER_TOKEN = 4
"""The token estimate: one token per four characters (English prose averages
about that with Claude's tokenizers; code and other scripts count more)."""

IMAGE_TOKENS = 1600
"""Estimated tokens of one image: Anthropic bills about width*height/750 tokens,
some 1,600 for an image at the largest size it keeps before resizing."""

DEFAULT_MIN_CACHEABLE_TOKENS = 1024
"""The minimum for a model the table does not know (the most common figure)."""

# Matched in order against the model name, lower-cased with dots as dashes (so
# "claude-opus-4.6", "anthropic.claude-haiku-4-5-20251001-v1:0" and
# "claude-3-5-haiku-latest" all match). (?!\d) keeps "opus-4-5" from matching a
# dated "opus-4-50..." name.
_MINIMUMS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"opus-4-[567](?!\d)"), 4096),
    (re.compile(r"haiku-4-5(?!\d)"), 4096),
    (re.compile(r"mythos"), 4096),
    (re.compile(r"3-5-haiku|3-haiku|haiku-3(?!\d)"), 2048),
)  # everything else, Sonnet and the other Opus models included: 1024


def min_cacheable_tokens(model: str) -> int:
    """The minimum prefix length (tokens) that Anthropic caches for ``model``."""
    name = model.lower().replace(".", "-")
    for pattern, tokens in _MINIMUMS:
        if pattern.search(name):
            return tokens
    return DEFAULT_MIN_CACHEABLE_TOKENS


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: the estimate used for placement."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _part_tokens(part: Part) -> int:
    if isinstance(part, TextPart):
        return estimate_tokens(part.text)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    return estimate_tokens(part.text) + estimate_tokens(part.redacted or "")


def leading_system_count(messages: list[Message]) -> int:
    """How many messages at the start are ``system`` messages."""
    count = 0
    for message in messages:
        if message.role != "system":
            break
        count += 1
    return count


def system_parts(request: Request) -> list[Part]:
    """The parts of the leading system messages, flattened in order.

    A *system block index* in a :class:`CachePlan` is a position in this list
    (``providers.families.anthropic`` renders one system block per item)."""
    parts: list[Part] = []
    for message in request.messages[: leading_system_count(request.messages)]:
        parts.extend(message.parts())
    return parts


class CachePlan(msgspec.Struct, kw_only=True, frozen=True):
    """The blocks to mark with ``cache_control``.

    Attributes:
        tools: Indexes into ``request.tools``.
        system: Indexes into :func:`system_parts` of the request.
        messages: ``(message index, part index)``: the message's position in
            ``request.messages`` and the part's in ``message.parts()``.
    """

    tools: tuple[int, ...] = ()
    system: tuple[int, ...] = ()
    messages: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.tools) + len(self.system) + len(self.messages)


def _markable(part: Part) -> bool:
    if isinstance(part, ReasoningPart):
        return False  # Anthropic refuses cache_control on thinking blocks
    if isinstance(part, TextPart) and not part.text:
        return False  # empty text blocks are not sent at all
    return True


def _tool_tokens(request: Request) -> int:
    total = 0
    for tool in request.tools:
        spec = {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        total += -(-len(msgspec.json.encode(spec)) // CHARS_PER_TOKEN)
    return total


def plan_cache_breakpoints(request: Request) -> CachePlan:
    """Choose the blocks to mark (see the module's docstring for the rules).

    Raises:
        RequestError: more than :data:`MAX_BREAKPOINTS` parts ask for
            ``cache=True``.
    """
    n_system = leading_system_count(request.messages)
    sys_parts = system_parts(request)

    tools: list[int] = []
    system: list[int] = [
        j
        for j, part in enumerate(sys_parts)
        if isinstance(part, TextPart | ImagePart) and part.cache
    ]
    messages: list[tuple[int, int]] = []
    for i in range(n_system, len(request.messages)):
        for j, part in enumerate(request.messages[i].parts()):
            if isinstance(part, TextPart | ImagePart) and part.cache:
                messages.append((i, j))

    explicit = len(system) + len(messages)
    if explicit > MAX_BREAKPOINTS:
        raise RequestError(
            f"Anthropic allows at most {MAX_BREAKPOINTS} cache breakpoints in a request, and "
            f"{explicit} parts ask for one (cache=True): keep cache=True on at most "
            f"{MAX_BREAKPOINTS} parts, ideally the last part of each stable section"
        )
    if not request.cache.auto:
        return CachePlan(system=tuple(system), messages=tuple(messages))

    minimum = min_cacheable_tokens(request.model)
    free = MAX_BREAKPOINTS - explicit

    # a. the last tool definition
    prefix = _tool_tokens(request)
    if free and request.tools and prefix >= minimum:
        tools.append(len(request.tools) - 1)
        free -= 1

    # b. the last system block
    prefix += sum(_part_tokens(p) for p in sys_parts)
    last_system = next(
        (j for j in range(len(sys_parts) - 1, -1, -1) if _markable(sys_parts[j])),
        None,
    )
    if free and last_system is not None and prefix >= minimum and last_system not in system:
        system.append(last_system)
        free -= 1

    # c. and d. walk the conversation once
    long_blocks: list[tuple[int, int]] = []
    tail: tuple[int, int] | None = None
    for i in range(n_system, len(request.messages)):
        message = request.messages[i]
        tail = None
        for j, part in enumerate(message.parts()):
            tokens = _part_tokens(part)
            prefix += tokens
            if not _markable(part):
                continue
            tail = (i, j)
            if isinstance(part, TextPart) and tokens >= minimum:
                long_blocks.append((i, j))
        for call in message.tool_calls:
            prefix += estimate_tokens(call.name) + estimate_tokens(call.arguments)
    conversation = len(request.messages) - n_system
    if (
        free
        and tail is not None
        and conversation > 1
        and prefix >= minimum
        and tail not in messages
    ):
        messages.append(tail)
        free -= 1
    for position in long_blocks:
        if not free:
            break
        if position not in messages:
            messages.append(position)
            free -= 1

    return CachePlan(
        tools=tuple(tools), system=tuple(sorted(system)), messages=tuple(sorted(messages))
    )
