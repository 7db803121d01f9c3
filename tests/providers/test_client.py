"""The thin client against a real loopback HTTP server, on trio and asyncio."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import anyio.abc
import httpx
import pytest

from providers import (
    Client,
    ConnectError,
    Endpoint,
    Finish,
    HttpRequest,
    Message,
    OverloadedError,
    RateLimitError,
    ReadError,
    Request,
    Secret,
    StreamEvent,
    TextDelta,
    stream,
)
from providers.errors import APIError, StreamProtocolError
from providers.events import Response
from providers.families.base import Family, StreamDecoder, classify_error, error_event
from providers.sse import SSEDecoder

from .loopback import LAST_CHUNK, HTTPRequest, chunk, json_response, serve, sse_head

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _Decoder(StreamDecoder):
    """data: TEXT -> TextDelta; data: [DONE] -> Finish; event: error -> ErrorEvent."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            if sse.event == "error":
                out.append(error_event("overloaded_error", sse.data))
                self.done = True
            elif sse.data == "[DONE]":
                out.append(Finish(reason="stop"))
                self.done = True
            else:
                out.append(TextDelta(text=sse.data))
        return out


class TinyFamily(Family):
    name = "tiny"
    default_base_url = "http://127.0.0.1"

    def build_request(self, request: Request, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        assert endpoint.api_key is not None
        return HttpRequest(
            method="POST",
            url=endpoint.url("/v1/go"),
            headers={"content-type": "application/json"},
            body=b"{}",
            secret_headers={"authorization": Secret("Bearer " + endpoint.api_key.reveal())},
        )

    def stream_decoder(self) -> StreamDecoder:
        return _Decoder()

    def decode_response(
        self, body: bytes, *, provider: str | None = None, model: str | None = None
    ) -> Response:
        return Response(message=Message.assistant(body.decode()))

    def map_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        provider: str,
        model: str | None,
        now: float,
    ) -> APIError:
        return classify_error(
            status,
            body.decode(),
            provider_type=None,
            headers=headers,
            provider=provider,
            model=model,
            now=now,
        )


REQUEST = Request(model="tiny-1", messages=[Message.user("hi")])


def client_for(base_url: str) -> Client:
    endpoint = Endpoint(provider="tiny", base_url=base_url, api_key=Secret(KEY))
    return Client(endpoint, TinyFamily(), timeout=httpx.Timeout(10.0))


