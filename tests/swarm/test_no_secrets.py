"""Keys never appear in any output: a swarm run against a real loopback server
that requires a key (and echoes a wrong one in its 401, as OpenAI does), with
retries, failures and a breaker opening, writes its report, its JSON log, its
metrics and its terminal output; the keys are grepped for in all of them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from swarm.benchmark.target import simulator_process
from swarm.config import load_config
from swarm.logs import LOGGER, log_to
from swarm.run import load_spec, run_spec
from swarm.run.display import render_report

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


GOOD = "sk-good-7f3a9c1e5b2d4f6a8c0e"
# Not shaped like a key, so the log formatter's masking cannot be what hides it.
WRONG = "wrongkey_plain_q8w7e6r5t4y3"


@pytest.fixture
def keyed_sim() -> Iterator[int]:
    """A simulator that takes only GOOD and fails model 'flaky' with 503s."""
    with simulator_process(
        {
            "api_keys": [GOOD],
            "faults": [{"kind": "status", "status": 503, "rate": 1.0, "models": ["flaky"]}],
        }
    ) as (root, _):
        yield int(root.rsplit(":", 1)[1])


async def test_no_key_in_the_report_the_log_the_metrics_or_the_terminal(
    tmp_path: Path, keyed_sim: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOD_KEY", GOOD)
    monkeypatch.setenv("WRONG_KEY", WRONG)
    base = f"http://127.0.0.1:{keyed_sim}/v1"
    (tmp_path / "engine.toml").write_text(f"""
default_provider = "good"
[retry]
max_attempts = 2
base_delay = 0.01
[breaker]
minimum_calls = 2
failure_rate_threshold = 50.0
[providers.good]
family = "openai"
base_url = "{base}"
api_key_env = "GOOD_KEY"
[providers.wrong]
family = "anthropic"
base_url = "{base}"
api_key_env = "WRONG_KEY"
""")
    (tmp_path / "swarm.toml").write_text("""
concurrency = 2
[inputs]
items = ["one", "two", "three"]
[pattern]
kind = "consensus"
agents = ["ok", "flaky", "locked"]
quorum = 1
[[agents]]
name = "ok"
model = "good/m"
[[agents]]
name = "flaky"
model = "good/flaky"
[[agents]]
name = "locked"
model = "wrong/claude-haiku-4-5"
""")
    spec = load_spec(tmp_path / "swarm.toml")
    config = load_config(tmp_path / "engine.toml")
    terminal = io.StringIO()
    scraped: list[str] = []
    log_path = tmp_path / "events.jsonl"
    handler = log_to(str(log_path), logging.DEBUG)

    async def scrape() -> None:
        while "metrics at " not in terminal.getvalue():  # noqa: ASYNC110 - a StringIO
            await anyio.sleep(0.01)
        url = terminal.getvalue().split("metrics at ", 1)[1].split()[0]
        async with httpx.AsyncClient() as http:
            # Until the failures show (the run itself may end first: the endpoint
            # lives as long as the engine, so the last scrapes come after it).
            with anyio.move_on_after(10):
                while not scraped or 'outcome="failed"' not in scraped[-1]:
                    try:
                        scraped.append((await http.get(url)).text)
                    except httpx.ConnectError:
                        return  # the run ended and took the endpoint with it
                    await anyio.sleep(0.02)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(scrape)
            report = await run_spec(
                spec, base=tmp_path, config=config, progress_out=terminal, metrics=("127.0.0.1", 0)
            )
    finally:
        LOGGER.removeHandler(handler)
        handler.close()
    report_json = msgspec.json.encode(report).decode()
    log = log_path.read_text()
    summary = render_report(report)
    # The run really went through the failure paths the keys could leak from: every
    # input got its answer from "ok" while "flaky" retried into an open breaker and
    # "locked" was refused for its key (the server echoes a wrong key in its 401).
    assert report.answered == 3
    assert all(o.detail["failed_voters"] == ["flaky", "locked"] for o in report.outcomes)
    assert '"event":"attempt.retry"' in log and '"event":"call.failed"' in log
    assert '"event":"breaker.transition"' in log
    assert "AuthenticationError" in report_json or "AuthenticationError" in log
    assert scraped and any('outcome="failed"' in text for text in scraped)
    everything = "\n".join([report_json, log, summary, terminal.getvalue(), *scraped])
    assert GOOD not in everything
    assert WRONG not in everything
