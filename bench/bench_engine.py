"""The engine's overhead against the simulator, side by side with a raw httpx loop, in one run.

The simulator runs in its own process (``python -m providers.sim``) pinned to one
core; every client runs in a fresh process of its own pinned to the other core,
one after another, all on 127.0.0.1, every run bounded in count and time.
Clients (all on trio unless ``--backend asyncio``):

* ``raw-httpx``: the floor most people write: ``httpx.AsyncClient.stream``,
  ``aiter_bytes()``, split lines, ``msgspec`` decode of each ``data:`` line into a
  small typed Struct, count the text deltas;
* ``providers.client``: our thin client (``providers.client.stream``), no runtime;
* ``engine.stream``: ``swarm.open_engine`` with one ``ProviderConfig(family="openai",
  base_url=<the simulator>)`` sized to the streams, one ``engine.stream`` consumer
  task per stream, every event delivered to the caller;
* ``engine.map``: the same engine through ``engine.map`` (results only: the
  engine decodes and assembles each response but delivers no per-token events);
* ``engine.stream/httpx``: ``engine.stream`` with ``transport="httpx"`` (httpx's
  own transport, sharded pools) in place of the default ``providers.transport``.

Every client sends the same request bytes (built by the ``openai`` family), so the
simulator serves the same streams to all. Figures:

1. **CPU per million streamed tokens**: client process CPU (``getrusage``, user +
   system) from just before the streams start to just after the last ends (after
   one warm-up call); ``full``: the simulator unpaced (tokens arrive in large
   reads); ``paced``: ``--paced-tps`` tokens/s per stream, so every token is its own
   network read (``reads/tok``, counted by wrapping ``socket.recv``, shows it).
   Median [min-max] over ``--runs`` runs, runs interleaved across clients, and the
   ratio of medians to ``raw-httpx``. The simulator's CPU over the same run shows
   it was not the bottleneck.
2. **Memory per concurrent stream**: ``--mem-streams`` slow streams started at
   once, long enough to outlast the measurement; client RSS (``VmRSS``) before the
   streams and its peak once every stream has delivered a token (or the ramp limit
   passed, which is then reported), divided by the streams. The streams really in
   flight are counted three ways: by the consumers (delivered a token, not ended),
   by the engine (``statistics().providers["sim"].running``) and by the simulator
   (``/sim/stats`` ``active_streams``). Errors are counted and the first is shown.
   The pace is one token per ``--mem-interval`` = 1 s: at 5,000 streams one token
   per 100 ms would be 50,000 tokens/s, several cores' worth for any of these
   clients, and the figure would mix memory with a CPU-starved client.
3. **Latency to first token at low load**: the simulator at ``ttft = 0``; one call
   at a time, ``--ttft-calls`` calls per client spread over ``--ttft-rounds``
   processes interleaved across clients, each after warm-up calls; from just
   before the call to the first text delta; p50 and p99 per client and engine
   minus raw. ``socket (floor)`` is one blocking socket and the time to the
   response's first bytes: what the simulator and the kernel take.

Past ~1,000 streams started at once, clients open new streams ever more slowly
(for one ``httpx.AsyncClient``: httpcore 1.0's pool scans every connection and
queued request under one lock for each request); section 2 reports how many of
5,000 got open within ``--mem-ramp-limit``, and the retries, rather than hiding it.

Run: ``python bench/bench_engine.py [--quick] [--json FILE]`` (full: ~6 minutes on 2
cores; ``--quick``: under 2 minutes). Figures are only the engine's on a quiet
machine: the load average is printed at the start and at the end. Exit status 0
when every figure is clean (no errors, the right token counts, every stream open
at once), 1 otherwise (a line starting with ``!`` says what).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import msgspec

ROOT = Path(__file__).resolve().parent.parent

CLIENTS = (
    "raw-httpx",
    "providers.client",
    "engine.stream",
    "engine.map",
    "engine.stream/httpx",
)
MEM_CLIENTS = ("engine.stream", "engine.stream/httpx", "raw-httpx")
SOCKET = "socket (floor)"
TTFT_CLIENTS = (SOCKET, "raw-httpx", "providers.client", "engine.stream")
RAW = "raw-httpx"
ENGINE = "engine.stream"
KEY = "sk-bench"
PROMPT = "go"

# Simulator models, one per workload (their profiles come from the flags).
FULL, PACED, SLOW, FIRST = "full", "paced", "slow", "first"

# -- the simulator process -------------------------------------------------------------


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Simulator:
    """``python -m providers.sim`` in a child process pinned to ``core``."""

    def __init__(self, models: dict[str, dict[str, float]], core: int) -> None:
        self._cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"port": 0, "log_size": 0, "models": models}, self._cfg)
        self._cfg.close()
        code = (
            "import sys\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from bench_engine import _pin, _raise_fd_limit\n"
            f"_raise_fd_limit(); _pin({core})\n"
            "from providers.sim.cli import main\n"
            f"sys.exit(main(['--config', {self._cfg.name!r}]))\n"
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

    def cpu(self) -> float:
        """CPU seconds (user + system) the simulator has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        return sim_stats(self.port)

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


