"""Tools from Model Context Protocol servers, through the official ``mcp`` SDK.

::

    server = McpStdio(sys.executable, ["my_server.py"])       # or McpHttp("http://.../mcp")
    async with open_mcp_tools(server) as tools:
        box = ToolBox(tools)                                   # like any other tool
        agent = Agent("helper", "...", tools=box)

The connection is held for the ``async with`` block: the server's tools are listed
once at the start, each becomes a :class:`~providers.tools.SchemaTool` whose
arguments are checked against the server's own JSON Schema before the call is
sent. A tool result marked as an error, a server that dies mid-call, or a call past
``timeout`` raise :class:`McpToolError` from the tool, which the tool box turns
into an error result the model reads; the loop goes on. Needs ``pip install
'swarm[mcp]'``.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import msgspec

from providers.messages import ImagePart
from providers.tools import SchemaTool

from ..errors import SwarmError

__all__ = ["McpError", "McpHttp", "McpStdio", "McpToolError", "open_mcp_tools"]


class McpError(SwarmError):
    """The MCP server could not be started, reached or initialized."""


class McpToolError(SwarmError):
    """A call to an MCP tool failed (the server's error, a lost server, a timeout)."""


class McpStdio(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An MCP server run as a subprocess, spoken to over its stdin and stdout."""

    command: str
    args: list[str] = []
    env: dict[str, str] | None = None
    cwd: str | None = None


class McpHttp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An MCP server at a streamable HTTP endpoint (``http://host:port/mcp``)."""

    url: str
    headers: dict[str, str] = {}


def _size(data: Any) -> str:
    """The decoded size of base64 ``data``, for a description."""
    if not isinstance(data, str):
        return "? bytes"
    padding = data[-2:].count("=")
    return f"{len(data) * 3 // 4 - padding:,} bytes"


def _block_text(block: Any) -> str:
    """One content block as text a model can read.

    Media is described (kind, type, size, where it lives), never dropped silently
    and never pasted as base64 (which would only burn the context window); images
    also go to the model as images (:func:`_result_images`).
    """
    kind = getattr(block, "type", "content")
    if kind == "text":
        return str(block.text)
    mime = getattr(block, "mime_type", None) or "unknown type"
    if kind in ("image", "audio"):
        return f"[{kind}: {mime}, {_size(getattr(block, 'data', None))}]"
    if kind == "resource_link":
        described = f": {block.description}" if getattr(block, "description", None) else ""
        return f"[resource link {block.name!r} ({mime}) at {block.uri}{described}]"
    if kind == "resource":
        resource = block.resource
        mime = getattr(resource, "mime_type", None) or "unknown type"
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource {resource.uri} ({mime})]\n{text}"
        return f"[resource {resource.uri}: {mime}, {_size(getattr(resource, 'blob', None))}]"
    return f"[{kind}]"


def _result_images(result: Any) -> list[ImagePart]:
    """The result's images, sent to the model beside the text (audio and other
    media have no place in a tool result in any family: described only)."""
    images = []
    for block in result.content or []:
        data, mime = getattr(block, "data", None), getattr(block, "mime_type", None)
        if getattr(block, "type", None) == "image" and isinstance(data, str) and mime:
            images.append(ImagePart(data=data, media_type=mime))
    return images


def _result_text(result: Any) -> str:
    parts = [_block_text(block) for block in result.content or []]
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content)
    return "\n".join(parts)


@asynccontextmanager
async def open_mcp_tools(
    server: McpStdio | McpHttp,
    *,
    prefix: str = "",
    include: Sequence[str] | None = None,
    timeout: float | None = 60.0,  # noqa: ASYNC109 - each tool call's deadline
    startup_timeout: float = 30.0,
) -> AsyncIterator[list[SchemaTool]]:
    """Connect to ``server`` for the block and yield its tools.

    Args:
        prefix: Put before every tool name (``prefix="fs_"``: ``fs_read_file``), to
            keep two servers' tools apart.
        include: Only these tools (by the server's names); an unknown name is an
            error naming the tools there are.
        timeout: Each call's deadline in seconds (the tool box's own per-tool
            timeout applies too).
        startup_timeout: Seconds to start, connect and list the tools.

    Raises:
        McpError: the server did not start, answer or list its tools in time.
        ImportError: the ``mcp`` SDK is not installed (``pip install 'swarm[mcp]'``).
    """
    try:
        import mcp  # noqa: F401 - the SDK, imported by the connection task
    except ImportError as exc:  # pragma: no cover - the extra is a test dependency
        raise ImportError("MCP tools need the mcp SDK: pip install 'swarm[mcp]'") from exc

    if not isinstance(server, (McpStdio, McpHttp)):
        raise TypeError(f"open_mcp_tools() takes McpStdio or McpHttp, got {server!r}")
    # The connection (the SDK's transport and session, which run task groups of their
    # own) lives in a task of its own: when the server is lost, the transport's tasks
    # fail and that task ends, not the caller's block. Calls made after that fail as
    # error results the model reads. Errors while connecting are raised here as
    # McpError.
    connection = _Connection()
    # The SDK's task groups, and this one, hand errors out wrapped in exception
    # groups: unwrapped here when there is one error, so callers can `except McpError`
    # (nothing is lost: several errors stay a group).
    try:
        async with anyio.create_task_group() as tg:
            session, listed = await tg.start(_connect, server, startup_timeout, connection)
            try:
                yield [
                    _schema_tool(session, connection, name, tool, prefix, timeout)
                    for name, tool in _select(listed, include).items()
                ]
            finally:
                connection.done.set()  # the connection task closes the session and transport
    except BaseExceptionGroup as group:
        errors = _leaves(group)
        if len(errors) == 1:
            raise errors[0] from errors[0].__cause__
        raise


