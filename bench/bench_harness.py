"""``swarm bench`` as a load generator, side by side with the asyncio + aiohttp loop
most serving benchmarks use (bench/harness_baseline.py), in one run.

The simulator runs in a child process pinned to core 0 (200 ms to the first
token, then ``--tps`` tokens a second per stream, 100-token answers); each client
runs in its own process pinned to core 1, one after the other, open loop at the
rate that keeps ``--streams`` streams in flight (Little's law: rate = streams /
expected latency). Both clients' records are summarized by the same code
(swarm.benchmark.metrics), so every figure has one definition:

* schedule lag (how late each request started against its Poisson arrival time):
  the issue's target is p99 under 10 ms at 1,000 streams for ``swarm bench``;
* client CPU seconds over the run, and streams really in flight at the peak;
* TTFT and ITL as each client saw them (the simulator's are 200 ms and 1/tps).

With ``--tune-gc`` the baseline gets the same collector tuning ``swarm bench``
applies, to show how much of the difference is that alone.

Run: ``pip install -e '.[bench]'`` then ``python bench/bench_harness.py`` (about
2 minutes on 2 cores; ``--quick``: about 40 s). Exit 1 if a request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm.benchmark import RequestRecord, summarize  # noqa: E402
from swarm.benchmark.target import process_cpu, simulator_process  # noqa: E402


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if os.cpu_count() and os.cpu_count() > 1 else []  # type: ignore[operator]


def run_swarm_bench(url: str, rate: float, requests: int, out: Path) -> dict[str, Any]:
    cmd = [
        *pinned(1),
        sys.executable,
        "-m",
        "swarm",
        "bench",
        "--target",
        url,
        "--model",
        "m",
        "--rate",
        f"{rate:g}",
        "--requests",
        str(requests),
        "--output-tokens",
        "100",
        "--input-tokens",
        "64",
        "--quiet",
        "--json",
        str(out),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    return {
        "records": data["records"],
        "cpu_seconds": data["points"][0]["client"]["cpu_seconds"],
        "max_in_flight": data["points"][0]["client"]["max_in_flight"],
    }


def run_baseline(url: str, rate: float, requests: int, out: Path, tune_gc: bool) -> dict[str, Any]:
    cmd = [
        *pinned(1),
        sys.executable,
        str(ROOT / "bench" / "harness_baseline.py"),
        "--url",
        url,
        "--rate",
        f"{rate:g}",
        "--requests",
        str(requests),
        "--json",
        str(out),
    ] + (["--tune-gc"] if tune_gc else [])
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tps", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="arrivals per client run")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 8.0 if args.quick else args.seconds
    latency = 0.2 + 99 / args.tps
    rate = args.streams / latency
    requests = int(rate * seconds)
    profile = {"ttft": 0.2, "tokens_per_second": args.tps, "output_tokens": 100}
    print(
        f"# {args.streams} streams in flight: rate {rate:.0f}/s x {seconds:g} s = {requests} "
        f"requests per client; simulator: TTFT 200 ms, {args.tps:g} tok/s, 100 tokens"
    )
    print(f"# load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    failed = 0
    with (
        tempfile.TemporaryDirectory() as tmp,
        simulator_process({"default_profile": profile}) as (root, pid),
    ):
        if pinned(0):
            subprocess.run(["taskset", "-pc", "0", str(pid)], check=True, stdout=subprocess.DEVNULL)
        url = root + "/v1"
        clients = [
            ("swarm bench", lambda out: run_swarm_bench(url, rate, requests, out)),
            ("asyncio + aiohttp", lambda out: run_baseline(url, rate, requests, out, False)),
            (
                "asyncio + aiohttp, gc tuned",
                lambda out: run_baseline(url, rate, requests, out, True),
            ),
        ]
        for name, run in clients:
            sim_cpu = process_cpu(pid)
            result = run(Path(tmp) / "out.json")
            sim_used = (process_cpu(pid) or 0) - (sim_cpu or 0)
            records = msgspec.convert(result["records"], list[RequestRecord])
            s = summarize(
                records,
                label=name,
                mode="rate",
                value=rate,
                slos=[],
                cpu_seconds=result["cpu_seconds"],
                max_in_flight=result["max_in_flight"],
            )
            failed += s.failed
            rows.append((name, s, sim_used))
    header = (
        "client",
        "ok",
        "failed",
        "lag p50 ms",
        "lag p99 ms",
        "lag max ms",
        "client CPU s",
        "peak streams",
        "TTFT p50/p99 ms",
        "ITL p99 ms",
        "sim CPU s",
    )
    table = [header]
    for name, s, sim_used in rows:
        lag = s.client.schedule_lag
        table.append(
            (
                name,
                str(s.completed),
                str(s.failed),
                ms(lag.p50),
                ms(lag.p99),
                ms(lag.max),
                f"{s.client.cpu_seconds:.2f}",
                str(s.client.max_in_flight),
                f"{ms(s.ttft.p50)} / {ms(s.ttft.p99)}",
                ms(s.itl.p99),
                f"{sim_used:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    if failed:
        print(f"! {failed} requests failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
