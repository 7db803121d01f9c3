"""Rate limiting against the simulator's enforced limits: throughput and 429s, side by side.

The issue's goal: *against the simulator's enforced limits, a flood of calls gets at
least 95% of the allowed throughput with fewer than 1% of requests answered 429.*

The simulator runs in its own process (``python -m providers.sim``, pinned to one
core when there are two) and enforces per-key limits as OpenAI does: a request
bucket (``rpm``) and a token bucket (``tpm``), each holding one minute's worth and
refilled continuously; a request costs one request and its input tokens plus its
``max_tokens``, charged at admission; every response carries the
``x-ratelimit-*`` headers and a 429 carries ``retry-after`` and ``retry-after-ms``.
Its windows are per minute and cannot be scaled, so a run of ``--duration``
seconds allows the first minute's burst plus the refill: ``limit * (1 + D / 60)``.

Workloads (one simulator key each, so each has its own buckets):

* ``rpm``: only a request limit (``--rpm``), requests bind;
* ``tpm``: a request limit and a token limit (``--tpm``) that binds first (about
  ``--prompt-chars / 4`` input tokens plus ``--max-tokens`` a call).

For each workload and each engine configuration, a fresh ``swarm.open_engine``
floods the model through ``engine.map`` over an endless stream of requests
(``--backlog`` calls submitted at a time, ``--max-concurrency`` in flight) for
``--duration`` seconds, then leaves the loop (the calls left end ``Cancelled``) and
closes the engine; the simulator's counts are reset between runs. Configurations:

* ``none``: no client-side limit (``rate_limit=None``): the baseline, where only the
  simulator's 429s push back (retries honour ``retry-after``, within the default
  ``RetryPolicy`` and retry budget);
* ``true``: ``RateLimitConfig`` with the simulator's real limits;
* ``2x``: configured at twice the real limits, so only the response headers (the
  reported limit, ``remaining``, ``reset``) and the 429 path (AIMD cuts, pause) can
  bring it down;
* ``headers``: no figure configured (``RateLimitConfig()``): the limits are learned
  from the response headers (one probe call first, then the reported limits).

Figures per run:

* ``calls``: calls the engine accepted; ``done``/``failed``/``cancelled`` their ends
  (the cancelled ones are the backlog left at the end); ``wall``: seconds of flood.
* ``req/min`` and ``tok/min``: what the simulator admitted per minute in the steady
  window ``[--steady-from, D]`` (the first minute's burst spent), tokens as the
  simulator charges them (input + ``max_tokens``); ``%allow`` is that over the
  simulator's allowed rate (the binding limit); ``whole%``: admitted over the whole
  run over ``limit * (1 + D / 60)`` (the burst included).
* ``sent``, ``429``, ``429%``: requests the simulator received and refused
  (``/sim/stats`` ``by_outcome``), and the 429s as a share of requests sent;
  ``429eng``: the 429s the engine's ledger accounts for (attempts that did not end
  the call; an attempt cut by the final cancel is not counted) and ``attempts``.
* ``retries``: the provider actor's retry count; ``errors``: calls failed.
* ``cpu``: seconds of CPU the client process (engine and all) used for the run.
* ``1-term``: ``yes`` when every call ended in exactly one terminal event: the
  ledger's ``accepted == completed + failed + cancelled`` with nothing in flight,
  one record per call id, and ``engine.map`` yielded each index at most once.
* ``goal``: ``MET`` when ``%allow >= 95``, ``whole% >= 95`` and ``429% < 1``.

The limiter's own view is sampled every half second (through the provider actor's
private state, for diagnosis only) and written to ``--json``, and a line under each
run shows its 429 cuts and its allowed rates at the end.

Run: ``python bench/bench_ratelimit.py [--quick] [--json FILE]`` (full: two
workloads x three configurations x ``--duration`` 45 s, about 5 minutes;
``--quick``: the ``rpm`` workload, 20 s runs, about 1 minute). Exit status 0 when
every run is well formed (every call ended once, the simulator and the ledger
agree), 1 otherwise (a line starting with ``!`` says what). Whether the goal is
met is reported, not turned into the exit status: the baseline is expected to miss it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent

MODEL = "sim-limited"
# io: Anthropic's separate input and output token limits, on its wire format, with
# long prompts (the case a single TPM bucket got wrong by a factor of twenty).
WORKLOADS = ("rpm", "tpm", "io")
CONFIGS = ("none", "true", "2x", "headers")
GOAL_THROUGHPUT = 95.0
GOAL_429 = 1.0
SAMPLE_EVERY = 0.5

# -- the simulator process -------------------------------------------------------------


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Simulator:
    """``python -m providers.sim`` in a child process (pinned to ``core`` if there are two)."""

    def __init__(self, config: dict[str, Any], core: int | None) -> None:
        self._cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(config, self._cfg)
        self._cfg.close()
        pin = core is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
        code = (
            "import os, sys\n"
            + (f"os.sched_setaffinity(0, {{{core}}})\n" if pin else "")
            + "from providers.sim.cli import main\n"
            + f"sys.exit(main(['--config', {self._cfg.name!r}]))\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.close()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return _http_json(self.port, "GET", "/sim/stats")

    def reset(self) -> None:
        _http_json(self.port, "POST", "/sim/reset")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        os.unlink(self._cfg.name)


def _http_json(port: int, method: str, path: str) -> dict[str, Any]:
    """One request over a plain blocking socket (no client library)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nhost: sim\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


