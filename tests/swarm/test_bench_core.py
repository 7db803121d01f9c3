"""The sans-IO parts of ``swarm bench``: load shapes, percentiles, metric
definitions, goodput, and the prompt sources."""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.benchmark import SLO, RequestRecord, arrivals, distribution, summarize, worker_starts
from swarm.benchmark.data import BenchDataError, LengthDist, load_jsonl, load_sharegpt, synthetic


def take(it: object, n: int) -> list[float]:
    out = []
    for value in it:  # type: ignore[attr-defined]
        out.append(value)
        if len(out) == n:
            return out
    return out


@given(
    rate=st.floats(0.5, 500),
    arrival=st.sampled_from(["poisson", "gamma", "constant"]),
    burstiness=st.floats(0.2, 5),
    ramp=st.floats(0, 10),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_arrival_times_increase(
    rate: float, arrival: str, burstiness: float, ramp: float, seed: int
) -> None:
    times = take(
        arrivals(
            rate,
            arrival=arrival,
            burstiness=burstiness,
            ramp_up=ramp,  # type: ignore[arg-type]
            seed=seed,
        ),
        200,
    )
    assert all(b >= a for a, b in itertools.pairwise(times))
    assert times[0] >= 0


def test_constant_arrivals_are_evenly_spaced_at_the_rate() -> None:
    times = take(arrivals(4.0, arrival="constant"), 8)
    assert times == pytest.approx([0.25 * k for k in range(1, 9)])


@pytest.mark.parametrize(
    ("arrival", "burstiness"), [("poisson", 1.0), ("gamma", 0.3), ("gamma", 4.0)]
)
def test_the_mean_rate_is_the_rate_whatever_the_burstiness(arrival: str, burstiness: float) -> None:
    times = take(arrivals(50.0, arrival=arrival, burstiness=burstiness, seed=3), 20_000)  # type: ignore[arg-type]
    assert 20_000 / times[-1] == pytest.approx(50.0, rel=0.05)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    # A gamma process's gaps have a coefficient of variation of 1/sqrt(shape).
    assert cv == pytest.approx(1 / math.sqrt(burstiness), rel=0.1)


def test_a_ramp_up_delivers_half_the_arrivals_of_full_rate_during_the_ramp() -> None:
    times = take(arrivals(100.0, arrival="constant", ramp_up=10.0), 3000)
    during = sum(1 for t in times if t < 10.0)
    assert during == pytest.approx(100 * 10 / 2, abs=2)
    after = [t for t in times if t >= 10.0]
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert gaps and all(g == pytest.approx(0.01) for g in gaps)


def test_bad_load_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate must be"):
        next(arrivals(0))
    with pytest.raises(ValueError, match="burstiness"):
        next(arrivals(1, burstiness=0))
    with pytest.raises(ValueError, match="concurrency"):
        worker_starts(0, 0)
    assert worker_starts(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    assert worker_starts(3, 0) == [0.0, 0.0, 0.0]


@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=300))
@settings(max_examples=100, deadline=None)
def test_percentiles_interpolate_linearly_like_numpy(values: list[float]) -> None:
    d = distribution(values)
    assert d.count == len(values) and d.max == max(values)
    if len(values) >= 2:
        cuts = statistics.quantiles(values, n=1000, method="inclusive")
        for got, k in ((d.p50, 500), (d.p90, 900), (d.p99, 990), (d.p99_9, 999)):
            assert got == pytest.approx(cuts[k - 1], rel=1e-9, abs=1e-9)
    else:
        assert d.p50 == d.p99_9 == values[0]
    assert d.mean == pytest.approx(statistics.fmean(values))


def rec(
    i: int,
    start: float,
    first: float | None,
    end: float,
    tokens: int = 10,
    ok: bool = True,
    error: str | None = None,
    itl: list[float] | None = None,
    intended: float | None = None,
    source: str = "usage",
) -> RequestRecord:
    return RequestRecord(
        index=i,
        point="p",
        intended=intended,
        start=start,
        sent=start + 0.001,
        first_token=first,
        end=end,
        ok=ok,
        error=error,
        input_tokens=5 if ok else None,
        output_tokens=tokens,
        token_source=source,
        chunks=tokens,
        itl=itl or [],  # type: ignore[arg-type]
    )


