"""One client of ``bench_clients.py`` in its own process: N concurrent streams or a
series of sequential calls against the simulator, figures as JSON on stdout.

Standalone on purpose: the peers run under their own interpreters (``.venv-clients``
for the SDKs and httpx-sse, ``.venv-litellm`` for LiteLLM, which pins its own
openai), so this file imports nothing at the top but the standard library, and each
client imports its library only when it runs. The two swarm clients import the
project from the checkout this file sits in.

Every client reads the same simulator streams (OpenAI Chat Completions, except the
anthropic SDK, which reads the same tokens as Anthropic Messages events) and counts
text deltas; the figures are this process's own CPU (``getrusage``) over the
measured part only, after a warm-up call.

Usage: ``python clients_worker.py '<job json>'``
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench"
PROMPT = "go"
WARM = "first"  # the simulator model warm-up calls use (short, unpaced)

# The clients, with the event loop each runs on (the one its users use).
BACKENDS = {
    "floor": "none",
    "floor-trio": "trio",
    "httpx-msgspec": "trio",
    "httpx-lines": "trio",
    "httpx-sse": "asyncio",
    "anthropic": "asyncio",
    "openai": "asyncio",
    "litellm": "asyncio",
    "swarm-client": "trio",
    "swarm-engine": "trio",
}
# What each client needs importable (to tell a missing peer from a failing one).
MODULES = {
    "floor": (),
    "floor-trio": ("trio",),
    "httpx-msgspec": ("httpx", "msgspec", "trio"),
    "httpx-lines": ("httpx", "trio"),
    "httpx-sse": ("httpx", "httpx_sse"),
    "anthropic": ("anthropic",),
    "openai": ("openai",),
    "litellm": ("litellm",),
    "swarm-client": ("swarm", "providers"),
    "swarm-engine": ("swarm", "providers"),
}
# Distributions whose versions a result reports.
VERSIONS = {
    "floor": (),
    "floor-trio": ("trio",),
    "httpx-msgspec": ("httpx", "httpcore", "msgspec", "trio"),
    "httpx-lines": ("httpx", "httpcore", "trio"),
    "httpx-sse": ("httpx", "httpcore", "httpx-sse"),
    "anthropic": ("anthropic", "httpx2", "httpcore2", "httpx", "pydantic"),
    "openai": ("openai", "httpx2", "httpcore2", "httpx", "pydantic"),
    "litellm": ("litellm", "openai", "httpx2", "httpx", "aiohttp", "pydantic"),
    "swarm-client": ("httpx", "httptools", "msgspec", "anyio", "trio"),
    "swarm-engine": ("httpx", "httptools", "msgspec", "anyio", "trio"),
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: ``5`` to ``clear_refs``), so the peak
    read after the streams is theirs, not the imports'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# _raise_fd_limit and _count_reads repeat bench_engine's on purpose: bench_engine
# imports msgspec at the top, which the peers' environments (LiteLLM's) lack.
READS = [0]


def _count_reads() -> None:
    """Count socket reads that return data (one Python call per read, paid alike by
    every client), so ``reads/token`` shows whether tokens arrived one per read."""
    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def counted_recv(self: socket.socket, *args: Any) -> bytes:
        data = recv(self, *args)
        if data:
            READS[0] += 1
        return data

    def counted_recv_into(self: socket.socket, *args: Any) -> int:
        n = recv_into(self, *args)
        if n:
            READS[0] += 1
        return n

    socket.socket.recv = counted_recv  # type: ignore[method-assign,assignment]
    socket.socket.recv_into = counted_recv_into  # type: ignore[method-assign,assignment]


class Tally:
    """Counts shared by every stream of a run (one event loop thread: no locks)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.errors = 0
        self.first_error = ""
        self.open_now = 0
        self.open_max = 0
        self.done = 0

    def error(self, exc: BaseException | str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"


# -- the raw-socket floor (no event loop, no HTTP library) ------------------------------

# A text delta in the simulator's OpenAI chunks; the first chunk's delta starts with
# "role", so it is not counted (as no client counts it: its content is empty).
_TOKEN = b'"delta":{"content":"'
_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body


def _request_bytes(host: str, port: int, model: str) -> bytes:
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 100_000,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\n"
        f"authorization: Bearer {KEY}\r\ncontent-type: application/json\r\n"
        f"accept: text/event-stream\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _FloorStream:
    """One keep-alive response read with the least parsing that still counts tokens:
    find the end of the headers, count text deltas with ``bytes.count`` (keeping a
    pattern's worth of tail across reads), stop at the chunked body's last chunk."""

    __slots__ = ("head_done", "tail", "tokens")

    def __init__(self) -> None:
        self.head_done = False
        self.tail = b""
        self.tokens = 0

    def feed(self, data: bytes) -> bool:
        """Take one read; True once the response is complete."""
        data = self.tail + data
        if not self.head_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.tail = data
                return False
            if not data.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(data[: data.find(b"\r\n")].decode("latin-1"))
            self.head_done = True
            data = data[end + 4 :]
        self.tokens += data.count(_TOKEN)
        if data.endswith(_END):
            return True
        # The tail may hold the start of a pattern split across reads; it is never
        # counted twice because a whole pattern cannot fit in len(pattern) - 1 bytes.
        self.tail = data[-(len(_TOKEN) - 1) :]
        return False


def floor_streams(job: dict[str, Any], tally: Tally, on_peak: Callable[[], None]) -> None:
    request = _request_bytes(job["host"], job["port"], job["model"])
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(job["streams"]):
        s = socket.create_connection((job["host"], job["port"]))
        s.setblocking(False)
        socks.append(s)
    # Stream i sends its request i * spread / streams seconds after the first.
    spread = job.get("spread", 0.0) / len(socks)
    start = time.monotonic()
    unsent = list(enumerate(socks))
    unsent.reverse()
    left = len(socks)
    while left:
        now = time.monotonic()
        while unsent and unsent[-1][0] * spread <= now - start:
            s = unsent.pop()[1]
            s.send(request)  # a few hundred bytes: one send on a fresh socket
            sel.register(s, selectors.EVENT_READ, _FloorStream())
        wait = None if not unsent else max(0.0, start + unsent[-1][0] * spread - now)
        for key, _ in sel.select(wait):
            state: _FloorStream = key.data
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            data = sock.recv(65536)
            if not data:
                tally.error("connection closed before the end of the stream")
                done = True
            else:
                had = state.tokens
                done = state.feed(data)
                if had == 0 and state.tokens:
                    tally.open_now += 1
                    tally.open_max = max(tally.open_max, tally.open_now)
                    if tally.open_max == job["streams"]:
                        on_peak()
            if done:
                sel.unregister(sock)
                sock.close()
                tally.tokens += state.tokens
                if state.tokens:
                    tally.open_now -= 1
                left -= 1
    sel.close()


def floor_ttft(job: dict[str, Any], sock: socket.socket, model: str) -> float:
    """One call on a kept-alive blocking socket; seconds to the first text delta."""
    state = _FloorStream()
    t0 = time.perf_counter()
    first = float("nan")
    sock.sendall(_request_bytes(job["host"], job["port"], model))
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed before the end of the stream")
        done = state.feed(data)
        if state.tokens and first != first:
            first = time.perf_counter() - t0
        if done:
            return first


# -- the async clients -----------------------------------------------------------------

OnToken = Callable[[], None]
OneStream = Callable[[str, OnToken], Awaitable[int]]


def _limits(n: int, http: Any = None) -> Any:
    """Pool limits sized to the streams (in the SDK's own httpx: openai and anthropic
    3.x build on the httpx2 fork), so no client is held back by a default cap."""
    if http is None:
        import httpx as http
    return http.Limits(max_connections=n, max_keepalive_connections=n)


def _timeout(http: Any = None) -> Any:
    if http is None:
        import httpx as http
    return http.Timeout(connect=60.0, read=None, write=60.0, pool=120.0)


def _sdk_httpx(sdk: Any) -> Any:
    """The httpx module (httpx or httpx2) an SDK's default client is built on."""
    import importlib

    base = sdk.DefaultAsyncHttpxClient.__mro__[1]
    return importlib.import_module(base.__module__.split(".")[0])


def _body(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 100_000,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


class Client:
    """Opened once per process (``open``), then ``one(model, on_token)`` per stream,
    returning the number of text deltas it read."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.n = max(int(job["streams"]), 1)
        self.base = f"http://{job['host']}:{job['port']}"
        self._close: Callable[[], Awaitable[None]] | None = None

    async def open(self) -> OneStream:
        name = self.job["client"].replace("-", "_")
        return await getattr(self, "open_" + name)()  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    def _plain_httpx(self) -> tuple[Any, str, dict[str, str]]:
        """An ``httpx.AsyncClient`` sized to the streams (closed with this client), the
        chat-completions URL and the auth header: what the three plain-httpx loops share."""
        import httpx

        http = httpx.AsyncClient(limits=_limits(self.n), timeout=_timeout())
        self._close = http.aclose
        return http, self.base + "/v1/chat/completions", {"authorization": f"Bearer {KEY}"}

    async def open_floor_trio(self) -> OneStream:
        """The floor's sockets and parsing on trio's event loop: one task per stream,
        one ``await sock.recv`` per read. The least an async client on trio pays."""
        import trio

        host, port = self.job["host"], self.job["port"]

        async def one(model: str, on_token: OnToken) -> int:
            request = _request_bytes(host, port, model)
            sock = trio.socket.socket()
            try:
                await sock.connect((host, port))
                await sock.send(request)  # a few hundred bytes: one send
                state = _FloorStream()
                while True:
                    data = await sock.recv(65536)
                    if not data:
                        raise RuntimeError("connection closed before the end of the stream")
                    had = state.tokens
                    done = state.feed(data)
                    for _ in range(state.tokens - had):
                        on_token()
                    if done:
                        return state.tokens
            finally:
                sock.close()

        return one

    async def open_httpx_msgspec(self) -> OneStream:
        import msgspec

        # defstruct: classes defined in a function cannot be resolved from the
        # string annotations ``from __future__ import annotations`` makes.
        Delta = msgspec.defstruct("Delta", [("content", str | None, None)])
        Choice = msgspec.defstruct("Choice", [("delta", Delta)])
        Chunk = msgspec.defstruct("Chunk", [("choices", list[Choice])])  # type: ignore[valid-type]
        decode: Any = msgspec.json.Decoder(Chunk).decode
        http, url, headers = self._plain_httpx()

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            async with http.stream("POST", url, headers=headers, json=_body(model)) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"status {r.status_code}: {(await r.aread())[:200]!r}")
                buf = b""
                async for chunk in r.aiter_bytes():
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.startswith(b"data: ") and line != b"data: [DONE]":
                            for choice in decode(line[6:]).choices:
                                if choice.delta.content:
                                    on_token()
                                    n += 1
            return n

        return one

    async def open_httpx_lines(self) -> OneStream:

        http, url, headers = self._plain_httpx()

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            async with http.stream("POST", url, headers=headers, json=_body(model)) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"status {r.status_code}: {(await r.aread())[:200]!r}")
                async for line in r.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        for choice in json.loads(line[6:])["choices"]:
                            if choice["delta"].get("content"):
                                on_token()
                                n += 1
            return n

        return one

    async def open_httpx_sse(self) -> OneStream:
        from httpx_sse import aconnect_sse  # type: ignore[import-not-found]

        http, url, headers = self._plain_httpx()

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            async with aconnect_sse(http, "POST", url, headers=headers, json=_body(model)) as es:
                es.response.raise_for_status()
                async for sse in es.aiter_sse():
                    if sse.data == "[DONE]":
                        break
                    for choice in json.loads(sse.data)["choices"]:
                        if choice["delta"].get("content"):
                            on_token()
                            n += 1
            return n

        return one

    async def open_openai(self) -> OneStream:
        import openai

        hx = _sdk_httpx(openai)
        http = openai.DefaultAsyncHttpxClient(limits=_limits(self.n, hx), timeout=_timeout(hx))
        client = openai.AsyncOpenAI(
            api_key=KEY, base_url=self.base + "/v1", http_client=http, max_retries=0
        )
        self._close = client.close

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=100_000,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        on_token()
                        n += 1
            return n

        return one

    async def open_anthropic(self) -> OneStream:
        import anthropic

        hx = _sdk_httpx(anthropic)
        http = anthropic.DefaultAsyncHttpxClient(limits=_limits(self.n, hx), timeout=_timeout(hx))
        client = anthropic.AsyncAnthropic(
            api_key=KEY, base_url=self.base, http_client=http, max_retries=0
        )
        self._close = client.close

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            async with client.messages.stream(
                model=model, max_tokens=100_000, messages=[{"role": "user", "content": PROMPT}]
            ) as stream:
                async for text in stream.text_stream:
                    if text:
                        on_token()
                        n += 1
            return n

        return one

    async def open_litellm(self) -> OneStream:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm  # type: ignore[import-not-found]

        litellm.telemetry = False
        base = self.base + "/v1"

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            response = await litellm.acompletion(
                model="openai/" + model,
                api_base=base,
                api_key=KEY,
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=100_000,
                stream=True,
                num_retries=0,
            )
            async for chunk in response:
                for choice in chunk.choices:
                    if choice.delta.content:
                        on_token()
                        n += 1
            return n

        return one

    async def open_swarm_client(self) -> OneStream:
        sys.path.insert(0, str(ROOT))
        import httpx

        from providers.client import lean_cookies, stream
        from providers.events import TextDelta
        from providers.families import Endpoint, get_family
        from providers.messages import Message, Request
        from providers.secrets import Secret
        from providers.transport import StreamingTransport

        family = get_family("openai")
        endpoint = Endpoint(provider="sim", base_url=self.base + "/v1", api_key=Secret(KEY))
        # lean_cookies: what this project's Client and engine do to their own clients.
        http = lean_cookies(
            httpx.AsyncClient(
                transport=StreamingTransport(limits=_limits(self.n)), timeout=_timeout()
            )
        )
        self._close = http.aclose

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            request = Request(model=model, messages=[Message.user(PROMPT)], max_tokens=100_000)
            async with stream(http, endpoint, request, family=family) as events:
                async for event in events:
                    if type(event) is TextDelta:
                        on_token()
                        n += 1
            return n

        return one

    async def open_swarm_engine(self) -> OneStream:
        """The engine with everything a production run has on: a rate-limit actor
        (limits far above the load, so it admits without waiting, but it counts every
        call and learns from the headers), the ledger, and Prometheus metrics."""
        sys.path.insert(0, str(ROOT))
        import swarm
        from providers.events import TextDelta
        from providers.messages import Message, Request
        from swarm.observability.prometheus import EngineMetrics
        from swarm.ratelimit.limiter import RateLimitConfig

        config = swarm.EngineConfig(
            providers={
                "sim": swarm.ProviderConfig(
                    family="openai",
                    base_url=self.base + "/v1",
                    api_key=KEY,
                    max_concurrency=self.n,
                    rate_limit=RateLimitConfig(
                        requests_per_minute=100_000_000,
                        tokens_per_minute=10_000_000_000,
                        refund_unused_tokens=False,
                    ),
                )
            },
            default_provider="sim",
        )
        cm = swarm.open_engine(config, env={})
        engine = await cm.__aenter__()
        metrics = EngineMetrics()
        engine.ledger.add_listener(metrics.observe)

        async def close() -> None:
            await cm.__aexit__(None, None, None)

        self._close = close

        async def one(model: str, on_token: OnToken) -> int:
            n = 0
            request = Request(model=model, messages=[Message.user(PROMPT)], max_tokens=100_000)
            async with engine.stream(request) as call:
                async for event in call:
                    if type(event) is TextDelta:
                        on_token()
                        n += 1
                    elif isinstance(event, (swarm.Failed, swarm.Cancelled)):
                        raise RuntimeError(f"the call ended with {event!r}")
            return n

        return one


# -- the measurements ------------------------------------------------------------------


async def run_streams(job: dict[str, Any], tally: Tally) -> dict[str, Any]:
    import anyio

    client = Client(job)
    setup0 = _cpu()
    one = await client.open()
    setup_cpu = _cpu() - setup0
    try:
        await one(WARM, lambda: None)  # imports, the first connection, caches
        _raise_fd_limit()
        rss0 = _status_kb("VmRSS")
        _reset_peak()
        peak_at = [float("nan")]
        wall0, cpu0, reads0 = time.perf_counter(), _cpu(), READS[0]

        spread = job.get("spread", 0.0) / job["streams"]

        async def stream(i: int) -> None:
            if spread:
                await anyio.sleep(i * spread)
            first = [True]

            def on_token() -> None:
                if first[0]:
                    first[0] = False
                    tally.open_now += 1
                    if tally.open_now > tally.open_max:
                        tally.open_max = tally.open_now
                        if tally.open_max == job["streams"]:
                            peak_at[0] = time.perf_counter() - wall0

            try:
                n = await one(job["model"], on_token)
            except Exception as exc:
                tally.error(exc)
            else:
                tally.tokens += n
            finally:
                tally.done += 1
                if not first[0]:
                    tally.open_now -= 1

        async with anyio.create_task_group() as tg:
            for i in range(job["streams"]):
                tg.start_soon(stream, i)
        cpu1, wall1 = _cpu(), time.perf_counter()
        hwm = _status_kb("VmHWM")
    finally:
        await client.close()
    return {
        "cpu": cpu1 - cpu0,
        "wall": wall1 - wall0,
        "reads": READS[0] - reads0,
        "rss_before_kb": rss0,
        "rss_peak_kb": hwm,
        "all_open_after": peak_at[0],
        "setup_cpu": setup_cpu,
    }


def run_floor_streams(job: dict[str, Any], tally: Tally) -> dict[str, Any]:
    warm = dict(job, model=WARM, streams=1)
    floor_streams(warm, Tally(), lambda: None)
    _raise_fd_limit()
    rss0 = _status_kb("VmRSS")
    _reset_peak()
    peak_at = [float("nan")]
    wall0, cpu0, reads0 = time.perf_counter(), _cpu(), READS[0]

    def on_peak() -> None:
        peak_at[0] = time.perf_counter() - wall0

    floor_streams(job, tally, on_peak)
    return {
        "cpu": _cpu() - cpu0,
        "wall": time.perf_counter() - wall0,
        "reads": READS[0] - reads0,
        "rss_before_kb": rss0,
        "rss_peak_kb": _status_kb("VmHWM"),
        "all_open_after": peak_at[0],
        "setup_cpu": 0.0,
    }


async def run_ttft(job: dict[str, Any], tally: Tally) -> dict[str, Any]:
    client = Client(job)
    one = await client.open()
    latencies = []
    try:
        for i in range(job["warmup"] + job["calls"]):
            t1 = [float("nan")]

            def on_token(t1: list[float] = t1) -> None:
                if t1[0] != t1[0]:
                    t1[0] = time.perf_counter()

            t0 = time.perf_counter()
            try:
                await one(job["model"] if i >= job["warmup"] else WARM, on_token)
            except Exception as exc:
                tally.error(exc)
                continue
            if i >= job["warmup"]:
                latencies.append(t1[0] - t0)
    finally:
        await client.close()
    return {"latencies": latencies}


def run_floor_ttft(job: dict[str, Any], tally: Tally) -> dict[str, Any]:
    latencies = []
    with socket.create_connection((job["host"], job["port"])) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(job["warmup"] + job["calls"]):
            try:
                t = floor_ttft(job, sock, job["model"] if i >= job["warmup"] else WARM)
            except Exception as exc:
                tally.error(exc)
                break
            if i >= job["warmup"]:
                latencies.append(t)
    return {"latencies": latencies}


def versions(client: str) -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in VERSIONS[client]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def main(job_json: str) -> int:
    job = json.loads(job_json)
    client = job["client"]
    if client not in BACKENDS:
        print(json.dumps({"error": f"unknown client {client!r}"}))
        return 2
    if hasattr(os, "sched_setaffinity") and job.get("core") is not None:
        if (os.cpu_count() or 1) > job["core"]:
            os.sched_setaffinity(0, {job["core"]})
    if client.startswith("swarm"):
        sys.path.insert(0, str(ROOT))
    if job.get("gc_thresholds"):
        # The same collector thresholds for every client (see bench_clients --gc).
        import gc

        gc.set_threshold(*job["gc_thresholds"])
    import importlib.util

    missing = [m for m in MODULES[client] if importlib.util.find_spec(m) is None]
    if missing:
        print(json.dumps({"missing": missing}))
        return 3
    _count_reads()
    tally = Tally()
    backend = BACKENDS[client]
    if backend == "none":
        figures = (run_floor_streams if job["what"] == "streams" else run_floor_ttft)(job, tally)
    else:
        import anyio

        measure = run_streams if job["what"] == "streams" else run_ttft
        figures = anyio.run(measure, job, tally, backend=backend)
    figures.update(
        tokens=tally.tokens,
        errors=tally.errors,
        first_error=tally.first_error,
        open_max=tally.open_max,
        backend=backend,
        versions=versions(client),
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
