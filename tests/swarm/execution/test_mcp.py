"""Tools from a real MCP server (tests/swarm/execution/mcp_server.py, written with the
official SDK), over stdio and streamable HTTP, on trio and asyncio: listed with
their schemas, arguments checked before the call, server errors, timeouts and a
server that dies mid-call become error results the model reads; and an agent uses
them like any other tool."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
import pytest

from providers import ImagePart, ToolCall
from providers.sim import ModelProfile, SimConfig, open_simulator
from providers.tools import SchemaTool
from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.agents import Agent, open_swarm
from swarm.execution import ToolBox
from swarm.execution.mcp import McpError, McpHttp, McpStdio, open_mcp_tools

pytestmark = pytest.mark.anyio
SERVER = str(Path(__file__).with_name("mcp_server.py"))
STDIO = McpStdio(sys.executable, [SERVER])


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(name: str, arguments: str) -> ToolCall:
    return ToolCall(id=f"call-{name}", name=name, arguments=arguments)


async def test_stdio_tools_are_listed_with_their_schemas_and_run() -> None:
    async with open_mcp_tools(STDIO) as tools:
        box = ToolBox(tools)
        assert box.names == ["add", "shout", "fail", "slow", "media", "die"]
        add = {s.name: s for s in box.specs}["add"]
        assert add.description == "Add two integers."
        assert add.parameters["required"] == ["a", "b"]
        assert (await box.run(call("add", '{"a": 2, "b": 3}'))).content == "5"
        shouted = await box.run(call("shout", '{"text": "hi", "times": 2}'))
        assert shouted.content == "HI HI" and not shouted.is_error


async def test_media_and_resources_are_described_for_the_model() -> None:
    # Media is described (kind, type, size, where it is), an embedded text resource
    # given whole, nothing dropped; the image also goes to the model as an image.
    async with open_mcp_tools(STDIO) as tools:
        out = await ToolBox(tools).run(call("media", "{}"))
    assert not out.is_error
    png = base64.b64encode(b"\x89PNG" + bytes(96)).decode()
    assert out.images == [ImagePart(data=png, media_type="image/png")]
    assert out.message().parts()[1:] == out.images
    assert out.content.split("\n") == [
        "[image: image/png, 100 bytes]",
        "[audio: audio/wav, 300 bytes]",
        "[resource file:///notes.txt (text/plain)]",
        "the notes",
        "[resource file:///data.bin: application/octet-stream, 30 bytes]",
        "[resource link 'report' (application/pdf) at https://example.test/r.pdf: The full report]",
        "done",
    ]


async def test_bad_arguments_are_refused_before_the_server_sees_them() -> None:
    async with open_mcp_tools(STDIO) as tools:
        box = ToolBox(tools)
        out = await box.run(call("add", '{"a": "x"}'))
        assert out.is_error and out.error_kind == "arguments"
        assert "'b' is a required property" in out.content
        assert "at $.a: 'x' is not of type 'integer'" in out.content
        out = await box.run(call("add", "[1, 2]"))
        assert out.is_error and "must be a JSON object" in out.content


async def test_server_errors_and_timeouts_are_results_the_model_reads() -> None:
    async with open_mcp_tools(STDIO, timeout=0.5) as tools:
        box = ToolBox(tools)
        failed = await box.run(call("fail", '{"reason": "testing"}'))
        assert failed.is_error and "reported an error" in failed.content
        slow = await box.run(call("slow", '{"seconds": 5}'))
        assert slow.is_error and "did not answer within 0.5 s" in slow.content
        # The connection is still good after both.
        assert (await box.run(call("add", '{"a": 1, "b": 1}'))).content == "2"


async def test_a_server_that_dies_mid_call_fails_that_call_and_the_block_ends_cleanly() -> None:
    async with open_mcp_tools(STDIO) as tools:
        box = ToolBox(tools)
        died = await box.run(call("die", "{}"))
        assert died.is_error and "MCP tool 'die' failed" in died.content
        after = await box.run(call("add", '{"a": 1, "b": 1}'))
        assert after.is_error and "MCP tool 'add' failed" in after.content
    # Leaving the block raised nothing: the lost server is reported, not fatal.


async def test_prefix_and_include_select_and_rename_tools() -> None:
    async with open_mcp_tools(STDIO, prefix="calc_", include=["add"]) as tools:
        box = ToolBox(tools)
        assert box.names == ["calc_add"]
        assert (await box.run(call("calc_add", '{"a": 4, "b": 5}'))).content == "9"
    with pytest.raises(McpError, match="no tool named 'nope'; it has: add, shout"):
        async with open_mcp_tools(STDIO, include=["nope"]):
            pass


async def test_a_server_that_cannot_start_is_a_clear_error() -> None:
    with pytest.raises(McpError, match="could not connect to the MCP server"):
        async with open_mcp_tools(McpStdio("/nonexistent/mcp-server")):
            pass
    with pytest.raises(McpError, match="did not start and list its tools within 1 s"):
        # A process that never speaks MCP.
        async with open_mcp_tools(
            McpStdio(sys.executable, ["-c", "import time; time.sleep(30)"]), startup_timeout=1
        ):
            pass


@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    with subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            for _ in range(300):  # up to 30 s to start (bounded)
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, "the MCP HTTP server exited"
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


# On trio the SDK's streamable HTTP client (over httpx2) leaves its response stream
# generators for the garbage collector to finalize, which trio reports as
# ResourceWarnings; that is in the SDK, not here (the calls themselves are checked).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_streamable_http_tools(http_server: str) -> None:
    async with open_mcp_tools(McpHttp(http_server), timeout=10) as tools:
        box = ToolBox(tools)
        assert "add" in box.names
        assert (await box.run(call("add", '{"a": 20, "b": 22}'))).content == "42"
        failed = await box.run(call("fail", '{"reason": "http"}'))
        assert failed.is_error


async def test_an_agent_uses_mcp_tools_like_any_other() -> None:
    profile = ModelProfile(ttft=0.0, tokens_per_second=0, output_tokens=12)
    async with open_simulator(SimConfig(models={"m": profile})) as sim:
        config = EngineConfig(
            providers={
                "sim": ProviderConfig(family="openai", base_url=sim.openai_base_url, api_key="sk-t")
            },
            default_provider="sim",
            retry=RetryPolicy(max_attempts=1),
        )
        async with (
            open_engine(config, env={}) as engine,
            open_mcp_tools(STDIO, include=["shout"]) as tools,
        ):
            agent = Agent("loud", "Shout things.", tools=tools, model="m")
            async with open_swarm(engine, [agent]) as crew:
                reply = await crew.ask("loud", "Say hello loudly", timeout=30)
    assert reply.tool_calls == 1
    result = next(m for m in reply.messages if m.role == "tool")
    assert result.text and result.text == result.text.upper()  # the server's answer


def test_schema_tools_refuse_a_schema_that_is_not_an_object() -> None:
    async def noop(**_: object) -> str:
        return ""

    with pytest.raises(TypeError, match="must be a JSON Schema for an object"):
        SchemaTool("t", {"type": "array"}, noop)
    with pytest.raises(TypeError, match="not a valid JSON Schema"):
        SchemaTool("t", {"type": "object", "properties": {"a": {"type": 12}}}, noop)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_http_server_that_dies_mid_call_fails_calls_and_not_the_block(
    http_server: str,
) -> None:
    """Over streamable HTTP the SDK's transport tasks fail when the server is gone;
    they run in the connection's own task, so the caller's block (and a swarm
    inside it) goes on: the dying call and every later one are error results."""
    survived = False
    async with open_mcp_tools(McpHttp(http_server), timeout=10) as tools:
        box = ToolBox(tools)
        died = await box.run(call("die", "{}"))
        assert died.is_error and "MCP tool 'die' failed" in died.content
        for _ in range(2):
            after = await box.run(call("add", '{"a": 1, "b": 1}'))
            assert after.is_error and "MCP tool 'add' failed" in after.content
        await anyio.lowlevel.checkpoint()  # the block was not cancelled from inside
        survived = True
    assert survived


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_http_headers_keep_the_sdk_timeouts_for_a_slow_tool(http_server: str) -> None:
    """With headers the HTTP client is made by the SDK's own factory: a tool slower
    than a plain HTTP client's 5 s default answers within the call's own timeout."""
    server = McpHttp(http_server, headers={"X-Team": "swarm"})
    async with open_mcp_tools(server, timeout=30) as tools:
        slow = await ToolBox(tools).run(call("slow", '{"seconds": 5.5}'))
    assert not slow.is_error, slow.content