async def test_first_token_arrives_while_server_holds_the_rest_back() -> None:
    release = anyio.Event()
    seen: list[HTTPRequest] = []

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        seen.append(req)
        await stream.send(sse_head() + chunk(b"data: first\n\n"))
        await release.wait()  # nothing more until the client has the first token
        await stream.send(chunk(b"data: second\n\ndata: [DONE]\n\n") + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        with anyio.fail_after(10):
            async with client.stream(REQUEST) as events:
                first = await events.__anext__()
                assert first == TextDelta(text="first")
                release.set()
                rest = [e async for e in events]
    assert rest == [TextDelta(text="second"), Finish(reason="stop")]
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


async def test_cancelling_the_caller_closes_the_upstream_connection() -> None:
    closed = anyio.Event()

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(sse_head() + chunk(b"data: first\n\n"))
        try:
            while True:  # hold the stream open until the client hangs up
                await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            closed.set()

    async with serve(handler) as url, client_for(url) as client:
        with anyio.fail_after(10):
            with anyio.CancelScope() as scope:
                async with client.stream(REQUEST) as events:
                    async for _ in events:
                        scope.cancel()
            assert scope.cancelled_caught
            await closed.wait()


async def test_response_assembles_events_already_consumed() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(
            sse_head() + chunk(b"data: a\n\ndata: b\n\ndata: [DONE]\n\n") + LAST_CHUNK
        )

    async with serve(handler) as url, client_for(url) as client:
        async with client.stream(REQUEST) as events:
            assert await events.__anext__() == TextDelta(text="a")
            response = await events.response()
    assert response.text == "ab"
    assert response.finish_reason == "stop"


async def test_error_status_becomes_typed_error_with_retry_after() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(json_response(429, b"slow down", "retry-after: 7\r\n"))

    async with serve(handler) as url, client_for(url) as client:
        with pytest.raises(RateLimitError) as info:
            async with client.stream(REQUEST):
                pass  # pragma: no cover
    assert info.value.retry_after == 7.0
    assert info.value.status == 429
    assert "429 from tiny (tiny-1)" in str(info.value)
    assert KEY not in str(info.value)


async def test_error_event_in_stream_raises_after_earlier_events() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        body = b"data: partial\n\nevent: error\ndata: Overloaded\n\n"
        await stream.send(sse_head() + chunk(body) + LAST_CHUNK)

    got: list[StreamEvent] = []
    async with serve(handler) as url, client_for(url) as client:
        with pytest.raises(OverloadedError, match="Overloaded"):
            async with client.stream(REQUEST) as events:
                async for event in events:
                    got.append(event)
    assert got == [TextDelta(text="partial")]


async def test_connection_dropped_mid_stream_is_read_error() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(sse_head() + chunk(b"data: a\n\n") + b"40\r\ndata: tru")
        # Return without the rest: the server closes the connection mid-chunk.

    async with serve(handler) as url, client_for(url) as client:
        with pytest.raises(ReadError, match="broke mid-response"):
            async with client.stream(REQUEST) as events:
                async for _ in events:
                    pass


async def test_stream_that_ends_without_finishing_is_a_protocol_error() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(sse_head() + chunk(b"data: a\n\n") + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        with pytest.raises(StreamProtocolError, match="ended before"):
            async with client.stream(REQUEST) as events:
                async for _ in events:
                    pass


async def test_refused_connection_is_connect_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    async with client_for(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ConnectError, match=r"tiny \(tiny-1\)") as info:
            async with client.stream(REQUEST):
                pass  # pragma: no cover
    assert info.value.retryable
    assert KEY not in repr(client) + str(info.value)


async def test_complete_non_streaming() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(json_response(200, b"hello"))

    async with serve(handler) as url, client_for(url) as client:
        response = await client.complete(REQUEST)
    assert response.text == "hello"


async def test_given_http_client_is_left_open() -> None:
    async with httpx.AsyncClient() as http:
        endpoint = Endpoint(provider="tiny", base_url="http://127.0.0.1:9", api_key=Secret(KEY))
        async with Client(endpoint, TinyFamily(), http=http):
            pass
        assert not http.is_closed


async def test_the_endpoints_own_key_is_redacted_whatever_its_shape() -> None:
    short_key = "abc123"  # too short for shape-based scrubbing

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        body = f"Incorrect API key provided: {short_key}".encode()
        await stream.send(json_response(401, body))

    async with serve(handler) as url:
        endpoint = Endpoint(provider="tiny", base_url=url, api_key=Secret(short_key))
        async with Client(endpoint, TinyFamily()) as client:
            with pytest.raises(APIError) as info:
                async with client.stream(REQUEST):
                    pass  # pragma: no cover
    assert short_key not in str(info.value) and short_key not in info.value.body
    assert "Incorrect API key provided: abc***" in str(info.value)


async def test_on_request_sent_fires_before_the_first_event() -> None:
    order: list[str] = []
    release = anyio.Event()

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await release.wait()
        await stream.send(sse_head() + chunk(b"data: a\n\ndata: [DONE]\n\n") + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async with stream(
                        client.http, client.endpoint, REQUEST, family=TinyFamily(),
                        on_request_sent=lambda: order.append("sent"),
                    ) as events:  # fmt: skip
                        async for event in events:
                            order.append(type(event).__name__)

                tg.start_soon(consume)
                while not order:  # noqa: ASYNC110 - waiting for the callback itself
                    await anyio.sleep(0.005)
                assert order == ["sent"]  # sent, while the server still holds the answer
                release.set()
    assert order == ["sent", "TextDelta", "Finish"]


async def test_next_batch_gives_the_events_of_each_read_then_none() -> None:
    release = anyio.Event()

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(sse_head() + chunk(b"data: a\n\ndata: b\n\n"))
        await release.wait()
        await stream.send(chunk(b"data: c\n\ndata: [DONE]\n\n") + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        with anyio.fail_after(10):
            async with client.stream(REQUEST) as events:
                first = await events.next_batch()
                release.set()
                batches = [first]
                while (batch := await events.next_batch()) is not None:
                    batches.append(batch)
                response = await events.response()
    assert batches == [
        [TextDelta(text="a"), TextDelta(text="b")],
        [TextDelta(text="c"), Finish(reason="stop")],
    ]
    assert response.text == "abc"


async def test_next_batch_delivers_the_events_before_an_error_then_raises() -> None:
    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        body = b"data: a\n\nevent: error\ndata: overloaded\n\ndata: never\n\n"
        await stream.send(sse_head() + chunk(body) + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        async with client.stream(REQUEST) as events:
            assert await events.next_batch() == [TextDelta(text="a")]
            with pytest.raises(OverloadedError):
                await events.next_batch()
            assert await events.next_batch() is None


@pytest.mark.parametrize("encoded", [False, True])
async def test_a_compressed_stream_is_decoded_and_a_plain_one_read_as_it_comes(
    encoded: bool,
) -> None:
    # A plain stream is read straight from the body stream (no httpx decoder
    # layers); a gzip-encoded one goes through httpx's decoder. Same events.
    import zlib

    payload = b"data: x\n\ndata: y\n\ndata: [DONE]\n\n"
    packer = zlib.compressobj(wbits=31)
    gzipped = packer.compress(payload) + packer.flush()

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        if encoded:
            head = sse_head(extra="content-encoding: gzip\r\n")
            await stream.send(head + chunk(gzipped) + LAST_CHUNK)
        else:
            await stream.send(sse_head() + chunk(payload) + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        with anyio.fail_after(10):
            async with client.stream(REQUEST) as events:
                got = [event async for event in events]
    assert got == [TextDelta(text="x"), TextDelta(text="y"), Finish(reason="stop")]


async def test_a_finished_call_leaves_no_reference_cycle_behind() -> None:
    # httpx links a response and its stream both ways; the client unlinks them once
    # the response is closed, so what a call made is freed as soon as it is done
    # rather than left to the cyclic collector (the engine makes thousands).
    import gc

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        await stream.send(sse_head() + chunk(b"data: a\n\ndata: [DONE]\n\n") + LAST_CHUNK)

    async with serve(handler) as url, client_for(url) as client:
        async with client.stream(REQUEST) as events:  # warm: pool, imports
            [e async for e in events]
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                async with client.stream(REQUEST) as events:
                    assert [e async for e in events][-1] == Finish(reason="stop")
                assert (await client.complete(REQUEST)).finish_reason == "stop"
            gc.collect()
            garbage = [type(o).__qualname__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert [name for name in garbage if name in ("Response", "Request", "Headers")] == []


async def test_lean_cookies_keeps_the_cookies_a_response_sets() -> None:
    from providers.client import lean_cookies

    calls = [0]

    async def handler(req: HTTPRequest, stream: anyio.abc.SocketStream) -> None:
        calls[0] += 1
        # The first response sets a cookie, the second sets none: the jar keeps the
        # first, and the third request sends it back, as plain httpx would.
        extra = "set-cookie: __cf_bm=abc; Path=/\r\n" if calls[0] == 1 else ""
        await stream.send(json_response(200, req.headers.get("cookie", "-").encode(), extra))

    async with serve(handler) as url:
        for lean in (False, True):
            http = lean_cookies(httpx.AsyncClient()) if lean else httpx.AsyncClient()
            jar = http.cookies.jar
            parsed = [0]
            original = jar.extract_cookies

            def counting(
                *args: object, original: object = original, parsed: list[int] = parsed
            ) -> None:
                parsed[0] += 1
                original(*args)  # type: ignore[operator]

            jar.extract_cookies = counting  # type: ignore[method-assign,assignment]
            async with http:
                calls[0] = 0
                bodies = [(await http.get(url + "/x")).content for _ in range(3)]
                assert bodies == [b"-", b"__cf_bm=abc", b"__cf_bm=abc"]
                assert dict(http.cookies) == {"__cf_bm": "abc"}
            # urllib's cookie parsing ran for every response, or only for the one
            # that set a cookie.
            assert parsed[0] == (1 if lean else 3)
