"""OpenTelemetry spans (GenAI semantic conventions) for model calls and tool runs
of a swarm on the simulator, collected with the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from providers import Message, Request
from providers.sim import Fault, ModelProfile, SimConfig
from swarm import EngineConfig, RetryPolicy, open_engine
from swarm.agents import Agent, open_swarm
from swarm.engine import SIM_KEY
from swarm.observability.otel import instrument

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: What to look up.
    """
    return f"notes on {topic}"


async def test_calls_and_tool_runs_become_genai_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sim = SimConfig(
        models={"m": ModelProfile(output_tokens=6), "down": ModelProfile()},
        faults=[Fault(kind="status", status=400, models=["down"])],
    )
    agents = [
        Agent("researcher", "Use the tool.", model="m", tools=[lookup]),
        Agent("claude", "Answer.", model="sim-anthropic/claude-haiku-4-5"),
        Agent("broken", "Answer.", model="down"),
    ]
    config = EngineConfig(retry=RetryPolicy(max_attempts=1))
    async with open_engine(config, env={}, simulator=sim) as engine:
        async with open_swarm(engine, agents) as crew:
            stop = instrument(engine, crew, tracer_provider=provider)
            await crew.ask("researcher", "PROMPT-MARKER tea")
            await crew.ask("claude", "PROMPT-MARKER hi")
            with pytest.raises(Exception, match=r"400|invalid"):
                await crew.ask("broken", "PROMPT-MARKER x")
            stop()
            await crew.ask("claude", "after stop")
    spans = exporter.get_finished_spans()
    chats = [s for s in spans if s.attributes["gen_ai.operation.name"] == "chat"]
    tools = [s for s in spans if s.attributes["gen_ai.operation.name"] == "execute_tool"]
    # researcher: a tool turn and the answer; claude: one; broken: one failed.
    assert len(chats) == 4 and len(tools) == 1
    for span in chats:
        assert span.kind is SpanKind.CLIENT and span.name.startswith("chat ")
        assert span.end_time >= span.start_time
    by_agent = {s.attributes["gen_ai.agent.name"]: s for s in chats}
    ok = by_agent["claude"].attributes
    assert ok["gen_ai.provider.name"] == "anthropic"
    assert ok["gen_ai.request.model"] == "claude-haiku-4-5"
    assert ok["gen_ai.usage.output_tokens"] > 0 and ok["gen_ai.usage.input_tokens"] > 0
    assert ok["gen_ai.response.finish_reasons"] == ("stop",)
    assert by_agent["researcher"].attributes["gen_ai.provider.name"] == "openai"
    failed = by_agent["broken"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "BadRequestError"
    (tool,) = tools
    assert tool.name == "execute_tool lookup" and tool.kind is SpanKind.INTERNAL
    assert tool.attributes["gen_ai.tool.name"] == "lookup"
    assert tool.attributes["gen_ai.tool.call.id"]
    assert tool.attributes["gen_ai.agent.name"] == "researcher"
    # Each message is an invoke_agent span; its calls and tools are its children.
    invocations = {
        s.attributes["gen_ai.agent.name"]: s
        for s in spans
        if s.attributes["gen_ai.operation.name"] == "invoke_agent"
    }
    assert set(invocations) == {"researcher", "claude", "broken"}  # not "after stop"
    researcher = invocations["researcher"]
    assert researcher.name == "invoke_agent researcher" and researcher.parent is None
    children = [s for s in spans if s.parent and s.parent.span_id == researcher.context.span_id]
    assert sorted(s.attributes["gen_ai.operation.name"] for s in children) == [
        "chat",
        "chat",
        "execute_tool",
    ]
    assert all(s.context.trace_id == researcher.context.trace_id for s in children)
    assert by_agent["claude"].parent.span_id == invocations["claude"].context.span_id
    assert invocations["broken"].status.status_code is StatusCode.ERROR
    assert invocations["claude"].status.status_code is not StatusCode.ERROR
    # No prompt, answer or key in any attribute.
    values = " ".join(str(v) for s in spans for v in s.attributes.values())
    assert "PROMPT-MARKER" not in values and SIM_KEY not in values


async def test_a_handoff_nests_the_target_under_the_sender_and_plain_calls_are_roots() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agents = [
        Agent("triage", "Route the user.", model="m", handoffs=["expert"]),
        Agent("expert", "Answer.", model="m"),
    ]
    sim = SimConfig(models={"m": ModelProfile(output_tokens=6)})
    async with open_engine(EngineConfig(), env={}, simulator=sim) as engine:
        async with open_swarm(engine, agents) as crew:
            stop = instrument(engine, crew, tracer_provider=provider)
            reply = await crew.ask("triage", "a question")
            await engine.complete(Request(model="m", messages=[Message.user("outside")]))
            stop()
    assert reply.path == ["triage", "expert"]
    spans = exporter.get_finished_spans()
    invocations = {
        s.attributes["gen_ai.agent.name"]: s
        for s in spans
        if s.attributes["gen_ai.operation.name"] == "invoke_agent"
    }
    triage, expert = invocations["triage"], invocations["expert"]
    assert triage.parent is None
    assert expert.parent is not None and expert.parent.span_id == triage.context.span_id
    assert expert.context.trace_id == triage.context.trace_id
    assert triage.start_time <= expert.start_time <= expert.end_time <= triage.end_time
    chats = [s for s in spans if s.attributes["gen_ai.operation.name"] == "chat"]
    outside = [s for s in chats if "gen_ai.agent.name" not in s.attributes]
    assert len(outside) == 1 and outside[0].parent is None
    expert_chats = [s for s in chats if s.attributes.get("gen_ai.agent.name") == "expert"]
    assert expert_chats and all(s.parent.span_id == expert.context.span_id for s in expert_chats)
