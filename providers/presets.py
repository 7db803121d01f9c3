"""Vendor presets: where each provider is and how it departs from its family, as data.

A preset names a wire family, a base URL, the environment variable that holds the
key, the auth header, extra headers and the request quirks of the vendor.
:func:`endpoint_from_preset` turns one into an :class:`~providers.families.base.Endpoint`::

    endpoint = endpoint_from_preset("groq")             # key from GROQ_API_KEY
    endpoint = endpoint_from_preset("ollama")           # local: no key needed
    endpoint = endpoint_from_preset("azure")            # AZURE_OPENAI_ENDPOINT, _API_KEY

Where the facts come from: each vendor's own OpenAI-compatibility page (base
URL, key variable, the request fields it answers 400/422 to), summarized in each
preset's ``notes``. A quirk set to False means "leave this field out for this
vendor", never "refuse the request" (see ``providers.families.openai_chat``).

Invariant: presets hold no secret; keys are read from the environment (or given)
at the moment an endpoint is built, and travel only inside a ``Secret``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

import msgspec

from .errors import RequestError
from .families.base import Endpoint, Quirks
from .secrets import Secret

__all__ = [
    "AZURE_DEFAULT_API_VERSION",
    "PRESETS",
    "Preset",
    "endpoint_from_preset",
    "get_preset",
]

AZURE_DEFAULT_API_VERSION = "2024-10-21"
"""The api-version the ``azure`` preset sends unless AZURE_OPENAI_API_VERSION (or
``query=``) says otherwise: the latest dated GA version of Azure OpenAI's
data-plane inference API, which has chat completions with tools, structured
outputs, ``max_completion_tokens`` and ``stream_options``. Newer features
(``reasoning_effort`` for o-series deployments) need a newer (preview) version."""


class Preset(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How to reach one vendor.

    Attributes:
        name: The preset's name, also the endpoint's ``provider`` (``groq``).
        family: The wire family (``openai``, ``anthropic``, ``gemini``...).
        base_url: The API root; empty when it can only come from ``base_url_env``.
        key_env: The environment variable that holds the API key, if any.
        key_required: Whether a call without a key is refused here (local servers
            run without one; their ``key_env`` is read when set).
        auth_header: Header for the key (None: the family's default, which is
            ``Authorization: Bearer`` for OpenAI-compatible servers).
        headers: Extra headers on every request.
        header_env: Optional headers read from the environment: header name to
            variable name (OpenRouter's attribution headers).
        base_url_env: Variable that gives the base URL (Azure's resource endpoint).
        query: Query parameters on every request (Azure ``api-version``).
        query_env: Query parameters read from the environment, overriding ``query``.
        quirks: Request-side departures from OpenAI (for the ``openai`` family).
        notes: What the vendor's documentation says that shaped this preset.
    """

    name: str
    family: Literal["openai", "openai-responses", "anthropic", "gemini"]
    base_url: str = ""
    key_env: str | None = None
    key_required: bool = True
    auth_header: str | None = None
    headers: dict[str, str] = {}
    header_env: dict[str, str] = {}
    base_url_env: str | None = None
    query: dict[str, str] = {}
    query_env: dict[str, str] = {}
    quirks: Quirks = Quirks()
    notes: str = ""