# -- one run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The simulator's limits for one workload (per minute; None: none)."""

    rpm: int | None
    tpm: int | None
    itpm: int | None = None
    otpm: int | None = None
    family: str = "openai"

    def scaled(self, factor: float) -> Limits:
        def scale(n: int | None) -> int | None:
            return None if n is None else round(n * factor)

        return Limits(
            rpm=scale(self.rpm),
            tpm=scale(self.tpm),
            itpm=scale(self.itpm),
            otpm=scale(self.otpm),
            family=self.family,
        )

    def _rates(self, cost: float, input_cost: float, output_cost: float) -> dict[str, float]:
        rates = {"rpm": float(self.rpm)} if self.rpm else {}
        if self.tpm:
            rates["tpm"] = self.tpm / cost
        if self.itpm:
            rates["itpm"] = self.itpm / input_cost
        if self.otpm:
            rates["otpm"] = self.otpm / output_cost
        return rates

    def calls_per_minute(
        self, cost: float, input_cost: float = math.nan, output_cost: float = math.nan
    ) -> float:
        """The calls per minute the limits allow, at ``cost`` tokens a call (of which
        ``input_cost`` input and ``output_cost`` output, for itpm and otpm)."""
        rates = self._rates(cost, input_cost, output_cost)
        return min(rates.values()) if rates else math.inf

    def binding(
        self, cost: float, input_cost: float = math.nan, output_cost: float = math.nan
    ) -> str:
        rates = self._rates(cost, input_cost, output_cost)
        return min(rates, key=lambda k: rates[k]) if rates else "rpm"

    def describe(self) -> str:
        parts = [f"rpm={self.rpm or '-'}", f"tpm={self.tpm or '-'}"]
        if self.itpm or self.otpm:
            parts += [f"itpm={self.itpm or '-'}", f"otpm={self.otpm or '-'}"]
        return " ".join(parts)


def rate_limit_config(config: str, limits: Limits) -> Any:
    """The engine's ``rate_limit`` for one configuration (None: none)."""
    from swarm import RateLimitConfig

    if config == "none":
        return None
    if config == "headers":
        return RateLimitConfig()
    configured = limits.scaled(2.0 if config == "2x" else 1.0)
    return RateLimitConfig(
        requests_per_minute=configured.rpm,
        tokens_per_minute=configured.tpm,
        input_tokens_per_minute=configured.itpm,
        output_tokens_per_minute=configured.otpm,
        # The simulator keeps the whole reservation (input + max_tokens).
        refund_unused_tokens=False if configured.tpm else None,
    )


def _prompt(i: int, chars: int) -> str:
    """A prompt of exactly ``chars`` characters, different for every ``i``."""
    head = f"request {i:09d}: summarise the following. "
    filler = "lorem ipsum dolor sit amet " * (chars // 27 + 1)
    return (head + filler)[:chars]


async def flood(
    base_url: str,
    key: str,
    rate_limit: Any,
    args: argparse.Namespace,
    sim_port: int,
    family: str = "openai",
    prompt_chars: int | None = None,
) -> dict[str, Any]:
    """Flood the model through one engine for ``args.duration`` seconds."""
    import anyio
    import httpx

    import swarm
    from providers.messages import Message, Request

    def requests() -> Iterator[Request]:
        # The prompt's characters split over ``--messages`` turns (the simulator
        # counts each turn's role too, as providers count a few tokens a message).
        n = args.messages
        size = (prompt_chars or args.prompt_chars) // n
        i = 0
        while True:
            text = _prompt(i, size * n)
            parts = [text[j * size : (j + 1) * size] for j in range(n)]
            messages = [
                Message.user(p) if (n - 1 - j) % 2 == 0 else Message.assistant(p)
                for j, p in enumerate(parts)
            ]
            yield Request(model=MODEL, messages=messages, max_tokens=args.max_tokens)
            i += 1

    config = swarm.EngineConfig(
        providers={
            "sim": swarm.ProviderConfig(
                family=family,
                base_url=base_url,
                api_key=key,
                max_concurrency=args.max_concurrency,
                rate_limit=rate_limit,
            )
        },
        default_provider="sim",
    )
    yielded: dict[int, str] = {}
    duplicates = 0
    timeline: list[dict[str, Any]] = []
    at_steady: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}") as http:
        async with swarm.open_engine(config, env={}) as engine:
            start = anyio.current_time()

            def limiter_stats() -> Any:
                # Diagnosis only: the limiter is private to the rate-limit actor.
                gate = engine._gates.get("sim")
                lane = gate._lanes.get(MODEL) if gate is not None else None
                if lane is None:
                    return None
                return lane.backend._limiter.statistics(anyio.current_time())

            async def sample() -> None:
                while True:
                    await anyio.sleep(SAMPLE_EVERY)
                    s = limiter_stats()
                    stats = engine.statistics()
                    provider = stats.providers["sim"]
                    row: dict[str, Any] = {
                        "t": round(anyio.current_time() - start, 3),
                        "completed": stats.ledger.completed,
                        "attempts": provider.attempts,
                        "retries": provider.retries,
                        "running": provider.running,
                        "queued": stats.queued,
                    }
                    if s is not None:
                        row |= {
                            "rpm_allowed": s.requests_per_minute,
                            "rpm_available": s.requests_available,
                            "tpm_allowed": s.tokens_per_minute,
                            "tpm_available": s.tokens_available,
                            "paused_for": round(s.paused_for, 3),
                            "rate_limited": s.rate_limited,
                            "decreases": s.decreases,
                        }
                    timeline.append(row)

            async def steady_mark() -> None:
                await anyio.sleep_until(start + args.steady_from)
                response = await http.get("/sim/stats")
                at_steady.update(response.json())

            async with anyio.create_task_group() as tg:
                tg.start_soon(sample)
                tg.start_soon(steady_mark)
                with anyio.move_on_after(args.duration):
                    flooding = engine.map(requests(), concurrency=args.backlog)
                    async with contextlib.aclosing(
                        cast("AsyncGenerator[Any, None]", flooding)
                    ) as results:
                        async for result in results:
                            if result.index in yielded:
                                duplicates += 1
                            yielded[result.index] = type(result.event).__name__
                wall = anyio.current_time() - start
                tg.cancel_scope.cancel()
        # The engine is closed: every call it accepted has ended, every permit is back.
        limiter = limiter_stats()
        ledger = engine.ledger
        ls = ledger.statistics()
        provider = engine.statistics().providers["sim"]
        records = ledger.records()
    ids = [r.id for r in records]
    seen_429 = other_errors = 0
    for r in records:
        if r.outcome == "completed":
            seen_429 += r.attempts - 1
        elif r.outcome == "failed":
            if r.error is not None and r.error.kind == "RateLimitError":
                seen_429 += r.attempts
            else:
                other_errors += 1
                seen_429 += max(0, r.attempts - 1)
        else:
            seen_429 += max(0, r.attempts - 1)
    first_error = next(
        (r.error.message for r in records if r.outcome == "failed" and r.error is not None), ""
    )
    one_terminal = (
        duplicates == 0
        and ls.in_flight == 0
        and ls.accepted == ls.completed + ls.failed + ls.cancelled
        and len(ids) == len(set(ids)) == ls.accepted
        and sum(v == "Completed" for v in yielded.values()) <= ls.completed
        and sum(v == "Failed" for v in yielded.values()) <= ls.failed
    )
    return {
        "wall": wall,
        "accepted": ls.accepted,
        "completed": ls.completed,
        "failed": ls.failed,
        "cancelled": ls.cancelled,
        "attempts": ls.attempts,
        "retries": provider.retries,
        "engine_429": seen_429,
        "other_errors": other_errors,
        "first_error": first_error,
        "yielded": len(yielded),
        "duplicates": duplicates,
        "one_terminal": one_terminal,
        "at_steady": _counts(at_steady),
        "limiter": None if limiter is None else _limiter_dict(limiter),
        "timeline": timeline,
    }


