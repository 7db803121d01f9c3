"""HTTP client transports at 1,000 and 10,000 concurrent SSE streams, side by side.

A paced SSE server (``transport_server.py``, raw sockets, its own process pinned
to one core) streams OpenAI chat-completions chunks, one token per write. Each
candidate runs in its own client process pinned to the other core and opens N
concurrent keep-alive POST streams, reading each through the httpx API
(``async with client.stream(...)``, ``aiter_bytes()``, as ``providers.client``
does) and checking every body byte for byte (``bytes.startswith`` at the
offset reached, no copy). Candidates:

* ``httpx``: one ``httpx.AsyncClient`` (httpcore 1.0 pool), limits sized to N;
* ``httpx-ka100``: the same with ``max_keepalive_connections=100``;
* ``httpx-x10``, ``httpx-x50``: 10 or 50 ``httpx.AsyncClient``, streams spread
  round-robin, each sized to N/K;
* ``httpx-x16conn``: what ``swarm.provider_actor`` does: clients of at most 16
  connections each (``ceil(N / 16)`` of them, one shared SSL context), each
  stream on the least-loaded client; ``httpx-x16conn-g128-idle`` adds the
  actor's other two habits: at most 128 streams between start and "request
  sent" at once (its ``MAX_SENDING`` gate) and no per-read timeout (its phase
  clock bounds the wait for each chunk), i.e. the runtime as it is;
* ``httpx2``: ``httpx2.AsyncClient`` (the maintained fork, httpcore2), sized to N;
  ``httpx2-x10``: ten of them;
* ``httptools``: ``httpx.AsyncClient`` over :class:`HttptoolsTransport`, a
  minimal HTTP/1.1 transport of our own behind ``httpx.AsyncBaseTransport``:
  raw non-blocking sockets waited on through anyio, responses parsed by
  httptools (llhttp, C) from one shared receive buffer, a bounded keep-alive
  pool. Prototype quality, but it keeps httpx's timeouts (connect, read, write,
  pool), pooling limits and TLS;
* ``httptools-idle``: the same with ``read=None``; the consumer bounds every
  wait for a chunk with one cancel scope per stream whose deadline it moves on
  each chunk (how a provider actor would enforce its idle timeout), instead of
  a cancel scope per network read inside the transport.

Other combinations can be named: ``base[-kaM][-xK|-xMconn][-gG][-idle]``.

Workload: every one of N workers sends ``--rounds`` streams one after another
(the second round runs on a warm pool). ``burst`` starts all N at once onto a
cold pool; ``ramp`` spreads the starts over half a stream's duration (so all N
are due in flight at once). A stream is ``--tokens`` tokens at ``interval = N /
--rate`` seconds: by default 50 tokens at 40 ms for N = 1,000 and at 400 ms for
N = 10,000, the same 25,000 tokens/s in aggregate, ten times the concurrency
(``--interval 0.02`` gives the issue's 20 ms). The aggregate rate is kept well
under what the server can write on a core shared with other work.

Figures: client CPU seconds (user + system, ``getrusage`` of the client process
from after its clients are built to after they are closed, median [min-max]
over ``--repeats`` runs), CPU µs per token received, RSS growth per stream (peak
RSS minus RSS before the streams, KB per stream), the maximum number of streams
in flight at once as counted by the server (response headers sent, last chunk
not yet) and how long after the first stream began it was reached (``to max
s``), errors, wall time, network reads per
server write (``rd/write``: 1.00 means every token was its own read; less means
reads coalesced because the client, or the server, fell behind, which makes
every later token cheaper), the CPU spent building the clients (``setup s``,
not in the client CPU column), and the server's own CPU and p99 lateness of its
paced writes (to show whether it kept the pace). Client figures include the
cost of counting reads (one Python call per read, the same for every candidate).

Run: ``python bench/bench_transport.py [--quick] [--n 1000 10000] [--candidates ...]``
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import platform
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Self


def _count_socket_reads() -> list[int]:
    """Count every socket read that returns data, in this process (client mode only).

    It wraps ``socket.socket.recv`` and ``recv_into`` before trio, asyncio and
    httpcore capture them, so that the client's real network reads per server
    write can be reported (h11 yields one body chunk per HTTP chunk, so counting
    chunks would hide coalesced reads). It costs each read one Python call.
    """
    count = [0]
    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def counted_recv(self: socket.socket, *args: Any) -> bytes:
        data = recv(self, *args)
        if data:
            count[0] += 1
        return data

    def counted_recv_into(self: socket.socket, *args: Any) -> int:
        n = recv_into(self, *args)
        if n:
            count[0] += 1
        return n

    socket.socket.recv = counted_recv  # type: ignore[method-assign,assignment]
    socket.socket.recv_into = counted_recv_into  # type: ignore[method-assign,assignment]
    return count


SOCKET_READS = _count_socket_reads() if "--client" in sys.argv else [0]

import anyio  # noqa: E402
import httptools  # noqa: E402
import httpx  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import transport_server  # noqa: E402

CANDIDATES = [
    "httpx",
    "httpx-ka100",
    "httpx-x10",
    "httpx-x50",
    "httpx-x16conn",
    "httpx-x16conn-g128-idle",
    "httpx2",
    "httpx2-x10",
    "httptools",
    "httptools-idle",
]
# Like providers.client.DEFAULT_TIMEOUT (600 s, connect 10 s): nothing should hit them.
READ_TIMEOUT = 600.0
REQUEST_BODY = json.dumps(
    {
        "model": "bench",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Write a short poem about swarms."}],
    }
).encode()
REQUEST_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


# ---------------------------------------------------------------------------
# A minimal transport of our own: anyio + raw sockets + httptools
# ---------------------------------------------------------------------------

_RECV_SIZE = 65536
_CLOSE_LIMIT = 30.0  # seconds for closing a candidate's clients after a run
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_Origin = tuple[str, str, int]


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else anyio.current_time() + timeout


class _Conn:
    """One HTTP/1.1 connection: a raw non-blocking socket, optional TLS (an
    ``ssl.SSLObject`` over memory BIOs), and the httptools parser of the response
    being read. It is the parser's protocol object (its ``on_*`` callbacks).

    Invariant: at most one request uses a connection at a time, so the
    transport's shared receive buffer is never read by two parsers at once (a
    read and its ``feed_data`` happen with no checkpoint in between).
    """

    __slots__ = (
        "_buf",
        "_view",
        "body",
        "closed",
        "complete",
        "headers",
        "headers_done",
        "idle_since",
        "inbio",
        "informational",
        "keep_alive",
        "origin",
        "outbio",
        "parser",
        "reason",
        "sized",
        "sock",
        "status",
        "tls",
    )

    def __init__(self, sock: socket.socket, origin: _Origin, buf: bytearray) -> None:
        self.sock = sock
        self.origin = origin
        self._buf = buf
        self._view = memoryview(buf)
        self.tls: ssl.SSLObject | None = None
        self.inbio: ssl.MemoryBIO | None = None
        self.outbio: ssl.MemoryBIO | None = None
        self.closed = False
        self.idle_since = 0.0
        self.start_response()

    # -- response state and the httptools callbacks ----------------------------

    def start_response(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: bytes | None = None
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.sized = False

    def on_status(self, status: bytes) -> None:
        self.reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200 and self.status != 101:
            self.informational = True  # 100 Continue and friends: skip it
            return
        self.headers_done = True
        for name, _ in self.headers:
            lower = name.lower()
            if lower == b"content-length" or lower == b"transfer-encoding":
                self.sized = True
                break

    def on_body(self, body: bytes) -> None:
        self.body = body if self.body is None else self.body + body

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.headers = []
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- IO --------------------------------------------------------------------

    async def _wait(self, readable: bool, deadline: float) -> bool:
        """Wait for the socket; False when ``deadline`` passed first."""
        wait = anyio.wait_readable if readable else anyio.wait_writable
        if deadline == math.inf:
            await wait(self.sock)
            return True
        with anyio.CancelScope(deadline=deadline) as scope:
            await wait(self.sock)
        return not scope.cancelled_caught

    def _raw_recv_into(self) -> int:
        """One ``recv`` into the shared buffer; -1 when it would block."""
        try:
            return self.sock.recv_into(self._buf)
        except (BlockingIOError, InterruptedError):
            return -1

    async def send_all(self, data: bytes, deadline: float, request: httpx.Request) -> None:
        if self.tls is not None:
            assert self.outbio is not None
            self.tls.write(data)
            data = self.outbio.read()
        view = memoryview(data)
        try:
            while view:
                try:
                    sent = self.sock.send(view)
                except (BlockingIOError, InterruptedError):
                    if not await self._wait(False, deadline):
                        raise httpx.WriteTimeout("write timed out", request=request) from None
                    continue
                view = view[sent:]
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc

    async def fill(self, deadline: float, request: httpx.Request) -> None:
        """Read once from the socket and feed the parser (callbacks update the state).

        Raises:
            httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError.
        """
        try:
            while True:
                if not await self._wait(True, deadline):
                    raise httpx.ReadTimeout("read timed out", request=request)
                n = self._raw_recv_into()
                if n < 0:
                    continue
                if self.tls is None:
                    if n == 0:
                        self._eof(request)
                        return
                    self._feed(self._view[:n], request)
                    return
                if self._tls_fill(n, request):
                    return
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    def _tls_fill(self, n: int, request: httpx.Request) -> bool:
        """Push ``n`` raw bytes through TLS; feed any plaintext. True if anything happened."""
        assert self.tls is not None and self.inbio is not None
        if n == 0:
            self.inbio.write_eof()
        else:
            self.inbio.write(self._view[:n])
        got = False
        while True:
            try:
                plain = self.tls.read(_RECV_SIZE)
            except ssl.SSLWantReadError:
                return got or n == 0
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # A ragged EOF (no close_notify) counts as the end, as httpcore's
                # https_compatible TLS streams do; a short sized body still fails.
                self._eof(request)
                return True
            except ssl.SSLError as exc:
                raise httpx.ReadError(f"TLS error: {exc}", request=request) from exc
            if not plain:
                self._eof(request)
                return True
            self._feed(plain, request)
            got = True

    def _feed(self, data: bytes | memoryview, request: httpx.Request) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            raise httpx.RemoteProtocolError(f"malformed response: {exc}", request=request) from exc

    def _eof(self, request: httpx.Request) -> None:
        if self.headers_done and not self.sized:
            self.complete = True  # a body delimited by the end of the connection
            self.keep_alive = False
            return
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response."
            if not self.headers_done
            else "peer closed connection without sending complete message body",
            request=request,
        )

    async def handshake(self, ctx: ssl.SSLContext, host: str, deadline: float) -> None:
        self.inbio, self.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(self.inbio, self.outbio, server_hostname=host)
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                break
            finally:
                pending = self.outbio.read()
                if pending:
                    self.sock.sendall(pending)  # a handshake flight fits the socket buffer
            if not await self._wait(True, deadline):
                raise TimeoutError
            n = self._raw_recv_into()
            if n == 0:
                raise ConnectionResetError("connection closed during the TLS handshake")
            if n > 0:
                self.inbio.write(self._view[:n])
        self.tls = tls

    def is_dead(self) -> bool:
        """An idle connection that is readable was closed (or spoke out of turn)."""
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False  # nothing to read: still open
        except OSError:
            return True
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response, as the parser decodes it (chunked or sized).

    An iterator object rather than an async generator: nothing for the event
    loop to finalize when a reader stops early. The connection goes back to the
    pool when the body was read to its end; otherwise ``aclose`` closes it.
    """

    def __init__(self, transport: HttptoolsTransport, conn: _Conn, request: httpx.Request) -> None:
        self._transport = transport
        self._conn: _Conn | None = conn
        self._request = request
        self._timeout: float | None = request.extensions.get("timeout", {}).get("read")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            while True:
                body = conn.body
                if body is not None:
                    conn.body = None
                    return body
                if conn.complete:
                    self._conn = None
                    self._transport._release(conn)
                    raise StopAsyncIteration
                await conn.fill(_deadline(self._timeout), self._request)
        except BaseException:
            if self._conn is not None:
                self._conn = None
                self._transport._discard(conn)
            raise

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if conn.complete and conn.body is None:
                self._transport._release(conn)
            else:
                self._transport._discard(conn)


class HttptoolsTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over raw sockets and httptools, behind httpx's transport interface.

    Args:
        limits: ``max_connections`` bounds the open connections (in use and
            idle); ``max_keepalive_connections`` bounds the idle ones;
            ``keepalive_expiry`` drops an idle connection after that many seconds.
        verify: ``True`` (httpx's default context), ``False``, or an ``ssl.SSLContext``.

    The request's ``timeout`` extension is honoured as httpx does: ``pool`` for a
    free connection, ``connect``, ``write`` per send, ``read`` per network read.
    """

    def __init__(
        self, *, limits: httpx.Limits = _DEFAULT_LIMITS, verify: ssl.SSLContext | bool = True
    ) -> None:
        self._max_conns = limits.max_connections or sys.maxsize
        self._max_idle = min(
            self._max_conns,
            sys.maxsize
            if limits.max_keepalive_connections is None
            else limits.max_keepalive_connections,
        )
        self._expiry = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[_Origin, list[_Conn]] = {}
        self._n_conns = 0  # open connections, in use or idle
        self._n_idle = 0
        self._waiters: deque[anyio.Event] = deque()
        self._buf = bytearray(_RECV_SIZE)  # shared: see _Conn's invariant
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}", request=request)
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        conn = await self._acquire(origin, request, timeouts)
        try:
            conn.start_response()
            data = await self._serialize(request)
            await conn.send_all(data, _deadline(timeouts.get("write")), request)
            trace = request.extensions.get("trace")
            if trace is not None:  # the one httpcore trace event the bench's gate uses
                await trace("http11.send_request_body.complete", {"request": request})
            while not conn.headers_done:
                await conn.fill(_deadline(timeouts.get("read")), request)
            if request.method == "HEAD":
                conn.complete, conn.keep_alive, conn.body = True, False, None
        except BaseException:
            self._discard(conn)
            raise
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_ResponseStream(self, conn, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
        )

    async def _serialize(self, request: httpx.Request) -> bytes:
        head = [f"{request.method} ".encode(), request.url.raw_path, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
        head.append(b"\r\n")
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for part in request.stream:
            if chunked:
                if part:
                    head += (b"%x\r\n" % len(part), part, b"\r\n")
            else:
                head.append(part)
        if chunked:
            head.append(b"0\r\n\r\n")
        return b"".join(head)

    # -- the pool ----------------------------------------------------------------

    async def _acquire(
        self, origin: _Origin, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Conn:
        pool_deadline = _deadline(timeouts.get("pool"))
        while True:
            conn = self._take_idle(origin)
            if conn is not None:
                return conn
            if self._n_conns < self._max_conns:
                self._n_conns += 1
                try:
                    deadline = _deadline(timeouts.get("connect"))
                    return await self._connect(origin, request, deadline)
                except BaseException:
                    self._n_conns -= 1
                    self._wake()
                    raise
            if self._evict_idle():
                continue
            event = anyio.Event()
            self._waiters.append(event)
            try:
                with anyio.CancelScope(deadline=pool_deadline):
                    await event.wait()
            except BaseException:
                if event.is_set():
                    self._wake()  # woken but leaving: pass the turn on
                else:
                    self._waiters.remove(event)
                raise
            if not event.is_set():
                self._waiters.remove(event)
                raise httpx.PoolTimeout("no connection available in time", request=request)

    def _take_idle(self, origin: _Origin) -> _Conn | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used one
            self._n_idle -= 1
            expired = self._expiry is not None and now - conn.idle_since > self._expiry
            if expired or conn.is_dead():
                self._close(conn)
                continue
            return conn
        return None

    def _evict_idle(self) -> bool:
        """Close one idle connection (of another origin) to make room; True if one was."""
        for idle in self._idle.values():
            if idle:
                self._n_idle -= 1
                self._close(idle.pop(0))
                return True
        return False

    async def _connect(self, origin: _Origin, request: httpx.Request, deadline: float) -> _Conn:
        scheme, host, port = origin
        try:
            try:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                socket.inet_pton(family, host)
                addr: tuple[Any, ...] = (host, port)
            except OSError:
                with anyio.CancelScope(deadline=deadline):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                if not infos:
                    raise OSError(f"cannot resolve {host}") from None
                family, addr = infos[0][0], infos[0][4]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        conn = _Conn(sock, origin, self._buf)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(addr)
            if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                if not await conn._wait(False, deadline):
                    raise httpx.ConnectTimeout("connect timed out", request=request)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            if scheme == "https":
                try:
                    await conn.handshake(self._ssl_context(), host, deadline)
                except TimeoutError:
                    raise httpx.ConnectTimeout("TLS handshake timed out", request=request) from None
        except OSError as exc:
            conn.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        except ssl.SSLError as exc:
            conn.close()
            raise httpx.ConnectError(f"TLS error: {exc}", request=request) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if isinstance(self._verify, ssl.SSLContext):
                self._ssl = self._verify
            else:
                self._ssl = httpx.create_ssl_context(verify=self._verify)
        return self._ssl

    def _release(self, conn: _Conn) -> None:
        """A response was read to its end: keep its connection or close it."""
        if self._closed or not conn.keep_alive or self._n_idle >= self._max_idle:
            self._discard(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._n_idle += 1
        self._wake()

    def _discard(self, conn: _Conn) -> None:
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if not conn.closed:
            conn.close()
            self._n_conns -= 1
            self._wake()

    def _wake(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                self._close(conn)
        self._idle.clear()
        self._n_idle = 0
        await anyio.lowlevel.checkpoint()


# ---------------------------------------------------------------------------
# The client process: one candidate, one configuration, one run
# ---------------------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _cpu() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


@dataclass(frozen=True)
class Candidate:
    """A candidate named ``base[-kaM][-xK|-xMconn][-gG][-idle]``.

    Attributes:
        base: ``httpx``, ``httpx2`` or ``httptools``.
        clients: K clients, each sized to ``ceil(n / K)``, a worker's streams
            always on client ``worker % K`` (``-xK``: round-robin).
        conns: clients of at most M connections each (``-xMconn``): K =
            ``ceil(n / M)`` clients, each stream on the least-loaded one at
            its start (what ``swarm.provider_actor`` does, M = 16).
        keepalive: a cap on idle connections per client (``-kaM``), else sized.
        gate: at most G streams between their start and "request body sent"
            at once (``-gG``: a semaphore released by the httpcore trace event
            ``http11.send_request_body.complete``, as ``swarm.provider_actor``'s
            ``MAX_SENDING`` gate does), so a cold burst connects G at a time.
        idle: ``-idle``: no per-read timeout in the client (``read=None``); the
            consumer enforces the same bound with one cancel scope per stream,
            its deadline moved on every chunk (how a provider actor does).
    """

    base: str
    clients: int = 1
    keepalive: int | None = None
    idle: bool = False
    conns: int | None = None
    gate: int | None = None

    @classmethod
    def parse(cls, name: str) -> Candidate:
        """Raises: ValueError: not a candidate name."""
        base, *mods = name.split("-")
        k, keepalive, idle, conns, gate = 1, None, False, None, None
        for mod in mods:
            if mod.startswith("x") and mod[1:].isdigit() and int(mod[1:]) > 0:
                k = int(mod[1:])
            elif (mod.startswith("x") and mod.endswith("conn") and mod[1:-4].isdigit()) and int(
                mod[1:-4]
            ) > 0:
                conns = int(mod[1:-4])
            elif mod.startswith("ka") and mod[2:].isdigit():
                keepalive = int(mod[2:])
            elif mod.startswith("g") and mod[1:].isdigit() and int(mod[1:]) > 0:
                gate = int(mod[1:])
            elif mod == "idle":
                idle = True
            else:
                raise ValueError(f"unknown candidate {name!r}")
        if base not in ("httpx", "httpx2", "httptools") or (conns and k > 1):
            raise ValueError(f"unknown candidate {name!r}")
        return cls(base, k, keepalive, idle, conns, gate)

    def shards(self, n: int) -> int:
        """How many clients this candidate opens for ``n`` streams."""
        return max(1, math.ceil(n / self.conns)) if self.conns else self.clients


def make_clients(candidate: Candidate, n: int) -> list[Any]:
    """The HTTP client(s) of a candidate, sized for ``n`` concurrent streams.

    With K clients each gets ``ceil(n / K)`` connections; they share one SSL
    context (httpx builds one per client otherwise, loading the CA bundle each
    time). Every pool is sized to its share of ``n`` (max_connections and
    max_keepalive_connections), unless ``-kaM`` caps keep-alive at M.
    """
    k = candidate.shards(n)
    size = math.ceil(n / k)
    idle = size if candidate.keepalive is None else min(size, candidate.keepalive)
    read = None if candidate.idle else READ_TIMEOUT
    if candidate.base == "httpx2":
        import httpx2

        ctx2 = httpx2.create_ssl_context()
        limits2 = httpx2.Limits(max_connections=size, max_keepalive_connections=idle)
        timeout2 = httpx2.Timeout(600.0, connect=10.0, read=read)
        return [
            httpx2.AsyncClient(limits=limits2, timeout=timeout2, trust_env=False, verify=ctx2)
            for _ in range(k)
        ]
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=idle)
    timeout = httpx.Timeout(600.0, connect=10.0, read=read)
    if candidate.base == "httptools":
        return [
            httpx.AsyncClient(
                transport=HttptoolsTransport(limits=limits), timeout=timeout, trust_env=False
            )
            for _ in range(k)
        ]
    ctx = httpx.create_ssl_context()
    return [
        httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False, verify=ctx)
        for _ in range(k)
    ]


async def _workload(spec: dict[str, Any]) -> dict[str, Any]:
    n: int = spec["n"]
    rounds: int = spec["rounds"]
    tokens: int = spec["tokens"]
    ramp: float = spec["ramp"]
    url = f"http://127.0.0.1:{spec['port']}/v1/chat/completions"
    expected = transport_server.expected_body(tokens)
    size = len(expected)
    setup0 = sum(_cpu())
    candidate = Candidate.parse(spec["candidate"])
    clients = make_clients(candidate, n)
    load = [0] * len(clients)  # streams open on each client (least-loaded choice)
    gate = anyio.Semaphore(candidate.gate) if candidate.gate else None
    cpu0 = _cpu()
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}  # the first error of each type, for the JSON
    counts = {"streams": 0, "chunks": 0, "bytes": 0, "in_flight": 0, "max_in_flight": 0}

    async def one_stream(client: Any) -> None:
        got = 0
        ok = True
        held = False
        extensions = None
        if gate is not None:
            await gate.acquire()
            held = True

            async def trace(name: str, info: dict[str, Any]) -> None:
                nonlocal held
                if held and name.endswith("send_request_body.complete"):
                    held = False
                    gate.release()

            extensions = {"trace": trace}
        try:
            # With -idle, one scope per stream bounds the wait for every chunk (the
            # deadline moves on each one); otherwise the client's read timeout does.
            with anyio.CancelScope() as idle:
                if candidate.idle:
                    idle.deadline = anyio.current_time() + READ_TIMEOUT
                async with client.stream(
                    "POST",
                    url,
                    content=REQUEST_BODY,
                    headers=REQUEST_HEADERS,
                    extensions=extensions,
                ) as r:
                    if r.status_code != 200:
                        errors[f"status {r.status_code}"] += 1
                        return
                    counts["in_flight"] += 1
                    counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])
                    try:
                        async for chunk in r.aiter_bytes():
                            if candidate.idle:
                                idle.deadline = anyio.current_time() + READ_TIMEOUT
                            # Byte for byte, without a copy: expected[got:] starts with chunk.
                            ok = ok and expected.startswith(chunk, got)
                            got += len(chunk)
                            counts["chunks"] += 1
                    finally:
                        counts["in_flight"] -= 1
                        counts["bytes"] += got
        finally:
            if held:
                gate.release()  # type: ignore[union-attr]
        if idle.cancelled_caught:
            errors["idle timeout"] += 1
        elif got != size or not ok:
            errors["bad body"] += 1
        else:
            counts["streams"] += 1

    async def worker(i: int, start: float) -> None:
        if ramp:
            await anyio.sleep_until(start + ramp * i / n)
        for _ in range(rounds):
            if candidate.conns:
                index = load.index(min(load))  # as swarm.provider_actor._take_client
            else:
                index = i % len(clients)
            load[index] += 1
            try:
                await one_stream(clients[index])
            except Exception as exc:  # counted, not raised: the bench reports errors
                errors[type(exc).__name__] += 1
                cause = exc.__cause__ or exc.__context__
                examples.setdefault(type(exc).__name__, f"{exc!r} <- {cause!r}"[:300])
            finally:
                load[index] -= 1

    rss0 = _rss_kb()
    reads0 = SOCKET_READS[0]
    t0 = time.perf_counter()
    with anyio.move_on_after(spec["time_limit"]) as scope:
        async with anyio.create_task_group() as tg:
            start = anyio.current_time()
            for i in range(n):
                tg.start_soon(worker, i, start)
    wall = time.perf_counter() - t0
    if scope.cancelled_caught:
        errors["time limit"] += n * rounds - counts["streams"] - sum(errors.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with anyio.CancelScope(shield=True) as close_scope:
        close_scope.deadline = anyio.current_time() + _CLOSE_LIMIT
        for client in clients:
            await client.aclose()
    cpu1 = _cpu()
    counts["reads"] = SOCKET_READS[0] - reads0
    return {
        "setup_cpu_s": cpu0[0] + cpu0[1] - setup0,
        "cpu_user_s": cpu1[0] - cpu0[0],
        "cpu_sys_s": cpu1[1] - cpu0[1],
        "cpu_s": cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1],
        "wall_s": wall,
        "rss0_kb": rss0,
        "peak_rss_kb": peak,
        "kb_per_stream": max(0, peak - rss0) / n,
        "timed_out": scope.cancelled_caught,
        "close_timed_out": close_scope.cancelled_caught,
        "loadavg": os.getloadavg(),
        "errors": dict(errors),
        "error_examples": examples,
        **counts,
        "tokens": counts["streams"] * tokens,
    }


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this process and return its figures."""
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    transport_server.raise_nofile()
    if Candidate.parse(spec["candidate"]).base == "httpx2":
        import httpx2  # noqa: F401  (imported before the setup clock starts)
    result: dict[str, Any] = anyio.run(_workload, spec, backend=spec["backend"])
    return result


# ---------------------------------------------------------------------------
# The orchestrator: the server process, the runs, the table
# ---------------------------------------------------------------------------


class ServerProcess:
    """``transport_server.py`` in a child process, driven over its stdin/stdout."""

    def __init__(self, tokens: int, interval: float, cpu: int | None) -> None:
        cmd = [sys.executable, str(HERE / "transport_server.py")]
        cmd += ["--tokens", str(tokens), "--interval", str(interval)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"the bench server did not start: {line!r}")
        self.port = int(line.split()[1])

    def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def wait_idle(self, limit: float = 15.0) -> None:
        """Until the last run's connections are gone (bounded)."""
        end = time.monotonic() + limit
        while self.command("STATS")["open_connections"] and time.monotonic() < end:
            time.sleep(0.1)

    def close(self) -> None:
        try:
            self.command("QUIT")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cores() -> tuple[int | None, int | None]:
    """(client core, server core), or no pinning on a one-core machine."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[0], cores[1]


def run_one(server: ServerProcess, spec: dict[str, Any]) -> dict[str, Any]:
    """One client process for ``spec``; its figures merged with the server's."""
    server.wait_idle()
    server.command(f"CONFIG {spec['tokens']} {spec['interval']}")
    server.command("RESET")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=spec["time_limit"] + 120)
    except subprocess.TimeoutExpired:
        result: dict[str, Any] = {"failed": "client process hung", "errors": {"hung": 1}}
    else:
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = proc.stderr.strip().splitlines()[-3:]
            result = {"failed": " | ".join(tail), "errors": {"crashed": 1}}
        else:
            result = json.loads(lines[-1])
    result["server"] = server.command("STATS")
    return {**spec, **result}