def _select(listed: list[Any], include: Sequence[str] | None) -> dict[str, Any]:
    """The server's tools by name, only those in ``include`` when it is given."""
    by_name = {tool.name: tool for tool in listed}
    if include is None:
        return by_name
    missing = [name for name in include if name not in by_name]
    if missing:
        raise McpError(
            f"the MCP server has no tool named {', '.join(map(repr, missing))}; "
            f"it has: {', '.join(by_name) or 'none'}"
        )
    return {name: by_name[name] for name in include}


def _schema_tool(
    session: Any, connection: _Connection, name: str, tool: Any, prefix: str, timeout: float | None
) -> SchemaTool:
    """The server's tool ``name`` as a tool the box runs; every failure (a lost
    connection, a timeout, an error the server reports) is an McpToolError, which
    the box turns into an error result the model reads."""

    async def call(**arguments: Any) -> str | list[str | ImagePart]:
        if connection.lost is not None:
            raise McpToolError(
                f"MCP tool {name!r} failed: the connection to the server was lost "
                f"({connection.lost})"
            )
        try:
            with anyio.fail_after(math.inf if timeout is None else timeout):
                result = await session.call_tool(name, arguments)
        except TimeoutError:
            raise McpToolError(f"MCP tool {name!r} did not answer within {timeout:g} s") from None
        except Exception as exc:  # a lost server, a protocol error: this call fails
            raise McpToolError(f"MCP tool {name!r} failed: {type(exc).__name__}: {exc}") from exc
        text = _result_text(result)
        if result.is_error:
            raise McpToolError(f"MCP tool {name!r} reported an error: {text}")
        images = _result_images(result)
        return [text, *images] if images else text

    return SchemaTool(
        prefix + name,
        dict(tool.input_schema or {"type": "object"}),
        call,
        description=tool.description or "",
        is_async=True,
    )


class _Connection:
    """What the connection task shares with the block's tools: why the connection
    ended early (``lost``), and the signal to close it (``done``)."""

    def __init__(self) -> None:
        self.lost: str | None = None
        self.done = anyio.Event()


async def _connect(
    server: McpStdio | McpHttp,
    startup_timeout: float,
    connection: _Connection,
    *,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Open the transport and session, hand over (session, its tools) once they are
    listed, and hold them open until the block ends. An error after the hand-over
    (the server died, the stream broke) ends this task quietly: ``connection.lost``
    says why, and every later call fails with it."""
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    started = False
    try:
        async with AsyncExitStack() as stack:
            # Only the handshake runs under the startup deadline: a cancel scope must
            # not close around the task groups the transport and session keep open.
            try:
                if isinstance(server, McpStdio):
                    params = StdioServerParameters(
                        command=server.command, args=server.args, env=server.env, cwd=server.cwd
                    )
                    read, write = await stack.enter_async_context(stdio_client(params))
                else:
                    client = None
                    if server.headers:
                        from mcp.shared._httpx_utils import create_mcp_http_client

                        # The SDK's own factory: its timeouts (30 s, 300 s to read a
                        # held stream), not the HTTP client's 5 s default.
                        client = await stack.enter_async_context(
                            create_mcp_http_client(headers=server.headers)
                        )
                    read, write = await stack.enter_async_context(
                        streamable_http_client(server.url, http_client=client)
                    )
                session = await stack.enter_async_context(ClientSession(read, write))
                with anyio.fail_after(startup_timeout):
                    await session.initialize()
                    listed = list((await session.list_tools()).tools)
            except TimeoutError:
                raise McpError(
                    f"the MCP server {server!r} did not start and list its tools within "
                    f"{startup_timeout:g} s"
                ) from None
            except Exception as exc:
                raise McpError(f"could not connect to the MCP server {server!r}: {exc}") from exc
            task_status.started((session, listed))
            started = True
            await connection.done.wait()
    # Groups first (ExceptionGroup is an Exception too): the reason is their leaves.
    except BaseExceptionGroup as group:
        if not started:
            raise
        errors = _leaves(group)
        if not errors:
            raise  # only cancellations: the block itself is being cancelled
        connection.lost = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
    except Exception as exc:
        if not started:
            raise
        connection.lost = f"{type(exc).__name__}: {exc}"


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions in a (nested) group, without the cancellations that came with
    the one that mattered."""
    cancelled = anyio.get_cancelled_exc_class()
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        elif not isinstance(exc, cancelled):
            out.append(exc)
    return out
