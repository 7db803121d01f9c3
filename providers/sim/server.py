"""The simulator's HTTP/1.1 server: routing, admission (auth, rate limits,
faults), and the response writers.

Endpoints:

=========================================================  =========================
``POST /v1/chat/completions``                               OpenAI Chat Completions
``POST /v1/responses``                                      OpenAI Responses
``POST /v1/messages``                                       Anthropic Messages
``POST /v1beta/models/{model}:generateContent``             Gemini
``POST /v1beta/models/{model}:streamGenerateContent``       Gemini (``?alt=sse``)
``GET /v1/models``                                          OpenAI list, or Anthropic's
                                                            when ``anthropic-version``
                                                            or ``x-api-key`` is sent
``GET /v1beta/models``                                      Gemini list
``GET /sim/stats``, ``POST /sim/reset``, ``GET /health``    the simulator's own
``GET /sim/faults``, ``POST /sim/faults`` (a JSON list of   read or replace the
:class:`~.config.Fault`)                                    active faults
=========================================================  =========================

One task per connection reads requests (keep-alive, pipelining) and answers
them; paced streams are handed to the shared :class:`~.pacing.Scheduler`.
"""

from __future__ import annotations

import functools
import itertools
import socket
import time
import urllib.parse
from typing import Any

import anyio
import anyio.abc
import httptools
import msgspec

from .anthropic import AnthropicCodec
from .cache import PromptCache
from .codec import Codec, Ctx, ErrorKind
from .config import Fault, SimConfig
from .faults import Faults, break_stream
from .gemini import GeminiCodec, gemini_json_array
from .model import BadRequest, plan_turn
from .netio import (
    HttpRequest,
    RequestReader,
    checkpoint,
    head,
    peer_closed,
    recv_some,
    send_all,
)
from .openai_chat import OpenAIChatCodec
from .openai_responses import OpenAIResponsesCodec
from .pacing import Scheduler, StreamJob, Timing
from .ratelimit import (
    Decision,
    RateLimiter,
    anthropic_headers,
    openai_headers,
    retry_after_headers,
)
from .stats import Stats
from .text import corpus

__all__ = ["Simulator"]

_CHAT = OpenAIChatCodec()
_RESPONSES = OpenAIResponsesCodec()
_ANTHROPIC = AnthropicCodec()
_GEMINI = GeminiCodec()
CODECS: dict[str, Codec] = {c.name: c for c in (_CHAT, _RESPONSES, _ANTHROPIC, _GEMINI)}

_GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/", "/v1alpha/models/")


def api_key(req: HttpRequest) -> str | None:
    h = req.headers
    auth = h.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        if name in h:
            return h[name].strip()
    if req.query:
        for k, v in urllib.parse.parse_qsl(req.query):
            if k == "key":
                return v
    return None


