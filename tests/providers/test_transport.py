"""StreamingTransport behind httpx.AsyncClient, against real loopback servers, on
trio and asyncio: streaming, pooling and reuse, limits, timeouts, disconnects,
cancellation, TLS, and the same streams as httpx's own transport from the simulator."""

from __future__ import annotations

import gzip
import itertools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import Client, Message, Request, TextDelta, get_family
from providers.families import Endpoint
from providers.secrets import Secret
from providers.sim import open_simulator
from providers.transport import BODY_EXTENSION, StreamingTransport, _Connection

from .loopback import LAST_CHUNK, HTTPRequest, chunk, read_request

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Handler = Callable[[HTTPRequest, anyio.abc.SocketStream], Awaitable[bool]]


class Server:
    """A keep-alive HTTP/1.1 server: the handler answers one request and returns
    whether the connection stays open for the next."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[HTTPRequest] = []
        self.url = ""


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()
    listener: Any
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    if tls is not None:
        from anyio.streams.tls import TLSListener

        listener = TLSListener(tcp, tls, standard_compatible=False)
    else:
        listener = tcp
    server.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"

    async def connection(stream: anyio.abc.SocketStream) -> None:
        server.connections += 1
        server.open += 1
        server.max_open = max(server.max_open, server.open)
        try:
            async with stream:
                while True:
                    request = await read_request(stream)
                    if request is None:
                        return
                    server.requests.append(request)
                    if not await handler(request, stream):
                        return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        finally:
            server.open -= 1

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, connection)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


def sized(body: bytes, status: int = 200, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} OK\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body


async def ok(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
    await stream.send(sized(b"echo:" + request.body))
    return True


def client(**limits: int | float | None) -> httpx.AsyncClient:
    transport = StreamingTransport(limits=httpx.Limits(**limits))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0))


def stats(http: httpx.AsyncClient) -> StreamingTransport:
    transport = http._transport
    assert isinstance(transport, StreamingTransport)
    return transport


# -- requests and responses -------------------------------------------------------


async def test_a_post_goes_out_whole_and_its_sized_response_comes_back() -> None:
    async with serve(ok) as server, client() as http:
        response = await http.post(server.url + "/v1/x?q=1", content=b"hello", headers={"x-a": "b"})
    assert response.status_code == 200
    assert response.text == "echo:hello"
    assert response.http_version == "HTTP/1.1"
    sent = server.requests[0]
    assert (sent.method, sent.path, sent.body) == ("POST", "/v1/x?q=1", b"hello")
    assert sent.headers["x-a"] == "b"
    assert sent.headers["host"] == server.url.removeprefix("http://")


def one_then_two(release: anyio.Event) -> Handler:
    """A chunked response: "one" at once, "two" and the end once ``release`` is set."""

    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"one"))
        await release.wait()
        await stream.send(chunk(b"two") + LAST_CHUNK)
        return True

    return handler


async def test_a_chunked_body_streams_piece_by_piece_while_the_server_holds_the_rest() -> None:
    release = anyio.Event()
    async with serve(one_then_two(release)) as server, client() as http:
        async with http.stream("GET", server.url) as response:
            pieces = response.aiter_raw()
            assert await pieces.__anext__() == b"one"  # before the server sends the rest
            release.set()
            assert [p async for p in pieces] == [b"two"]
        assert stats(http).statistics().idle == 1  # read to its end: back in the pool


async def test_a_read_cancelled_while_it_waits_leaves_the_body_readable_from_another_task() -> None:
    release = anyio.Event()
    async with serve(one_then_two(release)) as server, client() as http:
        async with http.stream("GET", server.url) as response:
            body = response.extensions[BODY_EXTENSION]
            assert body.cancel_safe
            assert await body.__anext__() == b"one"
            with anyio.move_on_after(0.05) as scope:
                await body.__anext__()  # the server holds the rest
            assert scope.cancelled_caught
            got: list[bytes] = []

            async def other_task() -> None:
                got.append(await body.__anext__())

            async with anyio.create_task_group() as tg:
                tg.start_soon(other_task)
                await anyio.wait_all_tasks_blocked()
                release.set()
            assert got == [b"two"]
            with pytest.raises(StopAsyncIteration):
                await body.__anext__()
        assert stats(http).statistics().idle == 1  # whole: back in the pool


async def test_a_body_delimited_by_the_end_of_the_connection_is_read_and_not_reused() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        return False

    async with serve(handler) as server, client() as http:
        assert (await http.get(server.url)).text == "all of it"
        assert (await http.get(server.url)).text == "all of it"
        assert stats(http).statistics().connections == 0
    assert server.connections == 2


async def test_content_encoding_is_decoded_by_httpx_on_top() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(sized(gzip.compress(b"x" * 1000), extra="content-encoding: gzip\r\n"))
        return True

    async with serve(handler) as server, client() as http:
        assert (await http.get(server.url)).text == "x" * 1000


async def test_an_interim_100_response_is_skipped_and_head_has_no_body() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        if request.method == "HEAD":
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n")
            return False
        await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n" + sized(b"final", status=201))
        return True

    async with serve(handler) as server, client() as http:
        response = await http.post(server.url, content=b"{}")
        assert (response.status_code, response.text) == (201, "final")
        head = await http.head(server.url)
        assert (head.status_code, head.content) == (200, b"")


async def test_an_unsupported_scheme_is_refused_by_name() -> None:
    async with client() as http:
        with pytest.raises(httpx.UnsupportedProtocol, match="ftp"):
            await http.get("ftp://127.0.0.1/x")


# -- the pool ---------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with serve(ok) as server, client() as http:
        for i in range(5):
            assert (await http.post(server.url, content=b"%d" % i)).text == f"echo:{i}"
        snapshot = stats(http).statistics()
    assert server.connections == 1
    assert (snapshot.opened, snapshot.reused, snapshot.idle) == (1, 4, 1)


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(sized(b"ok"))
        return False  # closes after each response, though it did not say so

    async with serve(handler) as server, client() as http:
        assert (await http.get(server.url)).text == "ok"
        await anyio.sleep(0.05)  # let the close arrive
        assert (await http.get(server.url)).text == "ok"
    assert server.connections == 2


async def test_max_connections_bounds_the_open_connections_and_every_request_completes() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await anyio.sleep(0.02)
        await stream.send(sized(b"done"))
        return True

    results: list[str] = []
    async with serve(handler) as server, client(max_connections=2) as http:

        async def one() -> None:
            results.append((await http.get(server.url)).text)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert results == ["done"] * 10
    assert server.max_open <= 2
    assert server.connections == 2


async def test_a_request_that_waits_past_the_pool_timeout_fails_with_pool_timeout() -> None:
    release = anyio.Event()

    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await release.wait()
        await stream.send(sized(b"late"))
        return True

    async with serve(handler) as server, client(max_connections=1) as http:
        async with anyio.create_task_group() as tg:
            tg.start_soon(http.get, server.url)
            await anyio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout, match="1 of 1 in use"):
                await http.get(server.url, timeout=httpx.Timeout(10.0, pool=0.05))
            release.set()
        assert stats(http).statistics().waiting == 0


async def test_idle_connections_beyond_keepalive_are_closed() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await anyio.sleep(0.02)
        await stream.send(sized(b"ok"))
        return True

    async with serve(handler) as server, client(max_keepalive_connections=1) as http:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(http.get, server.url)
        snapshot = stats(http).statistics()
    assert (snapshot.connections, snapshot.idle) == (1, 1)


async def test_an_expired_idle_connection_is_not_reused() -> None:
    async with serve(ok) as server, client(keepalive_expiry=0.01) as http:
        await http.get(server.url)
        await anyio.sleep(0.05)
        await http.get(server.url)
    assert server.connections == 2


# -- failures -----------------------------------------------------------------------


async def test_a_stalled_read_times_out_with_read_timeout() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"a"))
        await anyio.sleep(5)
        return False

    async with serve(handler) as server, client() as http:
        async with http.stream(
            "GET", server.url, timeout=httpx.Timeout(10.0, read=0.1)
        ) as response:
            with pytest.raises(httpx.ReadTimeout):
                async for _ in response.aiter_raw():
                    pass
        assert stats(http).statistics().connections == 0


async def test_a_disconnect_mid_body_is_a_protocol_error_and_frees_the_slot() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"a"))
        return False

    async with serve(handler) as server, client(max_connections=1) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            await http.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(server.url)  # the slot came back: no pool wait
        assert stats(http).statistics().connections == 0


async def test_a_server_that_closes_without_answering_is_a_protocol_error() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        return False

    async with serve(handler) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.get(server.url)


async def test_a_malformed_response_is_a_protocol_error() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n")
        return False

    async with serve(handler) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await http.get(server.url)


async def test_a_refused_connection_is_a_connect_error_naming_the_address() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    async with client() as http:
        with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
            await http.get(f"http://127.0.0.1:{port}/")
        assert stats(http).statistics().connections == 0


async def test_cancelling_a_reader_mid_stream_closes_its_connection() -> None:
    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"a"))
        await anyio.sleep(5)
        return False

    async with serve(handler) as server, client(max_connections=1) as http:
        with anyio.move_on_after(0.1) as scope:
            async with http.stream("GET", server.url) as response:
                async for _ in response.aiter_raw():
                    pass
        assert scope.cancelled_caught
        assert stats(http).statistics().connections == 0


async def test_closing_the_transport_fails_a_read_in_progress_promptly() -> None:
    errors: list[BaseException] = []

    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"a"))
        await anyio.sleep(30)
        return False

    async with serve(handler) as server:
        http = client()
        started = anyio.Event()

        async def reader() -> None:
            try:
                async with http.stream("GET", server.url) as response:
                    async for _ in response.aiter_raw():
                        started.set()
            except httpx.ReadError as exc:
                errors.append(exc)

        with anyio.fail_after(5):  # a hang here would be the bug
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await started.wait()
                await http.aclose()
    assert len(errors) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await stats(http).handle_async_request(httpx.Request("GET", server.url))


# -- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_https_with_a_trusted_certificate(ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with serve(ok, tls=server_ctx) as server:
        transport = StreamingTransport(verify=client_ctx)
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(3):
                assert (await http.post(server.url, content=b"tls")).text == "echo:tls"
    assert server.connections == 1


async def test_https_with_an_untrusted_certificate_is_a_connect_error(ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    async with serve(ok, tls=server_ctx) as server, client() as http:
        with pytest.raises(httpx.ConnectError, match="TLS handshake"):
            await http.get(server.url)


# -- the parser, sans-IO ------------------------------------------------------------


def _parse(pieces: list[bytes]) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    a, b = socket.socketpair()
    try:
        conn = _Connection(
            a, ("http", "x", 80), memoryview(bytearray(16)), (anyio.wait_readable,) * 2
        )
        request = httpx.Request("GET", "http://x/")
        for piece in pieces:
            conn._feed(piece, request)
        for name, lower, _ in conn.headers:
            assert lower == name.lower()
        headers = [(name, value) for name, _, value in conn.headers]
        return conn.status, headers, b"".join(conn.body), conn.complete
    finally:
        a.close()
        b.close()


@settings(max_examples=200, deadline=None)
@given(
    body=st.lists(st.binary(min_size=1, max_size=40), max_size=6),
    chunked=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_a_response_parses_the_same_however_it_is_split(
    body: list[bytes], chunked: bool, cuts: list[int]
) -> None:
    if chunked:
        wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-k: v\r\n\r\n"
        wire += b"".join(chunk(p) for p in body) + LAST_CHUNK
    else:
        whole = b"".join(body)
        wire = b"HTTP/1.1 200 OK\r\nx-k: v\r\ncontent-length: %d\r\n\r\n" % len(whole) + whole
    points = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    pieces = [wire[i:j] for i, j in itertools.pairwise(points)]
    assert (
        _parse(pieces)
        == _parse([wire])
        == (
            200,
            [(b"transfer-encoding", b"chunked"), (b"x-k", b"v")]
            if chunked
            else [(b"x-k", b"v"), (b"content-length", b"%d" % len(b"".join(body)))],
            b"".join(body),
            True,
        )
    )


# -- the simulator, through the provider client -------------------------------------


@pytest.mark.parametrize("family", ["openai", "openai-responses", "anthropic", "gemini"])
async def test_the_simulator_streams_the_same_text_as_through_httpx_own_transport(
    family: str,
) -> None:
    request = Request(model="sim-model", messages=[Message.user("hello")], max_tokens=40)

    async def text(http: httpx.AsyncClient, base_url: str) -> str:
        endpoint = Endpoint(provider="sim", base_url=base_url, api_key=Secret("sk-sim"))
        async with Client(endpoint, get_family(family), http=http) as c:
            async with c.stream(request) as events:
                return "".join([e.text async for e in events if isinstance(e, TextDelta)])

    async with open_simulator() as sim:
        base = sim.base_url_for(family)
        async with httpx.AsyncClient() as plain:
            expected = await text(plain, base)
        async with client() as ours:
            got = [await text(ours, base) for _ in range(3)]
            assert stats(ours).statistics().opened == 1
    assert expected
    assert got == [expected] * 3


async def test_live_responses_share_header_names_and_stable_values() -> None:
    """A streaming response holds its headers while it lives: at 10,000 streams a
    copy of each name and of content-type per response is megabytes, so the transport
    shares them. The headers still read as httpx's: case-insensitive, raw names as
    sent, values that differ per response kept apart."""
    served = [0]

    async def handler(request: HTTPRequest, stream: anyio.abc.SocketStream) -> bool:
        served[0] += 1
        await stream.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: req-%d\r\n"
            b"content-length: 2\r\n\r\nok" % served[0]
        )
        return True

    async with serve(handler) as server, client() as http:
        first = await http.get(server.url)
        second = await http.get(server.url)
    assert first.headers["content-type"] == second.headers["CONTENT-TYPE"] == "text/plain"
    assert (first.headers["x-request-id"], second.headers["X-Request-ID"]) == ("req-1", "req-2")
    assert [n for n, _ in first.headers.raw] == [
        b"Content-Type",
        b"X-Request-Id",
        b"content-length",
    ]
    assert list(first.headers) == ["content-type", "x-request-id", "content-length"]
    for (n1, _), (n2, _) in zip(first.headers.raw, second.headers.raw, strict=True):
        assert n1 is n2
    assert first.headers.raw[0][1] is second.headers.raw[0][1]  # content-type's value
    assert first.text == second.text == "ok"
