"""Seeded, readable-looking text, and the simulator's way of counting tokens.

Token accounting (documented, and the same for every family):

* **Output**: one word is one token. A text token is a word with its leading
  space (the first token of an answer has none) and, at the end of a sentence,
  its full stop. One delta of streamed tool-call arguments is one token.
* **Input**: the characters of the request's text (system prompt, messages,
  tool results, tool names, descriptions and JSON schemas) divided by four,
  rounded up, at least one: ``estimate_tokens``.

Speed: the text comes from a corpus of tokens generated once per seed; an
answer is a seeded slice of it. Each token's JSON-escaped bytes are computed once
and kept, so encoders splice ready bytes between pre-encoded templates.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

import msgspec

__all__ = ["Corpus", "corpus", "escape", "estimate_tokens", "split_words"]

_NOUNS = """
system model signal river city garden market table window paper letter number
answer question process record pattern station engine bridge forest valley
mountain harbor island village teacher engineer traveler farmer report map
lantern library road storm morning evening season voice story network machine
""".split()
_ADJS = """
careful quiet bright simple early modern gentle steady clear useful open shared
local common narrow wide deep small large quick slow warm cold old new distant
""".split()
_VERBS = """
carried followed gathered built measured crossed found explained described
compared balanced supported considered arranged delivered observed improved
opened closed watched repaired reached mapped painted checked remembered
""".split()
_PREPS = "near across beyond under through along behind beside toward around".split()
_ADVS = "often always rarely slowly quickly together already perhaps indeed later soon".split()
_TEMPLATES = (
    "The {a} {n} {v} the {n} {p} the {n}.",
    "A {n} {v} the {a} {n}.",
    "{D}, the {n} {v} a {a} {n} {p} the {n}.",
    "Every {n} {v} the {n} and the {a} {n}.",
    "The {n} {p} the {n} was {a} and {a}.",
    "{D} the {a} {n} {v} {p} the {n}.",
    "Nobody {v} the {n}, so the {n} {v} it {d}.",
)

_CORPUS_TOKENS = 1 << 15


@lru_cache(maxsize=1 << 16)
def escape(text: str) -> bytes:
    """``text`` as the inside of a JSON string (UTF-8, quotes not included)."""
    return msgspec.json.encode(text)[1:-1]


class Corpus:
    """A long seeded token sequence; answers are slices of it.

    ``tokens[i]`` is a token as text (with its leading space); ``escaped[i]`` its
    JSON-escaped bytes; ``first[i]`` the same token without its leading space, for
    when it opens an answer.
    """

    def __init__(self, seed: int, size: int = _CORPUS_TOKENS) -> None:
        rng = random.Random(f"sim-corpus:{seed}")
        tokens: list[str] = []
        fill = {
            "a": _ADJS,
            "n": _NOUNS,
            "v": _VERBS,
            "p": _PREPS,
            "d": _ADVS,
            "D": [w.capitalize() for w in _ADVS],
        }
        while len(tokens) < size:
            template = rng.choice(_TEMPLATES)
            sentence = re.sub(r"\{(\w)\}", lambda m: rng.choice(fill[m.group(1)]), template)
            sentence = sentence[0].upper() + sentence[1:]
            tokens.extend(" " + w for w in sentence.split())
        self.tokens = tokens[:size]
        self.escaped = [escape(t) for t in self.tokens]
        self.size = len(self.tokens)

    def take(self, start: int, n: int) -> list[str]:
        """``n`` tokens from ``start`` (wrapping), the first without its leading space."""
        size = self.size
        start %= size
        out = [self.tokens[(start + i) % size] for i in range(n)]
        if out:
            out[0] = out[0].lstrip(" ")
        return out

    def start_of_sentence(self, rng: random.Random) -> int:
        """A seeded position where a sentence begins (after a full stop)."""
        pos = rng.randrange(self.size)
        for _ in range(32):
            if self.tokens[(pos - 1) % self.size].endswith("."):
                return pos
            pos = (pos + 1) % self.size
        return pos


@lru_cache(maxsize=16)
def corpus(seed: int) -> Corpus:
    """The corpus of ``seed`` (built once per seed and kept)."""
    return Corpus(seed)


def split_words(text: str) -> list[str]:
    """Split text into simulator tokens: words with their leading space."""
    words = text.split()
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def estimate_tokens(chars: int) -> int:
    """Input tokens for ``chars`` characters: ceil(chars / 4), at least 1."""
    return max(1, (chars + 3) // 4)
