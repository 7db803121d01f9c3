"""The thin async client: one provider call over an ``httpx.AsyncClient``.

No runtime, no scheduling, no retries: it builds the request with the family, sends
it, and yields normalized events as the bytes arrive. The runtime (``swarm``) adds
everything else on top. It runs on trio and on asyncio (httpx and anyio do).

This module is the single place where httpx exceptions become ``providers`` errors
(:func:`_map_transport_error`).

Example::

    async with Client.from_preset("openai") as client:
        async with client.stream(request) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    print(event.text, end="")
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import anyio
import httpx

from .assemble import ResponseAssembler
from .errors import APIError, ConnectError, ProviderError, ReadError, TimeoutError, TransportError
from .events import ErrorEvent, Response, StreamEvent, Usage
from .families import Endpoint, Family, StreamDecoder, get_family
from .families.base import error_from_event
from .messages import Request
from .ratelimits import RateLimitInfo
from .transport import BODY_EXTENSION

E = TypeVar("E", bound=ProviderError)

__all__ = ["Client", "EventStream", "complete", "stream"]

# How long closing a response may take once its caller is gone. Closing an
# unfinished response drops the connection, which is quick; the bound only guards
# against a transport that hangs on close.
_CLOSE_TIMEOUT = 5.0
_SPENT = httpx.ByteStream(b"")


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """httpx.URL of ``url``, parsed once: httpx parses a str URL on every request
    (urlparse, and ipaddress for a literal IP host: ~4% of a short call's CPU), and
    an endpoint sends to the same few URLs again and again. URL is immutable."""
    return httpx.URL(url)


def _unlink(response: httpx.Response) -> None:
    """Break httpx's response <-> stream reference cycle once the response is closed.

    ``AsyncClient.send`` wraps ``response.stream`` in a stream that points back at
    the response (to set ``elapsed`` on close). Left as it is, the response and all
    it reaches (its request, headers, our stream, an engine call through the
    request's extensions: ~50 objects a call) are freed only by the cyclic
    collector, never when the last reference goes; at thousands of calls that is
    most of the collector's work. A closed response never reads its stream again
    (``aread`` and the iterators raise ``StreamClosed`` first).
    """
    if response.is_closed:
        response.stream = _SPENT


# Generous read timeout: a reasoning model may think for minutes before a byte.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def _map_transport_error(exc: httpx.HTTPError, where: str) -> ProviderError:
    """Translate an httpx exception into the most specific ``providers`` error."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return TimeoutError(f"connect timeout to {where}: {detail}", phase="connect")
    if isinstance(exc, httpx.PoolTimeout):
        return TimeoutError(f"no free connection to {where} in time: {detail}", phase="pool")
    if isinstance(exc, httpx.WriteTimeout):
        return TimeoutError(f"write timeout to {where}: {detail}", phase="write")
    if isinstance(exc, httpx.ReadTimeout):
        return TimeoutError(f"read timeout from {where}: {detail}", phase="read")
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(f"cannot connect to {where}: {detail}")
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
        return ReadError(f"connection to {where} broke mid-response: {detail}")
    return TransportError(f"HTTP error talking to {where}: {detail}")


def _sent_tracer(callback: Callable[[], None]) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore trace callback that reports when the request body went out."""

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_body.complete"):
            callback()

    return trace


def _error_status(
    fam: Family,
    status: int,
    headers: httpx.Headers,
    body: bytes,
    endpoint: Endpoint,
    request: Request,
    now: float,
) -> APIError:
    """The typed error of an error response, with its rate-limit headers attached
    (so a limiter can tell which limit a 429 hit) and the key masked."""
    error = fam.map_error(
        status, headers, body, provider=endpoint.provider, model=request.model, now=now
    )
    error.rate_limits = fam.rate_limits(headers, now)
    return _redacted(error, endpoint)


def _redacted(error: E, endpoint: Endpoint) -> E:
    """The error with the endpoint's key masked wherever the provider echoed it."""
    if endpoint.api_key is not None:
        error.redact(endpoint.api_key.reveal())
    return error


class EventStream:
    """The events of one streaming response, as they arrive.

    Iterate it with ``async for``. When the provider reports an error inside the
    stream, iteration raises the typed error (``OverloadedError``...) after the
    events that came before it. Obtained from :func:`stream` (no public constructor).

    Attributes:
        status: The HTTP status (200).
        headers: The response headers.
        rate_limits: What the response headers said about rate limits.
        cancel_safe: Whether a read (``__anext__``, ``next_batch``) cancelled while
            it waits leaves the stream intact, so that iteration can go on after it,
            from the same task or another. True over ``providers.transport`` (an
            uncompressed body); over httpx's own transports a cancelled read breaks
            the stream (httpx reads bodies through async generators).
    """

    def __init__(
        self,
        response: httpx.Response,
        decoder: StreamDecoder,
        *,
        provider: str,
        model: str,
        rate_limits: RateLimitInfo,
    ) -> None:
        self._response = response
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        # Whether a read cancelled while it waits leaves the stream as it was, so that
        # reading can go on (from any task): only over a body that says so.
        self.cancel_safe = False
        body = response.extensions.get(BODY_EXTENSION)
        if encoding in ("", "identity") and getattr(body, "cancel_safe", False):
            # The transport's own body (providers.transport): read it directly, with
            # no async generator between (one a cancellation would finalize).
            self._chunks: AsyncIterator[bytes] = cast("AsyncIterator[bytes]", body)
            self.cancel_safe = True
        elif encoding in ("", "identity"):
            # Nothing to decode: read the body stream itself, skipping httpx's
            # aiter_bytes/aiter_raw generator layers (two resumptions per network
            # read; measured: ~7% of a client's CPU per chunk at 20,000 chunks/s).
            # Closing stays with the response (aclose below).
            self._chunks = aiter(response.stream)  # type: ignore[arg-type]
        else:
            self._chunks = response.aiter_bytes()
        self._decoder = decoder
        self._pending: deque[StreamEvent] = deque()
        self._provider = provider
        self._model = model
        self._ended = False
        self._assembler = ResponseAssembler()
        self.status = response.status_code
        self.headers = response.headers
        self.rate_limits = rate_limits

    @property
    def usage(self) -> Usage:
        """The usage the provider has reported so far (all zeros before any): what
        a stream cut short was billed, as far as the provider said. Anthropic
        reports input tokens at the start; OpenAI only at the end."""
        return self._assembler.usage

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        while not self._pending:
            if self._ended:
                raise StopAsyncIteration
            self._pending.extend(await self._read())
        event = self._pending.popleft()
        self._assembler.feed(event)
        if isinstance(event, ErrorEvent):
            self._ended = True
            self._pending.clear()
            raise error_from_event(event, provider=self._provider, model=self._model)
        return event

    async def next_batch(self) -> list[StreamEvent] | None:
        """The events decoded from the next network read (at least one), or None at
        the end: the same events as iterating, with one await per read instead of
        one per event (what the runtime's per-token loop uses).

        Raises:
            APIError: the provider reported an error in the stream (after the batch
                of the events that came before it).
            StreamDecodeError: the stream was malformed or ended early.
        """
        if self._pending:  # left over from iterating
            batch = list(self._pending)
            self._pending.clear()
        else:
            batch = []
            while not batch:
                if self._ended:
                    return None
                batch = await self._read()
        taken = self._assembler.feed_until_error(batch)
        if taken < len(batch):
            event = batch[taken]
            assert isinstance(event, ErrorEvent)
            self._ended = True
            if taken:  # the events before the error first; the error next time
                self._pending.append(event)
                return batch[:taken]
            self._assembler.feed(event)
            raise error_from_event(event, provider=self._provider, model=self._model)
        return batch

    async def _read(self) -> list[StreamEvent]:
        """Read once from the network; the events decoded (maybe none)."""
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return self._decoder.end()
        except httpx.HTTPError as exc:
            self._ended = True
            raise _map_transport_error(exc, f"{self._provider} ({self._model})") from exc
        return self._decoder.feed(chunk)

    async def aclose(self) -> None:
        """Close the byte iterator and the response (drops an unfinished connection)."""
        self._ended = True
        try:
            close = getattr(self._chunks, "aclose", None)
            if close is not None:
                await close()
        finally:
            await self._response.aclose()

    async def response(self) -> Response:
        """Read the rest of the stream and return the assembled response.

        Events already consumed by iteration are included.

        Raises:
            APIError: the provider reported an error in the stream.
            StreamDecodeError: the stream was malformed or ended early.
        """
        async for _ in self:
            pass
        return self._assembler.result()


@asynccontextmanager
async def stream(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    request: Request,
    *,
    family: Family | str,
    on_request_sent: Callable[[], None] | None = None,
) -> AsyncIterator[EventStream]:
    """Send ``request`` as a streaming call and yield its :class:`EventStream`.

    The response is closed when the block exits, normally, by an exception or by
    cancellation, so an abandoned stream never holds a connection.

    Args:
        on_request_sent: Called when the request has been written to a connection
            (from httpx's trace extension): the end of connecting, for timeouts that
            must tell a slow connect from a slow model.

    Raises:
        RequestError: the request cannot be expressed in this family.
        APIError: the provider answered with an error status.
        TransportError: the connection failed.
    """
    fam = get_family(family) if isinstance(family, str) else family
    built = fam.build_request(request, endpoint, stream=True)
    where = f"{endpoint.provider} ({request.model})"
    http_request = http.build_request(
        built.method,
        _parsed_url(built.url),
        headers=built.wire_headers(),
        content=built.body,
        params=built.params or None,
    )
    if on_request_sent is not None:
        http_request.extensions["trace"] = _sent_tracer(on_request_sent)
    try:
        response = await http.send(http_request, stream=True)
    except httpx.HTTPError as exc:
        raise _map_transport_error(exc, where) from exc
    events: EventStream | None = None
    try:
        now = time.time()
        if response.status_code >= 300:
            try:
                body = await response.aread()
            except httpx.HTTPError as exc:
                raise _map_transport_error(exc, where) from exc
            raise _error_status(
                fam, response.status_code, response.headers, body, endpoint, request, now
            )
        events = EventStream(
            response,
            fam.stream_decoder(),
            provider=endpoint.provider,
            model=request.model,
            rate_limits=fam.rate_limits(response.headers, now),
        )
        yield events
    finally:
        # Shielded: a cancelled caller must still release its connection.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
            if events is not None:
                await events.aclose()
            else:
                await response.aclose()
        _unlink(response)


def lean_cookies(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """Make ``http`` extract cookies only from responses that set one; returns it.

    httpx looks for cookies in every response through urllib's cookie machinery,
    building a urllib request (which parses the URL again) and response for it
    first: measured at ~10% of the CPU of a short streamed call, nearly all of it
    for responses with no ``Set-Cookie`` at all, which is what LLM APIs send on
    nearly every response. A response that sets cookies is handled by httpx as
    before, so the jar holds exactly what it would. (Setting ``http.cookies``
    anew installs a fresh jar, which extracts from every response again.)
    """
    jar = http.cookies
    extract = jar.extract_cookies

    def extract_cookies(response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            extract(response)

    jar.extract_cookies = extract_cookies  # type: ignore[method-assign]
    return http


async def complete(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    request: Request,
    *,
    family: Family | str,
) -> Response:
    """Send ``request`` as a non-streaming call and return the whole response.

    Raises:
        RequestError, APIError, TransportError, StreamDecodeError: as for :func:`stream`.
    """
    fam = get_family(family) if isinstance(family, str) else family
    built = fam.build_request(request, endpoint, stream=False)
    where = f"{endpoint.provider} ({request.model})"
    try:
        response = await http.request(
            built.method,
            _parsed_url(built.url),
            headers=built.wire_headers(),
            content=built.body,
            params=built.params or None,
        )
    except httpx.HTTPError as exc:
        raise _map_transport_error(exc, where) from exc
    _unlink(response)  # read whole and closed by httpx.request
    if response.status_code >= 300:
        raise _error_status(
            fam,
            response.status_code,
            response.headers,
            response.content,
            endpoint,
            request,
            time.time(),
        )
    try:
        return fam.decode_response(
            response.content, provider=endpoint.provider, model=request.model
        )
    except APIError as error:  # an error object in a 200 body
        raise _redacted(error, endpoint) from None


class Client:
    """One provider endpoint with its family and an ``httpx.AsyncClient``.

    Use as an async context manager; it closes the HTTP client it created (one
    passed in with ``http=`` stays the caller's to close).

    Args:
        endpoint: Where the provider is and its key.
        family: The wire family (``openai``, ``openai-responses``, ``anthropic``,
            ``gemini``) or a Family instance.
        http: An existing ``httpx.AsyncClient`` to send through.
        timeout: httpx timeout for a client this object creates.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        family: Family | str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint
        self.family = get_family(family) if isinstance(family, str) else family
        self._owns_http = http is None
        self.http = http if http is not None else lean_cookies(httpx.AsyncClient(timeout=timeout))

    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> Client:
        """A client for a vendor preset (``openai``, ``groq``, ``anthropic``...),
        with the key read from the preset's environment variable unless given."""
        from .presets import endpoint_from_preset, get_preset

        preset = get_preset(name)
        endpoint = endpoint_from_preset(name, api_key=api_key, base_url=base_url)
        return cls(endpoint, preset.family, http=http)

    def stream(self, request: Request) -> AbstractAsyncContextManager[EventStream]:
        """``async with client.stream(request) as events:`` (see :func:`stream`)."""
        return stream(self.http, self.endpoint, request, family=self.family)

    async def complete(self, request: Request) -> Response:
        """A non-streaming call (see :func:`complete`)."""
        return await complete(self.http, self.endpoint, request, family=self.family)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Client(provider={self.endpoint.provider!r}, family={self.family.name!r})"
