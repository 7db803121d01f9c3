"""Client CPU per streamed token, memory per stream and added time to first token:
swarm beside the libraries people use instead, against the same simulator, in one run.

Clients (``clients_worker.py``), each in a fresh process of its own pinned to one
core, the simulator (``python -m providers.sim``) pinned to the other:

* ``floor``: raw non-blocking sockets and ``selectors``, the least parsing that
  still counts the text deltas (no event loop, no HTTP library);
* ``floor-trio``: the same sockets and parsing on trio, one task per stream and one
  ``await sock.recv`` per read: the least any async client on trio can pay per read,
  and the floor goal 1 is measured against (the no-loop floor is shown beside it);
* ``httpx-msgspec``: ``httpx`` on trio, ``aiter_bytes``, split lines, msgspec
  decode of each ``data:`` line;
* ``httpx-lines``: ``httpx`` on trio, ``aiter_lines`` and ``json.loads``;
* ``httpx-sse``: ``httpx-sse`` on asyncio (``aconnect_sse``, ``json.loads``);
* ``anthropic``: the anthropic SDK's ``messages.stream`` helper (its ``text_stream``),
  reading the same tokens as Anthropic Messages events;
* ``openai``: the openai SDK, ``chat.completions.create(stream=True)``;
* ``litellm``: ``litellm.acompletion(stream=True)`` on ``openai/<model>``
  (``LITELLM_LOCAL_MODEL_COST_MAP=True``, nothing fetched);
* ``swarm-client``: this project's thin client (``providers.client.stream`` over
  ``providers.transport``), no runtime;
* ``swarm-engine``: ``swarm.open_engine`` with a rate-limit actor (limits far above
  the load: it admits without waiting but meters every call and reads the headers),
  the ledger and Prometheus metrics on, one ``engine.stream`` per stream, every event
  delivered to the caller.

The SDKs and httpx-sse run from ``.venv-clients``, LiteLLM from ``.venv-litellm`` (it
pins its own openai); the suite creates both with ``bench/peers/install_clients.sh``
when they are missing (``--no-install``: use this interpreter where it has the
library, and report the others as not installed). SDK clients get an HTTP pool sized
to the streams (their default caps would measure queueing, not CPU); LiteLLM keeps
its own transport.

Workloads (sizes in ``--help``; ``--quick`` shrinks them so the run takes under two
minutes):

1. ``full``: 100 streams x 1,000 tokens, the simulator unpaced (tokens arrive in
   large reads): CPU us per token;
2. ``paced``: 100 streams x 100 tokens at 20 tokens/s: every token its own network
   read (``reads/tok`` shows it): CPU us per token. The streams start evenly spread
   over one token interval, as independent calls are: started all at once, their
   tokens would arrive in lockstep and one wake-up of the event loop would serve
   many reads, which favours whichever client happens to start them closest
   together rather than the cheaper one (``many`` and ``scale`` are spread alike);
3. ``many``: 1,000 streams x 50 tokens at 50 tokens/s (20 ms apart): CPU seconds,
   RSS growth per stream (peak ``VmHWM``, reset just before the streams, minus the
   RSS before them, over the streams), the most streams in flight at once;
4. ``ttft``: one call at a time at ``ttft = 0``, after warm-up calls: p50 and p99
   from the call to its first text delta, and the same minus the floor's (a blocking
   keep-alive socket, the time to the first text delta's bytes);
5. ``scale``: the floor and swarm at 100, 1,000 and 10,000 concurrent streams of 10
   tokens 2 s apart (the aggregate rate stays one a core can serve at 10,000, and a
   stream outlives the ~10 s a client takes to start 10,000, so all are in flight at
   once: at 0.4 s apart the first had ended before the last began, and the engine had
   4,608 of 10,000 in flight): CPU ms and KB per stream, flat or not.

Every client's process runs with the same cyclic-collector thresholds (``--gc``):
swarm.throughput_gc's by default, as swarm's own commands run, since with CPython's
a process holding 10,000 live streams spends half its CPU walking them (measured:
the engine 7.0 of 14.9 s at 10,000 streams, 20 full collections of up to 0.42 s).

CPU is the client process's own (``getrusage``, user + system) over the measured
part only, after one warm-up call: not wall time, which the shared machine makes
noisy. Every figure is the median [min-max] over ``--runs`` runs, runs interleaved
across clients. The goals of issue 7 are checked at the end, each a ratio from this
run. Exit status 0 when every stream of every client completed with the right
token count, 1 otherwise (lines starting with ``!`` say what); the goals do not
change it: they are figures, reported as met or not.

Run: ``python bench/bench_clients.py [--quick] [--json FILE] [--results DIR]``
(full: ~20 minutes on 2 cores, the most of it LiteLLM's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import Simulator, _cpu_model, _load, _med, _pct, _raise_fd_limit
from bench_engine import _range as _fig
from clients_worker import BACKENDS, WARM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from swarm.gcpolicy import THROUGHPUT_THRESHOLDS

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "clients_worker.py"
INSTALL = Path(__file__).resolve().parent / "peers" / "install_clients.sh"
CLIENTS = tuple(BACKENDS)
FLOOR, LOOP_FLOOR, RAW, ENGINE = "floor", "floor-trio", "httpx-msgspec", "swarm-engine"
SCALE_CLIENTS = (FLOOR, LOOP_FLOOR, "swarm-client", ENGINE)
WORKLOADS = ("full", "paced", "many", "ttft", "scale")
# The peers' environments (relative to the checkout) and who runs in each.
ENVS = {"httpx-sse": ".venv-clients", "anthropic": ".venv-clients", "openai": ".venv-clients"}
ENVS["litellm"] = ".venv-litellm"
# Issue 7's goals: the engine's CPU per token at most these fractions of a peer's.
PEER_GOALS = {"openai": 10.0, "anthropic": 5.0, "litellm": 30.0}


def _python_for(client: str, install: bool) -> tuple[str | None, str]:
    """The interpreter a client runs under, and a note when it is not its own env."""
    env = ENVS.get(client)
    if env is None:
        return sys.executable, ""
    python = ROOT / env / "bin" / "python"
    if not python.exists() and install:
        print(f"installing the peers' environments ({INSTALL.name}) ...", flush=True)
        subprocess.run(["bash", str(INSTALL)], check=True, cwd=ROOT)
    if python.exists():
        return str(python), ""
    return sys.executable, "this interpreter"


class Runner:
    def __init__(self, sim: Simulator, args: argparse.Namespace) -> None:
        self.sim = sim
        self.args = args
        self.pythons: dict[str, str | None] = {}
        self.notes: dict[str, str] = {}
        self.missing: dict[str, str] = {}
        self.versions: dict[str, dict[str, str]] = {}
        self.problems: list[str] = []

    def python(self, client: str) -> str | None:
        if client not in self.pythons:
            python, note = _python_for(client, self.args.install)
            self.pythons[client], self.notes[client] = python, note
        return self.pythons[client]

    def work(self, client: str, what: str, **job: Any) -> dict[str, Any] | None:
        """One worker process; None when the client's library is not installed."""
        if client in self.missing:
            return None
        python = self.python(client)
        assert python is not None
        payload = {
            "client": client,
            "what": what,
            "host": "127.0.0.1",
            "port": self.sim.port,
            "core": self.args.client_core,
            "gc_thresholds": getattr(self.args, "gc_thresholds", None),
            **job,
        }
        try:
            proc = subprocess.run(
                [python, str(WORKER), json.dumps(payload)],
                capture_output=True,
                text=True,
                timeout=self.args.time_limit,
                cwd=ROOT,
            )
        except subprocess.TimeoutExpired:
            self.problems.append(f"{client} {what}: over the {self.args.time_limit:.0f} s limit")
            return {"failed": "timeout"}
        lines = proc.stdout.strip().splitlines()
        result: dict[str, Any] | None = (
            json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        )
        if proc.returncode == 3 and result and "missing" in result:
            self.missing[client] = ", ".join(result["missing"])
            return None
        if proc.returncode != 0 or result is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            self.problems.append(f"{client} {what}: worker exited {proc.returncode}: {tail}")
            return {"failed": tail}
        self.versions.setdefault(client, result.get("versions", {}))
        return result

    def check(self, label: str, result: dict[str, Any], streams: int, tokens: int) -> bool:
        want = streams * tokens
        if result.get("errors"):
            self.problems.append(
                f"{label}: {result['errors']} errors, the first: {result['first_error']}"
            )
            return False
        if result.get("tokens") != want:
            self.problems.append(f"{label}: {result.get('tokens')} tokens, expected {want}")
            return False
        return True


