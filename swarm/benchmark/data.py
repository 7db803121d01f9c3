"""What ``swarm bench`` sends: prompts with an input length and an output budget.

Three sources:

- synthetic prompts whose input and output lengths follow a distribution given on
  the command line (``256``, ``256:64`` normal with a standard deviation,
  ``128-512`` uniform), seeded;
- a JSONL file, each line a string or ``{"prompt": ..., "output_tokens": N}``;
- a ShareGPT file (a JSON list of ``{"conversations": [{"from": "human", "value":
  ...}, {"from": "gpt", "value": ...}]}``): the first human turn is the prompt, the
  length of the reply that followed it is the output budget.

Lengths here are in words, which is what the simulator counts as tokens; against a
real server the measured token counts come from the response's usage.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["BenchDataError", "LengthDist", "Prompt", "load_jsonl", "load_sharegpt", "synthetic"]


class BenchDataError(ValueError):
    """A length distribution or a data file that cannot be used (names the fix)."""


class Prompt(msgspec.Struct, kw_only=True, frozen=True):
    text: str
    input_words: int
    output_tokens: int  # the request's max_tokens


class LengthDist(msgspec.Struct, kw_only=True, frozen=True):
    """A length distribution: ``fixed``, ``normal`` (mean, std; clipped to >= 1) or
    ``uniform`` (low..high inclusive)."""

    kind: str
    a: int
    b: int = 0

    @classmethod
    def parse(cls, text: str, what: str) -> LengthDist:
        spec = text.strip()
        if m := re.fullmatch(r"(\d+)", spec):
            dist = cls(kind="fixed", a=int(m[1]))
        elif m := re.fullmatch(r"(\d+):(\d+)", spec):
            dist = cls(kind="normal", a=int(m[1]), b=int(m[2]))
        elif m := re.fullmatch(r"(\d+)-(\d+)", spec):
            dist = cls(kind="uniform", a=int(m[1]), b=int(m[2]))
            if dist.b < dist.a:
                raise BenchDataError(f"{what} {text!r}: the range must go low-high")
        else:
            raise BenchDataError(
                f"{what} {text!r} is not a length: write N (fixed), MEAN:STD (normal) "
                "or LOW-HIGH (uniform), in tokens"
            )
        if dist.a < 1:
            raise BenchDataError(f"{what} {text!r}: lengths must be at least 1")
        return dist

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.randint(self.a, self.b)
        return max(1, round(rng.gauss(self.a, self.b)))

    def describe(self) -> str:
        return {
            "fixed": f"{self.a}",
            "normal": f"{self.a}±{self.b}",
            "uniform": f"{self.a}-{self.b}",
        }[self.kind]


_WORDS = (
    "the of and to in is was for on that with as by at from it an be this which or "
    "are have not but had they one all were there their been has more if when can "
    "will no out so said what up its about into than them only other new some time"
).split()


def synthetic(
    count: int | None, input_len: LengthDist, output_len: LengthDist, seed: int
) -> Iterator[Prompt]:
    """Prompts of drawn lengths, endless when ``count`` is None. Each starts with
    its own number, so no two share a cacheable prefix by accident."""
    rng = random.Random(seed)
    n = 0
    while count is None or n < count:
        words = input_len.draw(rng)
        body = " ".join(rng.choice(_WORDS) for _ in range(max(0, words - 1)))
        yield Prompt(
            text=f"{n} {body}".strip(), input_words=words, output_tokens=output_len.draw(rng)
        )
        n += 1


def _words(text: str) -> int:
    return max(1, len(text.split()))


def load_jsonl(path: str | Path, output_len: LengthDist, seed: int) -> list[Prompt]:
    rng = random.Random(seed)
    prompts: list[Prompt] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchDataError(f"cannot read dataset {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value: Any = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            raise BenchDataError(f"{path}:{number} is not JSON ({exc})") from None
        out: Any = None
        if isinstance(value, dict):
            out = value.get("output_tokens")
            value = value.get("prompt")
        if not isinstance(value, str) or not value:
            raise BenchDataError(
                f'{path}:{number}: each line must be a string or {{"prompt": "...", '
                '"output_tokens": N}'
            )
        if out is not None and (not isinstance(out, int) or out < 1):
            raise BenchDataError(f"{path}:{number}: output_tokens must be an int >= 1")
        prompts.append(
            Prompt(text=value, input_words=_words(value), output_tokens=out or output_len.draw(rng))
        )
    if not prompts:
        raise BenchDataError(f"dataset {path} holds no prompts")
    return prompts


def load_sharegpt(path: str | Path, output_len: LengthDist | None, seed: int) -> list[Prompt]:
    """ShareGPT conversations; the output budget is the recorded reply's length
    unless ``output_len`` is given."""
    rng = random.Random(seed)
    try:
        data = msgspec.json.decode(Path(path).read_bytes())
    except OSError as exc:
        raise BenchDataError(f"cannot read dataset {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise BenchDataError(f"dataset {path} is not JSON ({exc})") from None
    if not isinstance(data, list):
        raise BenchDataError(f"dataset {path}: a ShareGPT file is a JSON list of conversations")
    prompts: list[Prompt] = []
    for item in data:
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list):
            continue
        human = next(
            (
                i
                for i, t in enumerate(turns)
                if isinstance(t, dict) and t.get("from") in ("human", "user")
            ),
            None,
        )
        if human is None or not isinstance(turns[human].get("value"), str):
            continue
        text = turns[human]["value"]
        reply = turns[human + 1] if human + 1 < len(turns) else None
        if output_len is not None:
            out = output_len.draw(rng)
        elif isinstance(reply, dict) and isinstance(reply.get("value"), str):
            out = _words(reply["value"])
        else:
            continue  # no reply to size the answer by
        if text.strip():
            prompts.append(Prompt(text=text, input_words=_words(text), output_tokens=out))
    if not prompts:
        raise BenchDataError(
            f"dataset {path} holds no usable conversation (a human turn followed by a reply)"
        )
    return prompts