def test_the_metrics_follow_their_definitions() -> None:
    records = [
        rec(0, 0.0, 0.2, 1.1, itl=[0.1] * 9, intended=0.0),
        rec(1, 0.5, 0.9, 1.8, itl=[0.1] * 9, intended=0.49),
        rec(2, 1.0, None, 1.2, tokens=0, ok=False, error="ServerError", intended=1.0),
    ]
    slos = [SLO(metric="ttft", seconds=0.3)]
    s = summarize(
        records, label="p", mode="rate", value=2, slos=slos, cpu_seconds=0.18, max_in_flight=2
    )
    assert (s.requests, s.completed, s.failed) == (3, 2, 1)
    assert s.duration == pytest.approx(1.8)
    assert s.request_throughput == pytest.approx(2 / 1.8)
    assert s.output_throughput == pytest.approx(20 / 1.8)
    assert s.total_token_throughput == pytest.approx(30 / 1.8)
    assert s.ttft.p50 == pytest.approx(0.3)  # (0.2 + 0.4) / 2
    assert s.tpot.p50 == pytest.approx(0.1)  # (1.1 - 0.2) / 9 and (1.8 - 0.9) / 9
    assert s.itl.count == 18
    assert s.e2e.max == pytest.approx(1.3)
    # Goodput: only the first request met TTFT <= 300 ms.
    assert s.goodput == pytest.approx(1 / 1.8) and s.goodput_share == pytest.approx(1 / 3)
    assert s.errors == {"ServerError": 1}
    assert s.token_source == "usage"
    assert s.client.schedule_lag.max == pytest.approx(0.01)
    assert s.client.cpu_percent == pytest.approx(10.0)
    mixed = summarize(
        [records[0], rec(3, 0, 0.1, 0.5, source="chunks")],
        label="p",
        mode="concurrency",
        value=1,
        slos=[],
        cpu_seconds=0,
        max_in_flight=1,
    )
    assert mixed.token_source == "mixed" and mixed.goodput is None


def test_slos_on_each_metric() -> None:
    r = rec(0, 0.0, 0.2, 1.1, itl=[0.05, 0.3])
    assert SLO(metric="ttft", seconds=0.2).met(r) and not SLO(metric="ttft", seconds=0.1).met(r)
    assert SLO(metric="e2e", seconds=1.1).met(r) and not SLO(metric="e2e", seconds=1.0).met(r)
    assert SLO(metric="tpot", seconds=0.11).met(r) and not SLO(metric="tpot", seconds=0.09).met(r)
    assert SLO(metric="itl", seconds=0.3).met(r) and not SLO(metric="itl", seconds=0.2).met(r)


def test_length_distributions() -> None:
    rng = random.Random(1)
    assert LengthDist.parse("64", "x").draw(rng) == 64
    uniform = LengthDist.parse("10-20", "x")
    assert {uniform.draw(rng) for _ in range(500)} == set(range(10, 21))
    normal = [LengthDist.parse("100:10", "x").draw(rng) for _ in range(2000)]
    assert statistics.fmean(normal) == pytest.approx(100, rel=0.02)
    assert min(LengthDist.parse("2:50", "x").draw(rng) for _ in range(200)) >= 1
    for bad in ("abc", "0", "20-10", "1.5"):
        with pytest.raises(BenchDataError, match="--in"):
            LengthDist.parse(bad, "--in")


def test_synthetic_prompts_have_their_drawn_lengths_and_distinct_prefixes() -> None:
    prompts = list(synthetic(50, LengthDist.parse("30-60", "i"), LengthDist.parse("8", "o"), 7))
    assert all(len(p.text.split()) == p.input_words and 30 <= p.input_words <= 60 for p in prompts)
    assert {p.text.split()[0] for p in prompts} == {str(i) for i in range(50)}
    assert all(p.output_tokens == 8 for p in prompts)
    again = list(synthetic(50, LengthDist.parse("30-60", "i"), LengthDist.parse("8", "o"), 7))
    assert again == prompts  # seeded


def test_jsonl_and_sharegpt_datasets(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('"plain prompt"\n\n{"prompt": "with budget", "output_tokens": 7}\n')
    prompts = load_jsonl(jsonl, LengthDist.parse("3", "o"), 0)
    assert [(p.text, p.output_tokens) for p in prompts] == [("plain prompt", 3), ("with budget", 7)]
    sharegpt = tmp_path / "s.json"
    sharegpt.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "hi there"},
                        {"from": "gpt", "value": "one two three four"},
                    ]
                },
                {"conversations": [{"from": "system", "value": "x"}]},  # no human turn: skipped
                {
                    "conversations": [
                        {"from": "user", "value": "q"},
                        {"from": "assistant", "value": "a"},
                    ]
                },
            ]
        )
    )
    shared = load_sharegpt(sharegpt, None, 0)
    assert [(p.text, p.output_tokens) for p in shared] == [("hi there", 4), ("q", 1)]
    assert [p.output_tokens for p in load_sharegpt(sharegpt, LengthDist.parse("9", "o"), 0)] == [
        9,
        9,
    ]
    (tmp_path / "bad.jsonl").write_text('{"prompt": 3}\n')
    with pytest.raises(BenchDataError, match=r"bad\.jsonl:1"):
        load_jsonl(tmp_path / "bad.jsonl", LengthDist.parse("3", "o"), 0)
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(BenchDataError, match="no usable conversation"):
        load_sharegpt(tmp_path / "empty.json", None, 0)
    with pytest.raises(BenchDataError, match="cannot read"):
        load_jsonl(tmp_path / "none.jsonl", LengthDist.parse("3", "o"), 0)