# -- figures ---------------------------------------------------------------------------


def stream_workload(
    runner: Runner,
    clients: Sequence[str],
    name: str,
    model: str,
    streams: int,
    tokens: int,
    spread: float = 0.0,
) -> dict[str, dict[str, list[float]]]:
    """``runs`` interleaved rounds of every client on one workload; ``spread``: the
    streams start evenly over that many seconds (see the module docstring)."""
    out: dict[str, dict[str, list[float]]] = {}
    sim_cpu0 = runner.sim.cpu()
    for run in range(runner.args.runs):
        for client in clients:
            result = runner.work(client, "streams", model=model, streams=streams, spread=spread)
            if result is None:
                continue
            fig = out.setdefault(
                client, {"us_tok": [], "reads_tok": [], "cpu": [], "kb": [], "open": []}
            )
            if "failed" in result or not runner.check(
                f"{name} {client} run {run + 1}", result, streams, tokens
            ):
                continue
            n = max(result["tokens"], 1)
            fig["us_tok"].append(result["cpu"] / n * 1e6)
            fig["reads_tok"].append(result["reads"] / n)
            fig["cpu"].append(result["cpu"])
            fig["kb"].append((result["rss_peak_kb"] - result["rss_before_kb"]) / streams)
            fig["open"].append(result["open_max"])
    out["_sim"] = {"cpu": [runner.sim.cpu() - sim_cpu0]}
    return out


