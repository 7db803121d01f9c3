"""The simulator benchmark runs and prints well-formed figures (no timing asserted)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_sim

THROUGHPUT = re.compile(
    r"^throughput \[openai, 2 conns, unpaced\]: (?P<rate>[\d,]+) tokens/s "
    r"\((?P<tokens>[\d,]+) tokens in [\d.]+ s, (?P<streams>\d+) streams\) "
    r"target >= 200,000: (PASS|FAIL)$"
)
SLOW = re.compile(
    r"^slow streams \[anthropic, 20 streams, 1 token / 20 ms\]: "
    r"lag p50 (?P<p50>[\d.]+) ms, p99 (?P<p99>[\d.]+) ms, max (?P<max>[\d.]+) ms over "
    r"(?P<writes>[\d,]+) writes; completed (?P<done>\d+)/20, failed (?P<failed>\d+); "
    r".*target p99 <= 50 ms: (PASS|FAIL)$"
)


@pytest.fixture(autouse=True)
def _no_pinning(monkeypatch: pytest.MonkeyPatch) -> None:
    # The benchmark pins itself to core 1; the test process must stay where it is.
    monkeypatch.setattr(bench_sim, "_pin", lambda core: None)


def test_throughput_prints_the_tokens_the_simulator_served(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_sim.main(["throughput", "--seconds", "0.5", "--conns", "2", "--tokens", "50"])
    (line,) = capsys.readouterr().out.splitlines()
    m = THROUGHPUT.match(line)
    assert m, line
    assert int(m["tokens"].replace(",", "")) > 0 and int(m["streams"]) > 0


def test_slow_streams_all_complete_and_the_lag_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_sim.main(
        [
            "slow",
            "--family",
            "anthropic",
            "--streams",
            "20",
            "--tokens",
            "5",
            "--ramp",
            "0.2",
            "--interval",
            "0.02",
        ]
    )
    (line,) = capsys.readouterr().out.splitlines()
    m = SLOW.match(line)
    assert m, line
    assert (m["done"], m["failed"]) == ("20", "0")
    # Every paced write is in the lag record (5 tokens and the events around them).
    assert int(m["writes"].replace(",", "")) >= 20 * 5
    assert float(m["p50"]) <= float(m["p99"]) <= float(m["max"])
