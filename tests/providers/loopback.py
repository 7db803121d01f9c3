"""A scriptable HTTP/1.1 server on 127.0.0.1 for client tests.

Each connection's handler gets the parsed request and the raw socket stream, so a
test decides exactly when each byte goes out, when to stall and when to drop the
connection. Runs under trio and asyncio (anyio).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import msgspec


class HTTPRequest(msgspec.Struct):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[HTTPRequest, anyio.abc.SocketStream], Awaitable[None]]


async def read_request(stream: anyio.abc.SocketStream) -> HTTPRequest | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += await stream.receive()
    return HTTPRequest(method=method, path=path, headers=headers, body=rest[:length])


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def sse_head(status: int = 200, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} OK\r\ncontent-type: text/event-stream\r\n"
        f"transfer-encoding: chunked\r\n{extra}\r\n"
    ).encode()


def json_response(status: int, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a free port; yield the base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def connection(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = await read_request(stream)
            if request is not None:
                await handler(request, stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, connection)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()
