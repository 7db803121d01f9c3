"""Our own thin client (``providers.client``) against the simulator, every family:
text, a whole tool loop, typed errors from faults and rate limits."""

from __future__ import annotations

import msgspec
import pytest

from providers.client import Client
from providers.errors import APIError, OverloadedError, RateLimitError
from providers.events import TextDelta
from providers.families import Endpoint
from providers.messages import Message, Request, ToolSpec
from providers.secrets import Secret
from providers.sim import Fault, ModelProfile, RateLimit, SimConfig, Simulator, open_simulator

from .common import FAMILIES, WEATHER_SCHEMA

pytestmark = pytest.mark.anyio

MODELS = {
    "openai": "gpt-sim",
    "openai-responses": "gpt-sim",
    "anthropic": "claude-sim",
    "gemini": "gemini-sim",
}


def client_for(sim: Simulator, family: str) -> Client:
    endpoint = Endpoint(provider="sim", base_url=sim.base_url_for(family), api_key=Secret("sk-sim"))
    return Client(endpoint, family)


@pytest.mark.parametrize("family", FAMILIES)
async def test_stream_and_complete_agree(family: str) -> None:
    cfg = SimConfig(seed=4, default_profile=ModelProfile(output_tokens=25))
    request = Request(model=MODELS[family], messages=[Message.user("hello there")], max_tokens=100)
    async with open_simulator(cfg) as sim, client_for(sim, family) as client:
        async with client.stream(request) as events:
            text = "".join([e.text async for e in events if isinstance(e, TextDelta)])
        response = await client.complete(request)
        assert response.text == text
        assert len(text.split()) == 25
        assert response.usage.output_tokens == 25


@pytest.mark.parametrize("family", FAMILIES)
async def test_tool_loop_end_to_end(family: str) -> None:
    cfg = SimConfig(seed=2, default_profile=ModelProfile(output_tokens=30, tool_calls=2))
    tools = [ToolSpec(name="get_weather", description="Weather", parameters=WEATHER_SCHEMA)]
    messages = [Message.user("What is the weather?")]
    async with open_simulator(cfg) as sim, client_for(sim, family) as client:
        first = await client.complete(Request(model=MODELS[family], messages=messages, tools=tools))
        assert first.finish_reason == "tool_calls"
        calls = first.message.tool_calls
        assert len(calls) == 2
        results = []
        for call in calls:
            args = msgspec.json.decode(call.arguments)
            assert 1 <= args["days"] <= 7 and len(args["city"]) >= 2
            results.append(Message.tool(call.id, call.name, f"Clear skies in {args['city']}"))
        messages = [*messages, first.message, *results]
        second = await client.complete(
            Request(model=MODELS[family], messages=messages, tools=tools)
        )
        assert second.finish_reason == "stop"
        assert not second.message.tool_calls
        assert "Clear skies in" in second.text
        assert sim.stats.snapshot()["by_outcome"] == {"ok": 2}


@pytest.mark.parametrize("family", FAMILIES)
async def test_typed_errors(family: str) -> None:
    request = Request(model=MODELS[family], messages=[Message.user("hi")], max_tokens=50)
    cfg = SimConfig(rate_limit=RateLimit(rpm=1))
    async with open_simulator(cfg) as sim, client_for(sim, family) as client:
        await client.complete(request)
        with pytest.raises(RateLimitError) as info:
            await client.complete(request)
        assert info.value.retry_after is None or info.value.retry_after > 0
    cfg = SimConfig(faults=[Fault(kind="error_event", after=3)])
    async with open_simulator(cfg) as sim, client_for(sim, family) as client:
        with pytest.raises(APIError) as err:
            async with client.stream(request) as events:
                async for _ in events:
                    pass
        assert err.value.retryable
        if family == "anthropic":
            assert isinstance(err.value, OverloadedError)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("refused_on", ["requests", "tokens"])
async def test_a_429_says_which_limit_it_hit(family: str, refused_on: str) -> None:
    """Each family's 429 (headers, wording or Gemini's QuotaFailure) names the limit
    that was hit, and the error carries the response's rate-limit headers, so a
    limiter cuts only that limit."""
    if refused_on == "requests":
        cfg = SimConfig(rate_limit=RateLimit(rpm=1, tpm=100_000))
        max_tokens = 50
    else:
        cfg = SimConfig(rate_limit=RateLimit(rpm=100, tpm=1_000))
        max_tokens = 5_000  # more than the whole TPM
    request = Request(model=MODELS[family], messages=[Message.user("hi")], max_tokens=max_tokens)
    async with open_simulator(cfg) as sim, client_for(sim, family) as client:
        if refused_on == "requests":
            await client.complete(request)
        with pytest.raises(RateLimitError) as info:
            async with client.stream(request) as events:
                async for _ in events:
                    pass
    assert info.value.limit == refused_on
    if family != "gemini":  # Gemini sends no rate-limit headers
        assert info.value.rate_limits is not None and not info.value.rate_limits.empty
        if refused_on == "requests":
            assert info.value.rate_limits.requests_remaining == 0