def sim_stats(port: int) -> dict[str, Any]:
    """``GET /sim/stats`` over a plain blocking socket (no client library)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /sim/stats HTTP/1.1\r\nhost: sim\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


# -- the client side (runs in a worker process) -----------------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta


class _Chunk(msgspec.Struct):
    choices: list[_Choice]


_CHUNK = msgspec.json.Decoder(_Chunk)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


_READS = [0]


def _count_reads() -> None:
    """Count socket reads that return data, in this process (workers only).

    It wraps ``socket.socket.recv`` and ``recv_into`` before trio, asyncio and
    httpcore bind them, so the figure is real network reads, not HTTP chunks (h11
    yields one chunk per HTTP chunk, which would hide coalesced reads). Every
    client pays the same one Python call per read.
    """
    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def counted_recv(self: socket.socket, *args: Any) -> bytes:
        data = recv(self, *args)
        if data:
            _READS[0] += 1
        return data

    def counted_recv_into(self: socket.socket, *args: Any) -> int:
        n = recv_into(self, *args)
        if n:
            _READS[0] += 1
        return n

    socket.socket.recv = counted_recv  # type: ignore[method-assign,assignment]
    socket.socket.recv_into = counted_recv_into  # type: ignore[method-assign,assignment]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Job(msgspec.Struct, kw_only=True):
    """What one worker process runs (sent as JSON on its command line)."""

    what: Literal["cpu", "mem", "ttft"]
    client: str
    base_url: str
    port: int
    model: str
    streams: int = 1
    calls: int = 0
    warmup: int = 0
    ramp_limit: float = 60.0
    hold: float = 1.0
    backend: str = "trio"
    core: int = 1


class Worker:
    """One client kind against the simulator, in this process."""

    def __init__(self, job: Job) -> None:
        import httpx

        # Everything a client may import, before the setup baseline is taken.
        import providers.client  # noqa: F401
        import swarm  # noqa: F401
        from providers.families import Endpoint, get_family
        from providers.messages import Message, Request
        from providers.secrets import Secret

        self.setup_rss0, self.setup_cpu0, self.setup_cpu = 0, 0.0, 0.0
        self.job = job
        self.family = get_family("openai")
        self.endpoint = Endpoint(provider="sim", base_url=job.base_url, api_key=Secret(KEY))
        self.request = Request(model=job.model, messages=[Message.user(PROMPT)], max_tokens=100_000)
        # Warm-ups go to the quick model, whatever the job measures.
        self.warm = msgspec.structs.replace(self.request, model=FIRST)
        built = self.family.build_request(self.request, self.endpoint, stream=True)
        self.url = built.url
        self.headers = built.wire_headers()
        self.bodies = {
            r.model: self.family.build_request(r, self.endpoint, stream=True).body
            for r in (self.request, self.warm)
        }
        size = max(job.streams, 1)
        self.limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.timeout = httpx.Timeout(connect=30.0, read=None, write=30.0, pool=60.0)
        self.errors = 0
        self.first_error = ""
        self.tokens = 0
        self.open_now = 0  # streams that delivered a token and have not ended
        self.open_max = 0

    def error(self, exc: BaseException | str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"

    # One stream per client kind; ``on_first`` runs at the first text delta.

    async def raw_stream(
        self, http: Any, on_first: Callable[[], None] | None = None, request: Any = None
    ) -> int:
        """The raw loop: bytes -> lines -> ``data:`` -> msgspec -> count text deltas."""
        body = self.bodies[(request or self.request).model]
        n = 0
        async with http.stream("POST", self.url, headers=self.headers, content=body) as r:
            if r.status_code != 200:
                await r.aread()
                raise RuntimeError(f"status {r.status_code}")
            buf = b""
            async for chunk in r.aiter_bytes():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: ") and line != b"data: [DONE]":
                        for choice in _CHUNK.decode(line[6:]).choices:
                            if choice.delta.content:
                                if n == 0 and on_first is not None:
                                    on_first()
                                n += 1
        return n

    async def client_stream(
        self, http: Any, on_first: Callable[[], None] | None = None, request: Any = None
    ) -> int:
        from providers.client import stream
        from providers.events import TextDelta

        n = 0
        request = request or self.request
        async with stream(http, self.endpoint, request, family=self.family) as events:
            async for event in events:
                if type(event) is TextDelta:
                    if n == 0 and on_first is not None:
                        on_first()
                    n += 1
        return n

    async def engine_stream(
        self, engine: Any, on_first: Callable[[], None] | None = None, request: Any = None
    ) -> int:
        from providers.events import TextDelta
        from swarm import Cancelled, Failed

        n = 0
        async with engine.stream(request or self.request) as call:
            async for event in call:
                if type(event) is TextDelta:
                    if n == 0 and on_first is not None:
                        on_first()
                    n += 1
                elif isinstance(event, Failed):
                    raise RuntimeError(f"{event.error.kind}: {event.error.message}")
                elif isinstance(event, Cancelled):
                    raise RuntimeError(f"cancelled ({event.reason})")
        return n

    def engine(self) -> Any:
        import swarm  # already imported by __init__

        config = swarm.EngineConfig(
            providers={
                "sim": swarm.ProviderConfig(
                    family="openai",
                    base_url=self.job.base_url,
                    api_key=KEY,
                    max_concurrency=max(self.job.streams, 1),
                    # "engine.stream/httpx": the engine on httpx's own transport.
                    transport="httpx" if self.job.client.endswith("/httpx") else "streaming",
                )
            },
            default_provider="sim",
        )
        return swarm.open_engine(config, env={})

    # The three measurements.

    async def run(self) -> dict[str, Any]:
        import httpx

        job = self.job
        measure: Callable[[Any, Callable[..., Any]], Awaitable[dict[str, Any]]] = {
            "cpu": self.cpu,
            "mem": self.mem,
            "ttft": self.ttft,
        }[job.what]
        # What building the client (or opening the engine) costs, before any call.
        self.setup_rss0, self.setup_cpu0 = _rss_kb(), _cpu()
        if job.client.startswith("engine"):
            async with self.engine() as engine:
                self.setup_cpu = _cpu() - self.setup_cpu0
                return await measure(engine, self.engine_stream)
        async with httpx.AsyncClient(limits=self.limits, timeout=self.timeout) as http:
            self.setup_cpu = _cpu() - self.setup_cpu0
            return await measure(http, self.raw_stream if job.client == RAW else self.client_stream)

    async def cpu(self, target: Any, one: Callable[..., Any]) -> dict[str, Any]:
        import anyio

        job = self.job
        await one(target, None, self.warm)  # warm-up: imports, first connection, caches
        wall0, cpu0, reads0 = time.perf_counter(), _cpu(), _READS[0]
        if job.client.startswith("engine.map"):
            await self._map(target)
        else:

            async def stream() -> None:
                try:
                    n = await one(target)
                except Exception as exc:
                    self.error(exc)
                else:
                    self.tokens += n  # after the await: ``+=`` would read a stale total

            async with anyio.create_task_group() as tg:
                for _ in range(job.streams):
                    tg.start_soon(stream)
        cpu1, wall1 = _cpu(), time.perf_counter()
        return {
            "cpu": cpu1 - cpu0,
            "wall": wall1 - wall0,
            "reads": _READS[0] - reads0,
            "tokens": self.tokens,
            "errors": self.errors,
            "first_error": self.first_error,
        }

    async def _map(self, engine: Any) -> None:
        requests = [self.request] * self.job.streams
        async for result in engine.map(requests, concurrency=self.job.streams):
            response = result.response
            if response is None:
                self.error(f"{type(result.event).__name__}: {getattr(result.event, 'error', '')}")
            else:
                self.tokens += response.usage.output_tokens

    async def mem(self, target: Any, one: Callable[..., Any]) -> dict[str, Any]:
        import anyio

        job = self.job
        await one(target, None, self.warm)  # warm-up, then the baseline
        _raise_fd_limit()
        rss0 = _rss_kb()
        running_max = -1  # stays -1 without an engine
        rss_peak = rss0
        sim_active = -1
        done = 0

        def first() -> None:
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)

        async def stream() -> None:
            nonlocal done
            counted = [False]

            def on_first() -> None:
                counted[0] = True
                first()

            try:
                await one(target, on_first)
            except Exception as exc:
                self.error(exc)
            finally:
                done += 1
                if counted[0]:
                    self.open_now -= 1

        def running() -> int:
            if not job.client.startswith("engine"):
                return -1
            return int(target.statistics().providers["sim"].running)

        wall0, cpu0 = time.perf_counter(), _cpu()
        opened_at = math.nan
        async with anyio.create_task_group() as tg:
            for _ in range(job.streams):
                tg.start_soon(stream)
            deadline = wall0 + job.ramp_limit
            # Ramp: until every stream delivered a token, all ended, or time is up.
            while self.open_now < job.streams and done < job.streams:
                if time.perf_counter() > deadline:
                    break
                await anyio.sleep(0.1)
                running_max = max(running_max, running())
                rss_peak = max(rss_peak, _rss_kb())
            if self.open_now == job.streams:
                opened_at = time.perf_counter() - wall0
            # Hold: sample while the streams stay open.
            hold_until = time.perf_counter() + job.hold
            while time.perf_counter() < hold_until and done < job.streams:
                await anyio.sleep(0.1)
                running_max = max(running_max, running())
                rss_peak = max(rss_peak, _rss_kb())
            in_flight_at_peak = self.open_now
            retries = -1
            if job.client.startswith("engine"):
                stats = target.statistics().providers["sim"]
                retries = int(stats.retries)
            try:
                sim_active = int(sim_stats(job.port)["active_streams"])
            except OSError as exc:
                self.error(f"GET /sim/stats: {exc}")
            tg.cancel_scope.cancel()
        return {
            "setup_rss_kb": self.setup_rss0,
            "setup_cpu": self.setup_cpu,
            "rss_before_kb": rss0,
            "rss_peak_kb": rss_peak,
            "open_max": self.open_max,
            "open_at_peak": in_flight_at_peak,
            "running_max": running_max,
            "sim_active": sim_active,
            "opened_after": opened_at,
            "retries": retries,
            "wall": time.perf_counter() - wall0,
            "cpu": _cpu() - cpu0,
            "errors": self.errors,
            "first_error": self.first_error,
        }

    async def ttft(self, target: Any, one: Callable[..., Any]) -> dict[str, Any]:
        job = self.job
        latencies: list[float] = []
        for i in range(job.warmup + job.calls):
            t1 = [math.nan]

            def on_first(t1: list[float] = t1) -> None:
                t1[0] = time.perf_counter()

            t0 = time.perf_counter()
            try:
                await one(target, on_first)
            except Exception as exc:
                self.error(exc)
                continue
            if i >= job.warmup:
                latencies.append(t1[0] - t0)
        return {"latencies": latencies, "errors": self.errors, "first_error": self.first_error}


def socket_ttft(job: Job) -> dict[str, Any]:
    """The floor of section 3: one blocking socket, the request in one write, the
    time to the response's first bytes (no HTTP library, no event loop)."""
    from providers.families import Endpoint, get_family
    from providers.messages import Message, Request
    from providers.secrets import Secret

    family = get_family("openai")
    endpoint = Endpoint(provider="sim", base_url=job.base_url, api_key=Secret(KEY))
    request = Request(model=job.model, messages=[Message.user(PROMPT)], max_tokens=100_000)
    built = family.build_request(request, endpoint, stream=True)
    path = "/" + built.url.split("/", 3)[3]
    headers = {**built.wire_headers(), "host": f"127.0.0.1:{job.port}"}
    headers["content-length"] = str(len(built.body))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    wire = f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + built.body
    latencies: list[float] = []
    errors, first_error = 0, ""
    with socket.create_connection(("127.0.0.1", job.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(job.warmup + job.calls):
            t0 = time.perf_counter()
            sock.sendall(wire)
            data = sock.recv(1 << 16)
            t1 = time.perf_counter()
            while data and not data.endswith(b"\r\n0\r\n\r\n"):
                data += sock.recv(1 << 16)
            if not data.startswith(b"HTTP/1.1 200"):
                errors += 1
                first_error = first_error or repr(data[:80])
                break
            if i >= job.warmup:
                latencies.append(t1 - t0)
    return {"latencies": latencies, "errors": errors, "first_error": first_error}


def worker_main(job_json: str) -> int:
    import anyio

    job = msgspec.json.decode(job_json, type=Job)
    _pin(job.core)
    _raise_fd_limit()
    if job.client == SOCKET:
        result = socket_ttft(job)
        print(json.dumps(result), flush=True)
        return 0
    if job.what == "cpu":
        _count_reads()
    worker = Worker(job)
    result = anyio.run(worker.run, backend=job.backend)
    print(json.dumps(result), flush=True)
    return 0


# -- the parent: runs the workers, prints the table ---------------------------------------


def run_worker(sim: Simulator, job: Job, time_limit: float) -> dict[str, Any]:
    """One client process; its result plus the simulator's CPU over its run."""
    before = sim.cpu()
    stats0 = sim.stats()["tokens"]["output"]
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", msgspec.json.encode(job).decode()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=time_limit,
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"no result within {time_limit:.0f} s (killed)"}
    sim_cpu = sim.cpu() - before
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"failed": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["sim_cpu"] = sim_cpu
    result["sim_tokens"] = sim.stats()["tokens"]["output"] - stats0
    return result


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def _pct(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks."""
    if not xs:
        return math.nan
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _range(xs: Sequence[float], fmt: str) -> str:
    if len(xs) < 2:
        return format(xs[0], fmt) if xs else "-"
    return f"{format(_med(xs), fmt)} [{format(min(xs), fmt)}-{format(max(xs), fmt)}]"


def _versions() -> str:
    names = ("httpx", "httpcore", "h11", "anyio", "trio", "msgspec")
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} -")
    return f"python {platform.python_version()}, " + ", ".join(parts)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


def cpu_section(
    sim: Simulator, args: argparse.Namespace, out: dict[str, Any], clients: Sequence[str]
) -> bool:
    ok = True
    workloads = [
        ("full", FULL, args.full_streams, args.full_tokens, "unpaced"),
        ("paced", PACED, args.paced_streams, args.paced_tokens, f"{args.paced_tps:g} tok/s"),
    ]
    print(
        f"1. CPU per million streamed tokens (client process CPU, user+sys; "
        f"median [min-max] of {args.runs} run{'s' * (args.runs > 1)})"
    )
    header = (
        f"{'workload':<9}{'client':<20}{'streams':>8}{'tokens':>10}{'CPU s':>24}"
        f"{'CPU s / M tok':>26}{'x raw':>7}{'reads/tok':>10}{'sim CPU s':>11}{'wall s':>8}"
        f"{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, model, streams, tokens, pace in workloads:
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        for _ in range(args.runs):
            for client in clients:  # interleaved: load drift hits every client alike
                job = Job(
                    what="cpu",
                    client=client,
                    base_url=sim.base_url,
                    port=sim.port,
                    model=model,
                    streams=streams,
                    backend=args.backend,
                    core=args.client_core,
                )
                results[client].append(run_worker(sim, job, args.time_limit))
        raw_med = _med([r["cpu"] for r in results.get(RAW, []) if "cpu" in r])
        for client in clients:
            good = [r for r in results[client] if "failed" not in r]
            failed = [r["failed"] for r in results[client] if "failed" in r]
            expected = streams * tokens
            errors = sum(r["errors"] for r in good) + len(failed)
            wrong = [r["tokens"] for r in good if r["tokens"] != expected]
            cpus = [r["cpu"] for r in good]
            per_m = [c / expected * 1e6 for c in cpus]
            ratio = _med(cpus) / raw_med if cpus and raw_med > 0 else math.nan
            print(
                f"{label:<9}{client:<20}{streams:>8}{expected:>10}{_range(cpus, '.3f'):>24}"
                f"{_range(per_m, '.2f'):>26}{ratio:>7.2f}"
                f"{_med([r['reads'] / expected for r in good]):>10.3f}"
                f"{_med([r['sim_cpu'] for r in good]):>11.2f}"
                f"{_med([r['wall'] for r in good]):>8.2f}{errors:>8}"
            )
            for msg in failed + [r["first_error"] for r in good if r["first_error"]][:1]:
                print(f"   ! {client}: {msg}")
            if wrong:
                print(f"   ! {client}: counted {wrong} tokens, expected {expected}")
            ok &= not failed and not wrong and errors == 0
            out.setdefault("cpu", []).append(
                {
                    "workload": label,
                    "pace": pace,
                    "client": client,
                    "streams": streams,
                    "tokens": expected,
                    "cpu_s": cpus,
                    "cpu_s_per_m_tokens": per_m,
                    "ratio_to_raw": ratio,
                    "reads_per_token": [r["reads"] / expected for r in good],
                    "sim_cpu_s": [r["sim_cpu"] for r in good],
                    "wall_s": [r["wall"] for r in good],
                    "errors": errors,
                    "failed": failed,
                }
            )
    print(
        f"   full: {args.full_streams} x {args.full_tokens} tokens, simulator unpaced; "
        f"paced: {args.paced_streams} x {args.paced_tokens} tokens at {args.paced_tps:g} "
        "tokens/s (one token per read); CPU s / M tok = CPU s per million tokens = "
        "CPU us per token"
    )
    print()
    return ok


def mem_section(
    sim: Simulator, args: argparse.Namespace, out: dict[str, Any], clients: Sequence[str]
) -> bool:
    ok = True
    print(
        f"2. Memory per concurrent stream (1 token / {args.mem_interval * 1000:g} ms; client RSS "
        "from before the streams to its peak with all open)"
    )
    header = (
        f"{'client':<20}{'streams':>8}{'in flight':>10}{'engine':>8}{'sim':>7}"
        f"{'setup MB':>10}{'setup CPU s':>13}{'RSS before MB':>15}{'RSS peak MB':>13}"
        f"{'KB/stream':>11}{'all open s':>12}{'CPU s':>8}{'sim CPU s':>11}{'retries':>9}"
        f"{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    for n in args.mem_streams:
        for client in clients:
            job = Job(
                what="mem",
                client=client,
                base_url=sim.base_url,
                port=sim.port,
                model=SLOW,
                streams=n,
                ramp_limit=args.mem_ramp_limit,
                hold=args.mem_hold,
                backend=args.backend,
                core=args.client_core,
            )
            r = run_worker(sim, job, args.mem_ramp_limit + args.mem_hold + 120)
            if "failed" in r:
                print(f"{client:<20}{n:>8}   ! failed: {r['failed']}")
                out.setdefault("memory", []).append({"client": client, "streams": n, **r})
                ok = False
                continue
            per = (r["rss_peak_kb"] - r["rss_before_kb"]) / n
            engine_running = str(r["running_max"]) if r["running_max"] >= 0 else "-"
            retries = str(r["retries"]) if r["retries"] >= 0 else "-"
            opened = f"{r['opened_after']:.1f}" if not math.isnan(r["opened_after"]) else "never"
            print(
                f"{client:<20}{n:>8}{r['open_at_peak']:>10}{engine_running:>8}{r['sim_active']:>7}"
                f"{(r['rss_before_kb'] - r['setup_rss_kb']) / 1024:>10.1f}{r['setup_cpu']:>13.2f}"
                f"{r['rss_before_kb'] / 1024:>15.1f}{r['rss_peak_kb'] / 1024:>13.1f}{per:>11.1f}"
                f"{opened:>12}{r['cpu']:>8.2f}{r['sim_cpu']:>11.2f}{retries:>9}{r['errors']:>8}"
            )
            if r["first_error"]:
                print(f"   ! {client} at {n}: {r['errors']} errors, first: {r['first_error']}")
            if r["open_at_peak"] < n:
                print(
                    f"   ! {client} at {n}: only {r['open_at_peak']} of {n} streams were open at "
                    f"once (max {r['open_max']}) within the {args.mem_ramp_limit:g} s ramp limit; "
                    "KB/stream is the growth over all the streams asked for"
                )
            ok &= r["errors"] == 0 and r["open_at_peak"] == n
            out.setdefault("memory", []).append(
                {"client": client, "streams": n, "kb_per_stream": per, **r}
            )
    print(
        "   in flight: streams that delivered a token and had not ended, counted by the "
        "consumers; engine: the provider actor's running calls (max seen); sim: the "
        "simulator's active streams at the peak; retries: the engine's silent retries "
        "(before any byte reached the caller); setup: building the client or opening the "
        "engine sized to the streams, plus one warm-up call (RSS before minus RSS after "
        "imports), not in KB/stream"
    )
    print()
    return ok


def ttft_section(
    sim: Simulator, args: argparse.Namespace, out: dict[str, Any], clients: Sequence[str]
) -> bool:
    ok = True
    rounds = max(1, min(args.ttft_rounds, args.ttft_calls))
    print(
        f"3. Latency to first token at low load (one call at a time; {args.ttft_calls} calls per "
        f"client in {rounds} process{'es' * (rounds > 1)}, interleaved, each after "
        f"{args.ttft_warmup} warm-up calls; simulator ttft 0, {args.ttft_tokens} tokens)"
    )
    header = f"{'client':<22}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}{'sim CPU s':>11}{'errors':>8}"
    print(header)
    print("-" * len(header))
    lat: dict[str, list[float]] = {c: [] for c in clients}
    sim_cpu: dict[str, float] = {c: 0.0 for c in clients}
    errors: dict[str, int] = {c: 0 for c in clients}
    first_error: dict[str, str] = {}
    for k in range(rounds):
        # Interleaved rounds: load drift on a shared machine hits every client alike.
        calls = args.ttft_calls // rounds + (k < args.ttft_calls % rounds)
        for client in clients:
            job = Job(
                what="ttft",
                client=client,
                base_url=sim.base_url,
                port=sim.port,
                model=FIRST,
                calls=calls,
                warmup=args.ttft_warmup,
                backend=args.backend,
                core=args.client_core,
            )
            r = run_worker(sim, job, args.time_limit)
            if "failed" in r:
                errors[client] += 1
                first_error.setdefault(client, r["failed"])
                continue
            lat[client] += [x * 1000 for x in r["latencies"] if not math.isnan(x)]
            sim_cpu[client] += r["sim_cpu"]
            errors[client] += r["errors"]
            if r["first_error"]:
                first_error.setdefault(client, r["first_error"])
    for client in clients:
        xs = lat[client]
        print(
            f"{client:<22}{len(xs):>7}{_pct(xs, 50):>10.3f}{_pct(xs, 99):>10.3f}"
            f"{sim_cpu[client]:>11.2f}{errors[client]:>8}"
        )
        if client in first_error:
            print(f"   ! {client}: {first_error[client]}")
        ok &= errors[client] == 0 and len(xs) == args.ttft_calls
        out.setdefault("ttft", []).append(
            {
                "client": client,
                "calls": len(xs),
                "p50_ms": _pct(xs, 50),
                "p99_ms": _pct(xs, 99),
                "errors": errors[client],
            }
        )
    if lat.get(RAW) and lat.get(ENGINE):
        d50 = _pct(lat[ENGINE], 50) - _pct(lat[RAW], 50)
        d99 = _pct(lat[ENGINE], 99) - _pct(lat[RAW], 99)
        print(f"{'engine - raw':<22}{'':>7}{d50:>+10.3f}{d99:>+10.3f}")
        out["ttft_engine_added_ms"] = {"p50": d50, "p99": d99}
    print(
        f"   {SOCKET}: one blocking socket, time to the response's first bytes (what the "
        "simulator and the kernel take); the others: to the first text delta decoded"
    )
    print()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run (~2 min)")
    parser.add_argument("--runs", type=int, default=None, help="runs per CPU figure (3; quick 1)")
    parser.add_argument("--full-streams", type=int, default=100)
    parser.add_argument("--full-tokens", type=int, default=1000)
    parser.add_argument("--paced-streams", type=int, default=100)
    parser.add_argument("--paced-tokens", type=int, default=None, help="100 (quick 40)")
    parser.add_argument("--paced-tps", type=float, default=20.0)
    parser.add_argument(
        "--mem-streams", type=int, nargs="+", default=None, help="1000 5000 (quick 1000)"
    )
    parser.add_argument(
        "--mem-interval", type=float, default=1.0, help="seconds between tokens of a slow stream"
    )
    parser.add_argument(
        "--mem-ramp-limit",
        type=float,
        default=None,
        help="seconds allowed to open every stream (60; quick 30)",
    )
    parser.add_argument(
        "--mem-hold", type=float, default=2.0, help="seconds sampled once all are open"
    )
    parser.add_argument("--ttft-calls", type=int, default=None, help="200 (quick 100)")
    parser.add_argument("--ttft-warmup", type=int, default=20)
    parser.add_argument(
        "--ttft-rounds",
        type=int,
        default=None,
        help="processes per client, interleaved (4; quick 2)",
    )
    parser.add_argument("--ttft-tokens", type=int, default=16)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument(
        "--mem-clients", nargs="+", choices=MEM_CLIENTS, default=None, help="both by default"
    )
    parser.add_argument(
        "--sections", nargs="+", choices=("cpu", "mem", "ttft"), default=["cpu", "mem", "ttft"]
    )
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument(
        "--time-limit", type=float, default=180.0, help="seconds allowed per client process"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.paced_tokens = args.paced_tokens or (40 if quick else 100)
    args.ttft_calls = args.ttft_calls or (100 if quick else 200)
    args.ttft_rounds = args.ttft_rounds or (2 if quick else 4)
    args.mem_streams = args.mem_streams or ([1000] if quick else [1000, 5000])
    args.mem_ramp_limit = args.mem_ramp_limit or (30.0 if quick else 60.0)
    mem_clients = args.mem_clients or list(MEM_CLIENTS)
    ttft_clients = [c for c in TTFT_CLIENTS if c in args.clients or c == SOCKET]
    _raise_fd_limit()

    # The slow streams must outlast the ramp and the hold.
    slow_tokens = math.ceil((args.mem_ramp_limit + args.mem_hold + 30) / args.mem_interval)
    models = {
        FULL: {"ttft": 0.0, "tokens_per_second": 0.0, "output_tokens": args.full_tokens},
        PACED: {
            "ttft": 0.0,
            "tokens_per_second": args.paced_tps,
            "output_tokens": args.paced_tokens,
        },
        SLOW: {
            "ttft": 0.0,
            "tokens_per_second": 1.0 / args.mem_interval,
            "output_tokens": slow_tokens,
        },
        FIRST: {"ttft": 0.0, "tokens_per_second": 0.0, "output_tokens": args.ttft_tokens},
    }
    started = time.perf_counter()
    print("swarm engine overhead against the simulator, side by side with a raw httpx loop")
    print(_versions())
    print(
        f"{platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores; simulator pinned to "
        f"core {args.sim_core}, each client in its own process on core {args.client_core}; "
        f"backend {args.backend}; load average {_load()}"
    )
    print()
    out: dict[str, Any] = {
        "versions": _versions(),
        "machine": f"{platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores",
        "backend": args.backend,
        "load_start": _load(),
    }
    sim = Simulator(models, args.sim_core)
    ok = True
    try:
        if "cpu" in args.sections:
            ok &= cpu_section(sim, args, out, args.clients)
        if "mem" in args.sections:
            ok &= mem_section(sim, args, out, mem_clients)
        if "ttft" in args.sections:
            ok &= ttft_section(sim, args, out, ttft_clients)
    finally:
        sim.close()
    elapsed = time.perf_counter() - started
    out["load_end"] = _load()
    out["seconds"] = elapsed
    print(f"done in {elapsed:.0f} s; load average {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