def ttft_workload(runner: Runner, clients: Sequence[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    args = runner.args
    for run in range(args.runs):
        for client in clients:
            result = runner.work(
                client,
                "ttft",
                model=WARM,
                streams=1,
                calls=args.ttft_calls,
                warmup=args.ttft_warmup,
            )
            if result is None:
                continue
            if "failed" in result:
                out.setdefault(client, [])
                continue
            if result.get("errors"):
                runner.problems.append(
                    f"ttft {client} run {run + 1}: {result['errors']} errors, "
                    f"the first: {result['first_error']}"
                )
            out.setdefault(client, []).extend(x * 1e3 for x in result["latencies"])
    return out


def _num(x: float, fmt: str) -> str:
    """A figure, or "-" for one the run did not measure."""
    return "-" if math.isnan(x) else format(x, fmt)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _goal(ok: bool | None) -> str:
    return "met" if ok else ("not measured" if ok is None else "NOT met")


def report(
    runner: Runner,
    clients: Sequence[str],
    full: dict[str, dict[str, list[float]]],
    paced: dict[str, dict[str, list[float]]],
    many: dict[str, dict[str, list[float]]],
    ttft: dict[str, list[float]],
    scale: dict[int, dict[str, dict[str, list[float]]]],
) -> list[str]:
    args = runner.args
    lines: list[str] = []
    say = lines.append
    floor_p50 = _med(ttft.get(FLOOR, []))
    floor_p99 = _pct(ttft.get(FLOOR, []), 99)

    def med(table: dict[str, dict[str, list[float]]], client: str, key: str) -> float:
        return _med(table.get(client, {}).get(key, []))

    say(
        f"{'client':<14} {'backend':<8} {'full us/tok':>22} {'paced us/tok':>22} "
        f"{'rd/tok':>6} {'many CPU s':>19} {'KB/stream':>16} {'in flight':>9} "
        f"{'ttft p50 / p99 ms':>18} {'added p50 / p99':>16}"
    )
    for client in clients:
        if client in runner.missing:
            say(f"{client:<14} not installed ({runner.missing[client]})")
            continue
        f, p, m = full.get(client, {}), paced.get(client, {}), many.get(client, {})
        lat = ttft.get(client, [])
        p50, p99 = _med(lat), _pct(lat, 99)
        added = "-" if client == FLOOR else f"{p50 - floor_p50:.3f} / {p99 - floor_p99:.3f}"
        say(
            f"{client:<14} {BACKENDS[client]:<8} {_fig(f.get('us_tok', []), '.1f'):>22} "
            f"{_fig(p.get('us_tok', []), '.1f'):>22} "
            f"{_num(_med(p.get('reads_tok', [])), '.2f'):>6} "
            f"{_fig(m.get('cpu', []), '.2f'):>19} {_fig(m.get('kb', []), '.1f'):>16} "
            f"{_num(_med(m.get('open', [])), '.0f'):>9} "
            f"{_num(p50, '.3f'):>8} / {_num(p99, '.3f'):<7} {'-' if lat == [] else added:>16}"
        )
    say(
        f"(simulator CPU: full {full['_sim']['cpu'][0]:.1f} s, paced "
        f"{paced['_sim']['cpu'][0]:.1f} s, many {many['_sim']['cpu'][0]:.1f} s)"
    )
    if scale:
        say("")
        say(f"scale: {args.scale_tokens} tokens {args.scale_interval} s apart per stream")
        say(
            f"{'client':<14} {'streams':>7} {'CPU ms/stream':>22} {'KB/stream':>18} "
            f"{'in flight':>9}"
        )
        for client in SCALE_CLIENTS:
            for n, table in sorted(scale.items()):
                fig = table.get(client)
                if not fig:
                    continue
                ms = [x * 1e3 / n for x in fig["cpu"]]
                say(
                    f"{client:<14} {n:>7} {_fig(ms, '.3f'):>22} {_fig(fig['kb'], '.1f'):>18} "
                    f"{_med(fig['open']):>9.0f}"
                )

    # The goals, each a ratio of this run's medians.
    say("")
    say("goals (issue 7), from the medians above:")
    eng_full, eng_paced = med(full, ENGINE, "us_tok"), med(paced, ENGINE, "us_tok")
    for label, table, eng in (("full", full, eng_full), ("paced", paced, eng_paced)):
        raw, floor = med(table, RAW, "us_tok"), med(table, LOOP_FLOOR, "us_tok")
        r_raw, r_floor = _ratio(eng, raw), _ratio(eng, floor)
        r_bare = _ratio(eng, med(table, FLOOR, "us_tok"))
        ok = None if math.isnan(r_raw) or math.isnan(r_floor) else r_raw <= 1.0 and r_floor <= 2.0
        say(
            f"  1. {label}: engine {eng:.1f} us/tok = {r_raw:.2f}x httpx-msgspec (goal <= 1), "
            f"{r_floor:.2f}x the raw-socket floor on trio (goal <= 2; {r_bare:.2f}x the "
            f"floor with no event loop): {_goal(ok)}"
        )
    for peer, want in PEER_GOALS.items():
        parts, oks = [], []
        for label, table, eng in (("full", full, eng_full), ("paced", paced, eng_paced)):
            r = _ratio(med(table, peer, "us_tok"), eng)
            parts.append(f"{label} {r:.1f}x")
            oks.append(None if math.isnan(r) else r >= want)
        ok = None if None in oks else all(oks)
        say(
            f"  2. {peer} / engine CPU per token: {', '.join(parts)} "
            f"(goal >= {want:.0f}x): {_goal(ok)}"
        )
    if scale:
        ns = sorted(scale)
        top = ns[-1]
        eng_at = {n: scale[n].get(ENGINE) for n in ns}
        top_fig = eng_at[top]
        done = bool(top_fig and top_fig["cpu"])
        # "Concurrent" means every stream in flight at once, not only completed.
        at_once = int(_med(top_fig["open"])) if top_fig and top_fig["open"] else 0
        kb_top = _med(top_fig["kb"]) if top_fig and done else math.nan
        cpu_ps = [_med(e["cpu"]) / n for n, e in eng_at.items() if e and e["cpu"]]
        spread_cpu = max(cpu_ps) / min(cpu_ps) - 1 if len(cpu_ps) == len(ns) else math.nan
        # Memory is judged from 1,000 up: at 100 streams a few pages are the figure.
        kb_big = [_med(e["kb"]) for n, e in eng_at.items() if e and e["kb"] and n >= 1000]
        spread_kb = max(kb_big) / min(kb_big) - 1 if len(kb_big) >= 2 else math.nan
        ok3 = (
            None
            if math.isnan(spread_cpu)
            else done
            and kb_top <= 25
            and spread_cpu <= 0.2
            and (spread_kb <= 0.2 or math.isnan(spread_kb))
        )
        kb_spread = "-" if math.isnan(spread_kb) else f"{spread_kb:.0%}"
        if top < 10_000:
            ok3 = None  # the goal is about 10,000 streams
        say(
            f"  3. {top:,} streams: {'all completed' if done else 'did not all complete'}, "
            f"{at_once:,} in flight at once, "
            f"{kb_top:.1f} KB/stream (goal <= 25); CPU/stream spread {spread_cpu:.0%} over "
            f"{', '.join(f'{n:,}' for n in ns)}, KB/stream spread {kb_spread} from 1,000 up "
            f"(goal: 10,000 streams, <= 20%): {_goal(ok3)}"
        )
    eng_lat = ttft.get(ENGINE, [])
    a50, a99 = _med(eng_lat) - floor_p50, _pct(eng_lat, 99) - floor_p99
    ok4 = None if math.isnan(a50) else a50 < 0.3 and a99 < 2.0
    say(
        f"  4. engine-added time to first token: p50 {a50:.3f} ms (goal < 0.3), "
        f"p99 {a99:.3f} ms (goal < 2): {_goal(ok4)}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run (< 2 min)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (3; quick 1)")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument(
        "--no-install",
        dest="install",
        action="store_false",
        help="do not create the peers' environments; use this interpreter where it can",
    )
    parser.add_argument("--full", type=int, nargs=2, default=None, metavar=("STREAMS", "TOKENS"))
    parser.add_argument("--paced", type=int, nargs=2, default=None, metavar=("STREAMS", "TOKENS"))
    parser.add_argument("--paced-tps", type=float, default=20.0)
    parser.add_argument("--many", type=int, nargs=2, default=None, metavar=("STREAMS", "TOKENS"))
    parser.add_argument("--many-tps", type=float, default=50.0)
    parser.add_argument("--ttft-calls", type=int, default=None, help="per run (200; quick 50)")
    parser.add_argument("--ttft-warmup", type=int, default=20)
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=None,
        help="streams (100 1000 10000; quick 100 1000)",
    )
    parser.add_argument("--scale-tokens", type=int, default=10)
    parser.add_argument(
        "--scale-interval",
        type=float,
        default=2.0,
        help="seconds between a scale stream's tokens (2: a stream lives 20 s, longer "
        "than a client takes to start 10,000, so all can be in flight at once)",
    )
    parser.add_argument(
        "--gc",
        choices=["throughput", "default"],
        default="throughput",
        help="the cyclic collector's thresholds in every client's process: swarm's "
        "throughput_gc ones, as swarm's own commands run (default), or CPython's",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=WORKLOADS,
        default=list(WORKLOADS),
        help="run only these (all by default)",
    )
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per worker")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    parser.add_argument(
        "--results", default=None, help="write <date>-<host>.md and .json into this directory"
    )
    args = parser.parse_args(argv)
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.full = args.full or ([100, 200] if q else [100, 1000])
    args.paced = args.paced or ([50, 20] if q else [100, 100])
    args.many = args.many or ([300, 25] if q else [1000, 50])
    args.ttft_calls = args.ttft_calls or (50 if q else 200)
    args.scale = (
        args.scale if args.scale is not None else ([100, 1000] if q else [100, 1000, 10000])
    )
    clients = [c for c in CLIENTS if c in args.clients]
    args.gc_thresholds = list(THROUGHPUT_THRESHOLDS) if args.gc == "throughput" else None
    _raise_fd_limit()

    started = time.perf_counter()
    slow_tps = 1.0 / args.scale_interval
    models = {
        "full": {"ttft": 0.0, "tokens_per_second": 0.0, "output_tokens": args.full[1]},
        "paced": {"ttft": 0.0, "tokens_per_second": args.paced_tps, "output_tokens": args.paced[1]},
        "many": {"ttft": 0.0, "tokens_per_second": args.many_tps, "output_tokens": args.many[1]},
        "scale": {"ttft": 0.0, "tokens_per_second": slow_tps, "output_tokens": args.scale_tokens},
        WARM: {"ttft": 0.0, "tokens_per_second": 0.0, "output_tokens": 16},
    }
    head = [
        "swarm beside the clients people use instead: CPU per streamed token, memory per "
        "stream, added time to first token",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {_cpu_model()}, "
        f"{os.cpu_count()} cores; simulator on core {args.sim_core}, each client in its own "
        f"process on core {args.client_core}; load average {_load()}",
        f"full: {args.full[0]} streams x {args.full[1]} tokens unpaced; paced: {args.paced[0]} x "
        f"{args.paced[1]} at {args.paced_tps:g} tok/s; many: {args.many[0]} x {args.many[1]} at "
        f"{args.many_tps:g} tok/s; ttft: {args.ttft_calls} calls per run; {args.runs} run(s), "
        "median [min-max]",
        "collector thresholds in every client's process: "
        + (
            f"{tuple(args.gc_thresholds)} (swarm.throughput_gc's, as swarm's commands run)"
            if args.gc_thresholds
            else "CPython's defaults"
        ),
    ]
    for line in head:
        print(line, flush=True)
    sim = Simulator(models, args.sim_core)
    runner = Runner(sim, args)
    try:
        want = set(args.workloads)
        empty: dict[str, dict[str, list[float]]] = {"_sim": {"cpu": [0.0]}}
        full, paced, many = empty, empty, empty
        ttft: dict[str, list[float]] = {}
        scale: dict[int, dict[str, dict[str, list[float]]]] = {}
        if "full" in want:
            print("full ...", flush=True)
            full = stream_workload(runner, clients, "full", "full", *args.full)
        if "paced" in want:
            print("paced ...", flush=True)
            paced = stream_workload(
                runner, clients, "paced", "paced", *args.paced, spread=1.0 / args.paced_tps
            )
        if "many" in want:
            print("many ...", flush=True)
            many = stream_workload(
                runner, clients, "many", "many", *args.many, spread=1.0 / args.many_tps
            )
        if "ttft" in want:
            print("ttft ...", flush=True)
            ttft = ttft_workload(runner, clients)
        scale_clients = [c for c in SCALE_CLIENTS if c in clients]
        for n in args.scale if "scale" in want else []:
            print(f"scale {n:,} ...", flush=True)
            scale[n] = stream_workload(
                runner,
                scale_clients,
                f"scale {n}",
                "scale",
                n,
                args.scale_tokens,
                spread=args.scale_interval,
            )
    finally:
        sim.close()
    lines = report(runner, clients, full, paced, many, ttft, scale)
    lines.append("")
    lines.append("versions:")
    for client in clients:
        if client in runner.versions:
            where = runner.notes.get(client) or (ENVS.get(client) or "this venv")
            vs = ", ".join(f"{k} {v}" for k, v in runner.versions[client].items())
            lines.append(f"  {client} ({where}): {vs}")
    for problem in runner.problems:
        lines.append(f"! {problem}")
    elapsed = time.perf_counter() - started
    lines.append(f"done in {elapsed:.0f} s; load average {_load()}")
    print()
    print("\n".join(lines))
    figures = {
        "head": head,
        "args": {k: v for k, v in vars(args).items() if k not in ("json", "results")},
        "full": full,
        "paced": paced,
        "many": many,
        "ttft_ms": ttft,
        "scale": {str(n): t for n, t in scale.items()},
        "missing": runner.missing,
        "versions": runner.versions,
        "problems": runner.problems,
        "report": lines,
        "seconds": elapsed,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if args.results:
        out = Path(args.results)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}"
        (out / f"{stem}.json").write_text(json.dumps(figures, indent=1))
        cmd = "python bench/bench_clients.py" + (" --quick" if q else "")
        (out / f"{stem}.md").write_text(
            f"# `{cmd}`\n\n```\n" + "\n".join(head) + "\n\n" + "\n".join(lines) + "\n```\n"
        )
    return 1 if runner.problems else 0


if __name__ == "__main__":
    sys.exit(main())