def _limiter_dict(s: Any) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(s)  # type: ignore[no-any-return]


def _counts(stats: dict[str, Any]) -> dict[str, int]:
    """Admitted (ended or still streaming) and refused, from a ``/sim/stats`` snapshot."""
    if not stats:
        return {}
    by = stats.get("by_outcome", {})
    refused = int(by.get("rate_limited", 0))
    return {
        "requests": int(stats.get("requests", 0)) + int(stats.get("active_streams", 0)),
        "admitted": int(stats.get("requests", 0)) - refused + int(stats.get("active_streams", 0)),
        "rate_limited": refused,
        "ok": int(by.get("ok", 0)),
        "input_tokens": int(stats.get("tokens", {}).get("input", 0)),
    }


def run_one(
    sim: Simulator, workload: str, config: str, limits: Limits, args: argparse.Namespace
) -> dict[str, Any]:
    import trio

    sim.reset()
    cpu0 = _cpu()
    prompt_chars = args.io_prompt_chars if workload == "io" else args.prompt_chars
    result = trio.run(
        flood,
        sim.base_url,
        f"sk-{workload}",
        rate_limit_config(config, limits),
        args,
        sim.port,
        limits.family,
        prompt_chars,
    )
    result["cpu"] = _cpu() - cpu0
    # Streams cut by the final cancel are counted once the simulator sees their socket close.
    stats = sim.stats()
    for _ in range(50):
        if not stats.get("active_streams"):
            break
        time.sleep(0.1)
        stats = sim.stats()
    counts = _counts(stats)
    by = stats.get("by_outcome", {})
    unexpected = {
        k: v for k, v in by.items() if k not in ("ok", "rate_limited", "client_disconnected") and v
    }
    # Tokens the simulator charged per admitted call: its input count plus max_tokens.
    # Every request the simulator admitted is recorded with its input tokens, the
    # ones cut by the final cancel (client_disconnected) too.
    served = counts["admitted"]
    input_cost = stats["tokens"]["input"] / served if served else math.nan
    cost = input_cost + args.max_tokens
    # ITPM and OTPM settle to the actual counts (cache reads out, unused max_tokens
    # back), so what a call costs them is its real input and output.
    tokens = stats["tokens"]
    itpm_cost = (tokens["input"] - tokens["cached"]) / served if served else math.nan
    otpm_cost = tokens["output"] / served if served else math.nan
    per_minute = limits.calls_per_minute(cost, itpm_cost, otpm_cost)
    steady_span = result["wall"] - args.steady_from
    mark = result["at_steady"]
    steady_admitted = counts["admitted"] - mark.get("admitted", 0)
    steady_rpm = steady_admitted / steady_span * 60.0 if steady_span > 0 else math.nan
    # The first minute's burst is what each bucket holds at the cost reserved at
    # admission (no client knows an answer's length before it ends: OTPM holds the
    # whole max_tokens until then), then the settled rate.
    burst = limits.calls_per_minute(cost, itpm_cost, float(args.max_tokens))
    allowed_whole = burst + per_minute * result["wall"] / 60.0
    sent = counts["requests"]
    result |= {
        "workload": workload,
        "config": config,
        "limits": {"rpm": limits.rpm, "tpm": limits.tpm, "itpm": limits.itpm, "otpm": limits.otpm},
        "family": limits.family,
        "itpm_tokens_per_call": itpm_cost,
        "otpm_tokens_per_call": otpm_cost,
        "configured": None
        if config in ("none", "headers")
        else {
            "rpm": limits.scaled(2.0 if config == "2x" else 1.0).rpm,
            "tpm": limits.scaled(2.0 if config == "2x" else 1.0).tpm,
        },
        "tokens_per_call": cost,
        "allowed_calls_per_minute": per_minute,
        "sim_sent": sent,
        "sim_admitted": counts["admitted"],
        "sim_429": counts["rate_limited"],
        "sim_unexpected": unexpected,
        "steady_429": counts["rate_limited"] - mark.get("rate_limited", 0),
        "steady_sent": sent - mark.get("requests", 0),
        "steady_calls_per_minute": steady_rpm,
        "steady_tokens_per_minute": steady_rpm * cost,
        "steady_pct": 100.0 * steady_rpm / per_minute,
        "whole_pct": 100.0 * counts["admitted"] / allowed_whole,
        "pct_429": 100.0 * counts["rate_limited"] / sent if sent else 0.0,
    }
    result["goal"] = (
        result["steady_pct"] >= GOAL_THROUGHPUT
        and result["whole_pct"] >= GOAL_THROUGHPUT
        and result["pct_429"] < GOAL_429
    )
    return result


