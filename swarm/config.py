"""Engine configuration: providers, routes, scheduling, from Python, TOML or the environment.

A *provider* here is one account on one API (an endpoint, a family, a key): the
unit that owns a connection pool and a rate-limit budget. A *deployment* is a
provider plus a model (``openai/gpt-4o-mini``). A *route* is what a request names
in ``Request.model``: a deployment, an alias with ordered fallbacks or balanced
targets, or a bare model name for the default provider.

With no providers configured and no API key in the environment, the engine
starts the built-in simulator and routes everything there (the embedded default).

TOML example::

    default_provider = "openai"

    [providers.openai]
    preset = "openai"                 # base URL, family, key variable from the preset

    [providers.local]
    family = "openai"
    base_url = "http://127.0.0.1:8000/v1"
    max_concurrency = 64

    [routes.fast]
    targets = ["openai/gpt-4o-mini", "local/llama-3.1-8b"]
    strategy = "fallback"             # or "least_outstanding", "lowest_latency"
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

import msgspec

from providers.errors import RequestError
from providers.families import FAMILY_NAMES, Endpoint
from providers.presets import PRESETS, endpoint_from_preset, get_preset
from providers.secrets import Secret

from .pricing import Price
from .ratelimit import RateLimitConfig
from .resilience import CircuitBreakerPolicy, RetryBudgetPolicy, RetryPolicy, Timeouts

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "ConfigError",
    "EngineConfig",
    "ProviderConfig",
    "RouteConfig",
    "SchedulerConfig",
    "load_config",
]

DEFAULT_MAX_CONCURRENCY = 256
DEFAULT_MAX_CONNECTING = 128
# What a provider actor's HTTP clients run on (ProviderConfig.transport).
TransportKind = Literal["streaming", "httpx"]
DEFAULT_MAX_QUEUED = 100_000
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_STREAM_BUFFER = 64

# The environment variables that, when set and no provider is configured, make
# the engine use the real provider instead of the simulator (first wins as default).
ENV_PROVIDERS = ("openai", "anthropic", "gemini")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the setting and the fix."""


class ProviderConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One provider account.

    Attributes:
        preset: A vendor preset (``openai``, ``anthropic``, ``groq``...) giving the
            family, base URL and key variable.
        family: The wire family, when there is no preset.
        base_url: Overrides the preset's URL (required without a preset).
        api_key_env: The environment variable holding the key (defaults to the preset's).
        api_key: The key itself (prefer ``api_key_env``; never put keys in files).
        headers: Extra headers on every request.
        max_concurrency: Calls in flight at once on this provider; the connection
            pool is sized to it (never a silent cap).
        max_connecting: Attempts that may be connecting (or writing their request)
            at once. A burst of thousands of connects at once starves the event
            loop until all are done (5,000 at once: no stream had its first token
            for 12 s); through this gate streams open steadily, each connect stays
            quick, and a warm pool holds a slot for one write only.
        rate_limit: The account's limits, applied to each model separately (requests
            and tokens per minute, concurrency, adaptation to 429s and headers).
            ``{}`` (``RateLimitConfig()``) configures no figure and keeps to the
            limits the provider's response headers report. None (default): no local
            limiting, the provider's 429s alone push back.
        model_rate_limits: Limits of particular models (by exact name), in place of
            ``rate_limit`` for them.
        transport: ``"streaming"`` (default): one ``httpx.AsyncClient`` over the
            project's own HTTP/1.1 transport (``providers.transport``), about half
            the CPU per token of httpcore's; ``"httpx"``: httpx's own transport
            (httpcore), sharded over clients of 16 connections. Proxies from the
            environment go through httpx's own transport either way. See
            docs/transport.md.
    """

    preset: str | None = None
    family: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = {}
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_connecting: int = DEFAULT_MAX_CONNECTING
    rate_limit: RateLimitConfig | None = None
    model_rate_limits: dict[str, RateLimitConfig] = {}
    transport: TransportKind = "streaming"

    def __post_init__(self) -> None:
        if self.preset is None and self.family is None:
            raise ConfigError("a provider needs preset= (a vendor preset) or family= and base_url=")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; choose one of: {', '.join(sorted(PRESETS))}"
            )
        if self.family is not None and self.family not in FAMILY_NAMES:
            raise ConfigError(
                f"unknown family {self.family!r}; choose one of: {', '.join(FAMILY_NAMES)}"
            )
        if self.preset is not None and self.family is not None:
            preset_family = get_preset(self.preset).family
            if self.family != preset_family:
                raise ConfigError(
                    f"preset {self.preset!r} speaks the {preset_family!r} wire family but "
                    f"family={self.family!r} was given; drop family= (the preset sets it), or "
                    f"drop preset= and give family= with base_url= for a custom endpoint"
                )
        if self.preset is None and self.base_url is None:
            raise ConfigError(f"provider with family={self.family!r} needs base_url=")
        if self.api_key is not None and self.api_key_env is not None:
            raise ConfigError("give api_key= or api_key_env=, not both")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.max_connecting < 1:
            raise ConfigError(f"max_connecting must be at least 1, got {self.max_connecting}")
        if self.transport not in ("streaming", "httpx"):
            raise ConfigError(
                f"unknown transport {self.transport!r}; choose 'streaming' (the default) or 'httpx'"
            )

    def resolved_family(self) -> str:
        if self.family is not None:
            return self.family
        assert self.preset is not None
        return get_preset(self.preset).family

    def endpoint(self, name: str, env: Mapping[str, str]) -> Endpoint:
        """The endpoint for this provider, its key read from ``env`` where named.

        Raises:
            ConfigError: a key (or Azure's endpoint) the provider needs is not set;
                the message names the variable.
        """
        key: str | None = self.api_key
        if key is None and self.api_key_env is not None:
            key = env.get(self.api_key_env)
            if not key:
                raise ConfigError(
                    f"provider {name!r}: the key variable {self.api_key_env} is not set"
                )
        if self.preset is not None:
            try:
                base = endpoint_from_preset(
                    self.preset, api_key=key, base_url=self.base_url, env=env, headers=self.headers
                )
            except RequestError as exc:
                # A missing setting, not a bad request: the engine's callers catch
                # ConfigError for everything its configuration lacks.
                raise ConfigError(f"provider {name!r}: {exc}") from exc
            return msgspec.structs.replace(base, provider=name)
        assert self.base_url is not None
        return Endpoint(
            provider=name,
            base_url=self.base_url,
            api_key=Secret(key) if key else None,
            headers=dict(self.headers),
        )


class RouteConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """An alias for one or more deployments.

    Attributes:
        targets: Deployments as ``provider/model``.
        strategy: ``fallback``: the first target, the next ones only when it fails
            with an error another deployment may not have (rate limit, overload,
            server error, open breaker, context length); ``least_outstanding``:
            the target with the fewest calls in flight; ``lowest_latency``: the
            target with the lowest recent time to first token.
    """

    targets: list[str]
    strategy: Literal["fallback", "least_outstanding", "lowest_latency"] = "fallback"

    def __post_init__(self) -> None:
        if not self.targets:
            raise ConfigError("a route needs at least one target (provider/model)")
        for target in self.targets:
            if "/" not in target:
                raise ConfigError(f"route target {target!r} must be provider/model")


class SchedulerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Admission and fairness.

    Attributes:
        max_queued: Calls that may wait for a provider at once.
        when_full: ``wait``: a new call waits for room (backpressure on the
            caller); ``refuse``: it fails at once with ``EngineOverloaded``.
        fair_by: What weighted fair queuing shares the provider between:
            ``tenant`` (each call's ``tenant``) or ``agent`` (each call's
            ``agent``, so one greedy agent of a swarm cannot starve its siblings).
            Calls without one share the ``""`` group.
        tenant_weights: Weighted fair queuing shares by tenant, or by agent with
            ``fair_by = "agent"`` (default 1).
        priority_aging: Seconds of waiting that raise a queued call's priority by
            one level, so a steady stream of high-priority calls cannot starve the
            rest (a priority-0 call outranks priority-3 calls that arrive 4 x this
            later). None (default): strict priorities.
    """

    max_queued: int = DEFAULT_MAX_QUEUED
    when_full: Literal["wait", "refuse"] = "wait"
    fair_by: Literal["tenant", "agent"] = "tenant"
    tenant_weights: dict[str, float] = {}
    priority_aging: float | None = None

    def __post_init__(self) -> None:
        if self.max_queued < 1:
            raise ConfigError(f"scheduler.max_queued must be at least 1, got {self.max_queued}")
        aging = self.priority_aging
        if aging is not None and not (aging > 0 and math.isfinite(aging)):
            raise ConfigError(
                f"scheduler.priority_aging must be a positive number of seconds "
                f"(or unset for strict priorities), got {aging!r}"
            )
        for tenant, weight in self.tenant_weights.items():
            if weight <= 0:
                raise ConfigError(f"scheduler.tenant_weights[{tenant!r}] must be positive")


class EngineConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything the engine needs.

    Attributes:
        providers: Provider accounts by name.
        routes: Route aliases by name.
        default_provider: Where a bare model name goes.
        simulator: Run the built-in simulator in process and route to it:
            ``None`` (default) does so only when no provider is configured and no
            known API key is in the environment.
        scheduler: Admission and fairness.
        stream_buffer: Events buffered per call before a slow consumer slows its
            own stream (never the others).
        caller_reads: Once a call's response is open, its caller's task reads the
            network itself while it keeps up (one task wake-up per network read
            instead of two; see swarm.reading); the provider actor still owns the
            call. False: the provider actor reads and forwards every event.
        shutdown_timeout: Seconds calls in flight get to finish when the engine
            closes, before they are cancelled.
        retry: Retries of failed attempts (backoff, Retry-After, attempts).
        retry_budget: Retries in flight as a share of calls in flight, per provider.
        breaker: The circuit breaker of each deployment.
        prices: USD per million tokens by model name (prefix), added to or
            replacing the built-in table for the ledger's cost estimates.
        timeouts: Per-phase timeouts of each attempt (connect, first token, idle
            between content events, total).
    """

    providers: dict[str, ProviderConfig] = {}
    routes: dict[str, RouteConfig] = {}
    default_provider: str | None = None
    simulator: bool | None = None
    scheduler: SchedulerConfig = SchedulerConfig()
    stream_buffer: int = DEFAULT_STREAM_BUFFER
    caller_reads: bool = True
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    retry: RetryPolicy = RetryPolicy()
    retry_budget: RetryBudgetPolicy = RetryBudgetPolicy()
    breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()
    timeouts: Timeouts = Timeouts()
    prices: dict[str, Price] = {}

    def __post_init__(self) -> None:
        for name in self.providers:
            if not name or "/" in name:
                raise ConfigError(f"provider name {name!r} must be non-empty and contain no '/'")
        if self.default_provider is not None and self.default_provider not in self.providers:
            raise ConfigError(
                f"default_provider {self.default_provider!r} is not among providers: "
                f"{', '.join(sorted(self.providers)) or '(none)'}"
            )
        for alias, route in self.routes.items():
            if alias in self.providers:
                raise ConfigError(f"route {alias!r} has the name of a provider; rename one")
            for target in route.targets:
                provider = target.split("/", 1)[0]
                # The embedded simulator's providers (sim, sim-anthropic...) are filled
                # in when it starts, and the routes checked against them then.
                if provider not in self.providers and not self.uses_simulator:
                    raise ConfigError(
                        f"route {alias!r}: target {target!r} names provider {provider!r}, "
                        f"which is not configured"
                    )
        if self.simulator is True and self.providers:
            raise ConfigError(
                "simulator=true routes everything to the simulator; remove providers or "
                "set simulator=false"
            )
        if self.stream_buffer < 1:
            raise ConfigError(f"stream_buffer must be at least 1, got {self.stream_buffer}")
        if self.shutdown_timeout < 0:
            raise ConfigError(f"shutdown_timeout must be >= 0, got {self.shutdown_timeout}")

    def with_environment(self, env: Mapping[str, str]) -> EngineConfig:
        """This config, or, when it names no provider, one built from the API keys in
        ``env`` (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY)."""
        if self.providers or self.simulator is True:
            return self
        found = {
            name: ProviderConfig(preset=name)
            for name in ENV_PROVIDERS
            if env.get(get_preset(name).key_env or "")
        }
        if not found:
            return self
        return msgspec.structs.replace(
            self, providers=found, default_provider=self.default_provider or next(iter(found))
        )

    @property
    def uses_simulator(self) -> bool:
        return self.simulator is True or (self.simulator is None and not self.providers)


def load_config(path: str | Path) -> EngineConfig:
    """Read an EngineConfig from a TOML file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or holds an unknown or
            invalid setting. The message names the table the setting is in
            (``[providers.local]``, not msgspec's ``$.providers[...]``, which
            cannot say which provider) and, for a misspelt key, the key meant.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        raw = msgspec.toml.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    # Convert the named tables one by one first: an error inside a dict of
    # structs is otherwise located only as ``$.providers[...]``.
    for section, kind in _NAMED_TABLES.items():
        tables = raw.get(section)
        if not isinstance(tables, dict):
            continue
        for name, table in tables.items():
            where = f"{section}.{_toml_key(name)}"
            if kind is ProviderConfig and isinstance(table, dict):
                limits = table.get("model_rate_limits")
                if isinstance(limits, dict):
                    for model, limit in limits.items():
                        _convert(
                            limit,
                            RateLimitConfig,
                            path,
                            f"{where}.model_rate_limits.{_toml_key(model)}",
                        )
            _convert(table, kind, path, where)
    return _convert(raw, EngineConfig, path, "")


_T = TypeVar("_T")

_NAMED_TABLES: dict[str, type[msgspec.Struct]] = {
    "providers": ProviderConfig,
    "routes": RouteConfig,
    "prices": Price,
}


def _convert(value: object, kind: type[_T], path: str | Path, where: str) -> _T:
    try:
        return msgspec.convert(value, type=kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config {path}: {_explain(str(exc), where)}") from exc


# Names other tools use for our settings (LiteLLM's router says rpm / tpm).
_OTHER_NAMES = {
    "rpm": "requests_per_minute",
    "tpm": "tokens_per_minute",
    "api_base": "base_url",
    "base": "base_url",
    "url": "base_url",
    "key": "api_key_env",
    "concurrency_limit": "max_concurrency",
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(name: object) -> str:
    text = str(name)
    return text if _BARE_KEY.match(text) else msgspec.json.encode(text).decode()


_LOCATION = re.compile(r" - at `\$(?P<rest>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")


def _explain(message: str, where: str) -> str:
    """msgspec's message, located as a TOML table, with a did-you-mean for a typo."""
    located = _LOCATION.search(message)
    rest = ""
    if located is not None:
        rest = located["rest"].lstrip(".")
        message = message[: located.start()]
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown is not None:
        field = unknown["field"]
        meant = _OTHER_NAMES.get(field.lower())
        if meant is None:
            close = difflib.get_close_matches(field, _config_keys(), n=1, cutoff=0.7)
            meant = close[0] if close else None
        if meant is not None:
            message += f" (did you mean `{meant}`?)"
    table = ".".join(part for part in (where, rest) if part)
    return f"[{table}]: {message}" if table else message


@functools.cache
def _config_keys() -> tuple[str, ...]:
    """Every key of every table a config file can hold (for did-you-mean)."""
    keys: set[str] = set()
    seen: set[type] = set()

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                return
            seen.add(info.cls)
            for field in info.fields:
                keys.add(field.encode_name)
                walk(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                walk(member)
        elif isinstance(info, msgspec.inspect.DictType):
            walk(info.value_type)
        elif isinstance(info, msgspec.inspect.ListType):
            walk(info.item_type)

    walk(msgspec.inspect.type_info(EngineConfig))
    return tuple(sorted(keys))


def environment() -> Mapping[str, str]:
    """The process environment (a seam for tests)."""
    return os.environ
