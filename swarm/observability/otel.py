"""OpenTelemetry spans for model calls and tool runs, following the GenAI semantic
conventions (``pip install 'swarm-runtime[otel]'``: the OpenTelemetry API; bring
your SDK and exporter).

::

    stop = instrument(engine, crew)        # crew: a Swarm, for tool spans
    ...
    stop()

Each finished model call becomes a CLIENT span ``chat {model}`` and each tool run
an INTERNAL span ``execute_tool {name}``, with their real start and end times
(made when they finish, from the ledger's and the tool loop's measurements):

- ``gen_ai.operation.name``: ``chat`` or ``execute_tool``
- ``gen_ai.provider.name``: ``openai``, ``anthropic`` or ``gcp.gemini`` (by wire family)
- ``gen_ai.request.model``, ``gen_ai.response.model``
- ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``
- ``gen_ai.response.finish_reasons``, ``gen_ai.agent.name``
- ``gen_ai.tool.name``, ``gen_ai.tool.call.id``
- ``error.type`` and an ERROR status when the call or the tool failed
- ``swarm.call.id``, ``swarm.deployment``, ``swarm.attempts``, ``swarm.route``

Prompts, answers, tool arguments and results are never recorded (the conventions
make content opt-in; this has none), and neither are keys.

The spans are not nested under an agent's span yet: each is a root span, tied to
the others by ``gen_ai.agent.name`` and ``swarm.call.id``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine import Engine
from ..execution.tools import ToolOutcome
from ..ledger import CallRecord

if TYPE_CHECKING:
    from ..agents.runtime import Swarm

__all__ = ["instrument"]

_PROVIDER_NAMES = {
    "openai": "openai",
    "openai-responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}


def _tracer(tracer_provider: Any) -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError(
            "OpenTelemetry spans need the opentelemetry API: pip install 'swarm-runtime[otel]'"
        ) from None
    provider = tracer_provider or trace.get_tracer_provider()
    return provider.get_tracer("swarm")


def instrument(
    engine: Engine, swarm: Swarm | None = None, *, tracer_provider: Any = None
) -> Callable[[], None]:
    """Emit a span per finished model call of ``engine`` (and per tool run of
    ``swarm``) from now on; returns the function that stops it."""
    tracer = _tracer(tracer_provider)
    from opentelemetry.trace import SpanKind, Status, StatusCode

    families: dict[str, str] = {}

    def family_of(provider: str) -> str:
        name = families.get(provider)
        if name is None:
            config = engine.config.providers.get(provider)
            name = families[provider] = config.resolved_family() if config else "unknown"
        return name

    def on_call(record: CallRecord) -> None:
        end = time.time_ns()
        start = end - int((record.duration or 0.0) * 1e9)
        provider, _, model = (record.deployment or "").partition("/")
        request_model = model or record.route
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request_model,
            "swarm.call.id": record.id,
            "swarm.route": record.route,
            "swarm.attempts": record.attempts,
        }
        if provider:
            attributes["gen_ai.provider.name"] = _PROVIDER_NAMES.get(
                family_of(provider), family_of(provider)
            )
            attributes["swarm.deployment"] = record.deployment
        if record.model:
            attributes["gen_ai.response.model"] = record.model
        if record.usage.input_tokens or record.usage.output_tokens:
            attributes["gen_ai.usage.input_tokens"] = record.usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = record.usage.output_tokens
        if record.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [record.finish_reason]
        if record.agent:
            attributes["gen_ai.agent.name"] = record.agent
        span = tracer.start_span(
            f"chat {request_model}", kind=SpanKind.CLIENT, start_time=start, attributes=attributes
        )
        if record.outcome != "completed":
            kind = record.error.kind if record.error else record.outcome
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end(end_time=end)

    def on_tool(agent: str, outcome: ToolOutcome) -> None:
        end = time.time_ns()
        span = tracer.start_span(
            f"execute_tool {outcome.name}",
            kind=SpanKind.INTERNAL,
            start_time=end - int(outcome.duration * 1e9),
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": outcome.name,
                "gen_ai.tool.call.id": outcome.call_id,
                "gen_ai.agent.name": agent,
            },
        )
        if outcome.is_error:
            kind = outcome.error_kind or "error"
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end(end_time=end)

    removers = [engine.ledger.add_listener(on_call)]
    if swarm is not None:
        removers.append(swarm.add_tool_listener(on_tool))

    def stop() -> None:
        for remove in removers:
            remove()

    return stop
