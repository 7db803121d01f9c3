"""Prometheus metrics of an engine, in the text exposition format (0.0.4), sans-IO.

Per-call figures (counters and latency histograms by provider and model) are
updated from the ledger as each call finishes (:meth:`EngineMetrics.observe`,
a ledger listener: a few dict updates per call, nothing per token). Live state
(queue, calls running, retries, breaker state, rate-limit buckets) is read from
the engine's snapshots at scrape time. No label ever holds a key, a prompt or a
message: only provider, model, outcome, error type, breaker state.

Metric names (all prefixed ``swarm_``):

- ``calls_total{provider,model,outcome}`` counter; outcome completed/failed/cancelled
- ``call_errors_total{provider,model,error}`` counter, by error type
- ``tokens_total{provider,model,kind}`` counter; kind input/output/cache_read
- ``cost_usd_total{provider,model}`` counter (estimated)
- ``discarded_tokens_total{provider,model,kind}`` counter; kind input/output: tokens
  of attempts whose output was thrown away (cut short, retried, cancelled), which
  providers bill (``CallRecord.discarded_usage``, partly estimated)
- ``discarded_cost_usd_total{provider,model}`` counter (estimated)
- ``call_duration_seconds{provider,model}`` histogram, acceptance to end
- ``time_to_first_token_seconds{provider,model}`` histogram
- ``queue_seconds{provider,model}`` histogram, acceptance to first dispatch
- ``calls_queued``, ``calls_in_flight`` gauges
- ``provider_running{provider}``, ``provider_connecting{provider}`` gauges;
  ``provider_attempts_total{provider}``, ``provider_retries_total{provider}`` counters
- ``breaker_state{provider,model,state}`` gauge: 1 for the current state
  (closed, open, half_open), 0 for the others
- ``rate_limit_requests_per_minute{provider,model}``, ``rate_limit_requests_available``,
  ``rate_limit_tokens_per_minute``, ``rate_limit_tokens_available``, the same for
  ``rate_limit_input_tokens_*`` and ``rate_limit_output_tokens_*`` (Anthropic's separate
  limits), ``rate_limit_inflight`` gauges; ``rate_limit_429_total`` counter
- ``supervisor_restarts_total`` counter
- with a swarm (``MetricsServer.swarm``): ``agents`` gauge (how many), and for the
  ``MAX_AGENT_SERIES`` busiest agents ``agent_busy{agent}``, ``agent_queued{agent}``
  gauges and ``agent_replies_total``, ``agent_errors_total``, ``agent_turns_total``,
  ``agent_tool_calls_total``, ``agent_restarts_total`` counters (capped: one series
  per agent of a 10,000-agent swarm would swamp a Prometheus server)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

from ..agents.runtime import SwarmReport
from ..engine import EngineStatistics
from ..ledger import CallRecord
from ..ratelimit import RateLimiterStatistics

# Agents given their own series at most (the busiest; see the module docstring).
MAX_AGENT_SERIES = 200

__all__ = ["CONTENT_TYPE", "DEFAULT_BUCKETS", "EngineMetrics", "escape"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a cached first token (5 ms) to a long reasoning call (5 min).
DEFAULT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

_BREAKER_STATES = ("closed", "open", "half_open")

Labels = tuple[tuple[str, str], ...]


def escape(value: str) -> str:
    """A label value as the exposition format needs it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.total += value


