"""Benchmarks of the simulator: full-speed throughput and many slow streams.

The simulator runs in its own process pinned to one core (``python -m
providers.sim``, on trio); the load comes from this process, pinned to another
core, through raw non-blocking sockets and ``selectors`` (far cheaper than an
HTTP client, so the client is not what limits the figures). Everything stays on
127.0.0.1 and every run is bounded in time.

1. **throughput**: ``--conns`` keep-alive connections each send streaming
   requests back to back to an unpaced model (``tokens_per_second = 0``); the
   figure is output tokens per second the simulator served (its own count from
   ``/sim/stats``) over the wall time. Target: >= 200,000 tokens/s.
2. **slow**: ``--streams`` concurrent streams of a model paced at one token per
   100 ms (10 s each by default), started over ``--ramp`` seconds (default 5: a
   thousand new streams a second, so all 5,000 run at once from 5 s to 10 s);
   the figure is the simulator's own
   record of how late its paced writes were (p50/p99/max, ``/sim/stats``
   ``schedule_lag``), plus the client-side check that every stream completed.
   Target: p99 lateness <= 50 ms with 5,000 streams.

The simulator runs through ``python -m providers.sim`` (``gc`` tuned, see
``providers.sim.tune_gc``). To profile it, set ``SIM_BENCH_PROFILE`` to a script
that takes the simulator's arguments (``--config FILE``) and runs
``providers.sim.cli.main`` under a profiler.

The machine is shared: figures taken while other processes load the cores are
not the simulator's; run it on a quiet machine (``uptime`` load below 1).

Usage::

    python bench/bench_sim.py                 # both, default sizes
    python bench/bench_sim.py throughput --family anthropic --seconds 5
    python bench/bench_sim.py slow --streams 5000 --tokens 100 --ramp 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_REQUESTS = {
    "openai": (
        "/v1/chat/completions",
        {
            "model": "bench",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "go"}],
        },
    ),
    "anthropic": (
        "/v1/messages",
        {
            "model": "bench",
            "stream": True,
            "max_tokens": 100000,
            "messages": [{"role": "user", "content": "go"}],
        },
    ),
    "openai-responses": ("/v1/responses", {"model": "bench", "stream": True, "input": "go"}),
    "gemini": (
        "/v1beta/models/bench:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "go"}]}]},
    ),
}


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


class Server:
    """``python -m providers.sim`` in a child process pinned to core 0."""

    def __init__(self, config: dict[str, object]) -> None:
        self._cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"port": 0, "log_size": 0, **config}, self._cfg)
        self._cfg.close()
        code = (
            "import os, resource, sys\n"
            "s, h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))\n"
            "os.sched_setaffinity(0, {0}) if (os.cpu_count() or 1) > 1 else None\n"
            "from providers.sim.cli import main\n"
            f"sys.exit(main(['--config', {self._cfg.name!r}]))\n"
        )
        cmd = [sys.executable, "-c", code]
        if os.environ.get("SIM_BENCH_PROFILE"):
            cmd = [sys.executable, os.environ["SIM_BENCH_PROFILE"], "--config", self._cfg.name]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.close()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds the simulator process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def get(self, path: str) -> dict[str, object]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nhost: sim\r\nconnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return json.loads(data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]

    def close(self) -> None:
        self.proc.terminate()
        if os.environ.get("SIM_BENCH_PROFILE"):
            assert self.proc.stdout is not None
            print(self.proc.stdout.read())
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        os.unlink(self._cfg.name)


def _request_bytes(family: str) -> bytes:
    path, body = _REQUESTS[family]
    raw = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer bench\r\ncontent-length: {len(raw)}\r\n\r\n"
    ).encode() + raw


_END = b"\r\n0\r\n\r\n"


class _Conn:
    __slots__ = ("done", "sock", "tail")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tail = b""
        self.done = 0


def throughput(family: str, conns: int, seconds: float, tokens: int) -> dict[str, float]:
    """Back-to-back streaming requests to an unpaced model; tokens/s served."""
    server = Server({"default_profile": {"output_tokens": tokens, "tokens_per_second": 0}})
    try:
        req = _request_bytes(family)
        sel = selectors.DefaultSelector()
        cs = []
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.setblocking(False)
            c = _Conn(s)
            cs.append(c)
            sel.register(s, selectors.EVENT_READ, c)
            s.sendall(req)
        before = server.get("/sim/stats")["tokens"]["output"]  # type: ignore[index]
        t0 = time.perf_counter()
        deadline = t0 + seconds
        streams = 0
        while time.perf_counter() < deadline:
            for key, _ in sel.select(timeout=0.5):
                c = key.data
                data = c.sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("the simulator closed a connection")
                tail = (c.tail + data)[-16:]
                if tail.endswith(_END):
                    streams += 1
                    c.sock.sendall(req)
                    tail = b""
                c.tail = tail
        elapsed = time.perf_counter() - t0
        after = server.get("/sim/stats")["tokens"]["output"]  # type: ignore[index]
        for c in cs:
            c.sock.close()
        served = after - before
        return {
            "tokens": served,
            "seconds": round(elapsed, 2),
            "tokens_per_s": round(served / elapsed),
            "streams_done": streams,
        }
    finally:
        server.close()


def slow(family: str, streams: int, tokens: int, ramp: float, interval: float) -> dict[str, object]:
    """``streams`` concurrent paced streams; the simulator's schedule lateness."""
    server = Server(
        {
            "default_profile": {
                "output_tokens": tokens,
                "tokens_per_second": 1.0 / interval,
                "ttft": interval,
            }
        }
    )
    try:
        req = _request_bytes(family)
        sel = selectors.DefaultSelector()
        pending = list(range(streams))
        t0 = time.perf_counter()
        cpu0 = server.cpu_times()
        pcpu0 = time.process_time()
        open_: dict[int, _Conn] = {}
        completed = 0
        failed = 0
        deadline = t0 + ramp + tokens * interval + 60
        while (pending or open_) and time.perf_counter() < deadline:
            now = time.perf_counter()
            due = int(min(1.0, (now - t0) / ramp) * streams) if ramp > 0 else streams
            while pending and streams - len(pending) < due:
                pending.pop()
                s = socket.create_connection(("127.0.0.1", server.port))
                s.setblocking(False)
                c = _Conn(s)
                open_[s.fileno()] = c
                sel.register(s, selectors.EVENT_READ, c)
                s.sendall(req)
            for key, _ in sel.select(timeout=0.005):
                c = key.data
                try:
                    data = c.sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                tail = (c.tail + data)[-16:]
                c.tail = tail
                if not data or tail.endswith(_END):
                    completed += bool(data)
                    failed += not data
                    sel.unregister(c.sock)
                    del open_[c.sock.fileno()]
                    c.sock.close()
        stats = server.get("/sim/stats")
        time.perf_counter() - t0
        return {
            "server_cpu": round(sum(server.cpu_times()) - sum(cpu0), 2),
            "server_sys": round(server.cpu_times()[1] - cpu0[1], 2),
            "client_cpu": round(time.process_time() - pcpu0, 2),
            "streams": streams,
            "completed": completed,
            "failed": failed,
            "unfinished": len(open_) + len(pending),
            "seconds": round(time.perf_counter() - t0, 2),
            "schedule_lag": stats["schedule_lag"],
        }
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="?", choices=["throughput", "slow", "all"], default="all")
    parser.add_argument("--family", default="openai", choices=sorted(_REQUESTS))
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--tokens", type=int, default=None, help="tokens per stream (throughput: 2000; slow: 100)"
    )
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument(
        "--ramp", type=float, default=5.0, help="slow: seconds over which the streams start"
    )
    parser.add_argument("--interval", type=float, default=0.1, help="slow: seconds between tokens")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    _pin(1)
    ok = True
    if args.which in ("throughput", "all"):
        r = throughput(args.family, args.conns, args.seconds, args.tokens or 2000)
        good = r["tokens_per_s"] >= 200_000
        ok &= good
        print(
            f"throughput [{args.family}, {args.conns} conns, unpaced]: "
            f"{r['tokens_per_s']:,} tokens/s "
            f"({r['tokens']:,} tokens in {r['seconds']} s, {r['streams_done']} streams) "
            f"target >= 200,000: {'PASS' if good else 'FAIL'}",
            flush=True,
        )
    if args.which in ("slow", "all"):
        r2 = slow(args.family, args.streams, args.tokens or 100, args.ramp, args.interval)
        lag: dict[str, Any] = r2["schedule_lag"]  # type: ignore[assignment]
        good = lag["p99_ms"] <= 50 and r2["completed"] == args.streams
        ok &= good
        print(
            f"slow streams [{args.family}, {args.streams} streams, "
            f"1 token / {args.interval * 1000:g} ms]: "
            f"lag p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms over "
            f"{lag['writes']:,} writes; "
            f"completed {r2['completed']}/{args.streams}, failed {r2['failed']}; "
            f"{r2['seconds']} s, simulator CPU {r2['server_cpu']} s ({r2['server_sys']} s system), "
            f"client CPU {r2['client_cpu']} s; "
            f"target p99 <= 50 ms: {'PASS' if good else 'FAIL'}",
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
