"""The simulated model: what it answers to a prompt, decided from a seeded source.

Each family module parses its request body into a :class:`SimPrompt` (the same
shape for every family); :func:`plan_turn` decides the :class:`Turn`: text
tokens, or tool calls with arguments that validate against the tools' schemas,
and the finish reason. Encoders then write the turn in their wire format.

Determinism: the random source of a request is seeded by the simulator's seed and
a digest of the request's content (model, instructions, messages, tools; not the
``stream`` flag nor ``max_tokens``), so the same request always gets the same
answer, streaming or not.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from .config import ModelProfile
from .text import Corpus, escape, estimate_tokens, split_words

__all__ = [
    "BadRequest",
    "SimPrompt",
    "SimToolCall",
    "ToolDef",
    "Turn",
    "generate_arguments",
    "plan_turn",
]

Finish = Literal["stop", "length", "tool_calls"]


class BadRequest(Exception):
    """The request body cannot be understood: answered with the family's 400."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


@dataclass(slots=True)
class ToolDef:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class SimPrompt:
    """A request, as the simulated model sees it, whatever its family.

    ``segments`` are the prompt's blocks in order (tools, instructions, then each
    message or content part) as canonical text, each with whether it carries a
    cache breakpoint (Anthropic ``cache_control``); they give the input token
    estimate, the content digest and the prompt-cache prefixes.
    """

    model: str
    stream: bool
    max_tokens: int | None
    segments: list[tuple[str, bool]]
    tools: list[ToolDef] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required | tool
    tool_name: str | None = None
    parallel: bool = True
    tool_results: list[tuple[str, str]] = field(default_factory=list)
    include_usage: bool = False
    # OpenAI's stream_options.include_obfuscation (default on): pad delta events
    # with an "obfuscation" field of random length, as the real API does.
    obfuscate: bool = True
    echo: dict[str, Any] = field(default_factory=dict)
    _digest: bytes | None = None
    _chars: int = -1

    @property
    def chars(self) -> int:
        if self._chars < 0:
            self._chars = sum(len(s) for s, _ in self.segments)
        return self._chars

    @property
    def tool_rounds(self) -> int:
        """Tool rounds the conversation holds: runs of tool-result blocks (every
        family's decoder marks them ``tool:`` or ``<role>:result:``). The tool
        definitions come first, also as ``tool:``; they are skipped."""
        rounds, inside, conversation = 0, False, False
        for text, _ in self.segments:
            role, _, rest = text.partition(":")
            if not conversation and role == "tool":
                continue  # a definition (a conversation never opens with results)
            conversation = True
            is_result = role == "tool" or rest.startswith("result:")
            if is_result and not inside:
                rounds += 1
            inside = is_result
        return rounds

    @property
    def input_tokens(self) -> int:
        return estimate_tokens(self.chars)

    def digest(self) -> bytes:
        """A digest of the content that decides the answer."""
        if self._digest is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.model.encode())
            for text, _ in self.segments:
                h.update(b"\x00")
                h.update(text.encode("utf-8", "surrogatepass"))
            h.update(f"\x01{self.tool_choice}:{self.tool_name}:{self.parallel}".encode())
            self._digest = h.digest()
        return self._digest


@dataclass(slots=True)
class SimToolCall:
    suffix: str  # random id part; families add their prefix (call_, toolu_, fc_)
    name: str
    arguments: str
    chunks: list[str]
    # False: max_tokens cut the arguments short (``arguments`` is a prefix of JSON).
    complete: bool = True

    @property
    def args_object(self) -> Any:
        """The arguments as an object; ``{}`` for cut ones (what a family whose
        arguments are an object says of a call cut short)."""
        return msgspec.json.decode(self.arguments) if self.complete else {}


@dataclass(slots=True)
class Turn:
    """What the model answers: text tokens or tool calls, and the usage."""

    tokens: list[str]
    escaped: list[bytes]
    tool_calls: list[SimToolCall]
    finish: Finish
    input_tokens: int
    output_tokens: int
    rng: random.Random
    id_suffix: str
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_tokens - self.cache_creation_tokens)


_ALNUM = string.ascii_letters + string.digits


_ID_TABLE = bytes((_ALNUM * 5).encode()[:256])


def random_id(rng: random.Random, n: int = 24) -> str:
    """``n`` seeded letters and digits."""
    return rng.getrandbits(8 * n).to_bytes(n, "little").translate(_ID_TABLE).decode()


def draw_length(profile: ModelProfile, rng: random.Random) -> int:
    if profile.output_sigma > 0:
        n = round(rng.lognormvariate(math.log(profile.output_tokens), profile.output_sigma))
        if profile.output_tokens_max is not None:
            n = min(n, profile.output_tokens_max)
        return max(1, n)
    if profile.output_tokens_max is not None:
        return rng.randint(profile.output_tokens, profile.output_tokens_max)
    return profile.output_tokens


