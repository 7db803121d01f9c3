"""Vendor presets: the data, and the endpoints built from it."""

from __future__ import annotations

import json

import pytest

from providers.errors import RequestError
from providers.families import FAMILY_NAMES, get_family
from providers.families.base import Quirks
from providers.messages import Message, Request, ToolChoice, ToolSpec
from providers.presets import (
    AZURE_DEFAULT_API_VERSION,
    PRESETS,
    Preset,
    endpoint_from_preset,
    get_preset,
)
from providers.secrets import Secret

KEY = "sk-preset-test-key-0123456789"

REQUIRED = {
    "openai",
    "azure",
    "openrouter",
    "groq",
    "deepseek",
    "xai",
    "mistral",
    "together",
    "fireworks",
    "cerebras",
    "perplexity",
    "moonshot",
    "ollama",
    "vllm",
    "llamacpp",
    "lmstudio",
    "anthropic",
    "gemini",
}
LOCAL = {"ollama": 11434, "vllm": 8000, "llamacpp": 8080, "lmstudio": 1234}


def env_with_keys() -> dict[str, str]:
    env = {p.key_env: KEY for p in PRESETS.values() if p.key_env}
    env["AZURE_OPENAI_ENDPOINT"] = "https://myres.openai.azure.com"
    return env


def test_every_required_vendor_has_a_preset() -> None:
    assert set(PRESETS) >= REQUIRED
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.family in FAMILY_NAMES
        assert preset.notes


