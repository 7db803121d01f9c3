"""A streaming HTTP/1.1 transport behind httpx's transport interface.

``httpx.AsyncClient(transport=StreamingTransport(...))`` keeps httpx's whole API
(requests, responses, headers, timeouts, auth, redirects, content decoding) and
replaces what runs under it: httpcore's pool and its nested async generators. Why
(measured in ``bench/bench_transport.py``, see ``docs/transport.md``): at 1,000
concurrent streams of one token per network read, httpcore cost 66-998 µs of CPU
per token depending on how its pools were sharded; this design cost 35.

How it is built:

* Raw non-blocking sockets, waited on with the event loop's own readiness call
  (``trio.lowlevel.wait_readable`` on trio, anyio's on asyncio); TLS through an
  ``ssl.SSLObject`` over memory BIOs.
* Responses parsed by httptools (llhttp, in C), fed from one receive buffer shared
  by every connection of the transport. Invariant: a ``recv_into`` and the
  ``feed_data`` of what it read happen with no checkpoint in between, and at most
  one request uses a connection at a time, so the buffer is never read by two
  parsers at once.
* A pool with O(1) acquire and release: idle connections in a stack per origin
  (the most recently used first), one count of open connections, FIFO waiters.
  ``httpx.Limits`` mean what they mean in httpx: ``max_connections`` open at once
  (in use or idle), ``max_keepalive_connections`` idle at once,
  ``keepalive_expiry`` seconds before an idle connection is dropped.
* The request's ``timeout`` extension is honoured as httpcore does: ``pool`` for
  a free connection, ``connect`` (TCP and TLS), ``write`` per send, ``read`` per
  network read (``None``: no bound, as the runtime's phase clock reads it).

Errors are httpx's own types (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``WriteTimeout``, ``PoolTimeout``, ``ReadError``, ``WriteError``,
``RemoteProtocolError``, ``UnsupportedProtocol``), so code written against httpx
handles them unchanged.

Trace events (the ``trace`` request extension), a subset of httpcore's names:
``connection.connect_tcp.complete``, ``connection.start_tls.complete``,
``http11.send_request_body.complete``, ``http11.receive_response_headers.complete``.

Not supported (use httpx's default transport for them): HTTP/2, proxies given to
this transport (httpx still routes proxied URLs through its own transports),
Unix sockets, ``Expect: 100-continue`` bodies sent before the interim response.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Self

import anyio
import anyio.lowlevel
import httptools
import httpx
import msgspec
import sniffio

__all__ = ["BODY_EXTENSION", "StreamingTransport", "TransportStatistics"]

# The response extension holding the body stream itself (cancellation-safe; httpx's
# response.stream wraps it in an async generator, which is not).
BODY_EXTENSION = "swarm.body"

_RECV_SIZE = 65536
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_Origin = tuple[str, str, int]
# Response header names, each as (name, lowercased), shared by every response: a
# live response holds its headers for as long as it streams, and at 10,000 streams
# one copy of "content-type" per response is megabytes. Values of the headers
# named in _STABLE_VALUES are shared the same way; others (dates, ids, counts)
# differ per response. Both tables are bounded so a server inventing names cannot
# grow them without end.
_NAMES: dict[bytes, tuple[bytes, bytes]] = {}
_VALUES: dict[bytes, bytes] = {}
_TABLE_MAX = 512
_STABLE_VALUES = frozenset(
    (
        b"content-type",
        b"transfer-encoding",
        b"connection",
        b"cache-control",
        b"content-encoding",
        b"vary",
        b"server",
        b"access-control-expose-headers",
        b"strict-transport-security",
        b"x-content-type-options",
        b"alt-svc",
        b"openai-organization",
        b"openai-project",
        b"openai-version",
        b"anthropic-organization-id",
    )
)
_Wait = Callable[[socket.socket], Awaitable[None]]


def _closed_errors() -> tuple[type[BaseException], ...]:
    """What a wait on a socket raises when the socket is closed under it."""
    errors: list[type[BaseException]] = [anyio.ClosedResourceError]
    trio = sys.modules.get("trio")
    if trio is not None:
        errors.append(trio.ClosedResourceError)
    return tuple(errors)


def _waits() -> tuple[_Wait, _Wait]:
    """The running loop's readiness waits: trio's own on trio (a third cheaper per
    read than going through anyio's dispatch), anyio's elsewhere."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.wait_readable, trio.lowlevel.wait_writable
    return anyio.wait_readable, anyio.wait_writable


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else anyio.current_time() + timeout


class TransportStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of a transport's pool.

    Attributes:
        connections: Open connections, in use or idle.
        connecting: Connections being opened (they count against the limit).
        idle: Open connections waiting in the pool.
        waiting: Requests waiting for a free connection.
        opened: Connections opened since the transport was created.
        reused: Requests that took an idle connection.
    """

    connections: int
    connecting: int
    idle: int
    waiting: int
    opened: int
    reused: int


class _Connection:
    """One HTTP/1.1 connection: a raw non-blocking socket, optional TLS, and the
    httptools parser of the response being read (the parser calls its ``on_*``)."""

    __slots__ = (
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
        "wait_readable",
        "wait_writable",
    )

    def __init__(
        self, sock: socket.socket, origin: _Origin, view: memoryview, waits: tuple[_Wait, _Wait]
    ) -> None:
        self.sock = sock
        self.origin = origin
        self._view = view  # the transport's shared receive buffer
        self.wait_readable, self.wait_writable = waits
        self.tls: ssl.SSLObject | None = None
        self.inbio: ssl.MemoryBIO | None = None
        self.outbio: ssl.MemoryBIO | None = None
        self.closed = False
        self.idle_since = 0.0
        self.start_response()

    # -- the response and the parser's callbacks ----------------------------------

    def start_response(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        # (name, lowercased name, value), the shape of httpx.Headers' own list.
        self.headers: list[tuple[bytes, bytes, bytes]] = []
        # Body pieces decoded and not yet handed out (usually none or one per read).
        self.body: list[bytes] = []
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.sized = False

    def on_status(self, status: bytes) -> None:
        self.reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        names = _NAMES.get(name)
        if names is None:
            names = (name, name.lower())
            if len(_NAMES) < _TABLE_MAX:
                _NAMES[name] = names
        if names[1] in _STABLE_VALUES:
            shared = _VALUES.get(value)
            if shared is not None:
                value = shared
            elif len(_VALUES) < _TABLE_MAX:
                _VALUES[value] = value
        self.headers.append((names[0], names[1], value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200 and self.status != 101:
            self.informational = True  # 100 Continue, 103 Early Hints: skipped
            return
        self.headers_done = True
        for _, lower, _ in self.headers:
            if lower == b"content-length" or lower == b"transfer-encoding":
                self.sized = True
                break

    def on_body(self, body: bytes) -> None:
        self.body.append(body)  # httptools hands a copy: the shared buffer may move on

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.headers = []
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- IO -------------------------------------------------------------------------

    async def _wait(self, readable: bool, deadline: float) -> bool:
        """Wait until the socket is ready; False when ``deadline`` passed first.

        Raises:
            OSError: the connection was closed under the wait (transport closed).
        """
        wait = self.wait_readable if readable else self.wait_writable
        try:
            if deadline == math.inf:
                await wait(self.sock)
                return True
            with anyio.CancelScope(deadline=deadline) as scope:
                await wait(self.sock)
            return not scope.cancelled_caught
        except _closed_errors() as exc:
            raise ConnectionAbortedError("the connection was closed (transport closed)") from exc

    def _recv_into(self) -> int:
        """One ``recv`` into the shared buffer; -1 when it would block."""
        try:
            return self.sock.recv_into(self._view)
        except (BlockingIOError, InterruptedError):
            return -1

    async def _send_raw(self, data: bytes, deadline: float) -> bool:
        """Send all of ``data``; False on a timeout."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                if not await self._wait(False, deadline):
                    return False
                continue
            view = view[sent:]
        return True

    async def send_all(self, data: bytes, deadline: float, request: httpx.Request) -> None:
        """Raises: httpx.WriteTimeout, httpx.WriteError."""
        if self.tls is not None:
            assert self.outbio is not None
            try:
                self.tls.write(data)
            except ssl.SSLError as exc:
                raise httpx.WriteError(f"TLS error: {exc}", request=request) from exc
            data = self.outbio.read()
        try:
            if not await self._send_raw(data, deadline):
                raise httpx.WriteTimeout("timed out writing the request", request=request)
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc

    async def fill(self, deadline: float, request: httpx.Request) -> None:
        """Read from the socket until the parser got something (its callbacks update
        the state), or the connection ended.

        Raises:
            httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError.
        """
        try:
            while True:
                if not await self._wait(True, deadline):
                    raise httpx.ReadTimeout("timed out reading the response", request=request)
                n = self._recv_into()
                if n < 0:
                    continue  # a spurious wake-up
                if self.tls is None:
                    if n == 0:
                        self._eof(request)
                    else:
                        self._feed(self._view[:n], request)
                    return
                if self._tls_fill(n, request):
                    return
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    def _tls_fill(self, n: int, request: httpx.Request) -> bool:
        """Push ``n`` raw bytes through TLS and feed the plaintext; True if anything
        reached the parser (or the stream ended)."""
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
                return got
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # A ragged EOF (no close_notify) ends the stream, as httpcore's TLS
                # streams take it; a short sized body still fails in _eof.
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
            raise httpx.RemoteProtocolError(
                f"malformed HTTP response: {exc}", request=request
            ) from exc

    def _eof(self, request: httpx.Request) -> None:
        if self.headers_done and not self.sized and not self.complete:
            self.complete = True  # a body delimited by the end of the connection
            self.keep_alive = False
            return
        if self.complete:
            return
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response."
            if not self.headers_done
            else "peer closed connection without sending complete message body",
            request=request,
        )

    async def handshake(self, ctx: ssl.SSLContext, host: str, deadline: float) -> None:
        """Raises: TimeoutError (the deadline passed), OSError, ssl.SSLError."""
        self.inbio, self.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(self.inbio, self.outbio, server_hostname=host)
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            pending = self.outbio.read()
            if pending and not await self._send_raw(pending, deadline):
                raise TimeoutError
            if done:
                break
            if not await self._wait(True, deadline):
                raise TimeoutError
            n = self._recv_into()
            if n == 0:
                raise ConnectionResetError(
                    "the server closed the connection during the TLS handshake"
                )
            if n > 0:
                self.inbio.write(self._view[:n])
        self.tls = tls

    def is_dead(self) -> bool:
        """An idle connection that is readable was closed (or spoke out of turn)."""
        if self.tls is not None and self.tls.pending():
            return True
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
            try:
                # Wake any task waiting on this socket (trio requires it before close).
                anyio.notify_closing(self.sock)
            except (RuntimeError, sniffio.AsyncLibraryNotFoundError):
                pass  # no event loop: nobody can be waiting
            self.sock.close()


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response as the parser decodes it (chunked, sized, or to EOF).

    An iterator object rather than an async generator: nothing for the event loop
    to finalize when a reader stops early. The connection goes back to the pool
    when the body was read to its end; ``aclose`` before that closes it.

    Cancellation-safe: ``__anext__`` can only be cancelled while it waits for the
    socket, before anything was read, so a cancelled read leaves the connection and
    the parser as they were and the next ``__anext__`` goes on where it stopped
    (``providers.client.EventStream`` relies on it to let another task read).
    The transport puts it in the response's extensions as ``BODY_EXTENSION``,
    since httpx wraps ``response.stream`` in an async generator, which a
    cancellation would finalize.
    """

    cancel_safe = True

    __slots__ = ("_conn", "_read", "_request", "_transport")

    def __init__(
        self, transport: StreamingTransport, conn: _Connection, request: httpx.Request
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._request = request
        timeouts = request.extensions.get("timeout", {})
        self._read: float | None = timeouts.get("read")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            while True:
                body = conn.body
                if body:
                    if len(body) == 1:
                        piece = body[0]
                        body.clear()
                        return piece
                    conn.body = []
                    return b"".join(body)
                if conn.complete:
                    self._conn = None
                    self._transport._release(conn)
                    raise StopAsyncIteration
                read = self._read
                await conn.fill(
                    math.inf if read is None else anyio.current_time() + read, self._request
                )
        except anyio.get_cancelled_exc_class():
            raise  # cancelled while waiting: nothing consumed, the connection stays
        except BaseException:
            if self._conn is not None:
                self._conn = None
                self._transport._close(conn)
            raise

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if conn.complete and not conn.body:
                self._transport._release(conn)
            else:
                self._transport._close(conn)


class StreamingTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over raw sockets and httptools, for ``httpx.AsyncClient(transport=...)``.

    Args:
        limits: ``max_connections`` bounds open connections (in use and idle, all
            origins together; None: no bound); ``max_keepalive_connections`` the
            idle ones; ``keepalive_expiry`` drops an idle connection after that many
            seconds. httpx's default limits if not given.
        verify: ``True`` (httpx's default CA bundle), ``False`` (no verification), a
            path to a CA bundle, or an ``ssl.SSLContext`` (shared, never modified).

    Runs on trio and asyncio (anyio); one transport belongs to one event loop.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        verify: ssl.SSLContext | bool | str = True,
    ) -> None:
        if limits.max_connections is not None and limits.max_connections < 1:
            raise ValueError(
                f"limits.max_connections must be at least 1 or None, got {limits.max_connections}"
            )
        self._max_conns = sys.maxsize if limits.max_connections is None else limits.max_connections
        keep = limits.max_keepalive_connections
        self._max_idle = min(self._max_conns, sys.maxsize if keep is None else keep)
        self._expiry = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._conns: set[_Connection] = set()  # open, in use or idle
        self._connecting = 0  # slots held by connections being opened
        self._n_idle = 0
        self._waiters: deque[anyio.Event] = deque()
        # One receive buffer shared by every connection (see the module doc).
        self._view = memoryview(bytearray(_RECV_SIZE))
        self._waits: tuple[_Wait, _Wait] | None = None
        self._opened = 0
        self._reused = 0
        self._closed = False

    def statistics(self) -> TransportStatistics:
        return TransportStatistics(
            connections=len(self._conns),
            connecting=self._connecting,
            idle=self._n_idle,
            waiting=len(self._waiters),
            opened=self._opened,
            reused=self._reused,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed; open a new httpx.AsyncClient")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {scheme!r}: StreamingTransport speaks http and https",
                request=request,
            )
        if not url.host:
            raise httpx.UnsupportedProtocol(f"the URL {url} has no host", request=request)
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        trace = request.extensions.get("trace")
        conn = await self._acquire(origin, request, timeouts, trace)
        try:
            conn.start_response()
            data = await _serialize(request)
            await conn.send_all(data, _deadline(timeouts.get("write")), request)
            if trace is not None:
                await trace("http11.send_request_body.complete", {"request": request})
            read = timeouts.get("read")
            while not conn.headers_done:
                await conn.fill(_deadline(read), request)
            if request.method == "HEAD":
                conn.complete, conn.keep_alive, conn.body = True, False, []
            if trace is not None:
                await trace(
                    "http11.receive_response_headers.complete",
                    {
                        "request": request,
                        "return_value": (conn.status, [(n, v) for n, _, v in conn.headers]),
                    },
                )
        except BaseException:
            self._close(conn)
            raise
        body = _ResponseStream(self, conn, request)
        headers = _headers(conn.headers)
        conn.headers = []  # the response holds them now; one copy per live response
        return httpx.Response(
            conn.status,
            headers=headers,
            stream=body,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": conn.reason,
                BODY_EXTENSION: body,
            },
        )

    # -- the pool --------------------------------------------------------------------

    async def _acquire(
        self,
        origin: _Origin,
        request: httpx.Request,
        timeouts: dict[str, float | None],
        trace: Any,
    ) -> _Connection:
        pool_deadline = _deadline(timeouts.get("pool"))
        while True:
            conn = self._take_idle(origin)
            if conn is not None:
                self._reused += 1
                # A cancellation point, but no yield: the response's wait for the
                # socket yields anyway, and a yield here was a pass of the event loop
                # on the way of every request.
                await anyio.lowlevel.checkpoint_if_cancelled()
                return conn
            if len(self._conns) + self._connecting < self._max_conns:
                return await self._connect(
                    origin, request, _deadline(timeouts.get("connect")), trace
                )
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
                raise httpx.PoolTimeout(
                    f"no connection free within the pool timeout "
                    f"({len(self._conns)} of {self._max_conns} in use)",
                    request=request,
                )
            if self._closed:
                raise RuntimeError("the transport was closed while the request waited")

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        expiry = self._expiry
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be stale
            self._n_idle -= 1
            if (expiry is not None and now - conn.idle_since > expiry) or conn.is_dead():
                self._close(conn)
                continue
            return conn
        return None

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection (of another origin) to make room."""
        for idle in self._idle.values():
            if idle:
                self._n_idle -= 1
                self._close(idle.pop(0))
                return True
        return False

    async def _connect(
        self, origin: _Origin, request: httpx.Request, deadline: float, trace: Any
    ) -> _Connection:
        if self._waits is None:
            self._waits = _waits()
        scheme, host, port = origin
        # Reserve the slot before the first await: the count is the bound.
        self._connecting += 1
        conn: _Connection | None = None
        try:
            addresses = await _resolve(host, port, deadline, request)
            last: OSError | None = None
            for family, address in addresses:
                sock = socket.socket(family, socket.SOCK_STREAM)
                conn = _Connection(sock, origin, self._view, self._waits)
                try:
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    err = sock.connect_ex(address)
                    if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                        if not await conn._wait(False, deadline):
                            raise httpx.ConnectTimeout(
                                f"timed out connecting to {host}:{port}", request=request
                            )
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                except OSError as exc:
                    conn.close()
                    conn = None
                    last = exc
                    continue
                break
            if conn is None:
                detail = str(last) if last is not None else "no address"
                raise httpx.ConnectError(
                    f"cannot connect to {host}:{port}: {detail}", request=request
                )
            if trace is not None:
                await trace("connection.connect_tcp.complete", {"request": request})
            if scheme == "https":
                try:
                    await conn.handshake(self._ssl_context(), host, deadline)
                except TimeoutError:
                    raise httpx.ConnectTimeout(
                        f"timed out in the TLS handshake with {host}:{port}", request=request
                    ) from None
                except (OSError, ssl.SSLError) as exc:
                    raise httpx.ConnectError(
                        f"TLS handshake with {host}:{port} failed: {exc}", request=request
                    ) from exc
                if trace is not None:
                    await trace("connection.start_tls.complete", {"request": request})
        except BaseException:
            if conn is not None:
                conn.close()
            self._connecting -= 1
            self._wake()
            raise
        self._connecting -= 1
        self._conns.add(conn)
        self._opened += 1
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return self._ssl

    def _release(self, conn: _Connection) -> None:
        """A response was read to its end: keep its connection idle or close it."""
        if self._closed or not conn.keep_alive or self._n_idle >= self._max_idle:
            self._close(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._n_idle += 1
        self._wake()

    def _close(self, conn: _Connection) -> None:
        if conn in self._conns:
            self._conns.discard(conn)
            conn.close()
            self._wake()
        else:
            conn.close()

    def _wake(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()

    async def aclose(self) -> None:
        """Close every connection, idle or in use (a response still being read fails
        with ``httpx.ReadError``); waiting requests fail."""
        self._closed = True
        self._idle.clear()
        self._n_idle = 0
        conns, self._conns = self._conns, set()
        for conn in conns:
            conn.close()
        while self._waiters:
            self._waiters.popleft().set()
        await anyio.lowlevel.checkpoint()


async def _resolve(
    host: str, port: int, deadline: float, request: httpx.Request
) -> list[tuple[socket.AddressFamily, tuple[Any, ...]]]:
    """The addresses to try, in order; a literal IP needs no lookup."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]"))
        except OSError:
            continue
        return [(family, (host.strip("[]"), port))]
    try:
        with anyio.CancelScope(deadline=deadline) as scope:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
    if scope.cancelled_caught:
        raise httpx.ConnectTimeout(f"timed out resolving {host}", request=request)
    if not infos:
        raise httpx.ConnectError(f"cannot resolve {host}: no address", request=request)
    return [(info[0], info[4]) for info in infos]


def _headers(triples: list[tuple[bytes, bytes, bytes]]) -> httpx.Headers:
    """httpx.Headers over (name, lowercased name, value) triples as they are: httpx
    would re-lowercase every name (a new bytes object per header per response), and
    httpx.Response copies a Headers' list without touching its tuples."""
    headers = httpx.Headers()
    headers._list = triples  # httpx.Headers' own representation, tuples shared
    return headers


async def _serialize(request: httpx.Request) -> bytes:
    """The request head and body as one buffer (LLM requests are small: one send)."""
    head = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        head += (name, b": ", value, b"\r\n")
        if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
            chunked = True
    head.append(b"\r\n")
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):  # the usual case: content= bytes
        body = b"".join(stream)
        if body:
            head += (b"%x\r\n" % len(body), body, b"\r\n") if chunked else (body,)
    else:
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("StreamingTransport needs an async request body")
        async for part in stream:
            if chunked:
                if part:
                    head += (b"%x\r\n" % len(part), part, b"\r\n")
            else:
                head.append(part)
    if chunked:
        head.append(b"0\r\n\r\n")
    return b"".join(head)
