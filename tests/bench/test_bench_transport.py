"""The transport benchmark runs and prints well-formed figures (no timing asserted),
and its own prototype transport is correct against the bench server."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_transport
import transport_server
from bench_transport import HttptoolsTransport, ServerProcess

ROW = re.compile(
    r"^(?P<candidate>\S+)\s+(?P<n>\d+)\s+(?P<mode>burst|ramp)\s+(?P<backend>trio|asyncio)\s+"
    r"(?P<cpu>[\d.]+)(?: \[[\d.]+-[\d.]+\])?\s+(?P<per_token>[\d.]+)\s+(?P<per_read>[\d.]+)\s+"
    r"(?P<kb>[\d.]+)\s+(?P<in_flight>\d+)\s+(?P<to_max>[\d.]+)\s+(?P<errors>\d+)(?P<limit>!?)\s+"
    r"(?P<wall>[\d.]+)\s+(?P<rd_wr>[\d.]+)\s+(?P<setup>[\d.]+)\s+(?P<server_cpu>[\d.]+)\s+"
    r"(?P<lag>\d+)ms$"
)


def test_bench_prints_a_row_per_candidate_and_backend(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--n", "4", "--tokens", "3", "--interval", "0.002", "--rounds", "2"]
    argv += ["--repeats", "1", "--modes", "burst", "--time-limit", "30"]
    argv += ["--asyncio", "httptools", "httpx2"]
    assert bench_transport.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Python 3.")
    assert "httpx 0." in out.splitlines()[0] and "httpcore2 " in out.splitlines()[0]
    rows = [m for line in out.splitlines() if (m := ROW.match(line))]
    seen = {(m["candidate"], m["backend"]) for m in rows}
    expected = {(c, "trio") for c in bench_transport.CANDIDATES}
    assert seen == expected | {("httptools", "asyncio"), ("httpx2", "asyncio")}
    for m in rows:
        assert m["n"] == "4" and m["errors"] == "0" and not m["limit"], m.string
        assert m["in_flight"] == "4", m.string  # all four streams were open at once
        # Figures are well-formed, not positive: 24 tokens of CPU can print as 0.00 s
        # on a fast, quiet core (a CI run did), and a test never asserts timing.
        assert float(m["cpu"]) >= 0 and float(m["per_token"]) >= 0
        assert 0 < float(m["rd_wr"]) <= 1.0
    assert not [line for line in out.splitlines() if line.startswith(("failed:", "errors:"))]
    assert "load average at end:" in out.splitlines()[-1]


def test_candidate_names() -> None:
    assert bench_transport.Candidate.parse("httpx2-x10") == bench_transport.Candidate("httpx2", 10)
    c = bench_transport.Candidate.parse("httpx-ka100-x5-idle")
    assert (c.base, c.clients, c.keepalive, c.idle) == ("httpx", 5, 100, True)
    c = bench_transport.Candidate.parse("httpx-x16conn-g128-idle")
    assert (c.clients, c.conns, c.gate, c.idle) == (1, 16, 128, True)
    assert (c.shards(1000), c.shards(10_000), c.shards(4)) == (63, 625, 1)
    for bad in (
        "urllib3",
        "httpx-x0",
        "httpx-fast",
        "httpx-x0conn",
        "httpx-x2-x16conn",
        "httpx-g0",
    ):
        with pytest.raises(ValueError):
            bench_transport.Candidate.parse(bad)


# -- the prototype transport against the bench server -------------------------------


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(tokens=5, interval=0.001, cpu=None) as proc:
        yield proc


def _client(server: ServerProcess, connections: int, **timeouts: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        transport=HttptoolsTransport(limits=limits),
        timeout=httpx.Timeout(10.0, **timeouts),
    )


def _fresh(server: ServerProcess, tokens: int = 5, interval: float = 0.001) -> None:
    server.wait_idle()
    server.command(f"CONFIG {tokens} {interval}")
    server.command("RESET")


@pytest.mark.anyio
async def test_transport_decodes_chunked_streams_and_reuses_connections(
    server: ServerProcess,
) -> None:
    _fresh(server)
    bodies: list[bytes] = []
    async with _client(server, connections=2) as client:

        async def one() -> None:
            async with client.stream("POST", "/v1/chat/completions", content=b"{}") as r:
                assert r.status_code == 200
                assert r.headers["content-type"] == "text/event-stream"
                bodies.append(b"".join([part async for part in r.aiter_bytes()]))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
    assert bodies == [transport_server.expected_body(5)] * 6
    stats = server.command("STATS")
    assert stats["accepted"] == 2  # six streams over two kept-alive connections
    assert stats["max_in_flight"] == 2 and stats["completed"] == 6


@pytest.mark.anyio
async def test_transport_drops_an_abandoned_stream_and_goes_on(server: ServerProcess) -> None:
    _fresh(server, tokens=50, interval=0.01)
    async with _client(server, connections=1) as client:
        async with client.stream("POST", "/v1/chat/completions", content=b"{}") as r:
            async for _ in r.aiter_raw():
                break
        r2 = await client.post("/v1/chat/completions", content=b"{}")
        assert r2.content == transport_server.expected_body(50)
    server.wait_idle()
    stats = server.command("STATS")
    assert (stats["aborted"], stats["completed"], stats["accepted"]) == (1, 1, 2)


@pytest.mark.anyio
async def test_transport_read_and_pool_timeouts(server: ServerProcess) -> None:
    _fresh(server, tokens=2, interval=5.0)
    async with _client(server, connections=1, read=0.2, pool=0.2) as client:
        async with client.stream("POST", "/v1/chat/completions", content=b"{}") as r:
            with pytest.raises(httpx.PoolTimeout):
                await client.post("/v1/chat/completions", content=b"{}")
            with pytest.raises(httpx.ReadTimeout):
                async for _ in r.aiter_raw():
                    pass
