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

``swarm run --otel-spans FILE`` does this for a run with the SDK
(:func:`span_file`): every span as one JSON object per line, for a collector's
file receiver or a quick look, without a collector to talk to.

Prompts, answers, tool arguments and results are never recorded (the conventions
make content opt-in; this has none), and neither are keys.

With a swarm, each message an agent handles is an INTERNAL span ``invoke_agent
{name}`` (``gen_ai.operation.name = invoke_agent``, ``swarm.message.id``), live
from when the agent takes the message to when it is done with it; the model calls
and tool runs made for that message are its children, and a message sent while
handling another (an ``ask`` from a tool, a handoff) is a child of that one's
span. Calls made outside any agent stay root spans.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..engine import Engine
from ..execution.tools import ToolOutcome
from ..ledger import CallRecord

if TYPE_CHECKING:
    from ..agents.runtime import Swarm

__all__ = ["instrument", "span_file"]

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


@contextmanager
def span_file(path: str) -> Iterator[Any]:
    """A tracer provider (the OpenTelemetry SDK's) that writes each finished span
    to ``path`` as one JSON line; flushed and closed when the block ends.

    Raises:
        ImportError: the SDK is not installed (``pip install 'swarm-runtime[otel]'``).
        OSError: ``path`` cannot be written.
    """
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise ImportError(
            "--otel-spans needs the OpenTelemetry SDK: pip install 'swarm-runtime[otel]'"
        ) from None
    with open(path, "w", encoding="utf-8") as out:
        exporter = ConsoleSpanExporter(
            out=out, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
        provider = TracerProvider()
        # Batched: the SDK's thread writes, not the event loop (a span per call and
        # per tool run); shutdown, also on an interrupted run, flushes the rest.
        provider.add_span_processor(BatchSpanProcessor(exporter))
        try:
            yield provider
        finally:
            provider.shutdown()


def instrument(
    engine: Engine, swarm: Swarm | None = None, *, tracer_provider: Any = None
) -> Callable[[], None]:
    """Emit a span per finished model call of ``engine`` (and per tool run of
    ``swarm``) from now on; returns the function that stops it."""
    tracer = _tracer(tracer_provider)
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    from ..agents.runtime import MESSAGE_METADATA, MessageEvent, current_agent

    # The live invoke_agent span of each message being handled. Bounded: a span
    # leaves when its message finishes (every started message finishes, also when
    # cancelled), and a swarm holds at most its agents' concurrency in hand.
    messages: dict[str, Any] = {}

    def parent_of(message_id: str | None) -> Any:
        span = messages.get(message_id) if message_id else None
        return set_span_in_context(span) if span is not None else None

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
            f"chat {request_model}",
            context=parent_of(record.metadata.get(MESSAGE_METADATA)),
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=attributes,
        )
        if record.outcome != "completed":
            kind = record.error.kind if record.error else record.outcome
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end(end_time=end)

    def on_tool(agent: str, outcome: ToolOutcome) -> None:
        end = time.time_ns()
        try:  # tool listeners run inside the agent's handling of the message
            message_id: str | None = current_agent().message_id
        except RuntimeError:  # a listener called outside an agent's work
            message_id = None
        span = tracer.start_span(
            f"execute_tool {outcome.name}",
            context=parent_of(message_id),
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

    def on_message(event: MessageEvent) -> None:
        if event.kind == "started":
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": event.agent,
                "swarm.message.id": event.message_id,
            }
            if event.sender:
                attributes["swarm.message.sender"] = event.sender
            messages[event.message_id] = tracer.start_span(
                f"invoke_agent {event.agent}",
                context=parent_of(event.parent_id),
                kind=SpanKind.INTERNAL,
                start_time=int(event.at * 1e9),
                attributes=attributes,
            )
            return
        span = messages.pop(event.message_id, None)
        if span is None:  # started before instrument() was called
            return
        if event.outcome != "replied":
            kind = event.error or event.outcome or "error"
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end(end_time=int(event.at * 1e9))

    removers = [engine.ledger.add_listener(on_call)]
    if swarm is not None:
        removers.append(swarm.add_tool_listener(on_tool))
        removers.append(swarm.add_message_listener(on_message))

    def stop() -> None:
        for remove in removers:
            remove()

    return stop
