"""Prompt-cache accounting: a repeated prompt prefix is reported as cached tokens.

The prompt is a sequence of blocks (tools, instructions, each message or content
part: ``SimPrompt.segments``). Each block boundary ends a prefix, identified by a
running digest and sized ``chars // 4`` tokens. Prefixes are kept per (API key,
model) for ``cache_ttl`` seconds after their last use, when they are at least
``cache_min_tokens`` long.

* OpenAI (Chat Completions, Responses): automatic. Cached tokens are the longest
  stored prefix, counted from ``cache_min_tokens`` in steps of 128 as OpenAI
  reports them; every prefix of the request is stored.
* Gemini: automatic (implicit caching), the longest stored prefix, unrounded.
* Anthropic: only blocks with ``cache_control`` are written. The longest stored
  prefix ending at or before the last breakpoint is read
  (``cache_read_input_tokens``); the rest up to the last breakpoint is written
  (``cache_creation_input_tokens``); ``input_tokens`` is what is left.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from .model import SimPrompt

__all__ = ["PromptCache"]

_MAX_ENTRIES = 200_000


class PromptCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def reset(self) -> None:
        self._entries.clear()

    def account(
        self, *, scope: str, prompt: SimPrompt, family: str, min_tokens: int, ttl: float, now: float
    ) -> tuple[int, int]:
        """(cached tokens read, tokens written) for ``prompt``; stores its prefixes."""
        h = hashlib.blake2b(scope.encode(), digest_size=16)
        chars = 0
        bounds: list[tuple[bytes, int, bool]] = []
        for text, breakpoint in prompt.segments:
            h.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
            chars += len(text)
            bounds.append((h.copy().digest(), chars // 4, breakpoint))
        total = prompt.input_tokens
        if family == "anthropic":
            last_bp = max((i for i, b in enumerate(bounds) if b[2]), default=-1)
            if last_bp < 0:
                return 0, 0
            hit = 0
            for digest, tokens, _ in bounds[: last_bp + 1]:
                if tokens >= min_tokens and self._alive(digest, now):
                    hit = tokens
            target = bounds[last_bp][1]
            write = 0
            if target >= min_tokens:
                write = max(0, target - hit)
                for digest, tokens, bp in bounds[: last_bp + 1]:
                    if bp and tokens >= min_tokens:
                        self._store(digest, now + ttl)
            if hit:
                self._store_touch(bounds, hit, now + ttl)
            return min(hit, total), min(write, total - min(hit, total))
        hit = 0
        for digest, tokens, _ in bounds:
            if tokens >= min_tokens and self._alive(digest, now):
                hit = tokens
        for digest, tokens, _ in bounds:
            if tokens >= min_tokens:
                self._store(digest, now + ttl)
        if family in ("openai", "openai-responses") and hit:
            hit = min_tokens + 128 * ((hit - min_tokens) // 128)
        return min(hit, total), 0

    def _alive(self, digest: bytes, now: float) -> bool:
        expires = self._entries.get(digest)
        if expires is None:
            return False
        if expires < now:
            del self._entries[digest]
            return False
        return True

    def _store(self, digest: bytes, expires: float) -> None:
        entries = self._entries
        entries[digest] = expires
        entries.move_to_end(digest)
        while len(entries) > _MAX_ENTRIES:
            entries.popitem(last=False)

    def _store_touch(self, bounds: list[tuple[bytes, int, bool]], hit: int, expires: float) -> None:
        for digest, tokens, _ in bounds:
            if tokens == hit and digest in self._entries:
                self._store(digest, expires)