@pytest.mark.parametrize(
    ("name", "base_url", "key_env"),
    [
        ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ("deepseek", "https://api.deepseek.com", "DEEPSEEK_API_KEY"),
        ("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
        ("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        ("together", "https://api.together.ai/v1", "TOGETHER_API_KEY"),
        ("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        ("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
        ("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
        ("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
        ("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
        ("gemini", "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY"),
    ],
)
def test_hosted_vendor_urls_and_key_variables(name: str, base_url: str, key_env: str) -> None:
    preset = get_preset(name)
    assert (preset.base_url, preset.key_env, preset.key_required) == (base_url, key_env, True)


@pytest.mark.parametrize(("name", "port"), sorted(LOCAL.items()))
def test_local_servers_need_no_key(name: str, port: int) -> None:
    endpoint = endpoint_from_preset(name, env={})
    assert endpoint.base_url == f"http://localhost:{port}/v1"
    assert endpoint.api_key is None
    built = get_family("openai").build_request(
        Request(model="llama3", messages=[Message.user("hi")]), endpoint, stream=True
    )
    assert built.url == f"http://localhost:{port}/v1/chat/completions"
    assert built.secret_headers == {}


def test_local_server_key_is_used_when_set() -> None:
    endpoint = endpoint_from_preset("vllm", env={"VLLM_API_KEY": "token-abc"})
    assert endpoint.api_key == Secret("token-abc")


def test_families_and_auth_headers() -> None:
    assert get_preset("anthropic").family == "anthropic"
    assert get_preset("anthropic").auth_header == "x-api-key"
    assert get_preset("gemini").family == "gemini"
    assert get_preset("gemini").auth_header == "x-goog-api-key"
    openai_family = [p for p in PRESETS.values() if p.family == "openai"]
    assert all(p.auth_header is None for p in openai_family)


def test_quirks_from_vendor_docs() -> None:
    assert get_preset("openai").quirks.max_tokens_field == "max_completion_tokens"
    assert get_preset("azure").quirks.azure
    assert not get_preset("mistral").quirks.stream_usage
    assert not get_preset("mistral").quirks.reasoning_effort
    assert not get_preset("cerebras").quirks.parallel_tool_calls
    assert not get_preset("deepseek").quirks.strict_tools
    assert not get_preset("perplexity").quirks.stream_usage
    assert get_preset("groq").quirks == Quirks()


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown provider preset 'opnai'") as info:
        get_preset("opnai")
    for name in ("openai", "groq", "ollama"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="choose one of"):
        endpoint_from_preset("nope", env={})


def test_key_is_read_from_the_environment_into_a_secret() -> None:
    endpoint = endpoint_from_preset("groq", env={"GROQ_API_KEY": KEY})
    assert endpoint.provider == "groq"
    assert endpoint.base_url == "https://api.groq.com/openai/v1"
    assert isinstance(endpoint.api_key, Secret)
    assert endpoint.api_key.reveal() == KEY
    assert KEY not in repr(endpoint)


def test_explicit_key_wins_over_the_environment() -> None:
    endpoint = endpoint_from_preset("openai", api_key="sk-explicit", env={"OPENAI_API_KEY": KEY})
    assert endpoint.api_key == Secret("sk-explicit")
    endpoint = endpoint_from_preset("openai", api_key=Secret("sk-s"), env={})
    assert endpoint.api_key == Secret("sk-s")


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(RequestError, match="DEEPSEEK_API_KEY"):
        endpoint_from_preset("deepseek", env={})
    with pytest.raises(RequestError, match="OPENAI_API_KEY"):
        endpoint_from_preset("openai", env={"OPENAI_API_KEY": ""})


def test_base_url_override() -> None:
    endpoint = endpoint_from_preset(
        "moonshot", env={"MOONSHOT_API_KEY": KEY}, base_url="https://api.moonshot.cn/v1"
    )
    assert endpoint.base_url == "https://api.moonshot.cn/v1"
    assert endpoint.quirks == get_preset("moonshot").quirks


def test_azure_endpoint_from_environment() -> None:
    env = {"AZURE_OPENAI_ENDPOINT": "https://myres.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY}
    endpoint = endpoint_from_preset("azure", env=env)
    assert endpoint.base_url == "https://myres.openai.azure.com"
    assert endpoint.query == {"api-version": AZURE_DEFAULT_API_VERSION}
    built = get_family("openai").build_request(
        Request(model="my-gpt4o", messages=[Message.user("hi")], max_tokens=9),
        endpoint,
        stream=False,
    )
    assert (
        built.url == "https://myres.openai.azure.com/openai/deployments/my-gpt4o/chat/completions"
    )
    assert built.params == {"api-version": AZURE_DEFAULT_API_VERSION}
    assert built.secret_headers == {"api-key": Secret(KEY)}
    assert json.loads(built.body)["max_completion_tokens"] == 9


def test_azure_api_version_override_and_missing_endpoint() -> None:
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://myres.openai.azure.com",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_VERSION": "2025-04-01-preview",
    }
    assert endpoint_from_preset("azure", env=env).query == {"api-version": "2025-04-01-preview"}
    endpoint = endpoint_from_preset("azure", env=env, query={"api-version": "2024-06-01"})
    assert endpoint.query == {"api-version": "2024-06-01"}
    with pytest.raises(RequestError, match="AZURE_OPENAI_ENDPOINT"):
        endpoint_from_preset("azure", env={"AZURE_OPENAI_API_KEY": KEY})
    endpoint = endpoint_from_preset(
        "azure", env={"AZURE_OPENAI_API_KEY": KEY}, base_url="https://other.openai.azure.com"
    )
    assert endpoint.base_url == "https://other.openai.azure.com"


def test_openrouter_attribution_headers() -> None:
    env = {
        "OPENROUTER_API_KEY": KEY,
        "OPENROUTER_APP_URL": "https://myapp.example",
        "OPENROUTER_APP_TITLE": "My Swarm",
    }
    endpoint = endpoint_from_preset("openrouter", env=env)
    assert endpoint.headers == {"HTTP-Referer": "https://myapp.example", "X-Title": "My Swarm"}
    endpoint = endpoint_from_preset("openrouter", env=env, headers={"X-Title": "Other"})
    assert endpoint.headers == {"HTTP-Referer": "https://myapp.example", "X-Title": "Other"}
    assert endpoint_from_preset("openrouter", env={"OPENROUTER_API_KEY": KEY}).headers == {}
    built = get_family("openai").build_request(
        Request(model="openai/gpt-4o-mini", messages=[Message.user("hi")]), endpoint, stream=True
    )
    assert built.headers["http-referer"] == "https://myapp.example"
    assert built.headers["x-title"] == "Other"


@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.family == "openai"))
def test_every_openai_preset_builds_a_request_that_respects_its_quirks(name: str) -> None:
    endpoint = endpoint_from_preset(name, env=env_with_keys())
    tool = ToolSpec(name="t", parameters={"type": "object", "properties": {}})
    request = Request(
        model="some-model",
        messages=[Message.user("hi")],
        tools=[tool],
        tool_choice=ToolChoice(parallel=False),
        max_tokens=10,
        reasoning_effort="low",
    )
    built = get_family("openai").build_request(request, endpoint, stream=True)
    body = json.loads(built.body)
    quirks = endpoint.quirks
    assert body[quirks.max_tokens_field] == 10
    assert ("stream_options" in body) == quirks.stream_usage
    assert ("parallel_tool_calls" in body) == quirks.parallel_tool_calls
    assert ("reasoning_effort" in body) == quirks.reasoning_effort
    key = endpoint.api_key.reveal() if endpoint.api_key else None
    if key:
        assert all(key not in v for v in built.headers.values())
        assert key not in built.url


def test_presets_are_plain_frozen_data() -> None:
    preset = get_preset("groq")
    with pytest.raises(AttributeError):
        preset.base_url = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Preset(name="x", family="openai", base_url="https://x", unknown=1)  # type: ignore[call-arg]
