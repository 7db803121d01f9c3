"""The little HTTP/1.1 both local endpoints (metrics, dashboard) need: read one
request head within a time limit and a size bound, answer, close."""

from __future__ import annotations

import anyio
import anyio.abc

__all__ = ["read_request", "respond"]

MAX_HEAD = 8192
READ_LIMIT = 5.0


async def read_request(client: anyio.abc.ByteStream) -> tuple[str, str] | None:
    """(method, target) of the request on ``client``, or None when it sent no
    complete head within ``READ_LIMIT`` seconds or ``MAX_HEAD`` bytes (a stray or
    hostile client is dropped rather than allowed to hold a task or memory)."""
    head = b""
    with anyio.move_on_after(READ_LIMIT):
        while b"\r\n\r\n" not in head and len(head) <= MAX_HEAD:
            try:
                head += await client.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return None
    if b"\r\n\r\n" not in head:
        return None
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    return method, rest.split(" ", 1)[0]


async def respond(client: anyio.abc.ByteStream, status: str, ctype: str, body: bytes) -> None:
    """Send one whole response and say the connection closes."""
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
        "cache-control: no-store\r\nconnection: close\r\n\r\n"
    )
    try:
        await client.send(head.encode() + body)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the client left first
