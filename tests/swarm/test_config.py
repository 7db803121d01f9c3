"""Config files and objects: what a user's mistakes are told.

Each error must name the setting (and where it is) and the fix, so the tests
match on the parts a user reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm import ConfigError
from swarm.config import EngineConfig, ProviderConfig, RouteConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "swarm.toml"
    path.write_text(text)
    return path


def test_a_full_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_provider = "openai"

        [providers.openai]
        preset = "openai"
        [providers.openai.rate_limit]
        requests_per_minute = 500
        [providers.openai.model_rate_limits."gpt-4o"]
        tokens_per_minute = 30000
        refund_unused_tokens = false

        [providers.local]
        family = "openai"
        base_url = "http://127.0.0.1:8000/v1"
        max_concurrency = 64

        [routes.fast]
        targets = ["openai/gpt-4o-mini", "local/llama-3.1-8b"]
        strategy = "least_outstanding"

        [timeouts]
        first_token = 30
        """,
    )
    config = load_config(path)
    assert config.default_provider == "openai"
    openai = config.providers["openai"]
    assert openai.rate_limit is not None and openai.rate_limit.requests_per_minute == 500
    assert openai.model_rate_limits["gpt-4o"].tokens_per_minute == 30000
    assert config.providers["local"].max_concurrency == 64
    assert config.routes["fast"].strategy == "least_outstanding"
    assert config.timeouts.first_token == 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Which provider: msgspec alone says only "$.providers[...]".
        (
            '[providers.local]\npreset = "nope"\n',
            r"\[providers\.local\]: unknown preset 'nope'; choose one of: .*openai",
        ),
        (
            '[providers.local]\npresett = "openai"\n',
            r"\[providers\.local\]: .*unknown field `presett` \(did you mean `preset`\?\)",
        ),
        # LiteLLM's names for the same settings point at ours.
        (
            '[providers.a]\npreset = "openai"\n[providers.a.rate_limit]\nrpm = 10\n',
            r"\[providers\.a\.rate_limit\]: .*`rpm` \(did you mean `requests_per_minute`\?\)",
        ),
        (
            '[providers.a]\npreset = "openai"\n'
            '[providers.a.model_rate_limits."gpt-4.1"]\ntokens_per_minute = -5\n',
            r'\[providers\.a\.model_rate_limits\."gpt-4\.1"\]: .*tokens_per_minute',
        ),
        (
            '[providers.a]\npreset = "openai"\n[routes.fast]\ntargets = ["gpt-4o"]\n',
            r"\[routes\.fast\]: route target 'gpt-4o' must be provider/model",
        ),
        (
            '[providers.a]\npreset = "openai"\n[timeouts]\nconect = 5\n',
            r"\[timeouts\]: .*unknown field `conect` \(did you mean `connect`\?\)",
        ),
        (
            '[providers.a]\npreset = "openai"\n[timeouts]\nconnect = -1\n',
            r"\[timeouts\]: Timeouts\.connect must be a positive number of seconds",
        ),
        (
            '[providers.a]\npreset = "openai"\n[routes.r]\ntargets = ["b/m"]\n',
            r"route 'r': target 'b/m' names provider 'b', which is not configured",
        ),
        ('default_provider = "openai"\n[providers.a]\npreset = "openai"\n', r"not among"),
        ("[providers.a\n", r"is not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_table_and_the_setting(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config .*missing\.toml"):
        load_config(tmp_path / "missing.toml")


def test_a_preset_and_a_family_that_contradict_it_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"preset 'openai' speaks the 'openai' wire family"):
        ProviderConfig(preset="openai", family="anthropic")
    # Saying the same thing twice is not a contradiction.
    assert ProviderConfig(preset="anthropic", family="anthropic").resolved_family() == "anthropic"


def test_contradictory_objects_are_refused() -> None:
    with pytest.raises(ConfigError, match="give api_key= or api_key_env=, not both"):
        ProviderConfig(preset="openai", api_key="k", api_key_env="K")
    with pytest.raises(ConfigError, match="simulator=true routes everything"):
        EngineConfig(simulator=True, providers={"a": ProviderConfig(preset="openai")})
    with pytest.raises(ConfigError, match="has the name of a provider"):
        EngineConfig(
            providers={"a": ProviderConfig(preset="openai")},
            routes={"a": RouteConfig(targets=["a/m"])},
        )
    with pytest.raises(ConfigError, match="needs base_url="):
        ProviderConfig(family="openai")


# -- providers from the environment ----------------------------------------------------------


def test_api_keys_in_the_environment_choose_the_providers_instead_of_the_simulator() -> None:
    env = {"GEMINI_API_KEY": "g-test", "OPENAI_API_KEY": "sk-test"}
    config = EngineConfig().with_environment(env)
    assert set(config.providers) == {"openai", "gemini"} and not config.uses_simulator
    assert config.default_provider == "openai"  # the first of openai, anthropic, gemini
    endpoint = config.providers["openai"].endpoint("openai", env)
    assert endpoint.base_url == "https://api.openai.com/v1"
    assert endpoint.api_key is not None and endpoint.api_key.reveal() == "sk-test"
    # No key: the simulator; a config naming providers is left as it is.
    assert EngineConfig().with_environment({}).uses_simulator
    named = EngineConfig(providers={"local": ProviderConfig(family="openai", base_url="http://x")})
    assert named.with_environment(env) is named


def test_a_preset_whose_key_is_not_set_is_a_config_error_naming_the_variable() -> None:
    provider = ProviderConfig(preset="groq")
    with pytest.raises(ConfigError, match=r"provider 'fast': .*set GROQ_API_KEY"):
        provider.endpoint("fast", {})