def request_rng(seed: int, prompt: SimPrompt) -> random.Random:
    return random.Random(int.from_bytes(prompt.digest(), "little") ^ (seed & (1 << 128) - 1))


def plan_turn(prompt: SimPrompt, profile: ModelProfile, corpus: Corpus, seed: int) -> Turn:
    """Decide the answer to ``prompt``."""
    rng = request_rng(seed, prompt)
    id_suffix = random_id(rng)
    cap = prompt.max_tokens if prompt.max_tokens is not None else profile.default_max_tokens
    wants_tool = (
        prompt.tools
        and prompt.tool_choice != "none"
        and (
            not prompt.tool_results
            if profile.tool_rounds == 1
            else prompt.tool_rounds < profile.tool_rounds
        )
        and (
            prompt.tool_choice in ("required", "tool")
            or rng.random() < profile.tool_call_probability
        )
    )
    if wants_tool:
        calls = _tool_calls(prompt, profile, rng)
        out = sum(len(c.chunks) for c in calls)
        tool_finish: Finish = "tool_calls"
        if out > cap:
            # The cap counts argument tokens as it counts text: the call it falls in
            # is cut there, the ones after it never start, and the turn ends "length".
            calls, out, tool_finish = _cut_calls(calls, cap), cap, "length"
        return Turn(
            tokens=[],
            escaped=[],
            tool_calls=calls,
            finish=tool_finish,
            input_tokens=prompt.input_tokens,
            output_tokens=out,
            rng=rng,
            id_suffix=id_suffix,
        )
    n = draw_length(profile, rng)
    finish: Finish = "stop"
    if n > cap:
        n, finish = cap, "length"
    lead: list[str] = []
    if prompt.tool_results:
        for name, result in prompt.tool_results:
            words = result.split()
            excerpt = " ".join(words[:24]) + (" ..." if len(words) > 24 else "")
            lead.extend(split_words(f"{name} returned: {excerpt or '(nothing)'}."))
        lead[0] = "From the tool results, " + lead[0]
        lead = split_words("".join(lead))
    start = corpus.start_of_sentence(rng)
    if lead:
        tokens = lead[:n]
        if len(tokens) < n:
            rest = corpus.take(start, n - len(tokens))
            rest[0] = " " + rest[0]
            tokens.extend(rest)
        escaped = [escape(t) for t in tokens]
    else:
        tokens = corpus.take(start, n)
        size = corpus.size
        escaped = [corpus.escaped[(start + i) % size] for i in range(n)]
        escaped[0] = escape(tokens[0])
    return Turn(
        tokens=tokens,
        escaped=escaped,
        tool_calls=[],
        finish=finish,
        input_tokens=prompt.input_tokens,
        output_tokens=n,
        rng=rng,
        id_suffix=id_suffix,
    )


def _cut_calls(calls: list[SimToolCall], cap: int) -> list[SimToolCall]:
    """The calls as far as ``cap`` argument chunks reach."""
    kept: list[SimToolCall] = []
    left = cap
    for call in calls:
        if left <= 0:
            break
        if len(call.chunks) <= left:
            kept.append(call)
            left -= len(call.chunks)
            continue
        chunks = call.chunks[:left]
        kept.append(SimToolCall(call.suffix, call.name, "".join(chunks), chunks, complete=False))
        left = 0
    return kept


def _tool_calls(prompt: SimPrompt, profile: ModelProfile, rng: random.Random) -> list[SimToolCall]:
    tools = prompt.tools
    if prompt.tool_choice == "tool" and prompt.tool_name is not None:
        chosen = [t for t in tools if t.name == prompt.tool_name][:1] or tools[:1]
    else:
        k = profile.tool_calls if prompt.parallel else 1
        chosen = [tools[rng.randrange(len(tools))] for _ in range(k)]
    calls = []
    for tool in chosen:
        args = generate_arguments(tool.schema, rng)
        name = tool.name
        if profile.bad_tool_calls and rng.random() < profile.bad_tool_calls:
            broken = _break_arguments(args, tool.schema) if rng.random() < 0.5 else None
            if broken is None:
                name = UNKNOWN_TOOL_PREFIX + tool.name
            else:
                args = broken
        text = msgspec.json.encode(args).decode()
        step = profile.tool_args_chunk
        chunks = [text[i : i + step] for i in range(0, len(text), step)] or ["{}"]
        calls.append(SimToolCall(suffix=random_id(rng), name=name, arguments=text, chunks=chunks))
    return calls


# A wrong tool call's made-up name (ModelProfile.bad_tool_calls).
UNKNOWN_TOOL_PREFIX = "unoffered_"


