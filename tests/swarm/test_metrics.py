"""Prometheus metrics: served over real HTTP on loopback while an engine runs
calls against the simulator (with faults and a rate limit), parsed with the
reference parser (prometheus_client), on trio and asyncio."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers import Message, Request
from providers.sim import Fault, ModelProfile, RateLimit, SimConfig
from swarm import EngineConfig, RetryPolicy, open_engine
from swarm.engine import SIM_KEY, EngineStatistics
from swarm.ledger import CallRecord, LedgerStatistics
from swarm.observability import EngineMetrics, open_metrics_server
from swarm.observability.prometheus import escape
from swarm.run import demo_spec, run_spec

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return found[(name, tuple(sorted(labels.items())))]  # type: ignore[no-any-return]


async def test_metrics_count_calls_tokens_errors_and_show_live_state() -> None:
    sim = SimConfig(
        models={
            "good": ModelProfile(output_tokens=5),
            "bad": ModelProfile(output_tokens=5),
            "cut": ModelProfile(output_tokens=5),
        },
        faults=[
            Fault(kind="status", status=400, models=["bad"]),
            Fault(kind="disconnect", after=4, models=["cut"]),
        ],
        rate_limit=RateLimit(rpm=6000),
    )
    config = EngineConfig(retry=RetryPolicy(max_attempts=1))
    async with open_engine(config, env={}, simulator=sim) as engine:
        async with open_metrics_server(engine) as server, httpx.AsyncClient() as http:
            assert server.url.startswith("http://127.0.0.1:")
            for model in ["good"] * 4 + ["bad"] * 2 + ["cut"]:
                request = Request(
                    model=model, messages=[Message.user("PROMPT-MARKER-7731")], max_tokens=10
                )
                fails = model != "good"
                with pytest.raises(Exception) if fails else contextlib.nullcontext():
                    await engine.complete(request)
            response = await http.get(server.url)
            cut = engine.ledger.records()[-1].discarded_usage
            missing = await http.get(server.url.replace("/metrics", "/nope"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert missing.status_code == 404
    text = response.text
    found = samples(text)  # the reference parser accepts every line
    calls = "swarm_calls_total"
    assert value(found, calls, provider="sim", model="good", outcome="completed") == 4
    assert value(found, calls, provider="sim", model="bad", outcome="failed") == 2
    errors = {k: v for k, v in found.items() if k[0] == "swarm_call_errors_total"}
    assert (
        value(
            errors, "swarm_call_errors_total", provider="sim", model="bad", error="BadRequestError"
        )
        == 2
    )
    assert (
        value(errors, "swarm_call_errors_total", provider="sim", model="cut", error="ReadError")
        == 1
    )
    assert len(errors) == 2
    assert value(found, "swarm_tokens_total", provider="sim", model="good", kind="output") == 20
    # The cut stream's tokens are billed and counted apart from answers'.
    assert cut.output_tokens > 0
    discarded = "swarm_discarded_tokens_total"
    assert value(found, discarded, provider="sim", model="cut", kind="output") == cut.output_tokens
    assert value(found, discarded, provider="sim", model="cut", kind="input") == cut.input_tokens
    assert not any(k[0] == discarded and ("model", "good") in k[1] for k in found)
    assert (
        value(found, "swarm_time_to_first_token_seconds_count", provider="sim", model="good") == 4
    )
    assert (
        value(found, "swarm_call_duration_seconds_bucket", provider="sim", model="good", le="+Inf")
        == 4
    )
    assert value(found, "swarm_breaker_state", provider="sim", model="good", state="closed") == 1
    assert value(found, "swarm_breaker_state", provider="sim", model="good", state="open") == 0
    assert (
        value(found, "swarm_rate_limit_requests_per_minute", provider="sim", model="good") == 6000
    )
    assert value(found, "swarm_calls_in_flight") == 0
    assert SIM_KEY not in text  # no key, and no prompt, anywhere
    assert "PROMPT-MARKER-7731" not in text


async def test_an_idle_client_does_not_hold_up_the_endpoint() -> None:
    async with open_engine(env={}) as engine, open_metrics_server(engine) as server:
        idle = await anyio.connect_tcp("127.0.0.1", server.port)  # sends nothing
        async with idle, httpx.AsyncClient() as http:
            with anyio.fail_after(5):
                response = await http.get(server.url)
        assert response.status_code == 200


def test_label_values_are_escaped_and_buckets_checked() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    metrics = EngineMetrics(buckets=[0.1, 1.0])
    route = 'we"ird\\route\nx'
    metrics.observe(CallRecord(id="1", route=route, outcome="completed", ttft=0.5, duration=2.0))
    stats = EngineStatistics(
        queued=0,
        providers={},
        ledger=LedgerStatistics(
            accepted=1,
            in_flight=0,
            completed=1,
            failed=0,
            cancelled=0,
            attempts=1,
            input_tokens=0,
            output_tokens=0,
            cache_read_tokens=0,
            cost_usd=0.0,
        ),
    )
    found = samples(metrics.render(stats, {}))  # the reference parser reads it back
    labels = {"provider": "none", "model": route}
    assert value(found, "swarm_calls_total", outcome="completed", **labels) == 1
    assert value(found, "swarm_time_to_first_token_seconds_bucket", le="0.1", **labels) == 0
    assert value(found, "swarm_time_to_first_token_seconds_bucket", le="1", **labels) == 1
    assert value(found, "swarm_call_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert value(found, "swarm_call_duration_seconds_sum", **labels) == 2.0
    with pytest.raises(ValueError, match="buckets"):
        EngineMetrics(buckets=[0])


async def test_swarm_run_serves_metrics_during_the_run(tmp_path: Path) -> None:
    out = io.StringIO()
    scraped: list[str] = []

    async def scrape() -> None:
        while "metrics at " not in out.getvalue():  # noqa: ASYNC110 - a StringIO has no event
            await anyio.sleep(0.01)
        url = out.getvalue().split("metrics at ", 1)[1].split()[0]
        async with httpx.AsyncClient() as http:
            while True:
                text = (await http.get(url)).text
                if "swarm_calls_total{" in text:
                    scraped.append(text)
                    return
                await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(scrape)
        report = await run_spec(
            demo_spec(3, 3), base=tmp_path, progress_out=out, metrics=("127.0.0.1", 0)
        )
    assert report.answered == 3
    assert scraped
    found = samples(scraped[0])
    # The run's swarm is attached to the endpoint: its agents are series too.
    assert value(found, "swarm_agents") >= 1
    assert any(name == "swarm_agent_replies_total" for name, _ in found)
