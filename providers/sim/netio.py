"""Raw non-blocking sockets on anyio, and HTTP/1.1 request parsing (httptools).

The simulator drives its sockets itself: it calls ``send``/``recv`` directly and
awaits :func:`anyio.wait_writable`/:func:`anyio.wait_readable` only when they
would block. This works the same under trio and asyncio and costs one system
call per write, which is what lets one core serve thousands of streams.
"""

from __future__ import annotations

import email.utils
import socket
import time
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import httptools

__all__ = ["HttpRequest", "RequestReader", "head", "peer_closed", "recv_some", "send_all"]


async def send_all(sock: socket.socket, data: bytes) -> None:
    """Send every byte of ``data``, waiting while the socket's buffer is full.

    Raises:
        OSError: the peer is gone.
    """
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        view = view[n:]


async def recv_some(sock: socket.socket, size: int = 65536) -> bytes:
    """Bytes from the socket (b"" at end of stream), waiting until some arrive."""
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            await anyio.wait_readable(sock)


def peer_closed(sock: socket.socket) -> bool:
    """Whether the peer has closed or reset the connection, without consuming
    anything: a peek that reads end of stream, or fails. A request pipelined behind
    the current one (data waiting) is an open connection."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass(slots=True)
class _Parsing:
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)


class RequestReader:
    """Parses the requests arriving on one connection (pipelining allowed)."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._cur = _Parsing()
        self.ready: list[HttpRequest] = []
        self.expects_continue = False

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._cur = _Parsing()

    def on_url(self, url: bytes) -> None:
        self._cur.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        prev = self._cur.headers.get(key)
        val = value.decode("latin-1")
        self._cur.headers[key] = val if prev is None else prev + ", " + val

    def on_headers_complete(self) -> None:
        if self._cur.headers.get("expect", "").lower() == "100-continue":
            self.expects_continue = True

    def on_body(self, body: bytes) -> None:
        self._cur.body.append(body)

    def on_message_complete(self) -> None:
        cur = self._cur
        url = cur.url.decode("latin-1")
        path, _, query = url.partition("?")
        self.ready.append(
            HttpRequest(
                method=self._parser.get_method().decode("ascii"),
                path=path,
                query=query,
                headers=cur.headers,
                body=b"".join(cur.body),
                keep_alive=bool(self._parser.should_keep_alive()),
            )
        )

    def feed(self, data: bytes) -> None:
        """Parse ``data``; complete requests land in ``ready``.

        Raises:
            httptools.HttpParserError: not HTTP/1.x.
        """
        self._parser.feed_data(data)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}

_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """The status line and headers of a response (``date`` added first)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"date: {http_date()}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def checkpoint() -> None:
    await anyio.lowlevel.checkpoint()
