"""ModelProfile.tool_rounds: the simulated model calls tools for that many rounds
before it answers, in every family's wire format, so multi-turn tool loops can be
run end to end."""

from __future__ import annotations

import pytest

from providers import Message, Request
from providers.sim import ModelProfile, SimConfig, open_simulator
from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.execution import ToolBox, tool_loop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: What to look up.
    """
    return f"value of {key}"


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
@pytest.mark.parametrize("rounds", [1, 2, 3])
async def test_the_model_calls_tools_for_the_rounds_asked_then_answers(
    family: str, rounds: int
) -> None:
    profile = ModelProfile(output_tokens=8, tool_rounds=rounds)
    async with open_simulator(SimConfig(models={"m": profile})) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(
                    family=family, base_url=sim.base_url_for(family), api_key="sk-t"
                )
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=1),
        )
        async with open_engine(config, env={}) as engine:
            request = Request(model="m", messages=[Message.user("look it up")], max_tokens=30)
            result = await tool_loop(engine, request, ToolBox([lookup]), max_turns=10)
    assert result.stopped == "answered"
    assert result.turns == rounds + 1
    assert result.tool_calls == rounds


def test_tool_rounds_is_checked() -> None:
    with pytest.raises(ValueError, match="tool_rounds must be >= 1"):
        ModelProfile(tool_rounds=0)


def test_bad_tool_calls_is_checked() -> None:
    with pytest.raises(ValueError, match=r"bad_tool_calls must be within 0\.\.1"):
        ModelProfile(bad_tool_calls=1.5)
