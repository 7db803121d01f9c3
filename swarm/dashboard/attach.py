"""``swarm dash``: the dashboard of an engine in another process, attached through
its Prometheus endpoint (``swarm run --metrics-port``, or
``swarm.observability.open_metrics_server(engine)`` in any application).

The scrape gives the numbers: the agents' rows come from the ``swarm_agent_*``
series (the busiest ``MAX_AGENT_SERIES``) that the endpoint serves while a swarm
is attached to it (``swarm run`` does it). The token stream of the agent picked
in the page is content, not a metric: it comes from the endpoint's
``/swarm/tail`` when the engine serves it (``swarm run --metrics-tails``, loopback
only); otherwise the page says how to turn it on.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from ..throughput import RecentRate
from .server import Source

__all__ = ["metrics_source", "parse_exposition", "snapshot_from_metrics"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_exposition(text: str) -> Samples:
    """Samples by metric name: (labels, value) pairs. Comments and unknown lines
    are skipped; this reads the format our endpoint writes."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m[2] or "")}
        try:
            value = float(m[3])
        except ValueError:
            continue
        out.setdefault(m[1], []).append((labels, value))
    return out


def _each(samples: Samples, name: str) -> Iterator[tuple[dict[str, str], float]]:
    yield from samples.get(f"swarm_{name}", [])


def _sum(samples: Samples, name: str, **match: str) -> int:
    return int(
        sum(
            v
            for labels, v in _each(samples, name)
            if all(labels.get(k) == x for k, x in match.items())
        )
    )


def snapshot_from_metrics(
    samples: Samples, *, title: str, elapsed: float, tokens_per_second: float
) -> dict[str, Any]:
    """The dashboard's snapshot shape (see state.snapshot) from one scrape."""
    providers: dict[str, dict[str, Any]] = {}

    def provider(name: str) -> dict[str, Any]:
        return providers.setdefault(
            name,
            {
                "name": name,
                "family": "",
                "running": 0,
                "connecting": 0,
                "completed": 0,
                "failed": 0,
                "retries": 0,
                "attempts": 0,
                "breakers": {},
                "ttft_ms": {},
            },
        )

    for field, metric in (
        ("running", "provider_running"),
        ("connecting", "provider_connecting"),
        ("attempts", "provider_attempts_total"),
        ("retries", "provider_retries_total"),
    ):
        for labels, v in _each(samples, metric):
            provider(labels.get("provider", "?"))[field] = int(v)
    for labels, v in _each(samples, "calls_total"):
        if labels.get("provider", "none") == "none":
            continue
        p = provider(labels["provider"])
        if labels.get("outcome") == "completed":
            p["completed"] += int(v)
        elif labels.get("outcome") == "failed":
            p["failed"] += int(v)
    for labels, v in _each(samples, "breaker_state"):
        if v == 1:
            provider(labels.get("provider", "?"))["breakers"][labels.get("model", "?")] = (
                labels.get("state", "?")
            )
    limits: dict[tuple[str, str], dict[str, Any]] = {}
    for field, metric in (
        ("rpm", "rate_limit_requests_per_minute"),
        ("rpm_available", "rate_limit_requests_available"),
        ("tpm", "rate_limit_tokens_per_minute"),
        ("tpm_available", "rate_limit_tokens_available"),
        ("inflight", "rate_limit_inflight"),
        ("rate_limited", "rate_limit_429_total"),
    ):
        for labels, v in _each(samples, metric):
            key = (labels.get("provider", "?"), labels.get("model", "?"))
            entry = limits.setdefault(
                key,
                {
                    "provider": key[0],
                    "model": key[1],
                    "rpm": None,
                    "rpm_available": None,
                    "tpm": None,
                    "tpm_available": None,
                    "inflight": 0,
                    "rate_limited": 0,
                    "waits": None,
                },
            )
            entry[field] = v
    agents: dict[str, dict[str, Any]] = {}
    for field, metric in (
        ("busy", "agent_busy"),
        ("queued", "agent_queued"),
        ("replies", "agent_replies_total"),
        ("errors", "agent_errors_total"),
        ("turns", "agent_turns_total"),
        ("tool_calls", "agent_tool_calls_total"),
        ("restarts", "agent_restarts_total"),
    ):
        for labels, v in _each(samples, metric):
            name = labels.get("agent", "?")
            row = agents.setdefault(
                name,
                {
                    "name": name,
                    "busy": 0,
                    "queued": 0,
                    "replies": 0,
                    "errors": 0,
                    "turns": 0,
                    "tool_calls": 0,
                    "restarts": 0,
                },
            )
            row[field] = int(v)
    rows = sorted(agents.values(), key=lambda a: (-a["busy"], -a["queued"], a["name"]))
    return {
        "title": title,
        "elapsed": round(elapsed, 2),
        "calls": {
            "queued": _sum(samples, "calls_queued"),
            "in_flight": _sum(samples, "calls_in_flight"),
            "completed": _sum(samples, "calls_total", outcome="completed"),
            "failed": _sum(samples, "calls_total", outcome="failed"),
            "cancelled": _sum(samples, "calls_total", outcome="cancelled"),
            "output_tokens": _sum(samples, "tokens_total", kind="output"),
        },
        "tokens_per_second": round(tokens_per_second, 1),
        "inputs": {},
        "providers": [providers[n] for n in sorted(providers)],
        "rate_limits": [limits[k] for k in sorted(limits)],
        "supervisor": {"state": None, "restarts": _sum(samples, "supervisor_restarts_total")},
        "agent_count": max(_sum(samples, "agents"), len(rows)),
        "agents": rows,
        "watching": None,
        "tail": "",
    }


def metrics_source(http: httpx.AsyncClient, url: str, title: str) -> Source:
    """Snapshots scraped from ``url`` (a ``/metrics`` endpoint) as they are asked for;
    an unreachable endpoint gives the last good snapshot with ``error`` set."""
    started = time.monotonic()
    last: dict[str, Any] = {}
    rate = RecentRate()

    tail_url = urllib.parse.urljoin(url, "/swarm/tail")

    async def tail_of(agent: str) -> str:
        try:
            response = await http.get(tail_url, params={"agent": agent}, timeout=5.0)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"(cannot read {agent}'s text from {tail_url}: {exc or type(exc).__name__})"
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            return f"({error or f'{tail_url} answered {response.status_code}'})"
        return str(body.get("tail", ""))

    async def state(watching: str | None) -> dict[str, Any]:
        nonlocal last
        try:
            response = await http.get(url, timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return {**last, "error": f"cannot scrape {url}: {exc or type(exc).__name__}"}
        samples = parse_exposition(response.text)
        now = time.monotonic()
        tokens = _sum(samples, "tokens_total", kind="output")
        last = snapshot_from_metrics(
            samples,
            title=title,
            elapsed=now - started,
            tokens_per_second=rate.update(now, tokens),
        )
        if watching:
            last = {**last, "watching": watching, "tail": await tail_of(watching)}
        return last

    return state


async def run_attached(
    url: str,
    *,
    host: str,
    port: int,
    seconds: float | None,
    announce: Callable[[str], None],
    ws_port: int = 0,
) -> None:
    """Serve the dashboard of the engine behind ``url`` until cancelled (or for
    ``seconds``); ``announce(dashboard_url)`` is called once it listens."""
    import anyio

    from .server import Dashboard, serve_dashboard

    async with httpx.AsyncClient() as http:
        title = f"attached to {url}"
        board = Dashboard(metrics_source(http, url, title), None, title, host, remote=True)
        async with serve_dashboard(board, port, ws_port) as served:
            announce(served.url)
            if seconds is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(seconds)
