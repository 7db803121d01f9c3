"""``swarm bench``: measure an LLM endpoint (or the simulator) under concurrency.

Exit codes: 0 every request completed; 1 some failed (the report still says
which and why); 2 bad flags; 3 a dataset that cannot be used.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import anyio
import msgspec

from providers.sim import tune_gc

from ..cli_errors import UsageError, check_writable
from .data import BenchDataError, LengthDist, Prompt, load_jsonl, load_sharegpt, synthetic
from .load import LoadPoint
from .metrics import SLO, PointSummary, RequestRecord
from .report import SCHEMA_VERSION, BenchReport, format_table, write_csv, write_html
from .runner import BenchClient, Limits, run_point, warm_up
from .target import Target, TargetError, base_url_for, check_family, process_cpu, simulator_process

__all__ = ["add_arguments", "bench_command"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3
SIM_MODEL = "sim-model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("target")
    t.add_argument(
        "--target",
        default="sim",
        metavar="sim|URL",
        help="the simulator, started in a child process for the run (default), "
        "or a base URL (http://host:8000/v1 for an OpenAI-compatible server)",
    )
    t.add_argument(
        "--preset",
        default=None,
        help="a vendor preset (openai, anthropic, gemini, groq...) in place of a URL",
    )
    t.add_argument(
        "--family",
        default=None,
        help="wire family: openai (default), openai-responses, anthropic, gemini",
    )
    t.add_argument("--model", default=None, help=f"the model (default {SIM_MODEL} on sim)")
    t.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="the environment variable holding the key (presets: theirs)",
    )
    t.add_argument(
        "--sim-ttft",
        type=float,
        default=0.2,
        help="the simulator's time to first token, seconds (default 0.2)",
    )
    t.add_argument(
        "--sim-tps",
        type=float,
        default=100.0,
        help="the simulator's tokens per second per stream (default 100; 0 unpaced)",
    )
    load = p.add_argument_group("load")
    load.add_argument(
        "--concurrency",
        default=None,
        metavar="N[,N...]",
        help="closed loop: requests in flight (several: a sweep); default 16",
    )
    load.add_argument(
        "--rate",
        default=None,
        metavar="R[,R...]",
        help="open loop: requests per second (several: a sweep)",
    )
    load.add_argument(
        "--arrival",
        choices=["poisson", "gamma", "constant"],
        default=None,
        help="open-loop arrivals (default poisson; gamma with --burstiness)",
    )
    load.add_argument(
        "--burstiness",
        type=float,
        default=1.0,
        help="gamma shape: below 1 burstier, above 1 steadier (default 1)",
    )
    load.add_argument(
        "--ramp-up",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="raise the rate (or start the workers) over this long",
    )
    load.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per load point (default 200 unless --duration)",
    )
    load.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds per load point (no new request after it)",
    )
    load.add_argument(
        "--warmup", type=int, default=0, help="requests sent first and not measured (default 0)"
    )
    load.add_argument(
        "--timeout", type=float, default=600.0, help="one request's limit in seconds (default 600)"
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--input-tokens",
        default="128",
        metavar="N|MEAN:STD|LOW-HIGH",
        help="synthetic prompt length (default 128)",
    )
    d.add_argument(
        "--output-tokens",
        default=None,
        metavar="N|MEAN:STD|LOW-HIGH",
        help="max_tokens of each request (default 128; ShareGPT: each recorded reply's length)",
    )
    d.add_argument(
        "--dataset",
        default=None,
        metavar="FILE",
        help="prompts from a JSONL file or a ShareGPT JSON file",
    )
    d.add_argument(
        "--dataset-format",
        choices=["jsonl", "sharegpt"],
        default=None,
        help="default: by extension (.jsonl: jsonl, .json: sharegpt)",
    )
    d.add_argument("--seed", type=int, default=0, help="seeds prompts and arrivals")
    o = p.add_argument_group("output")
    o.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="METRIC=TIME",
        help="an objective for goodput: ttft, tpot, itl or e2e, e.g. ttft=500ms "
        "(repeatable; a bare number is milliseconds)",
    )
    o.add_argument("--json", default=None, metavar="FILE", help="the report (docs/bench.md)")
    o.add_argument("--csv", default=None, metavar="FILE", help="one row per request")
    o.add_argument("--html", default=None, metavar="FILE", help="plots, one self-contained page")
    o.add_argument("--quiet", action="store_true", help="no live progress")


def _numbers(text: str, flag: str, integer: bool) -> list[float]:
    out = []
    for part in text.split(","):
        try:
            value = int(part) if integer else float(part)
        except ValueError:
            raise UsageError(f"{flag} takes numbers separated by commas, got {text!r}") from None
        if value <= 0:
            raise UsageError(f"{flag} values must be positive, got {part}")
        out.append(float(value))
    return out


def parse_slo(text: str) -> SLO:
    m = re.fullmatch(r"(ttft|tpot|itl|e2e)=(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not m:
        raise UsageError(
            f"--slo {text!r}: write METRIC=TIME with METRIC ttft, tpot, itl or e2e and TIME "
            "like 500ms or 2s (a bare number is milliseconds)"
        )
    seconds = float(m[2]) / (1 if m[3] == "s" else 1000)
    return SLO(metric=m[1], seconds=seconds)  # type: ignore[arg-type]


def _points(args: argparse.Namespace) -> list[LoadPoint]:
    if args.concurrency is not None and args.rate is not None:
        raise UsageError("give --concurrency (closed loop) or --rate (open loop), not both")
    if args.rate is not None:
        return [LoadPoint(mode="rate", value=v) for v in _numbers(args.rate, "--rate", False)]
    values = _numbers(args.concurrency or "16", "--concurrency", True)
    return [LoadPoint(mode="concurrency", value=v) for v in values]


def _check(args: argparse.Namespace) -> None:
    if args.requests is not None and args.requests < 1:
        raise UsageError(f"--requests must be at least 1, got {args.requests}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")
    if args.timeout <= 0 or args.ramp_up < 0 or args.burstiness <= 0:
        raise UsageError("--timeout and --burstiness must be positive, --ramp-up >= 0")
    if args.burstiness != 1.0 and args.arrival not in (None, "gamma"):
        raise UsageError("--burstiness shapes gamma arrivals; use --arrival gamma")
    if (args.arrival is not None or args.burstiness != 1.0) and args.rate is None:
        raise UsageError("--arrival and --burstiness shape an open loop; give --rate")
    if args.sim_ttft < 0 or args.sim_tps < 0:
        raise UsageError("--sim-ttft and --sim-tps must be >= 0")
    if args.target != "sim" and args.preset is not None:
        raise UsageError("give --target URL or --preset NAME, not both")
    # What would fail only after the run: checked before it starts.
    for flag in ("json", "csv", "html"):
        path = getattr(args, flag)
        if path:
            check_writable(path, f"--{flag}")


def _prompts(args: argparse.Namespace) -> Iterator[Prompt]:
    try:
        given = args.output_tokens
        output = LengthDist.parse(given or "128", "--output-tokens")
        if args.dataset is None:
            return synthetic(
                None, LengthDist.parse(args.input_tokens, "--input-tokens"), output, args.seed
            )
    except BenchDataError as exc:
        raise UsageError(str(exc)) from None
    fmt = args.dataset_format or ("jsonl" if args.dataset.endswith(".jsonl") else "sharegpt")
    if fmt == "jsonl":
        prompts = load_jsonl(args.dataset, output, args.seed)
    else:
        prompts = load_sharegpt(args.dataset, output if given else None, args.seed)
    return itertools.cycle(prompts)


def _target(args: argparse.Namespace, sim_root: str | None) -> Target:
    if sim_root is not None:
        family = check_family(args.family or "openai")
        return Target(
            kind="simulator",
            base_url=base_url_for(sim_root, family),
            family=family,
            model=args.model or SIM_MODEL,
        )
    if args.model is None:
        raise UsageError("--model is required for a real endpoint (the model to benchmark)")
    if args.preset is not None:
        from providers.presets import get_preset

        try:
            preset = get_preset(args.preset)
        except (KeyError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        key_env = args.api_key_env or preset.key_env
        if args.api_key_env is None and key_env and not os.environ.get(key_env):
            # Target.endpoint would blame --api-key-env, a flag this user never gave.
            raise TargetError(
                f"preset {args.preset!r} reads its key from {key_env}, which is not set; "
                f"export {key_env}, or name another variable with --api-key-env VAR"
            )
        return Target(
            kind=f"preset:{args.preset}",
            base_url=preset.base_url,
            family=args.family or preset.family,
            model=args.model,
            api_key_env=key_env,
        )
    if not args.target.startswith(("http://", "https://")):
        raise UsageError(f"--target {args.target!r} must be sim or an http(s):// base URL")
    return Target(
        kind="url",
        base_url=args.target.rstrip("/"),
        family=check_family(args.family or "openai"),
        model=args.model,
        api_key_env=args.api_key_env,
    )


class _Progress:
    def __init__(self, out: IO[str] | None) -> None:
        self.out = out
        self.done = 0
        self.failed = 0

    def record(self, r: RequestRecord) -> None:
        self.done += 1
        self.failed += not r.ok

    async def show(self, label: str, total: int | None, started: float) -> None:
        if self.out is None:
            return
        live = self.out.isatty()
        while True:
            await anyio.sleep(0.5 if live else 5.0)
            of = f"/{total}" if total else ""
            line = (
                f"{label}: {self.done}{of} done, {self.failed} failed, "
                f"{anyio.current_time() - started:.1f} s"
            )
            self.out.write(f"\r{line}   " if live else line + "\n")
            self.out.flush()


async def _run(
    args: argparse.Namespace,
    target: Target,
    prompts: Iterator[Prompt],
    slos: list[SLO],
    points: list[LoadPoint],
    progress_out: IO[str] | None,
) -> tuple[int, list[PointSummary], list[RequestRecord]]:
    endpoint = target.endpoint(os.environ)
    limits = Limits(
        requests=args.requests if args.requests or args.duration else 200,
        duration=args.duration,
        timeout=args.timeout,
    )
    peak = max(int(p.value) if p.mode == "concurrency" else 1024 for p in points)
    client = BenchClient(endpoint, target.family, target.model, connections=peak + 16)
    summaries: list[PointSummary] = []
    records: list[RequestRecord] = []
    try:
        warm = await warm_up(client, prompts, args.warmup, args.timeout) if args.warmup else 0
        for point in points:
            progress = _Progress(progress_out)
            async with anyio.create_task_group() as tg:
                tg.start_soon(progress.show, point.label, limits.requests, anyio.current_time())
                summary, recs = await run_point(
                    client,
                    point,
                    prompts,
                    limits,
                    slos=slos,
                    arrival=args.arrival or ("gamma" if args.burstiness != 1.0 else "poisson"),
                    burstiness=args.burstiness,
                    ramp_up=args.ramp_up,
                    seed=args.seed,
                    on_record=progress.record,
                )
                tg.cancel_scope.cancel()
            if progress_out is not None and progress_out.isatty():
                progress_out.write("\n")
            summaries.append(summary)
            records.extend(recs)
    finally:
        await client.aclose()
    return warm, summaries, records


def bench_command(args: argparse.Namespace) -> int:
    """Run ``swarm bench``; raises UsageError (exit 2) and BenchDataError (exit 3)."""
    _check(args)
    # Thousands of live streams make CPython's full collections slow and frequent
    # enough to show as schedule lag (measured: p99 17 ms at 1,000 streams before,
    # see bench/bench_harness.py). A latency harness wants short pauses more than
    # rare ones: the simulator's policy (see providers.sim.tune_gc), in place of
    # the throughput one swarm's CLI wraps its commands in.
    tune_gc()
    points = _points(args)
    slos = [parse_slo(s) for s in args.slo]
    prompts = _prompts(args)
    progress_out = None if args.quiet else sys.stderr
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: v for k, v in vars(args).items() if k not in ("handler", "command")}
    sim_cpu: float | None = None
    if args.target == "sim" and args.preset is None:
        profile = {
            "ttft": args.sim_ttft,
            "tokens_per_second": args.sim_tps,
            "output_tokens": 1_000_000,
            "default_max_tokens": 1_000_000,
        }
        with simulator_process({"seed": args.seed, "default_profile": profile}) as (root, pid):
            target = _target(args, root)
            warm, summaries, records = anyio.run(
                lambda: _run(args, target, prompts, slos, points, progress_out), backend="trio"
            )
            sim_cpu = process_cpu(pid)
    else:
        target = _target(args, None)
        warm, summaries, records = anyio.run(
            lambda: _run(args, target, prompts, slos, points, progress_out), backend="trio"
        )
    report = BenchReport(
        schema_version=SCHEMA_VERSION,
        started_at=started_at,
        target=target,
        settings=settings,
        warmup_ok=warm,
        points=summaries,
        records=records,
        simulator_cpu_seconds=sim_cpu,
    )
    print(f"swarm bench: {target.kind} {target.family} {target.model} at {target.base_url}")
    print(format_table(summaries))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
        print(f"report written to {args.json}")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            write_csv(records, f)
        print(f"records written to {args.csv}")
    if args.html:
        write_html(report, args.html)
        print(f"plots written to {args.html}")
    return EXIT_OK if all(s.failed == 0 for s in summaries) else EXIT_PROBLEM