def _break_arguments(args: Any, schema: dict[str, Any]) -> dict[str, Any] | None:
    """``args`` made invalid for ``schema`` (valid JSON still), or None when the
    schema has no property to get wrong."""
    if not isinstance(args, dict):
        return None
    required = [k for k in schema.get("required", []) if k in args]
    if required:
        return {k: v for k, v in args.items() if k != required[0]}
    properties = schema.get("properties") or {}
    for key, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind in ("string", "integer", "number", "boolean", "array"):
            wrong: Any = {"unexpected": True}  # an object where a scalar or list goes
            return {**args, key: wrong}
    return None


# -- arguments from a JSON schema -------------------------------------------------

_ARG_WORDS = (
    "Paris London Tokyo Lisbon Oslo Nairobi Lima Seoul alpha beta gamma delta "
    "report summary weather search invoice order green blue red"
).split()


def generate_arguments(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value that validates against ``schema`` (JSON Schema as tools use it).

    Understands ``type`` (also a list, and Gemini's upper-case names), ``properties``
    and ``required``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``, ``$ref``
    into ``$defs``/``definitions``, ``items``/``prefixItems``, length, size and
    range bounds, ``multipleOf``, ``nullable``, ``format`` (date, date-time, time,
    email, uri, uuid). Every required property is present; optional ones half the time.
    """
    return _gen(schema, rng, schema, 0)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node  # type: ignore[no-any-return]


def _gen(schema: Any, rng: random.Random, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 12:
        return None if depth > 12 else "value"
    if "$ref" in schema:
        return _gen(_resolve(schema["$ref"], root), rng, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _gen(rng.choice(non_null or options), rng, root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for sub in schema["allOf"]:
            sub = _resolve(sub["$ref"], root) if "$ref" in sub else sub
            for k, v in sub.items():
                if k == "properties":
                    merged.setdefault("properties", {}).update(v)
                elif k == "required":
                    merged.setdefault("required", []).extend(v)
                else:
                    merged[k] = v
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _gen({**merged, **rest}, rng, root, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if str(t).lower() != "null"]
        typ = non_null[0] if non_null else "null"
    typ = str(typ).lower() if typ is not None else None
    if typ is None:
        typ = "object" if "properties" in schema else ("array" if "items" in schema else "string")
    if typ == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or rng.random() < 0.5:
                out[name] = _gen(sub, rng, root, depth + 1)
        return out
    if typ == "array":
        lo = int(schema.get("minItems", 1))
        hi = int(schema.get("maxItems", max(lo, 3)))
        prefix = schema.get("prefixItems") or []
        n = max(rng.randint(lo, max(lo, hi)), len(prefix))
        items = schema.get("items", {})
        out_list: list[Any] = []
        tries = 0
        while len(out_list) < n and tries < n * 10:
            tries += 1
            idx = len(out_list)
            sub = prefix[idx] if idx < len(prefix) else items
            value = _gen(sub if isinstance(sub, dict) else {}, rng, root, depth + 1)
            if schema.get("uniqueItems") and value in out_list:
                continue
            out_list.append(value)
        return out_list
    if typ in ("integer", "number"):
        return _number(schema, rng, typ == "integer")
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "null":
        return None
    return _string(schema, rng)


def _number(schema: dict[str, Any], rng: random.Random, integer: bool) -> int | float:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        lo = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        hi = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    lo = 0 if lo is None else lo
    hi = (lo + 100) if hi is None else hi
    mult = schema.get("multipleOf")
    if integer:
        a, b = math.ceil(lo), math.floor(hi)
        if mult:
            m = int(mult)
            a2 = math.ceil(a / m) * m
            return a2 + m * rng.randint(0, max(0, (b - a2) // m))
        return rng.randint(a, max(a, b))
    if mult:
        k = rng.randint(math.ceil(lo / mult), max(math.ceil(lo / mult), math.floor(hi / mult)))
        return k * mult  # type: ignore[no-any-return]
    return round(rng.uniform(float(lo), float(hi)), 3) if hi > lo else float(lo)


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
    if fmt == "time":
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
    if fmt == "email":
        return f"{rng.choice(_ARG_WORDS).lower()}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_ARG_WORDS).lower()}"
    if fmt == "uuid":
        a, b, c, d, e = (rng.getrandbits(n) for n in (32, 16, 12, 12, 48))
        return f"{a:08x}-{b:04x}-4{c:03x}-8{d:03x}-{e:012x}"
    lo = int(schema.get("minLength", 0))
    hi = schema.get("maxLength")
    words = [rng.choice(_ARG_WORDS) for _ in range(rng.randint(1, 3))]
    text = " ".join(words)
    while len(text) < lo:
        text += " " + rng.choice(_ARG_WORDS)
    if hi is not None and len(text) > int(hi):
        text = text[: int(hi)]
        while len(text) < lo:
            text += "x"
    return text