# -- output ----------------------------------------------------------------------------

HEADER = (
    f"{'config':<8} {'calls':>6} {'done':>5} {'failed':>6} {'cancel':>6} {'wall':>5} "
    f"{'req/min':>7} {'tok/min':>8} {'%allow':>6} {'whole%':>6} {'sent':>6} {'429':>5} "
    f"{'429%':>6} {'429eng':>6} {'attempts':>8} {'retries':>7} {'errors':>6} "
    f"{'1-term':>6} {'cpu':>5}  goal"
)


def row(r: dict[str, Any]) -> str:
    tok = "-" if r["limits"]["tpm"] is None else f"{r['steady_tokens_per_minute']:.0f}"
    return (
        f"{r['config']:<8} {r['accepted']:>6} {r['completed']:>5} {r['failed']:>6} "
        f"{r['cancelled']:>6} {r['wall']:>5.1f} {r['steady_calls_per_minute']:>7.1f} "
        f"{tok:>8} {r['steady_pct']:>6.1f} {r['whole_pct']:>6.1f} {r['sim_sent']:>6} "
        f"{r['sim_429']:>5} {r['pct_429']:>6.2f} {r['engine_429']:>6} {r['attempts']:>8} "
        f"{r['retries']:>7} {r['failed']:>6} {'yes' if r['one_terminal'] else 'NO':>6} "
        f"{r['cpu']:>5.1f}  {'MET' if r['goal'] else 'not met'}"
    )


