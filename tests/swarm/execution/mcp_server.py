"""A real MCP server written with the official SDK, for tests/swarm/execution/test_mcp.py.

python mcp_server.py                     # stdio
python mcp_server.py http PORT           # streamable HTTP at /mcp
"""

from __future__ import annotations

import base64
import os
import sys
import time

from mcp import types
from mcp.server.mcpserver import MCPServer

app = MCPServer("test-tools")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def shout(text: str, times: int = 1) -> str:
    """Upper-case a text, repeated."""
    return " ".join([text.upper()] * times)


@app.tool()
def fail(reason: str) -> str:
    """Always raises."""
    raise RuntimeError(f"failed on purpose: {reason}")


@app.tool()
def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    time.sleep(seconds)
    return "awake"


@app.tool()
def media() -> list[types.ContentBlock]:
    """Answers with one block of every non-text kind, then a text block."""
    return [
        types.ImageContent(type="image", data=base64.b64encode(b"\x89PNG" + bytes(96)).decode(),
                           mime_type="image/png"),
        types.AudioContent(type="audio", data=base64.b64encode(bytes(300)).decode(),
                           mime_type="audio/wav"),
        types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri="file:///notes.txt", mime_type="text/plain", text="the notes")),
        types.EmbeddedResource(type="resource", resource=types.BlobResourceContents(
            uri="file:///data.bin", mime_type="application/octet-stream",
            blob=base64.b64encode(bytes(30)).decode())),
        types.ResourceLink(type="resource_link", name="report", uri="https://example.test/r.pdf",
                           mime_type="application/pdf", description="The full report"),
        types.TextContent(type="text", text="done"),
    ]  # fmt: skip


@app.tool()
def die() -> str:
    """The server process exits in the middle of this call."""
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