def _interval(n: int, args: argparse.Namespace) -> float:
    return float(args.interval) if args.interval else n / args.rate


def _spec(
    candidate: str, n: int, mode: str, backend: str, port: int, args: argparse.Namespace
) -> dict[str, Any]:
    interval = _interval(n, args)
    client_cpu, _ = _cores()
    return {
        "candidate": candidate,
        "n": n,
        "mode": mode,
        "backend": backend,
        "port": port,
        "tokens": args.tokens,
        "interval": interval,
        "rounds": args.rounds,
        "ramp": args.tokens * interval / 2 if mode == "ramp" else 0.0,
        "time_limit": args.time_limit,
        "cpu": client_cpu,
    }


def _fmt(values: Sequence[float], digits: int = 1) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


_CAND_WIDTH = 24
COLUMNS = (
    f"{'candidate':<{_CAND_WIDTH}} {'N':>6} {'mode':<5} {'backend':<7} {'client CPU s':>20} "
    f"{'us/token':>8} {'us/read':>7} {'KB/stream':>9} {'in flight':>9} {'to max s':>8} "
    f"{'errors':>7} {'wall s':>6} {'rd/write':>8} {'setup s':>7} {'server CPU s':>12} "
    f"{'lag p99':>7}"
)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _num(value: float | None, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def summarize(runs: list[dict[str, Any]]) -> str:
    """One table row for the runs of one (candidate, N, mode, backend).

    The client CPU column is median [min-max]; the others are medians, except
    errors (a total over the runs, '!' when a run hit the time limit) and lag
    (the worst p99). ``in flight`` is the server's count; ``to max s`` is how
    long after the first stream started the server saw that maximum.
    """
    first = runs[0]
    ok = [r for r in runs if "failed" not in r]
    cpu = [r["cpu_s"] for r in ok]
    per_token = [r["cpu_s"] / r["tokens"] * 1e6 for r in ok if r["tokens"]]
    per_read = [r["cpu_s"] / r["reads"] * 1e6 for r in ok if r["reads"]]
    kb = [r["kb_per_stream"] for r in ok]
    in_flight = [r["server"]["max_in_flight"] for r in runs]
    to_max = [r["server"]["max_in_flight_after_s"] for r in runs]
    errors = sum(sum(r["errors"].values()) for r in runs)
    wall = [r["wall_s"] for r in ok]
    # Every server write is one body chunk; 1.00 means each was its own read.
    rd_wr = [r["reads"] / r["server"]["writes"] for r in ok if r["server"]["writes"]]
    setup = [r["setup_cpu_s"] for r in ok]
    server_cpu = [r["server"]["cpu_s"] for r in runs]
    lag = max(r["server"]["lag_p99_ms"] for r in runs)
    timed_out = any(r.get("timed_out") for r in runs)
    return (
        f"{first['candidate']:<{_CAND_WIDTH}} {first['n']:>6} {first['mode']:<5} "
        f"{first['backend']:<7} {_fmt(cpu, 2):>20} {_num(_median(per_token), '.0f', 8)} "
        f"{_num(_median(per_read), '.0f', 7)} {_num(_median(kb), '.0f', 9)} "
        f"{int(statistics.median(in_flight)):>9} {_num(_median(to_max), '.1f', 8)} "
        f"{errors:>6}{'!' if timed_out else ' '} "
        f"{_num(_median(wall), '.1f', 6)} {_num(_median(rd_wr), '.2f', 8)} "
        f"{_num(_median(setup), '.2f', 7)} {_num(_median(server_cpu), '.2f', 12)} {lag:>5.0f}ms"
    )


def versions() -> str:
    names = ["httpx", "httpcore", "httpx2", "httpcore2", "httptools", "h11", "anyio", "trio"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def _best_two(rows: dict[tuple[str, int, str, str], list[dict[str, Any]]]) -> list[str]:
    """The two candidates with the least median client CPU over every trio row."""
    score: dict[str, float] = {}
    for (cand, _, _, backend), runs in rows.items():
        if backend != "trio":
            continue
        ok = [r for r in runs if "failed" not in r and not r.get("timed_out")]
        cost = statistics.median(r["cpu_s"] for r in ok) if len(ok) == len(runs) else math.inf
        score[cand] = score.get(cand, 0.0) + cost
    return sorted(score, key=lambda c: score[c])[:2]


def _candidate(name: str) -> str:
    try:
        Candidate.parse(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a small run, under 2 minutes")
    parser.add_argument("--n", type=int, nargs="+", help="concurrent streams (1000 10000)")
    parser.add_argument(
        "--candidates",
        nargs="+",
        type=_candidate,
        default=CANDIDATES,
        help="base[-kaM][-xK|-xMconn][-gG][-idle], base in httpx, httpx2, httptools "
        "(default: all of " + " ".join(CANDIDATES) + ")",
    )
    parser.add_argument("--modes", nargs="+", choices=["burst", "ramp"])
    parser.add_argument("--tokens", type=int, help="tokens per stream (50)")
    parser.add_argument("--rate", type=float, default=25_000.0, help="aggregate tokens/s")
    parser.add_argument("--interval", type=float, help="seconds between tokens (N / rate)")
    parser.add_argument("--rounds", type=int, help="streams per worker, one after another (2)")
    parser.add_argument("--repeats", type=int, help="runs per row (3)")
    parser.add_argument("--time-limit", type=float, help="seconds per run (150)")
    parser.add_argument(
        "--asyncio",
        nargs="*",
        help="candidates to run on asyncio too (default: the best two on trio)",
    )
    parser.add_argument("--json", help="write every run's figures to this file")
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(run_client(json.loads(args.client))))
        return 0

    quick = args.quick
    args.n = args.n or ([100, 1000] if quick else [1000, 10_000])
    args.modes = args.modes or (["burst"] if quick else ["burst", "ramp"])
    args.tokens = args.tokens or (20 if quick else 50)
    args.rounds = args.rounds or (1 if quick else 2)
    args.repeats = args.repeats or (1 if quick else 3)
    args.time_limit = args.time_limit or (20.0 if quick else 150.0)
    client_cpu, server_cpu = _cores()
    affinity = os.sched_getaffinity(0)
    try:
        if server_cpu is not None:
            os.sched_setaffinity(0, {server_cpu})  # this process mostly sleeps
        _study(args, client_cpu, server_cpu)
    finally:
        os.sched_setaffinity(0, affinity)  # main() may run inside a test process
    return 0


def _study(args: argparse.Namespace, client_cpu: int | None, server_cpu: int | None) -> None:
    print(versions())
    print(
        "load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        f"on {os.cpu_count()} cores;",
        "open files: soft {} hard {} (the client and server processes raise soft to {})".format(
            *resource.getrlimit(resource.RLIMIT_NOFILE), transport_server.nofile_target()
        ),
    )
    print(
        f"{args.tokens} tokens per stream, interval N/{args.rate:,.0f} s"
        if not args.interval
        else f"{args.tokens} tokens per stream at {args.interval * 1000:g} ms",
        f"(N={', '.join(f'{n}: {_interval(n, args) * 1000:g} ms' for n in args.n)}),",
        f"{args.rounds} round(s), {args.repeats} repeat(s), client core {client_cpu},",
        f"server core {server_cpu}, limit {args.time_limit:g} s a run",
    )
    print(COLUMNS, flush=True)

    rows: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    all_runs: list[dict[str, Any]] = []
    with ServerProcess(args.tokens, _interval(args.n[0], args), server_cpu) as server:

        def measure(cands: Sequence[str], backend: str) -> None:
            for n in args.n:
                for mode in args.modes:
                    keys = [(c, n, mode, backend) for c in cands]
                    # Repeats interleave the candidates, so slow drift in the
                    # machine's load spreads over all of them.
                    for _ in range(args.repeats):
                        for key in keys:
                            runs = rows.setdefault(key, [])
                            if any(r.get("timed_out") or "failed" in r for r in runs):
                                continue  # repeating a run that hit the limit adds nothing
                            run = run_one(server, _spec(*key, server.port, args))
                            runs.append(run)
                            all_runs.append(run)
                    for key in keys:
                        print(summarize(rows[key]), flush=True)

        measure(args.candidates, "trio")
        others = args.asyncio if args.asyncio is not None else _best_two(rows)
        if others:
            measure(others, "asyncio")

    for r in all_runs:
        where = f"{r['candidate']} N={r['n']} {r['mode']} {r['backend']}"
        if "failed" in r:
            print(f"failed: {where}: {r['failed']}")
        elif r["errors"]:
            print(f"errors: {where}: {r['errors']} e.g. {r.get('error_examples')}")
    print("'!' after errors: a run hit the time limit (its unfinished streams are errors)")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps(all_runs, indent=1))


if __name__ == "__main__":
    sys.exit(main())