def detail(r: dict[str, Any]) -> str:
    lim = r["limiter"]
    parts = [
        f"  {r['config']}: 429s in the steady window {r['steady_429']} of {r['steady_sent']} sent"
    ]
    if lim is not None:
        allowed = []
        if lim["requests_per_minute"] is not None:
            allowed.append(
                f"rpm {lim['requests_per_minute']:.0f} (ceiling {lim['requests_ceiling']:.0f})"
            )
        if lim["tokens_per_minute"] is not None:
            allowed.append(
                f"tpm {lim['tokens_per_minute']:.0f} (ceiling {lim['tokens_ceiling']:.0f})"
            )
        parts.append(
            f"limiter: 429s {lim['rate_limited']}, cuts {lim['decreases']}, "
            f"allowed at the end {', '.join(allowed) or '-'}, waits rpm {lim['waits_rpm']} "
            f"tpm {lim['waits_tpm']} paused {lim['waits_paused']}"
        )
    if not r["goal"]:
        why = []
        if r["steady_pct"] < GOAL_THROUGHPUT or r["whole_pct"] < GOAL_THROUGHPUT:
            why.append("throughput below 95%")
        if r["pct_429"] >= GOAL_429:
            why.append("429s at or above 1%")
        parts.append("goal not met: " + " and ".join(why))
    return "; ".join(parts)


