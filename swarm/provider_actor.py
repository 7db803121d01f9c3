"""The provider actor: one per provider account, owning its connection pool.

It receives dispatched calls on a bounded inbox (the scheduler only dispatches
when the provider has room, so the inbox never blocks it) and runs each call as a
task in its own task group: attempts, retries before the commit point, restarts
or failure after it, fallback to the route's next deployment, and the ending.

The commit point is the first event delivered to the caller: before it, a retry
or a fallback is invisible; after it the caller gets a ``Restart`` (if the call
allows restarts) or a ``Failed``, never spliced text.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import anyio
import httpx
import msgspec

from providers.client import stream as client_stream
from providers.errors import (
    ContextLengthExceededError,
    ProviderError,
    RateLimitError,
    TransportError,
)
from providers.errors import TimeoutError as ProviderTimeoutError
from providers.events import ReasoningDelta, TextDelta, ToolCallDelta, ToolCallStart
from providers.families import Endpoint, get_family

from .events import Restart

if TYPE_CHECKING:
    from .call import _Call
    from .engine import Engine
    from .routing import Deployment

__all__ = ["ProviderActor", "ProviderStatistics"]

# Content events: they reset the idle gap and count for time to first token.
_CONTENT = (TextDelta, ReasoningDelta, ToolCallDelta, ToolCallStart)

# Retry policy of this slice (exponential backoff with full jitter, Retry-After
# honoured up to a cap, never past the call's deadline).
MAX_ATTEMPTS = 4
BASE_DELAY = 0.25
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

# Smoothing of the time-to-first-token average used by lowest_latency routing.
LATENCY_ALPHA = 0.2


class ProviderStatistics(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    family: str
    max_concurrency: int
    running: int
    attempts: int
    retries: int
    completed: int
    failed: int
    ttft: dict[str, float]


def _fallback_eligible(exc: ProviderError) -> bool:
    """Errors another deployment may not have."""
    return exc.retryable or isinstance(
        exc, ContextLengthExceededError | RateLimitError | TransportError
    )


class ProviderActor:
    """Runs calls on one provider. Created by the engine."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        family: str,
        *,
        max_concurrency: int,
        engine: Engine,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.family = get_family(family)
        self.max_concurrency = max_concurrency
        self._engine = engine
        self._random = rng or random.Random()
        self._inbox_send, self._inbox_receive = anyio.create_memory_object_stream[
            tuple["_Call", "Deployment"]
        ](max_concurrency)
        self._http: httpx.AsyncClient | None = None
        self._latency: dict[str, float] = {}
        self._running = 0
        self._attempts = 0
        self._retries = 0
        self._completed = 0
        self._failed = 0

    def dispatch(self, call: _Call, deployment: Deployment) -> None:
        """Hand a call over (the scheduler holds a credit for it, so this never waits)."""
        self._inbox_send.send_nowait((call, deployment))

    def close(self) -> None:
        """Close the inbox (after the actor stopped)."""
        self._inbox_send.close()
        self._inbox_receive.close()

    def latency(self, model: str) -> float | None:
        """Smoothed time to first token for ``model`` on this provider, if measured."""
        return self._latency.get(model)

    def statistics(self) -> ProviderStatistics:
        return ProviderStatistics(
            name=self.name,
            family=self.family.name,
            max_concurrency=self.max_concurrency,
            running=self._running,
            attempts=self._attempts,
            retries=self._retries,
            completed=self._completed,
            failed=self._failed,
            ttft=dict(self._latency),
        )

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The actor's loop: own the HTTP client, run each dispatched call as a task."""
        # The pool is sized to the concurrency the scheduler allows: never a silent cap.
        limits = httpx.Limits(
            max_connections=self.max_concurrency,
            max_keepalive_connections=self.max_concurrency,
        )
        http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0, connect=10.0))
        self._http = http
        try:
            async with anyio.create_task_group() as tg:
                task_status.started()
                async for call, deployment in self._inbox_receive:
                    tg.start_soon(self._run_call, call, deployment)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                await http.aclose()

    async def _run_call(self, call: _Call, deployment: Deployment) -> None:
        engine = self._engine
        requeue = False
        self._running += 1
        try:
            with anyio.CancelScope() as scope:
                call.scope = scope
                if call.cancel_requested:
                    scope.cancel()
                deadline = math.inf if call.deadline is None else call.deadline
                with anyio.move_on_at(deadline) as timer:
                    requeue = await self._attempts_on(call, deployment)
                if timer.cancelled_caught and call.terminal is None:
                    self._failed += 1
                    engine.finish_failed(
                        call,
                        ProviderTimeoutError(
                            f"call {call.id} to {deployment.key}: its deadline "
                            f"({call.options.timeout} s) passed during attempt "
                            f"{call.life.attempts}",
                            phase="total",
                        ),
                    )
            if scope.cancelled_caught and call.terminal is None:
                engine.finish_cancelled(call, "caller")
        except anyio.get_cancelled_exc_class():
            if call.terminal is None:
                engine.finish_cancelled(call, "shutdown")
            raise
        except Exception as exc:
            # A bug in one call must not take the provider's other calls down: the
            # call ends Failed with the cause, and the ledger keeps it.
            if call.terminal is None:
                self._failed += 1
                engine.finish_failed(call, exc)
        finally:
            self._running -= 1
            call.scope = None
            engine._control(("done", call, self.name))
            if requeue:
                engine._control(("requeue", call, self.name))

    async def _attempts_on(self, call: _Call, deployment: Deployment) -> bool:
        """Run attempts on ``deployment`` until the call ends; True to fall back."""
        assert self._http is not None
        engine = self._engine
        life = call.life
        request = call.request
        if request.model != deployment.model:
            request = msgspec.structs.replace(request, model=deployment.model)
        deliver = call.collector is None
        attempt = 0
        while True:
            attempt += 1
            self._attempts += 1
            life.dispatch(deployment.key, anyio.current_time())
            committed = False
            try:
                async with client_stream(
                    self._http, self.endpoint, request, family=self.family
                ) as events:
                    async for event in events:
                        now = anyio.current_time()
                        if not committed:
                            life.first_byte(now)
                            committed = True
                        if isinstance(event, _CONTENT):
                            life.content(now)
                        if deliver:
                            await call.send.send(event)
                    response = await events.response()
            except ProviderError as exc:
                now = anyio.current_time()
                visible = committed and deliver
                delay = self._retry_delay(exc, attempt, call, now)
                if delay is not None and (not visible or call.options.allow_restart):
                    self._retries += 1
                    life.attempt_failed(now, will_retry=True)
                    if visible:
                        await call.send.send(
                            Restart(call_id=call.id, attempt=attempt + 1, reason=str(exc))
                        )
                    await anyio.sleep(delay)
                    continue
                if (
                    not visible
                    and _fallback_eligible(exc)
                    and len(call.tried) + 1 < len(call.route.targets)
                ):
                    call.tried.append(deployment)
                    life.attempt_failed(now, will_retry=True)
                    return True
                self._failed += 1
                engine.finish_failed(call, exc)
                return False
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                engine.finish_cancelled(call, "caller")  # the caller stopped reading
                return False
            if life.ttft is not None:
                old = self._latency.get(deployment.model)
                self._latency[deployment.model] = (
                    life.ttft if old is None else old + LATENCY_ALPHA * (life.ttft - old)
                )
            self._completed += 1
            engine.finish_completed(call, response, deployment)
            return False

    def _retry_delay(
        self, exc: ProviderError, attempt: int, call: _Call, now: float
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to stop retrying here."""
        if not exc.retryable or attempt >= MAX_ATTEMPTS:
            return None
        if exc.retry_after is not None:
            delay = min(exc.retry_after, MAX_RETRY_AFTER)
        else:
            delay = self._random.uniform(0.0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))
        if call.deadline is not None and now + delay >= call.deadline:
            return None
        return delay
