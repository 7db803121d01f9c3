"""The simulator's configuration: model profiles, rate limits and faults.

Everything is a msgspec Struct, so a configuration can be written in Python, read
from TOML (:func:`load_config`) or JSON, and sent across processes.

A minimal TOML file::

    seed = 7

    [default_profile]
    ttft = 0.2
    tokens_per_second = 50
    output_tokens = 80
    output_tokens_max = 200

    [models."claude-sonnet-4-5"]
    tokens_per_second = 80

    [rate_limit]
    rpm = 500
    tpm = 200000

    [[faults]]
    kind = "status"
    status = 529
    rate = 0.05
    seed = 1
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

__all__ = [
    "Fault",
    "FaultKind",
    "ModelProfile",
    "RateLimit",
    "SimConfig",
    "load_config",
]


class ModelProfile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How one simulated model behaves.

    Attributes:
        ttft: Time to first token, in seconds (the lower bound when ``ttft_max`` is set).
        ttft_max: When set, the time to first token is drawn uniformly from
            ``[ttft, ttft_max]``.
        tokens_per_second: Output speed once the first token is out; ``0`` streams
            as fast as the socket takes it (no pacing).
        output_tokens: Length of a text answer in tokens (the simulator's tokens:
            one word is one token). With ``output_tokens_max`` the length is drawn
            uniformly from ``[output_tokens, output_tokens_max]``; with
            ``output_sigma > 0`` it is log-normal around ``output_tokens``
            (capped by ``output_tokens_max`` when set). Always capped by the
            request's ``max_tokens``, which then finishes with ``length``.
        default_max_tokens: The cap when the request gives none.
        context_window: Requests whose estimated input exceeds it get the family's
            context-length error (400).
        tool_calls: How many tool calls the model makes in one turn when tools
            are offered and parallel calls are allowed (otherwise one).
        tool_call_probability: Chance that the model calls a tool when tools are
            offered, the last message is not a tool result and ``tool_choice``
            does not force it.
        tool_rounds: Tool rounds before the model answers: with 3, it calls tools,
            reads the results, calls again twice more, then answers (a four-turn
            tool loop). 1 (the default): it answers once it has tool results.
        tool_args_chunk: Characters of tool-call arguments per streamed delta
            (each delta is one output token for pacing and usage).
        bad_tool_calls: Chance that a tool call is wrong, as real models' sometimes
            are: half of them break the tool's schema (a required argument left
            out, or one of the wrong type), half name a tool that was not offered
            (always that, for a tool without arguments). For testing the error
            results a tool loop must give back rather than crash on.
        cache_min_tokens: Shortest prefix (in tokens) the prompt cache stores.
        cache_ttl: Seconds a cached prefix lives after its last use.
    """

    ttft: float = 0.0
    ttft_max: float | None = None
    tokens_per_second: float = 0.0
    output_tokens: int = 48
    output_tokens_max: int | None = None
    output_sigma: float = 0.0
    default_max_tokens: int = 4096
    context_window: int = 1_000_000
    tool_calls: int = 1
    tool_call_probability: float = 1.0
    tool_rounds: int = 1
    tool_args_chunk: int = 12
    bad_tool_calls: float = 0.0
    cache_min_tokens: int = 1024
    cache_ttl: float = 300.0

    def __post_init__(self) -> None:
        if self.ttft < 0 or (self.ttft_max is not None and self.ttft_max < self.ttft):
            raise ValueError("ModelProfile: need 0 <= ttft <= ttft_max")
        if self.tokens_per_second < 0:
            raise ValueError("ModelProfile: tokens_per_second must be >= 0 (0: unpaced)")
        if self.output_tokens < 1:
            raise ValueError("ModelProfile: output_tokens must be >= 1")
        if self.output_tokens_max is not None and self.output_tokens_max < self.output_tokens:
            raise ValueError("ModelProfile: output_tokens_max must be >= output_tokens")
        if self.tool_calls < 1:
            raise ValueError("ModelProfile: tool_calls must be >= 1")
        if not 0.0 <= self.tool_call_probability <= 1.0:
            raise ValueError("ModelProfile: tool_call_probability must be within 0..1")
        if self.tool_rounds < 1:
            raise ValueError("ModelProfile: tool_rounds must be >= 1")
        if self.tool_args_chunk < 1:
            raise ValueError("ModelProfile: tool_args_chunk must be >= 1")
        if not 0.0 <= self.bad_tool_calls <= 1.0:
            raise ValueError("ModelProfile: bad_tool_calls must be within 0..1")