def problems(r: dict[str, Any]) -> list[str]:
    out = []
    if not r["one_terminal"]:
        out.append(
            f"! {r['workload']}/{r['config']}: not every call ended in exactly one terminal "
            f"event (accepted {r['accepted']}, completed {r['completed']}, failed "
            f"{r['failed']}, cancelled {r['cancelled']}, duplicates {r['duplicates']})"
        )
    if r["other_errors"]:
        out.append(
            f"! {r['workload']}/{r['config']}: {r['other_errors']} calls failed with something "
            f"other than a 429; first: {r['first_error']}"
        )
    if r["sim_unexpected"]:
        out.append(f"! {r['workload']}/{r['config']}: simulator outcomes {r['sim_unexpected']}")
    # Every attempt the engine made reached the simulator, but for those cut while
    # connecting by the final cancel: at most one per call in flight.
    if not 0 <= r["attempts"] - r["sim_sent"] <= r["cancelled"]:
        out.append(
            f"! {r['workload']}/{r['config']}: the ledger counts {r['attempts']} attempts, "
            f"the simulator {r['sim_sent']} requests"
        )
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _versions() -> str:
    parts = []
    for name in ("httpx", "httpcore", "anyio", "trio", "msgspec"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} -")
    return f"python {platform.python_version()}, " + ", ".join(parts)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the rpm workload, 20 s runs")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=None)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--duration", type=float, default=None, help="seconds (45; quick 20)")
    parser.add_argument(
        "--steady-from",
        type=float,
        default=None,
        help="start of the steady window, seconds (15; quick 8)",
    )
    parser.add_argument("--rpm", type=int, default=600, help="the simulator's request limit")
    parser.add_argument(
        "--tpm", type=int, default=60_000, help="the token limit of the tpm workload"
    )
    parser.add_argument("--tpm-rpm", type=int, default=1200, help="its request limit")
    parser.add_argument(
        "--itpm", type=int, default=150_000, help="the input-token limit of the io workload"
    )
    parser.add_argument(
        "--otpm", type=int, default=6_000, help="the output-token limit of the io workload"
    )
    parser.add_argument(
        "--io-prompt-chars", type=int, default=8_000, help="the io workload's prompt length"
    )
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--prompt-chars", type=int, default=400)
    parser.add_argument(
        "--messages", type=int, default=1, help="turns the prompt is split over (user last)"
    )
    parser.add_argument("--output-tokens", type=int, default=20, help="answers: from this")
    parser.add_argument("--output-tokens-max", type=int, default=100, help="... to this")
    parser.add_argument("--ttft", type=float, default=0.1)
    parser.add_argument("--ttft-max", type=float, default=0.4)
    parser.add_argument("--tps", type=float, default=400.0, help="tokens per second a stream")
    parser.add_argument("--max-concurrency", type=int, default=256)
    parser.add_argument("--backlog", type=int, default=512, help="calls submitted at a time")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.workloads = args.workloads or (["rpm"] if args.quick else list(WORKLOADS))
    args.duration = args.duration or (20.0 if args.quick else 45.0)
    if args.steady_from is None:
        args.steady_from = 8.0 if args.quick else 15.0
    if not 0 < args.steady_from < args.duration:
        parser.error("--steady-from must be within (0, --duration)")
    _raise_fd_limit()

    workloads = {
        "rpm": Limits(rpm=args.rpm, tpm=None),
        "tpm": Limits(rpm=args.tpm_rpm, tpm=args.tpm),
        "io": Limits(
            rpm=args.tpm_rpm, tpm=None, itpm=args.itpm, otpm=args.otpm, family="anthropic"
        ),
    }
    sim_config = {
        "port": 0,
        "log_size": 0,
        "strict_models": True,
        "models": {
            MODEL: {
                "ttft": args.ttft,
                "ttft_max": args.ttft_max,
                "tokens_per_second": args.tps,
                "output_tokens": args.output_tokens,
                "output_tokens_max": args.output_tokens_max,
            }
        },
        "key_rate_limits": {
            f"sk-{name}": {
                "rpm": workloads[name].rpm,
                "tpm": workloads[name].tpm,
                "itpm": workloads[name].itpm,
                "otpm": workloads[name].otpm,
            }
            for name in args.workloads
        },
    }
    started = time.perf_counter()
    print("swarm rate limiting against the simulator's enforced limits: throughput and 429s")
    print(_versions())
    print(
        f"{platform.machine()}, {os.cpu_count()} cores; simulator in its own process"
        f"{f' on core {args.sim_core}' if (os.cpu_count() or 1) > 1 else ''}; engine on trio; "
        f"load average {_load()}"
    )
    print(
        f"each run: {args.duration:g} s of flood, engine.map with {args.backlog} calls "
        f"submitted at a time, max_concurrency {args.max_concurrency}; calls of "
        f"{args.prompt_chars} prompt chars in {args.messages} message(s), max_tokens "
        f"{args.max_tokens}, answers "
        f"{args.output_tokens}-{args.output_tokens_max} tokens at {args.tps:g} tok/s after "
        f"{args.ttft:g}-{args.ttft_max:g} s; steady window from {args.steady_from:g} s"
    )
    print(
        f"goal: >= {GOAL_THROUGHPUT:g}% of the allowed throughput (steady and whole run) "
        f"with < {GOAL_429:g}% of requests answered 429"
    )
    out: dict[str, Any] = {"versions": _versions(), "load_start": _load(), "runs": []}
    ok = True
    sim = Simulator(sim_config, args.sim_core)
    try:
        for name in args.workloads:
            limits = workloads[name]
            print()
            print(
                f"workload {name}: simulator limits {limits.describe()} "
                f"(per minute; bucket starts full)"
                + (
                    f"; {limits.family} wire, prompts of {args.io_prompt_chars} chars"
                    if name == "io"
                    else ""
                )
            )
            results = []
            for config in args.configs:
                results.append(run_one(sim, name, config, limits, args))
            if results:
                r0 = results[0]
                cost = r0["tokens_per_call"]
                binds = limits.binding(cost, r0["itpm_tokens_per_call"], r0["otpm_tokens_per_call"])
                print(
                    f"  {cost:.0f} tokens charged a call; allowed: "
                    f"{r0['allowed_calls_per_minute']:.0f} calls/min ({binds} binds)"
                )
            print(HEADER)
            for r in results:
                print(row(r))
            for r in results:
                print(detail(r))
            for r in results:
                for line in problems(r):
                    print(line)
                    ok = False
                out["runs"].append(r)
    finally:
        sim.close()
    elapsed = time.perf_counter() - started
    out["load_end"] = _load()
    out["seconds"] = elapsed
    met = [f"{r['workload']}/{r['config']}" for r in out["runs"] if r["goal"]]
    missed = [f"{r['workload']}/{r['config']}" for r in out["runs"] if not r["goal"]]
    print()
    print(f"goal met: {', '.join(met) or 'none'}; not met: {', '.join(missed) or 'none'}")
    print(f"done in {elapsed:.0f} s; load average {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