_PRESETS: tuple[Preset, ...] = (
    Preset(
        name="openai",
        family="openai",
        base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        quirks=Quirks(max_tokens_field="max_completion_tokens"),
        notes=(
            "OpenAI itself. max_tokens is deprecated and refused by reasoning models; "
            "max_completion_tokens works for every current model."
        ),
    ),
    Preset(
        name="azure",
        family="openai",
        key_env="AZURE_OPENAI_API_KEY",
        base_url_env="AZURE_OPENAI_ENDPOINT",
        query={"api-version": AZURE_DEFAULT_API_VERSION},
        query_env={"api-version": "AZURE_OPENAI_API_VERSION"},
        quirks=Quirks(max_tokens_field="max_completion_tokens", azure=True),
        notes=(
            "Azure OpenAI: base URL is the resource endpoint https://NAME.openai.azure.com "
            "(AZURE_OPENAI_ENDPOINT); the model is the deployment name, sent in the path "
            "/openai/deployments/{deployment}/chat/completions with ?api-version=; the key "
            f"goes in the api-key header. api-version defaults to {AZURE_DEFAULT_API_VERSION} "
            "(AZURE_OPENAI_API_VERSION overrides). For a Microsoft Entra ID token instead of "
            "a key, pass it as api_key with auth_header='authorization'."
        ),
    ),
    Preset(
        name="openrouter",
        family="openai",
        base_url="https://openrouter.ai/api/v1",
        key_env="OPENROUTER_API_KEY",
        header_env={"HTTP-Referer": "OPENROUTER_APP_URL", "X-Title": "OPENROUTER_APP_TITLE"},
        notes=(
            "OpenRouter: models are named vendor/model. The optional HTTP-Referer (your "
            "site) and X-Title (your app) headers attribute traffic in OpenRouter's "
            "rankings; set them with OPENROUTER_APP_URL / OPENROUTER_APP_TITLE or headers=. "
            "Reasoning arrives as delta.reasoning; the stream carries ': OPENROUTER "
            "PROCESSING' keep-alive comments."
        ),
    ),
    Preset(
        name="groq",
        family="openai",
        base_url="https://api.groq.com/openai/v1",
        key_env="GROQ_API_KEY",
        notes=(
            "Groq answers 400 to logprobs, logit_bias, top_logprobs, messages[].name and "
            "n other than 1 (none of which this package sends). Temperature 0 is turned "
            "into 1e-8. Usage may also come as x_groq.usage, which the decoder reads."
        ),
    ),
    Preset(
        name="deepseek",
        family="openai",
        base_url="https://api.deepseek.com",
        key_env="DEEPSEEK_API_KEY",
        quirks=Quirks(parallel_tool_calls=False, strict_tools=False),
        notes=(
            "DeepSeek: the root (or /v1, which is not a model version) takes "
            "/chat/completions. Strict function calling is a beta served only under "
            "https://api.deepseek.com/beta, so strict is left out here; "
            "parallel_tool_calls is not a documented field. response_format takes "
            "json_object, not json_schema. Reasoning arrives as reasoning_content; cache "
            "hits as usage.prompt_cache_hit_tokens."
        ),
    ),
    Preset(
        name="xai",
        family="openai",
        base_url="https://api.x.ai/v1",
        key_env="XAI_API_KEY",
        notes=(
            "xAI (Grok). Some reasoning models (grok-4 and later) refuse reasoning_effort, "
            "presence_penalty and stop: leave them unset for those models."
        ),
    ),
    Preset(
        name="mistral",
        family="openai",
        base_url="https://api.mistral.ai/v1",
        key_env="MISTRAL_API_KEY",
        quirks=Quirks(stream_usage=False, reasoning_effort=False),
        notes=(
            "Mistral validates strictly (422 extra_forbidden on unknown fields): it "
            "rejects stream_options (usage comes in the last chunk anyway) and has no "
            "reasoning_effort. Tool calls stream whole, without index."
        ),
    ),
    Preset(
        name="together",
        family="openai",
        base_url="https://api.together.ai/v1",
        key_env="TOGETHER_API_KEY",
        notes="Together AI: models are named vendor/model; the older host api.together.xyz "
        "serves the same API.",
    ),
    Preset(
        name="fireworks",
        family="openai",
        base_url="https://api.fireworks.ai/inference/v1",
        key_env="FIREWORKS_API_KEY",
        notes="Fireworks AI: models are named accounts/fireworks/models/NAME.",
    ),
    Preset(
        name="cerebras",
        family="openai",
        base_url="https://api.cerebras.ai/v1",
        key_env="CEREBRAS_API_KEY",
        quirks=Quirks(parallel_tool_calls=False),
        notes=(
            "Cerebras answers 400 to frequency_penalty, logit_bias, presence_penalty, "
            "parallel_tool_calls and service_tier; tool_choice takes only auto or none."
        ),
    ),
    Preset(
        name="perplexity",
        family="openai",
        base_url="https://api.perplexity.ai",
        key_env="PERPLEXITY_API_KEY",
        quirks=Quirks(stream_usage=False, parallel_tool_calls=False, strict_tools=False),
        notes=(
            "Perplexity Sonar: /chat/completions is an alias of /v1/sonar; answers carry a "
            "top-level citations array (and search_results), and usage comes without "
            "stream_options. No function tools."
        ),
    ),
    Preset(
        name="moonshot",
        family="openai",
        base_url="https://api.moonshot.ai/v1",
        key_env="MOONSHOT_API_KEY",
        notes=(
            "Moonshot AI (Kimi), international endpoint; mainland China uses "
            "https://api.moonshot.cn/v1 (pass base_url=). Thinking models stream "
            "reasoning_content."
        ),
    ),
    Preset(
        name="ollama",
        family="openai",
        base_url="http://localhost:11434/v1",
        key_env="OLLAMA_API_KEY",
        key_required=False,
        notes=(
            "Ollama's OpenAI-compatible endpoint on the local server; no key (the "
            "variable is for ollama.com's cloud API, base_url https://ollama.com/v1). "
            "Accepts stream_options.include_usage, tools and reasoning_effort; reasoning "
            "arrives as delta.reasoning."
        ),
    ),
    Preset(
        name="vllm",
        family="openai",
        base_url="http://localhost:8000/v1",
        key_env="VLLM_API_KEY",
        key_required=False,
        notes=(
            "vLLM's OpenAI-compatible server (vllm serve); a key only when started with "
            "--api-key / VLLM_API_KEY. Reasoning parsers emit reasoning_content (newer "
            "versions: reasoning); errors inside a stream come as {'object': 'error'}."
        ),
    ),
    Preset(
        name="llamacpp",
        family="openai",
        base_url="http://localhost:8080/v1",
        key_env="LLAMA_API_KEY",
        key_required=False,
        notes=(
            "llama.cpp's llama-server; a key only when started with --api-key "
            "(LLAMA_API_KEY). Tool calls need --jinja."
        ),
    ),
    Preset(
        name="lmstudio",
        family="openai",
        base_url="http://localhost:1234/v1",
        key_env="LMSTUDIO_API_KEY",
        key_required=False,
        notes="LM Studio's local server; no key unless authentication is turned on.",
    ),
    Preset(
        name="anthropic",
        family="anthropic",
        base_url="https://api.anthropic.com/v1",
        key_env="ANTHROPIC_API_KEY",
        auth_header="x-api-key",
        notes="Anthropic Messages API (native family); the key goes in x-api-key.",
    ),
    Preset(
        name="gemini",
        family="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        key_env="GEMINI_API_KEY",
        auth_header="x-goog-api-key",
        notes="Google Gemini (Generative Language API, native family); key in x-goog-api-key.",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}
"""Every preset by name."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: no preset has that name (the message lists them).
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise ValueError(
            f"unknown provider preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}"
        )
    return preset


def endpoint_from_preset(
    name: str,
    *,
    api_key: str | Secret | None = None,
    env: Mapping[str, str] = os.environ,
    base_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> Endpoint:
    """Build the :class:`Endpoint` of preset ``name``.

    Args:
        name: A preset name (see :data:`PRESETS`).
        api_key: The key; when None it is read from the preset's ``key_env``
            variable in ``env``.
        env: Where variables are read (the process environment by default).
        base_url: Overrides the preset's base URL (a proxy, another region, a
            local server on another port).
        headers: Headers added to (and overriding) the preset's.
        query: Query parameters added to (and overriding) the preset's.

    Raises:
        ValueError: unknown preset name.
        RequestError: the key (or Azure's endpoint) is required and missing; the
            message names the variable to set.
    """
    preset = get_preset(name)

    url = base_url or (env.get(preset.base_url_env) if preset.base_url_env else None)
    url = url or preset.base_url
    if not url:
        raise RequestError(
            f"preset {name!r} needs a base URL: set {preset.base_url_env} "
            "(e.g. https://NAME.openai.azure.com) or pass base_url="
        )

    secret: Secret | None
    if api_key is not None:
        secret = api_key if isinstance(api_key, Secret) else Secret(api_key)
    else:
        value = env.get(preset.key_env) if preset.key_env else None
        secret = Secret(value) if value else None
    if secret is None and preset.key_required:
        raise RequestError(
            f"preset {name!r} needs an API key: set {preset.key_env} or pass api_key="
        )

    merged_headers = dict(preset.headers)
    for header, variable in preset.header_env.items():
        value = env.get(variable)
        if value:
            merged_headers[header] = value
    if headers:
        merged_headers.update(headers)

    merged_query = dict(preset.query)
    for param, variable in preset.query_env.items():
        value = env.get(variable)
        if value:
            merged_query[param] = value
    if query:
        merged_query.update(query)

    return Endpoint(
        provider=preset.name,
        base_url=url,
        api_key=secret,
        auth_header=preset.auth_header,
        headers=merged_headers,
        query=merged_query,
        quirks=preset.quirks,
    )
