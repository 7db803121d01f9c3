"""Per-request records and their summary (sans-IO). Definitions (docs/bench.md
says the same, with the peers' differences):

- **TTFT**, time to first token: from the moment the client starts the request
  (before connecting and sending) to the first network read that carries output
  (text, reasoning or a tool call's arguments).
- **E2E**, end-to-end latency: from the same start to the end of the stream.
- **TPOT**, time per output token: ``(E2E - TTFT) / (output tokens - 1)``, per
  request, for requests with at least two output tokens.
- **ITL**, inter-token latency: the gaps between successive reads that carry
  output, per chunk (a chunk carrying several tokens is one gap, not spread out).
- **Throughput**: completed requests, output tokens and all tokens (input +
  output) per second over the point's duration: from its first request's start to
  its last request's end.
- **Goodput**: completed requests per second that met every SLO given, and their
  share of all requests.
- Output tokens come from the response's usage when it reports them, else from
  the chunks counted (one per content event); each record and summary says which.
- Client health: **schedule lag** (open loop): how late each request started
  against its intended time; **queue delay**: from the start to the request
  written on a connection (building it, waiting for a connection, connecting);
  **client CPU**: the process's CPU time over the point's wall time.

Percentiles interpolate linearly between the two nearest ranks (numpy's default,
as vLLM and GuideLLM report them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

__all__ = ["SLO", "Distribution", "PointSummary", "RequestRecord", "distribution", "summarize"]

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


class RequestRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One request. Times are seconds from the start of its load point."""

    index: int
    point: str
    intended: float | None  # open loop: when it was due to start
    start: float
    sent: float | None  # written on a connection
    first_token: float | None
    end: float
    ok: bool
    error: str | None = None  # the error's type (RateLimitError, TimeoutError...)
    error_message: str | None = None
    input_tokens: int | None = None  # from usage
    output_tokens: int = 0
    token_source: Literal["usage", "chunks"] = "chunks"
    chunks: int = 0
    itl: list[float] = []

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.start

    @property
    def e2e(self) -> float:
        return self.end - self.start

    @property
    def tpot(self) -> float | None:
        if self.first_token is None or self.output_tokens < 2:
            return None
        return (self.end - self.first_token) / (self.output_tokens - 1)

    @property
    def schedule_lag(self) -> float | None:
        return None if self.intended is None else self.start - self.intended

    @property
    def queue_delay(self) -> float | None:
        return None if self.sent is None else self.sent - self.start


class Distribution(msgspec.Struct, kw_only=True, frozen=True):
    """Summary of one metric in seconds (None: no request had it)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    p99_9: float | None
    max: float | None


def _percentile(ordered: Sequence[float], q: float) -> float:
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return Distribution(
            count=0, mean=None, p50=None, p90=None, p95=None, p99=None, p99_9=None, max=None
        )
    ordered = sorted(values)
    p = [_percentile(ordered, q) for q in PERCENTILES]
    return Distribution(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=p[0],
        p90=p[1],
        p95=p[2],
        p99=p[3],
        p99_9=p[4],
        max=ordered[-1],
    )


class SLO(msgspec.Struct, kw_only=True, frozen=True):
    """A service-level objective: ``metric`` (ttft, tpot, itl, e2e) at most
    ``seconds`` (for itl: every gap of the request)."""

    metric: Literal["ttft", "tpot", "itl", "e2e"]
    seconds: float

    def met(self, r: RequestRecord) -> bool:
        if self.metric == "ttft":
            return r.ttft is not None and r.ttft <= self.seconds
        if self.metric == "e2e":
            return r.e2e <= self.seconds
        if self.metric == "tpot":
            return r.tpot is None or r.tpot <= self.seconds  # one token: no TPOT to miss
        return all(gap <= self.seconds for gap in r.itl)


class ClientHealth(msgspec.Struct, kw_only=True, frozen=True):
    """The client's own limits: if these are high, the client, not the server,
    bounded the result."""

    schedule_lag: Distribution
    queue_delay: Distribution
    cpu_seconds: float
    cpu_percent: float  # of one core, over the point's duration
    max_in_flight: int


class PointSummary(msgspec.Struct, kw_only=True, frozen=True):
    """One load point's figures (see the module docstring for the definitions)."""

    label: str
    mode: Literal["concurrency", "rate"]
    value: float
    requests: int
    completed: int
    failed: int
    duration: float
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    input_tokens: int
    output_tokens: int
    token_source: Literal["usage", "chunks", "mixed", "none"]
    ttft: Distribution
    tpot: Distribution
    itl: Distribution
    e2e: Distribution
    goodput: float | None  # requests/s meeting every SLO; None without SLOs
    goodput_share: float | None
    slos: list[SLO]
    errors: dict[str, int]
    error_examples: dict[str, str]  # the first message of each error type
    client: ClientHealth


def summarize(
    records: Sequence[RequestRecord],
    *,
    label: str,
    mode: Literal["concurrency", "rate"],
    value: float,
    slos: Sequence[SLO],
    cpu_seconds: float,
    max_in_flight: int,
) -> PointSummary:
    done = [r for r in records if r.ok]
    if records:
        duration = max(r.end for r in records) - min(r.start for r in records)
    else:
        duration = 0.0
    per_second = (lambda n: n / duration) if duration > 0 else (lambda n: 0.0)
    out_tokens = sum(r.output_tokens for r in done)
    in_tokens = sum(r.input_tokens or 0 for r in done)
    sources = {r.token_source for r in done}
    source: Literal["usage", "chunks", "mixed", "none"] = (
        "none" if not sources else "mixed" if len(sources) > 1 else next(iter(sources))
    )
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    for r in records:
        if not r.ok:
            kind = r.error or "Error"
            errors[kind] = errors.get(kind, 0) + 1
            examples.setdefault(kind, r.error_message or "")
    good = [r for r in done if all(s.met(r) for s in slos)]

    def dist(values: Sequence[float | None]) -> Distribution:
        return distribution([v for v in values if v is not None])

    return PointSummary(
        label=label,
        mode=mode,
        value=value,
        requests=len(records),
        completed=len(done),
        failed=len(records) - len(done),
        duration=duration,
        request_throughput=per_second(len(done)),
        output_throughput=per_second(out_tokens),
        total_token_throughput=per_second(out_tokens + in_tokens),
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        token_source=source,
        ttft=dist([r.ttft for r in done]),
        tpot=dist([r.tpot for r in done]),
        itl=distribution([gap for r in done for gap in r.itl]),
        e2e=dist([r.e2e for r in done]),
        goodput=per_second(len(good)) if slos else None,
        goodput_share=(len(good) / len(records) if records else 0.0) if slos else None,
        slos=list(slos),
        errors=errors,
        error_examples=examples,
        client=ClientHealth(
            schedule_lag=dist([r.schedule_lag for r in records]),
            queue_delay=dist([r.queue_delay for r in records]),
            cpu_seconds=cpu_seconds,
            cpu_percent=100 * cpu_seconds / duration if duration > 0 else 0.0,
            max_in_flight=max_in_flight,
        ),
    )