class EngineMetrics:
    """The registry of one engine's metrics. Attach with
    ``engine.ledger.add_listener(metrics.observe)``; render with :meth:`render`."""

    def __init__(self, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        if not self.buckets or any(b <= 0 for b in self.buckets):
            raise ValueError("histogram buckets must be positive numbers of seconds")
        self._calls: dict[Labels, int] = {}
        self._errors: dict[Labels, int] = {}
        self._tokens: dict[Labels, int] = {}
        self._cost: dict[Labels, float] = {}
        self._discarded: dict[Labels, int] = {}
        self._discarded_cost: dict[Labels, float] = {}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {
            "call_duration_seconds": {},
            "time_to_first_token_seconds": {},
            "queue_seconds": {},
        }

    def observe(self, record: CallRecord) -> None:
        """Count one finished call (a ledger listener)."""
        provider, _, model = (record.deployment or "").partition("/")
        base: Labels = (("provider", provider or "none"), ("model", model or record.route))
        key = (*base, ("outcome", record.outcome))
        self._calls[key] = self._calls.get(key, 0) + 1
        if record.error is not None:
            key = (*base, ("error", record.error.kind))
            self._errors[key] = self._errors.get(key, 0) + 1
        usage = record.usage
        for kind, n in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
        ):
            if n:
                key = (*base, ("kind", kind))
                self._tokens[key] = self._tokens.get(key, 0) + n
        if record.cost_usd:
            self._cost[base] = self._cost.get(base, 0.0) + record.cost_usd
        discarded = record.discarded_usage
        for kind, n in (("input", discarded.input_tokens), ("output", discarded.output_tokens)):
            if n:
                key = (*base, ("kind", kind))
                self._discarded[key] = self._discarded.get(key, 0) + n
        if record.discarded_cost_usd:
            self._discarded_cost[base] = (
                self._discarded_cost.get(base, 0.0) + record.discarded_cost_usd
            )
        for name, value in (
            ("call_duration_seconds", record.duration),
            ("time_to_first_token_seconds", record.ttft),
            ("queue_seconds", record.queued),
        ):
            if value is not None:
                family = self._histograms[name]
                histogram = family.get(base)
                if histogram is None:
                    histogram = family[base] = _Histogram(self.buckets)
                histogram.observe(value)

    def render(
        self,
        stats: EngineStatistics,
        rate_limits: Mapping[str, Mapping[str, RateLimiterStatistics]],
        swarm: SwarmReport | None = None,
    ) -> str:
        """The whole exposition: per-call families, then the live state (with a
        swarm's report: its agents, the ``MAX_AGENT_SERIES`` busiest of them)."""
        out: list[str] = []

        def family(
            name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]
        ) -> None:
            full = f"swarm_{name}"
            out.append(f"# HELP {full} {help_text}")
            out.append(f"# TYPE {full} {kind}")
            for labels, value in samples:
                out.append(f"{full}{_labels(labels)} {_number(value)}")

        family("calls_total", "counter", "Calls finished, by outcome.", self._calls.items())
        family("call_errors_total", "counter", "Failed calls by error type.", self._errors.items())
        family(
            "tokens_total",
            "counter",
            "Tokens by kind (input, output, cache_read).",
            self._tokens.items(),
        )
        family("cost_usd_total", "counter", "Estimated cost in USD.", self._cost.items())
        family(
            "discarded_tokens_total",
            "counter",
            "Tokens of attempts whose output was thrown away (input, output).",
            self._discarded.items(),
        )
        family(
            "discarded_cost_usd_total",
            "counter",
            "Estimated cost in USD of attempts whose output was thrown away.",
            self._discarded_cost.items(),
        )
        helps = {
            "call_duration_seconds": "Call duration, from acceptance to the end.",
            "time_to_first_token_seconds": "Time to first token of the answering attempt.",
            "queue_seconds": "Time in the scheduler's queue before the first dispatch.",
        }
        for name, histograms in self._histograms.items():
            full = f"swarm_{name}"
            out.append(f"# HELP {full} {helps[name]}")
            out.append(f"# TYPE {full} histogram")
            for labels, h in histograms.items():
                running = 0
                for bound, n in zip(h.buckets, h.counts, strict=True):
                    running += n
                    out.append(
                        f"{full}_bucket{_labels((*labels, ('le', _number(bound))))} {running}"
                    )
                out.append(f"{full}_bucket{_labels((*labels, ('le', '+Inf')))} {h.count}")
                out.append(f"{full}_sum{_labels(labels)} {_number(h.total)}")
                out.append(f"{full}_count{_labels(labels)} {h.count}")
        family("calls_queued", "gauge", "Calls waiting in the scheduler.", [((), stats.queued)])
        family(
            "calls_in_flight",
            "gauge",
            "Calls accepted and not finished.",
            [((), stats.ledger.in_flight)],
        )
        providers = sorted(stats.providers.items())
        family(
            "provider_running",
            "gauge",
            "Calls running on the provider.",
            [((("provider", n),), p.running) for n, p in providers],
        )
        family(
            "provider_connecting",
            "gauge",
            "Attempts connecting or sending.",
            [((("provider", n),), p.connecting) for n, p in providers],
        )
        family(
            "provider_attempts_total",
            "counter",
            "Attempts made.",
            [((("provider", n),), p.attempts) for n, p in providers],
        )
        family(
            "provider_retries_total",
            "counter",
            "Retried attempts.",
            [((("provider", n),), p.retries) for n, p in providers],
        )
        family(
            "breaker_state",
            "gauge",
            "Circuit breaker state: 1 for the current one.",
            [
                ((("provider", n), ("model", m), ("state", s)), 1 if state == s else 0)
                for n, p in providers
                for m, state in sorted(p.breakers.items())
                for s in _BREAKER_STATES
            ],
        )
        limits = [
            ((("provider", n), ("model", m)), s)
            for n, by_model in sorted(rate_limits.items())
            for m, s in sorted(by_model.items())
        ]
        for name, attr, help_text in (
            ("rate_limit_requests_per_minute", "requests_per_minute", "Allowed request rate."),
            ("rate_limit_requests_available", "requests_available", "Requests the bucket holds."),
            ("rate_limit_tokens_per_minute", "tokens_per_minute", "Allowed token rate."),
            ("rate_limit_tokens_available", "tokens_available", "Tokens the bucket holds."),
            (
                "rate_limit_input_tokens_per_minute",
                "input_tokens_per_minute",
                "Allowed input-token rate (Anthropic's ITPM).",
            ),
            (
                "rate_limit_input_tokens_available",
                "input_tokens_available",
                "Input tokens the bucket holds.",
            ),
            (
                "rate_limit_output_tokens_per_minute",
                "output_tokens_per_minute",
                "Allowed output-token rate (Anthropic's OTPM).",
            ),
            (
                "rate_limit_output_tokens_available",
                "output_tokens_available",
                "Output tokens the bucket holds.",
            ),
        ):
            family(
                name,
                "gauge",
                help_text,
                [
                    (labels, getattr(s, attr))
                    for labels, s in limits
                    if getattr(s, attr) is not None
                ],
            )
        family(
            "rate_limit_inflight",
            "gauge",
            "Permits out.",
            [(labels, s.inflight) for labels, s in limits],
        )
        family(
            "rate_limit_429_total",
            "counter",
            "Responses that were 429s.",
            [(labels, s.rate_limited) for labels, s in limits],
        )
        restarts = stats.supervisor.restarts if stats.supervisor is not None else 0
        family(
            "supervisor_restarts_total",
            "counter",
            "Engine actors restarted after a crash.",
            [((), restarts)],
        )
        if swarm is not None:
            family("agents", "gauge", "Agents in the swarm.", [((), len(swarm.agents))])
            busiest = swarm.busiest(MAX_AGENT_SERIES)
            for name, kind, help_text, field in (
                ("agent_busy", "gauge", "Messages the agent is handling now.", "busy"),
                ("agent_queued", "gauge", "Messages waiting in the agent's mailbox.", "queued"),
                ("agent_replies_total", "counter", "Messages the agent answered.", "replies"),
                ("agent_errors_total", "counter", "Messages the agent failed on.", "errors"),
                ("agent_turns_total", "counter", "Model turns the agent took.", "turns"),
                ("agent_tool_calls_total", "counter", "Tool calls the agent ran.", "tool_calls"),
                ("agent_restarts_total", "counter", "Times the agent was restarted.", "restarts"),
            ):
                family(
                    name,
                    kind,
                    help_text,
                    [((("agent", agent),), getattr(a, field)) for agent, a in busiest],
                )
        return "\n".join(out) + "\n"
