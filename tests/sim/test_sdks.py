"""The official ``openai`` and ``anthropic`` SDKs, pointed at the simulator, stream
text and tool calls with no error and get the same text as our own decoders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import anthropic
import httpx
import msgspec
import openai
import pytest

from providers.sim import Fault, ModelProfile, RateLimit, SimConfig, Simulator

from .common import WEATHER_SCHEMA, decode, request, text_of, tool_calls_of
from .helpers import sim_in_thread

C = TypeVar("C", openai.OpenAI, anthropic.Anthropic)

CFG = SimConfig(seed=9, default_profile=ModelProfile(output_tokens=30, tool_calls=2))


class Closing:
    """Closes the SDK clients a test makes: an unclosed one leaves its pooled
    sockets to the garbage collector, which warns in whatever test runs then."""

    def __init__(self) -> None:
        self.made: list[openai.OpenAI | anthropic.Anthropic] = []

    def __call__(self, client: C) -> C:
        self.made.append(client)
        return client


@pytest.fixture
def closing() -> Iterator[Closing]:
    keep = Closing()
    yield keep
    for client in keep.made:
        client.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with sim_in_thread(CFG) as s:
        yield s


def ours(sim: Simulator, family: str, **kw: Any) -> str:
    path, body = request(family, **kw)
    with httpx.Client() as client:
        return text_of(decode(family, client.post(sim.base_url + path, json=body).content))


def test_openai_chat_stream_and_create(sim: Simulator, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0))
    stream = client.chat.completions.create(
        model="gpt-sim",
        messages=[{"role": "user", "content": "hello there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30
    assert text == ours(sim, "openai")
    done = client.chat.completions.create(
        model="gpt-sim", messages=[{"role": "user", "content": "hello there"}]
    )
    assert done.choices[0].message.content == text
    assert done.choices[0].finish_reason == "stop"


def test_openai_chat_stream_helper_with_tools(sim: Simulator, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0))
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
    ]
    with client.chat.completions.stream(
        model="gpt-sim", messages=[{"role": "user", "content": "weather?"}], tools=tools
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    assert len(calls) == 2
    path, body = request("openai", text="weather?", tools=[("get_weather", WEATHER_SCHEMA)])
    body.pop("stream_options")
    with httpx.Client() as http:
        mine = tool_calls_of(decode("openai", http.post(sim.base_url + path, json=body).content))
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        (c.id, c.name, c.arguments) for c in mine
    ]
    for c in calls:
        args = msgspec.json.decode(c.function.arguments)
        assert 1 <= args["days"] <= 7


def test_openai_responses(sim: Simulator, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0))
    with client.responses.stream(model="gpt-sim", input="hello there") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == ours(sim, "openai-responses")
    assert final.usage is not None and final.usage.output_tokens == 30
    tools: Any = [
        {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA, "strict": False}
    ]
    with client.responses.stream(model="gpt-sim", input="weather?", tools=tools) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert len(calls) == 2 and all(c.name == "get_weather" for c in calls)
    created = client.responses.create(model="gpt-sim", input="hello there")
    assert created.output_text == ours(sim, "openai-responses")


def test_openai_models_and_rate_limit_error(closing: Closing) -> None:
    cfg = SimConfig(models={"gpt-sim": ModelProfile()}, rate_limit=RateLimit(rpm=1))
    with sim_in_thread(cfg) as s:
        client = closing(openai.OpenAI(base_url=s.openai_base_url, api_key="sk-sim", max_retries=0))
        assert [m.id for m in client.models.list()] == ["gpt-sim"]
        client.chat.completions.create(model="gpt-sim", messages=[{"role": "user", "content": "a"}])
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(
                model="gpt-sim", messages=[{"role": "user", "content": "a"}]
            )
        assert info.value.code == "rate_limit_exceeded"


def test_anthropic_stream_and_create(sim: Simulator, closing: Closing) -> None:
    client = closing(
        anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-sim", max_retries=0)
    )
    with client.messages.stream(
        model="claude-sim", max_tokens=1024, messages=[{"role": "user", "content": "hello there"}]
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text == ours(sim, "anthropic")
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 30
    created = client.messages.create(
        model="claude-sim", max_tokens=1024, messages=[{"role": "user", "content": "hello there"}]
    )
    assert created.content[0].text == text  # type: ignore[union-attr]


def test_anthropic_tool_use(sim: Simulator, closing: Closing) -> None:
    client = closing(
        anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-sim", max_retries=0)
    )
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    with client.messages.stream(
        model="claude-sim",
        max_tokens=1024,
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 2
    for block in uses:
        assert block.name == "get_weather"
        days = block.input["days"]
        assert isinstance(days, int) and 1 <= days <= 7
    # answer with the results: the model uses them
    results: Any = [
        {"type": "tool_result", "tool_use_id": b.id, "content": "Rain all day"} for b in uses
    ]
    follow = client.messages.create(
        model="claude-sim",
        max_tokens=1024,
        tools=tools,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": final.content},
            {"role": "user", "content": results},
        ],
    )
    assert follow.stop_reason == "end_turn"
    assert "Rain all day" in follow.content[0].text  # type: ignore[union-attr]


def test_anthropic_overloaded_in_stream_and_529(closing: Closing) -> None:
    with sim_in_thread(SimConfig(faults=[Fault(kind="error_event", after=3)])) as s:
        client = closing(
            anthropic.Anthropic(base_url=s.anthropic_base_url, api_key="k", max_retries=0)
        )
        with (
            pytest.raises(anthropic.APIStatusError) as info,
            client.messages.stream(
                model="claude-sim", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
        ):
            stream.get_final_text()
        assert "overloaded" in str(info.value).lower()
    with sim_in_thread(SimConfig(faults=[Fault(kind="status", status=529)])) as s:
        client = closing(
            anthropic.Anthropic(base_url=s.anthropic_base_url, api_key="k", max_retries=0)
        )
        with pytest.raises(anthropic.APIStatusError) as info2:
            client.messages.create(
                model="claude-sim", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
        assert info2.value.status_code == 529