class RateLimit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per-API-key limits (token buckets refilled continuously over a minute).

    ``None`` means unlimited. A request costs one request and, for ``tpm``, its
    estimated input tokens plus its ``max_tokens`` (or the profile's
    ``output_tokens`` when it gives none), charged when it is admitted, as OpenAI
    does.

    ``itpm`` and ``otpm`` are Anthropic's separate limits: input tokens per minute
    (charged the input estimate) and output tokens per minute (charged the
    ``max_tokens``), beside ``tpm`` or in its place. Anthropic's headers report each
    (``anthropic-ratelimit-input-tokens-*``, ``-output-tokens-*``) and, as
    ``-tokens-*``, whichever is the more restrictive now. As Anthropic, it settles
    both to the actual counts: cache reads are given back to ``itpm`` and the unused
    part of ``max_tokens`` to ``otpm`` (at once: the answer's length is known when it
    is planned). ``tpm`` keeps the whole reservation, as OpenAI does.
    """

    rpm: int | None = None
    tpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "itpm", "otpm"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"RateLimit: {name} must be >= 1 (or None: unlimited)")


FaultKind = Literal["status", "disconnect", "stall", "malformed", "error_event", "slow_headers"]


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A fault the simulator injects, with a rate and a seed.

    Kinds:
        ``status``: answer ``status`` (500, 502, 503, 529...) with the family's
            error body before any byte of a response.
        ``disconnect``: close the connection after ``after`` stream events
            (non-streaming requests: before the body).
        ``stall``: after ``after`` stream events send nothing for ``duration``
            seconds, then go on (``then="continue"``) or close (``"drop"``).
        ``malformed``: replace stream event number ``after`` with a broken one.
        ``error_event``: after ``after`` events, end the 200 stream with the
            family's in-stream error (Anthropic ``overloaded_error``, Responses
            ``response.failed``, an ``error`` object for Chat Completions and Gemini).
        ``slow_headers``: wait ``duration`` seconds before the status line.

    Whether a request is hit is decided by a random draw seeded by (``seed``, the
    request's content, how many identical requests came before), so a run is
    reproducible and a retry of a hit request is drawn afresh.

    Attributes:
        start, end: Seconds since the simulator started between which the fault
            is active (an outage window); None: always.
        models, families, keys: Restrict the fault to these (empty: all).
        streaming: Restrict to streaming (True) or non-streaming (False) requests.
    """

    kind: FaultKind
    rate: float = 1.0
    seed: int = 0
    status: int = 500
    after: int = 0
    duration: float = 1.0
    then: Literal["continue", "drop"] = "continue"
    start: float | None = None
    end: float | None = None
    models: list[str] = []
    families: list[str] = []
    keys: list[str] = []
    streaming: bool | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("Fault: rate must be within 0..1")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("Fault: status must be an HTTP error status (4xx/5xx)")
        if self.after < 0 or self.duration < 0:
            raise ValueError("Fault: after and duration must be >= 0")


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole simulator configuration.

    Attributes:
        host, port: Where to listen (port 0: any free port).
        seed: Seeds every random choice (text, lengths, tools, ids) together with
            the request's content, so identical runs give identical bytes.
        default_profile: The profile of any model not named in ``models``.
        models: Profiles by model name.
        strict_models: Answer 404 for models not in ``models``.
        api_keys: When set, only these keys are accepted (others get 401).
        rate_limit: Limits applied to every key.
        key_rate_limits: Limits for particular keys (override ``rate_limit``).
        faults: Faults to inject.
        log_size: How many recent requests ``/sim/stats`` lists.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    default_profile: ModelProfile = msgspec.field(default_factory=ModelProfile)
    models: dict[str, ModelProfile] = {}
    strict_models: bool = False
    api_keys: list[str] | None = None
    rate_limit: RateLimit = msgspec.field(default_factory=RateLimit)
    key_rate_limits: dict[str, RateLimit] = {}
    faults: list[Fault] = []
    log_size: int = 1000

    def profile(self, model: str) -> ModelProfile | None:
        p = self.models.get(model)
        if p is not None:
            return p
        return None if self.strict_models else self.default_profile

    def limits_for(self, key: str) -> RateLimit:
        return self.key_rate_limits.get(key, self.rate_limit)


def load_config(path: str | Path) -> SimConfig:
    """Read a SimConfig from a TOML (``.toml``) or JSON file.

    Raises:
        ValueError: the file is not a valid configuration (the message says where).
    """
    p = Path(path)
    raw = p.read_bytes()
    try:
        if p.suffix == ".json":
            return msgspec.json.decode(raw, type=SimConfig)
        return msgspec.convert(tomllib.loads(raw.decode()), type=SimConfig)
    except (msgspec.ValidationError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{p}: {exc}") from exc