class Simulator:
    """A running simulator (see :func:`providers.sim.open_simulator`).

    Attributes:
        config: The configuration; ``config.faults`` may be changed while it runs
            (or use :meth:`set_faults`).
        port: The port it listens on (once started).
        stats: Request counts (``/sim/stats``).
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.port = 0
        self.stats = Stats(self.config.log_size)
        self.scheduler = Scheduler(self.stats.lag)
        self.limiter = RateLimiter()
        self.cache = PromptCache()
        self.corpus = corpus(self.config.seed)
        self.started = 0.0
        self.faults = Faults(self.config.faults, 0.0)
        self._ids = itertools.count(1)

    # -- public helpers -------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the root every endpoint hangs from."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For OpenAI clients (``OpenAI(base_url=...)``): ``…/v1``."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For Anthropic clients (``Anthropic(base_url=...)``): the root."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        """Gemini's API root with its version: ``…/v1beta``."""
        return self.base_url + "/v1beta"

    def base_url_for(self, family: str) -> str:
        """The base URL for one of our families (``providers.families`` names),
        in the shape that family's ``default_base_url`` has."""
        try:
            from ..families import get_family

            default = get_family(family).default_base_url
        except Exception:  # the family module may not exist yet
            default = {"anthropic": "https://x", "gemini": "https://x/v1beta"}.get(
                family, "https://x/v1"
            )
        parts = urllib.parse.urlsplit(default)
        return self.base_url + parts.path.rstrip("/")

    def set_faults(self, faults: list[Fault]) -> None:
        """Replace the active faults (their windows count from the simulator's start)."""
        self.config.faults = list(faults)
        self.faults = Faults(self.config.faults, self.started)

    def reset(self) -> None:
        """Forget counts, rate-limit buckets, the prompt cache and fault draws."""
        self.stats.reset()
        self.limiter.reset()
        self.cache.reset()
        self.faults.reset()

    # -- serving ----------------------------------------------------------------------

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled; ``task_status.started(port)``."""
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((self.config.host, self.config.port))
            lsock.listen(4096)
            lsock.setblocking(False)
            self.port = lsock.getsockname()[1]
            self.started = anyio.current_time()
            self.faults = Faults(self.config.faults, self.started)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.scheduler.run)
                task_status.started(self.port)
                while True:
                    await anyio.wait_readable(lsock)
                    while True:
                        try:
                            conn, _ = lsock.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:
                            await anyio.sleep(0.01)  # out of file descriptors: back off
                            break
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        tg.start_soon(self._connection, conn)
        finally:
            lsock.close()

    async def _connection(self, sock: socket.socket) -> None:
        reader = RequestReader()
        self.stats.connections += 1
        try:
            while True:
                while not reader.ready:
                    data = await recv_some(sock)
                    if not data:
                        return
                    try:
                        reader.feed(data)
                    except httptools.HttpParserError:
                        await send_all(
                            sock, head(400, [("content-length", "0"), ("connection", "close")])
                        )
                        return
                    if reader.expects_continue:  # curl sends this for larger bodies
                        reader.expects_continue = False
                        await send_all(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
                req = reader.ready.pop(0)
                keep = await self._handle(sock, req)
                if not (keep and req.keep_alive):
                    return
        except OSError:
            return
        finally:
            self.stats.connections -= 1
            sock.close()

    async def _handle(self, sock: socket.socket, req: HttpRequest) -> bool:
        path = req.path
        if req.method == "POST":
            if path == "/v1/chat/completions" or path == "/chat/completions":
                return await self._generate(sock, req, _CHAT, None, None)
            if path == "/v1/messages" or path == "/messages":
                return await self._generate(sock, req, _ANTHROPIC, None, None)
            if path == "/v1/responses" or path == "/responses":
                return await self._generate(sock, req, _RESPONSES, None, None)
            if path.startswith(_GEMINI_PREFIXES) and ":" in path:
                rest = path.split("/models/", 1)[1]
                model, _, method = rest.rpartition(":")
                model = urllib.parse.unquote(model)
                if method == "streamGenerateContent":
                    return await self._generate(sock, req, _GEMINI, model, True)
                if method == "generateContent":
                    return await self._generate(sock, req, _GEMINI, model, False)
            if path == "/sim/reset":
                self.reset()
                return await self._json(sock, 200, {"ok": True})
            if path == "/sim/faults":
                try:
                    faults = msgspec.json.decode(req.body, type=list[Fault])
                except msgspec.DecodeError as exc:
                    return await self._json(sock, 400, {"error": str(exc)})
                self.set_faults(faults)
                return await self._json(sock, 200, {"faults": len(faults)})
        elif req.method == "GET":
            listing = path in (
                "/v1/models",
                "/models",
                "/v1beta/models",
                "/v1/models/gemini",
            ) or path.startswith(("/v1/models/", "/v1beta/models/"))
            if listing:
                # Counted as every API request is (a health check lists models), under
                # family "models"; the simulator's own /sim/* and /health are not.
                key = api_key(req) or "anonymous"
                refused = await self._refuse_key(sock, req)
                if refused is not None:
                    self._count_other(key, "models", "unauthorized", refused)
                    return True
                self._count_other(key, "models", "ok", 200)
                if path in ("/v1/models", "/models"):
                    return await self._models(sock, req)
                if path in ("/v1beta/models", "/v1/models/gemini"):
                    return await self._json(sock, 200, self._gemini_models())
                return await self._model(sock, req)
            if path == "/sim/stats":
                return await self._json(sock, 200, self.stats.snapshot())
            if path == "/sim/faults":
                return await self._json(sock, 200, self.config.faults)
            if path in ("/health", "/sim/health"):
                return await self._json(sock, 200, {"ok": True})
        if not path.startswith("/sim/"):
            self._count_other(api_key(req) or "anonymous", "unknown", "not_found", 404)
        body = (
            b'{"error":{"message":"Unknown request URL: '
            + req.method.encode()
            + b" "
            + path.encode("latin-1", "replace").replace(b'"', b"")
            + b'","type":"invalid_request_error",'
            b'"param":null,"code":"unknown_url"}}'
        )
        await send_all(
            sock,
            head(404, [("content-type", "application/json"), ("content-length", str(len(body)))])
            + body,
        )
        return True

    def _count_other(self, key: str, family: str, outcome: str, status: int) -> None:
        """A request that is not a generation: no model, no tokens."""
        self.stats.record(
            key=key,
            model="-",
            family=family,
            outcome=outcome,
            stream=False,
            status=status,
            t=anyio.current_time() - self.started,
        )

    async def _json(
        self,
        sock: socket.socket,
        status: int,
        payload: Any,
        extra: list[tuple[str, str]] | None = None,
    ) -> bool:
        body = msgspec.json.encode(payload)
        hdrs = [("content-type", "application/json"), ("content-length", str(len(body)))]
        await send_all(sock, head(status, hdrs + (extra or [])) + body)
        return True

    async def _refuse_key(self, sock: socket.socket, req: HttpRequest) -> int | None:
        """Refuse the key in the family's error shape (401, Gemini's 400) when the
        simulator only takes some keys and this is not one of them (model listings
        are checked as calls are: a health check by listing models must fail with a
        bad key, as it does on a real provider). Returns the status sent, or None
        when the key is fine."""
        allowed = self.config.api_keys
        key = api_key(req) or "anonymous"
        if allowed is None or key in allowed:
            return None
        if req.path.startswith("/v1beta/"):
            codec: Codec = _GEMINI
        elif "anthropic-version" in req.headers or "x-api-key" in req.headers:
            codec = _ANTHROPIC
        else:
            codec = _CHAT
        request_id = "req_" + random_id_simple(self._ids)
        status = codec.auth_status
        hdrs, body = codec.error(
            status,
            "authentication",
            codec.auth_message(key),
            request_id=request_id,
            retry_after=None,
            param=None,
        )
        hdrs = hdrs + codec.headers(request_id) + [("content-length", str(len(body)))]
        await send_all(sock, head(status, hdrs) + body)
        return status

    def _model_names(self) -> list[str]:
        return list(self.config.models) or ["sim-model"]

    async def _models(self, sock: socket.socket, req: HttpRequest) -> bool:
        names = self._model_names()
        if "anthropic-version" in req.headers or "x-api-key" in req.headers:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"}
                for n in names
            ]
            return await self._json(
                sock,
                200,
                {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]},
                [("request-id", "req_sim" + random_id_simple(self._ids))],
            )
        return await self._json(
            sock,
            200,
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 1700000000, "owned_by": "sim"}
                    for n in names
                ],
            },
        )

    async def _model(self, sock: socket.socket, req: HttpRequest) -> bool:
        name = urllib.parse.unquote(req.path.split("/models/", 1)[1])
        if req.path.startswith("/v1beta/"):
            name = name.removeprefix("models/")
            return await self._json(sock, 200, _gemini_model(name))
        return await self._json(
            sock, 200, {"id": name, "object": "model", "created": 1700000000, "owned_by": "sim"}
        )

    def _gemini_models(self) -> dict[str, Any]:
        return {"models": [_gemini_model(n) for n in self._model_names()]}

    # -- generation ---------------------------------------------------------------------

    async def _generate(
        self,
        sock: socket.socket,
        req: HttpRequest,
        codec: Codec,
        path_model: str | None,
        stream: bool | None,
    ) -> bool:
        t0 = anyio.current_time()
        cfg = self.config
        key = api_key(req) or "anonymous"
        request_id = "req_" + random_id_simple(self._ids)
        family = codec.name
        model = path_model or "?"

        async def refuse(
            status: int,
            kind: ErrorKind,
            message: str,
            outcome: str,
            *,
            extra: list[tuple[str, str]] | None = None,
            retry_after: float | None = None,
            param: str | None = None,
            stream_flag: bool = False,
        ) -> bool:
            hdrs, body = codec.error(
                status, kind, message, request_id=request_id, retry_after=retry_after, param=param
            )
            hdrs = (
                hdrs
                + codec.headers(request_id)
                + (extra or [])
                + [("content-length", str(len(body)))]
            )
            await send_all(sock, head(status, hdrs) + body)
            self.stats.record(
                key=key,
                model=model,
                family=family,
                outcome=outcome,
                stream=stream_flag,
                status=status,
                t=t0 - self.started,
            )
            return True

        if cfg.api_keys is not None and key not in cfg.api_keys:
            return await refuse(
                codec.auth_status, "authentication", codec.auth_message(key), "unauthorized"
            )
        try:
            prompt = codec.parse(req.body, path_model=path_model, stream=stream)
        except BadRequest as exc:
            return await refuse(
                exc.status, "invalid_request", exc.message, "bad_request", param=exc.param
            )
        model = prompt.model
        if stream is not None:
            prompt.stream = stream
        profile = cfg.profile(model)
        if profile is None:
            return await refuse(
                404,
                "not_found",
                codec.not_found_message(model),
                "not_found",
                stream_flag=prompt.stream,
            )
        n_in = prompt.input_tokens
        if n_in > profile.context_window:
            return await refuse(
                400,
                "context_length",
                codec.context_message(n_in, profile.context_window),
                "context_length",
                stream_flag=prompt.stream,
                param="messages",
            )

        # rate limits
        limits = cfg.limits_for(key)
        out_cost = prompt.max_tokens or profile.output_tokens
        cost = n_in + out_cost
        decision = self.limiter.admit(key, limits, cost, t0, input_cost=n_in, output_cost=out_cost)
        rl_headers = self._rl_headers(codec, decision)
        if not decision.ok:
            extra = rl_headers + retry_after_headers(decision, ms=codec.ratelimit_style == "openai")
            return await refuse(
                429,
                "rate_limit_requests" if decision.refused_on == "requests" else "rate_limit_tokens",
                codec.rate_limit_message(decision, model),
                "rate_limited",
                extra=extra,
                retry_after=decision.retry_after,
                stream_flag=prompt.stream,
            )

        # faults
        plan = self.faults.decide(
            digest=prompt.digest(),
            family=family,
            model=model,
            key=key,
            stream=prompt.stream,
            now=t0,
        )
        if plan.slow_headers:
            await anyio.sleep(plan.slow_headers)
        if plan.status is not None:
            status = plan.status
            kind: ErrorKind = {
                500: "server",
                502: "bad_gateway",
                503: "unavailable",
                529: "overloaded",
                429: "rate_limit_requests",
                400: "invalid_request",
                401: "authentication",
                404: "not_found",
            }.get(status, "server")  # type: ignore[assignment]
            return await refuse(
                status,
                kind,
                codec.error_message(kind),
                f"fault:status_{status}",
                extra=rl_headers,
                stream_flag=prompt.stream,
            )

        # the answer
        cached, written = self.cache.account(
            scope=key + "\x00" + model,
            prompt=prompt,
            family=family,
            min_tokens=profile.cache_min_tokens,
            ttl=profile.cache_ttl,
            now=t0,
        )
        turn = plan_turn(prompt, profile, self.corpus, cfg.seed)
        turn.cached_tokens = cached
        turn.cache_creation_tokens = written
        # Anthropic settles ITPM and OTPM to the actual counts: cache reads are not
        # input there (known now), and the unused part of max_tokens is given back
        # when the answer ends (below).
        self.limiter.settle(key, limits, now=t0, input_credit=cached)
        timing = Timing.draw(profile, turn.rng)
        ctx = Ctx(
            prompt=prompt,
            turn=turn,
            timing=timing,
            model=model,
            request_id=request_id,
            created=int(time.time()),
        )
        base_headers = codec.headers(request_id) + rl_headers
        outcome = plan.outcome or "ok"
        keep = True
        status = 200
        if prompt.stream:
            items = codec.stream(ctx)
            if plan.stream is not None:
                items = break_stream(
                    items,
                    plan.stream,
                    codec.malformed(ctx),
                    functools.partial(codec.stream_error, ctx),
                )
            content_type = codec.stream_content_type
            if codec is _GEMINI and "alt=sse" not in req.query:
                # Gemini without alt=sse streams one JSON array
                items, content_type = gemini_json_array(items), "application/json; charset=UTF-8"
            hdrs = [
                ("content-type", content_type),
                ("transfer-encoding", "chunked"),
                ("connection", "keep-alive"),
                ("cache-control", "no-cache"),
                *base_headers,
            ]
            job = StreamJob(sock, items, t0)
            self.stats.active_streams += 1
            try:
                # the head goes out with whatever is already due (one write)
                await send_all(sock, head(200, hdrs) + job.collect(anyio.current_time()))
                ok = await self._run_stream(job)
            except OSError:
                ok = False
            finally:
                self.stats.active_streams -= 1
            if not ok:
                outcome, keep = ("client_disconnected" if plan.stream is None else outcome), False
            elif job.disconnect:
                keep = False
        else:
            done_at = t0 + timing.total(turn.output_tokens)
            fault = plan.stream
            if fault is not None and fault.kind == "stall":
                done_at += fault.duration
            await anyio.sleep_until(done_at)
            if fault is not None and (
                fault.kind == "disconnect" or (fault.kind == "stall" and fault.then == "drop")
            ):
                keep = False
            elif peer_closed(sock):
                # The client hung up while the answer was being "generated" (a
                # timeout, a cancel): nothing was delivered, and the count says so.
                outcome, keep = "client_disconnected", False
            else:
                if fault is not None and fault.kind == "error_event":
                    hdrs, body = codec.error(
                        500, "server", codec.error_message("server"), request_id=request_id
                    )
                    status = 500
                else:
                    body = codec.body(ctx)
                    hdrs = [("content-type", codec.json_content_type)]
                    if fault is not None and fault.kind == "malformed":
                        body = body[: len(body) // 2]
                        keep = False
                try:
                    await send_all(
                        sock,
                        head(status, hdrs + base_headers + [("content-length", str(len(body)))])
                        + body,
                    )
                except OSError:
                    outcome, keep = "client_disconnected", False
        self.limiter.settle(
            key, limits, now=anyio.current_time(), output_credit=out_cost - turn.output_tokens
        )
        self.stats.record(
            key=key,
            model=model,
            family=family,
            outcome=outcome,
            stream=prompt.stream,
            status=status,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            cached_tokens=cached,
            cache_creation_tokens=written,
            t=t0 - self.started,
        )
        return keep

    def _rl_headers(self, codec: Codec, d: Decision) -> list[tuple[str, str]]:
        if not (d.requests or d.tokens or d.input_tokens or d.output_tokens):
            return []
        if codec.ratelimit_style == "openai":
            return openai_headers(d)
        if codec.ratelimit_style == "anthropic":
            return anthropic_headers(d, time.time())
        return []

    async def _run_stream(self, job: StreamJob) -> bool:
        """Send a stream body; False when the client went away."""
        sock = job.sock
        current_time = anyio.current_time
        try:
            while True:
                if job.pending:
                    data, job.pending = job.pending, b""
                    await send_all(sock, data)
                if job.error:
                    return False
                if job.finished or job.disconnect:
                    return True
                now = current_time()
                if job.due <= now:
                    lateness = now - job.due
                    data = job.collect(now)
                    if data:
                        await send_all(sock, data)
                        self.stats.lag.add(lateness)
                    await checkpoint()
                    continue
                job.wake = anyio.Event()
                self.scheduler.add(job)
                await job.wake.wait()
                job.wake = None
        finally:
            job.cancelled = True


def random_id_simple(counter: itertools.count[int]) -> str:
    return f"{next(counter):012x}"


def _gemini_model(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }
