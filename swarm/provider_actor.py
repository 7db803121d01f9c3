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

import functools
import logging
import math
import random
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import anyio
import httpx
import msgspec

from providers.client import EventStream, lean_cookies
from providers.client import stream as client_stream
from providers.errors import (
    ContextLengthExceededError,
    ProviderError,
    RateLimitError,
    TransportError,
)
from providers.errors import TimeoutError as ProviderTimeoutError
from providers.events import Response, Usage
from providers.families import Endpoint, get_family
from providers.ratelimits import RateLimitInfo
from providers.transport import StreamingTransport

from . import logs
from .config import DEFAULT_MAX_CONNECTING, TransportKind
from .errors import CircuitOpen, ProviderActorCrashed
from .events import CallEvent, Restart
from .lifecycle import CallState
from .loop import cancel_scope_factory, loop_clock
from .pipe import Backend, current_backend
from .ratelimit import HeadersFeedback, ReleaseRequest
from .ratelimit import Permit as RatePermit
from .reading import AttemptReads, Lend
from .resilience import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    Permit,
    PhaseClock,
    Rejected,
    Retry,
    RetryBudget,
    RetryBudgetPolicy,
    RetryPolicy,
    RetryState,
    Timeouts,
    Transition,
)
from .resilience import Restart as RetryRestart
from .tokens import estimate_input_tokens

if TYPE_CHECKING:
    from providers.messages import Request

    from .call import _Call
    from .engine import Engine
    from .rate_actor import RateLimitActor
    from .routing import Deployment

__all__ = ["InjectedCrash", "ProviderActor", "ProviderStatistics"]


class InjectedCrash(RuntimeError):
    """Raised by a provider actor whose ``crash()`` fault hook was called."""


# Connections per httpx client before the actor adds another client (see run()).
CONNECTIONS_PER_CLIENT = 16


# The most a phase timeout may fire late (see ProviderActor._deadline_slack).
DEADLINE_SLACK = 1.0


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's client SSL context (httpx's defaults: certifi's CA bundle,
    TLS 1.2+), built once; SSLContext is safe to share between connections."""
    return httpx.create_ssl_context()


# Smoothing of the time-to-first-token average used by lowest_latency routing.
LATENCY_ALPHA = 0.2


class ProviderStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """One provider actor's live counts: calls running (a task each), attempts
    connecting or sending their request (at most ``max_connecting``), totals, the
    smoothed time to first token by model, and each model's circuit breaker state
    (``closed``, ``open`` or ``half_open``; models not called yet are absent)."""

    name: str
    family: str
    max_concurrency: int
    running: int
    connecting: int
    attempts: int
    retries: int
    completed: int
    failed: int
    ttft: dict[str, float]
    breakers: dict[str, str] = {}


def _log_transition(deployment: str, moved: Transition) -> None:
    logs.event(
        logging.WARNING,
        "breaker.transition",
        deployment=deployment,
        source=moved.source.value,
        target=moved.target.value,
        reason=moved.reason,
    )


def _fallback_eligible(exc: Exception) -> bool:
    """Errors another deployment may not have (a phase timeout is a TransportError)."""
    if isinstance(exc, CircuitOpen | ContextLengthExceededError | RateLimitError | TransportError):
        return True
    return isinstance(exc, ProviderError) and exc.retryable


class ProviderActor:
    """Runs calls on one provider. Created by the engine."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        family: str,
        *,
        max_concurrency: int,
        max_connecting: int = DEFAULT_MAX_CONNECTING,
        transport: TransportKind = "streaming",
        engine: Engine,
        retry: RetryPolicy,
        retry_budget: RetryBudgetPolicy,
        breaker: CircuitBreakerPolicy,
        timeouts: Timeouts,
        caller_reads: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.family = get_family(family)
        self.max_concurrency = max_concurrency
        self.transport: TransportKind = transport
        self._engine = engine
        self._random = rng or random.Random()
        self._inbox_send, self._inbox_receive = anyio.create_memory_object_stream[
            tuple["_Call", "Deployment"]
        ](max_concurrency)
        self._retry_policy = msgspec.structs.replace(retry, restarts_allowed=False)
        self._restart_policy = msgspec.structs.replace(retry, restarts_allowed=True)
        # A call that does not say (allow_restart=None) gets the config's choice.
        self._restarts_by_default = retry.restarts_allowed
        self._budget = RetryBudget(retry_budget)
        # Attempts between their start and "request sent" at once: connecting, or
        # writing on a pooled connection (see ProviderConfig.max_connecting).
        self._sending = anyio.Semaphore(max_connecting)
        self._max_connecting = max_connecting
        self._breaker_policy = breaker
        self._breakers: dict[str, CircuitBreaker] = {}
        self._timeouts = timeouts
        # How late a phase timeout may fire: 5% of the shortest streaming phase, at
        # most DEADLINE_SLACK (see _attempt: it spares re-arming a deadline per token).
        phases = [t for t in (timeouts.first_token, timeouts.idle, timeouts.total) if t]
        self._deadline_slack = min([DEADLINE_SLACK, *(0.05 * t for t in phases)])
        self._now: Callable[[], float] = anyio.current_time  # run() binds the loop's
        self._scope: Callable[..., anyio.CancelScope] = anyio.CancelScope  # and run() this
        self._backend: Backend = "trio"  # run() sets the running loop's
        # Lend an open response to its caller's task to read (swarm.reading).
        self._caller_reads = caller_reads
        # The provider's rate-limit actor, if it has limits (the engine sets it): it
        # grants each call's first permit before dispatch, and its retries' permits.
        self.gate: RateLimitActor | None = None
        # Every call dispatched here and not yet settled by its task, in dispatch
        # order: in the inbox, running, or orphaned by a crash (see sweep).
        self._owned: dict[str, _Call] = {}
        self._loop: anyio.CancelScope | None = None
        # The task group calls run in, while the actor's loop runs (see dispatch).
        self._group: anyio.abc.TaskGroup | None = None
        self._crash_requested = False
        self._clients: list[httpx.AsyncClient] = []
        self._client_load: list[int] = []
        self._latency: dict[str, float] = {}
        self._running = 0
        self._attempts = 0
        self._retries = 0
        self._completed = 0
        self._failed = 0

    def dispatch(self, call: _Call, deployment: Deployment) -> None:
        """Hand a call over (the scheduler holds a credit for it, so this never waits)."""
        self._owned[call.id] = call
        group = self._group
        if group is not None:
            # The actor's loop is running: start the call's task in its task group
            # from here, rather than wake the loop to do it (a pass of the event loop
            # on the way to every call's first token). The inbox is for before then.
            group.start_soon(self._run_call, call, deployment)
            return
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
            connecting=self._max_connecting - self._sending.value,
            attempts=self._attempts,
            retries=self._retries,
            completed=self._completed,
            failed=self._failed,
            ttft=dict(self._latency),
            breakers={model: b.state.value for model, b in self._breakers.items()},
        )

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The actor's loop: own the HTTP clients, run each dispatched call as a task."""
        t = self._timeouts
        # Reads are bounded by the phase clock (first token, idle, total), not httpx.
        timeout = httpx.Timeout(connect=t.connect, read=None, write=t.write, pool=t.pool)
        self._now = loop_clock()
        self._scope = cancel_scope_factory()
        self._backend = current_backend()
        verify = shared_ssl_context()
        if self.transport == "streaming":
            # One client over the project's own transport (providers.transport): its
            # pool is O(1) per request at any size, so it is sized to the whole
            # concurrency (never a silent cap), and it costs about half the CPU per
            # token of the sharded httpcore pools (docs/transport.md).
            limits = httpx.Limits(
                max_connections=self.max_concurrency,
                max_keepalive_connections=self.max_concurrency,
            )
            transport = StreamingTransport(limits=limits, verify=verify)
            self._clients = [lean_cookies(httpx.AsyncClient(transport=transport, timeout=timeout))]
        else:
            # httpcore's pool scans every connection on every request and release,
            # so its cost grows with the square of the connections it holds
            # (measured: ~70% of the CPU at 200 streams on one client). The
            # connections are sharded over clients of at most CONNECTIONS_PER_CLIENT;
            # each call takes the least-loaded client, so no pool overflows while
            # another has room (the scheduler never lets more than max_concurrency
            # calls in). Together the pools hold max_concurrency connections. They
            # share one SSL context: httpx builds one per client otherwise (loading
            # the CA bundle each time: 63 clients took 58 MB and 1.7 s).
            shards = max(1, math.ceil(self.max_concurrency / CONNECTIONS_PER_CLIENT))
            per_client = math.ceil(self.max_concurrency / shards)
            limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
            self._clients = [
                lean_cookies(httpx.AsyncClient(limits=limits, timeout=timeout, verify=verify))
                for _ in range(shards)
            ]
        self._client_load = [0] * len(self._clients)
        try:
            async with anyio.create_task_group() as tg:
                task_status.started()
                inbox = self._inbox_receive
                with anyio.CancelScope() as self._loop:
                    self._group = tg
                    while True:
                        # Start every call already waiting, not one per scheduling
                        # round: a burst of thousands would otherwise trickle in. Only
                        # an empty inbox waits (anyio's receive yields to the event loop
                        # first even when an item is there: a loop pass on the path of
                        # every call's time to first token).
                        try:
                            call, deployment = inbox.receive_nowait()
                        except anyio.WouldBlock:
                            try:
                                call, deployment = await inbox.receive()
                            except anyio.EndOfStream:
                                break
                        except anyio.EndOfStream:
                            break
                        tg.start_soon(self._run_call, call, deployment)
                self._group = None  # the loop is over: later calls wait in the inbox
                if self._crash_requested:
                    self._crash_requested = False
                    raise InjectedCrash(f"provider actor {self.name}: injected crash")
        finally:
            self._group = None
            self.sweep()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                for client in self._clients:
                    await client.aclose()

    def sweep(self) -> None:
        """Settle every call the stopped loop left behind (its task group has exited,
        so no call task runs): those in the inbox, those whose task never started
        (asyncio drops a task cancelled before its first step), those whose task was
        cancelled. Nothing is lost:

        * the engine is closing: the call ends Cancelled ("shutdown");
        * it had committed (its attempt's first byte arrived, so text may have
          reached the caller): it ends Failed with :class:`ProviderActorCrashed`,
          unless it is an ``engine.map`` call, which delivers only its result;
        * otherwise it goes back to the scheduler, invisibly (a requeue).

        Each gets its "done" (the scheduler's in-flight count), exactly once.
        """
        engine = self._engine
        while True:  # the inbox's calls are owned too; a restarted loop starts empty
            try:
                self._inbox_receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        orphans, self._owned = self._owned, {}
        now = anyio.current_time()
        for call in orphans.values():
            requeue = False
            if call.permit is not None:  # granted before dispatch, never used
                assert self.gate is not None
                model, permit = call.permit
                call.permit = None
                self.gate.release(model, ReleaseRequest(permit=permit, now=now, outcome="unsent"))
            if call.terminal is None:
                state = call.life.state
                if engine.closing:
                    engine.finish_cancelled(call, "shutdown")
                elif state is CallState.STREAMING and call.collector is None:
                    self._failed += 1
                    engine.finish_failed(
                        call,
                        ProviderActorCrashed(
                            f"provider actor {self.name} crashed while call {call.id} "
                            "was streaming; the call was not moved (its text had begun)"
                        ),
                    )
                else:
                    if state is CallState.STREAMING:
                        # An engine.map call: it delivers nothing before its end, so
                        # its next attempt, elsewhere, is as invisible as a retry.
                        call.life.attempt_failed(now, will_retry=True)
                    if state is not CallState.QUEUED:  # an attempt had begun
                        call.life.requeue(now)
                    requeue = True
            engine._control(("done", call, self.name))
            if requeue:
                engine._control(("requeue", call, self.name))

    def crash(self) -> None:
        """Fault hook for tests: make the actor's loop fail as a crash would."""
        if self._loop is not None and not self._crash_requested:
            self._crash_requested = True
            self._loop.cancel()

    def _take_client(self) -> int:
        """The index of the least-loaded HTTP client; the caller must give it back."""
        load = self._client_load
        index = load.index(min(load))
        load[index] += 1
        return index

    async def _run_call(self, call: _Call, deployment: Deployment) -> None:
        engine = self._engine
        requeue = False
        settled = True
        self._running += 1
        try:
            # One scope for the caller's cancellation and the call's deadline (a
            # scope is ~400 bytes and 4 us): cancel_requested tells them apart, since
            # the engine sets it before it cancels the scope.
            deadline = math.inf if call.deadline is None else call.deadline
            with self._scope(deadline=deadline) as scope:
                call.scope = scope
                if call.cancel_requested:
                    scope.cancel()
                requeue = await self._attempts_on(call, deployment)
            if scope.cancelled_caught and call.terminal is None:
                if call.cancel_requested:
                    engine.finish_cancelled(call, "caller")
                else:
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
        except Exception as exc:
            # A bug in one call must not take the provider's other calls down: the
            # call ends Failed with the cause, and the ledger keeps it.
            if call.terminal is None:
                self._failed += 1
                engine.finish_failed(call, exc)
        except BaseException:
            # Cancelled (trio may deliver it wrapped in an exception group, from a
            # nursery inside httpx's connect), or worse: the actor is going away. The
            # call stays owned and the actor's sweep settles it once every call task
            # is over; settling it here would miss calls whose task never ran.
            settled = False
            raise
        finally:
            self._running -= 1
            call.scope = None
            if settled:
                del self._owned[call.id]
                engine._control(("done", call, self.name))
                if requeue:
                    engine._control(("requeue", call, self.name))

    def _breaker(self, model: str) -> CircuitBreaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = self._breakers[model] = CircuitBreaker(
                self._breaker_policy, name=f"{self.name}/{model}"
            )
        return breaker

    async def _attempts_on(self, call: _Call, deployment: Deployment) -> bool:
        """Run attempts on ``deployment`` until the call ends; True to fall back."""
        self._budget.on_request_start()
        retry = RetryState(
            self._restart_policy
            if (
                self._restarts_by_default
                if call.options.allow_restart is None
                else call.options.allow_restart
            )
            else self._retry_policy,
            rng=self._random,
            deadline=call.deadline,
            budget=self._budget,
        )
        permit: Permit | None = None
        model = deployment.model
        breaker = self._breaker(model)
        gate = self.gate if self.gate is not None and self.gate.limits(model) else None
        # The first attempt's rate permit was granted before dispatch (by the gate);
        # each retry asks the gate for another. Invariant: a permit held here is
        # released exactly once, by the settlement below or by the finally.
        rate_permit: RatePermit | None = None
        if call.permit is not None:
            rate_permit = call.permit[1]
            call.permit = None
        try:
            while True:
                call.sent = False  # this attempt's progress, read if it is cancelled
                call.streamed = 0
                if gate is not None and rate_permit is None:
                    rate_permit = await gate.acquire(call, model)
                admitted = breaker.acquire(self._now())
                if isinstance(admitted, Rejected):
                    if gate is not None and rate_permit is not None:
                        now = self._now()
                        unsent = ReleaseRequest(permit=rate_permit, now=now, outcome="unsent")
                        rate_permit = None
                        gate.release(model, unsent)
                    error: Exception = CircuitOpen(
                        deployment.key, admitted.retry_in or 0.0, admitted.reason
                    )
                    if self._can_fall_back(call):
                        call.tried.append(deployment)
                        return True
                    self._failed += 1
                    self._engine.finish_failed(call, error)
                    return False
                permit = admitted
                on_headers = None
                if gate is not None and rate_permit is not None:
                    # Headers correct the limits as soon as the response opens, not
                    # when its stream ends (a slow start waits for the first ones).
                    on_headers = functools.partial(_feed_headers, gate, model, rate_permit)
                response, failure, visible = await self._attempt(call, deployment, on_headers)
                now = self._now()
                started = call.life.attempt_started_at
                if gate is not None and rate_permit is not None:
                    settled, rate_permit = rate_permit, None
                    _settle_rate(gate, model, settled, now, response, failure, call.life.ttft)
                if failure is not None:
                    error = failure
                    moved = breaker.record_failure(permit, now - (started or now), now, error)
                    permit = None
                else:
                    assert response is not None
                    ttft = call.life.ttft
                    moved = breaker.record_success(permit, ttft if ttft is not None else 0.0, now)
                    permit = None
                if moved is not None:
                    _log_transition(deployment.key, moved)
                if failure is None:
                    assert response is not None
                    self._note_latency(model, ttft)
                    self._completed += 1
                    self._engine.finish_completed(call, response, deployment)
                    return False
                # A rate-limited retry waits for this gate's permit: it cannot storm.
                paced = gate is not None and gate.limits(model)
                decision = retry.on_failure(error, committed=visible, now=now, paced=paced)
                if isinstance(decision, Retry | RetryRestart):
                    self._retries += 1
                    logs.event(
                        logging.INFO,
                        "attempt.retry",
                        call=call.id,
                        deployment=deployment.key,
                        attempt=decision.attempt - 1,
                        error=type(error).__name__,
                        delay=round(decision.delay, 3),
                        restart=visible,
                    )
                    call.life.attempt_failed(now, will_retry=True)
                    if visible:
                        await call.send.send(
                            Restart(
                                call_id=call.id,
                                attempt=decision.attempt,
                                reason=retry.message(error, decision),
                            )
                        )
                    await anyio.sleep(decision.delay)
                    continue
                if not visible and _fallback_eligible(error) and self._can_fall_back(call):
                    call.tried.append(deployment)
                    call.life.attempt_failed(now, will_retry=True)
                    logs.event(
                        logging.INFO,
                        "call.fallback",
                        call=call.id,
                        deployment=deployment.key,
                        error=type(error).__name__,
                    )
                    return True
                self._failed += 1
                self._engine.finish_failed(call, error)
                return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._engine.finish_cancelled(call, "caller")  # the caller stopped reading
            return False
        finally:
            if permit is not None:
                breaker.release(permit)  # cancelled mid-attempt: no verdict
            if gate is not None and rate_permit is not None:
                # Not a cancellation point: a cancelled call's permit is released once.
                # Unsent: refunded in full. Sent: the provider counts the input and
                # what it generated until the stream was closed; the rest of the
                # reservation is refunded (when the provider credits unused tokens).
                sent = call.sent
                estimate = estimate_input_tokens(call.request) if sent else 0
                gate.release(
                    model,
                    ReleaseRequest(
                        permit=rate_permit,
                        now=self._now(),
                        outcome="cancelled" if sent else "unsent",
                        usage_tokens=estimate + call.streamed if sent else None,
                        usage_input_tokens=estimate if sent else None,
                        usage_output_tokens=call.streamed if sent else None,
                    ),
                )
            retry.close()
            self._budget.on_request_end()

    @staticmethod
    def _can_fall_back(call: _Call) -> bool:
        return len(call.tried) + 1 < len(call.route.targets)

    def _note_latency(self, model: str, ttft: float | None) -> None:
        if ttft is None:
            return
        old = self._latency.get(model)
        self._latency[model] = ttft if old is None else old + LATENCY_ALPHA * (ttft - old)

    def _discard(self, call: _Call, model: str, request: Request, reported: Usage) -> None:
        """Add an attempt cut short to what the call's discarded attempts cost.

        Invariant: sync and raises nothing (it runs in a finally, maybe cancelled).
        """
        estimated = False
        input_tokens = reported.input_tokens
        if input_tokens == 0:  # OpenAI and Gemini report usage at the end only
            input_tokens = estimate_input_tokens(request)
            estimated = True
        output_tokens = reported.output_tokens
        if output_tokens < call.streamed:  # no report yet: ~one token per content event
            output_tokens = call.streamed
            estimated = True
        usage = msgspec.structs.replace(
            reported, input_tokens=input_tokens, output_tokens=output_tokens
        )
        call.discarded = usage if call.discarded is None else call.discarded + usage
        call.discarded_estimated = call.discarded_estimated or estimated
        cost = self._engine.estimate_cost(model, usage)
        if cost is not None:
            call.discarded_cost = cost + (call.discarded_cost or 0.0)

    async def _attempt(
        self,
        call: _Call,
        deployment: Deployment,
        on_headers: Callable[[RateLimitInfo], None] | None = None,
    ) -> tuple[Response | None, Exception | None, bool]:
        """One attempt: (the response, or None; the error it met, or None; whether any
        event of it reached the caller, which makes a retry a visible restart).
        ``on_headers`` gets the rate-limit headers of the response when it opens.

        Once the response opens, a caller waiting for it reads it in its own task
        (:meth:`_lend`, swarm.reading); otherwise, or once taken back, this task
        reads and forwards it (:meth:`_read`). Phase timeouts (first token, idle,
        total) run on a cancel scope whose deadline follows the attempt's
        PhaseClock; while the attempt waits for a slow consumer the deadline is
        lifted, since the consumer's pace is not the provider's.

        Raises:
            BrokenResourceError, ClosedResourceError: the caller went away.
        """
        life = call.life
        request = call.request
        if request.model != deployment.model:
            request = msgspec.structs.replace(request, model=deployment.model)
        deliver = call.collector is None
        # Wait for a sending slot (see max_connecting) before the attempt's clock starts:
        # the wait is the client's own queueing, not the provider's connect time, so
        # no phase timeout covers it (failing a call because its siblings were slow
        # to connect was measured: 1,552 of 10,000 calls failed so at 10,000
        # streams). The call's own deadline and cancellation still bound it, and
        # every slot is released in the finally below, so the wait always ends.
        sending = self._sending
        # anyio's acquire yields to the event loop even when a slot is free (a pass
        # of the loop on the way to every first token): take a free one at once.
        if sending.value:
            sending.acquire_nowait()
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                sending.release()
                raise
        else:
            await sending.acquire()
        now = self._now()
        life.dispatch(deployment.key, now)
        self._attempts += 1
        clock = PhaseClock(self._timeouts)
        clock.start(now)  # the call's own deadline is enforced around the whole call
        reads = AttemptReads(call, clock, self._now)
        opened: EventStream | None = None  # the response, once it opened (a 2xx)
        response: Response | None = None
        shard = self._take_client()
        with self._scope() as phases:
            phases.deadline = _next(clock)
            sent = _Sent(call, sending, clock, phases, self._now)
            try:
                async with client_stream(
                    self._clients[shard],
                    self.endpoint,
                    request,
                    family=self.family,
                    on_request_sent=sent,
                ) as events:
                    opened = events
                    if on_headers is not None:
                        # Empty too: a response opening ends a limiter's slow start.
                        on_headers(events.rate_limits)
                    if (
                        deliver
                        and self._caller_reads
                        and events.cancel_safe
                        and call.send.reader_waiting
                    ):
                        # The caller waits for this response: its task reads it while
                        # it keeps up (swarm.reading). A caller not reading now (it
                        # will gather results later) leaves the reading to this task.
                        phases.deadline = math.inf  # the lend's watchdog has it
                        if await self._lend(call, events, reads, clock, phases):
                            response = await events.response()  # read to its end
                        else:  # taken back: the caller was busy at a deadline
                            phases.deadline = _next(clock)
                    if response is None:
                        await self._read(call, events, reads, clock, phases, deliver)
                        response = await events.response()
            except ProviderError as exc:
                return None, exc, reads.visible
            finally:
                self._client_load[shard] -= 1
                sent.release()  # if never sent (failed or cancelled while connecting)
                if opened is not None and response is None:
                    # Failed, timed out or cancelled after the provider started
                    # answering: billed, and its output thrown away.
                    self._discard(call, deployment.model, request, opened.usage)
        if phases.cancelled_caught:
            now = self._now()
            phase = clock.expired(now) or "total"
            error = clock.timeout_error(phase, f"{self.name} ({deployment.model})")
            return None, error, reads.visible
        return response, None, reads.visible

    async def _read(
        self,
        call: _Call,
        events: EventStream,
        reads: AttemptReads,
        clock: PhaseClock,
        phases: anyio.CancelScope,
        deliver: bool,
    ) -> None:
        """This task reads the response to its end, forwarding each read's events to
        the caller (when ``deliver``).

        Per read (the hot path): one clock reading, no await unless the caller's
        buffer is full, and the phase deadline re-armed only when it moved by more
        than `slack` (a deadline set per token cost ~15% of the engine's CPU per
        token). Invariant: `armed` is never earlier than the clock's deadline, and
        at most `slack` later, so a phase times out at most `slack` late. Once
        content flows (`steady`), the clock's deadline is min(last content + idle,
        total, the call's deadline): it only moves later, and only by content
        events, so it needs no recomputing until `now + idle` passes `armed`.
        """
        now_fn = self._now
        slack = self._deadline_slack
        armed = phases.deadline
        idle = math.inf if self._timeouts.idle is None else self._timeouts.idle
        steady = False
        send_batch_nowait = call.send.send_batch_nowait
        take = reads.take
        # One await per network read, and one pipe entry: its events arrived
        # together, so they share one clock reading and go to the caller as one batch.
        next_batch = events.next_batch
        while (batch := await next_batch()) is not None:
            now, content = take(cast("list[object]", batch))
            if deliver:
                reads.visible = True
                # The client hands the list over (it keeps no reference) and the
                # caller only reads it: list[StreamEvent] as list[CallEvent].
                out = cast("list[CallEvent]", batch)
                try:
                    send_batch_nowait(out)
                except anyio.WouldBlock:
                    # A slow consumer: its pace is not the provider's.
                    phases.deadline = armed = math.inf
                    await call.send.send_batch(out)
                    if content:
                        now = now_fn()
                        clock.on_content_event(now)
                    steady = False
            if steady and (not content or now + idle <= armed):
                continue
            due = _next(clock)
            if due > armed or due < armed - slack:
                armed = phases.deadline = due + slack if due > armed else due
            steady = content > 0

    async def _lend(
        self,
        call: _Call,
        events: EventStream,
        reads: AttemptReads,
        clock: PhaseClock,
        phases: anyio.CancelScope,
    ) -> bool:
        """Lend the caller's task the response (swarm.reading) and watch its phase
        deadline meanwhile: True once it was read to its end; False when this task
        takes the reading back (the caller was busy elsewhere at a deadline).

        Raises:
            ProviderError: what a read raised (the stream failed).
            Exception: a bug in a read: the call fails with it.
            anyio.get_cancelled_exc_class(): the phase deadline passed while the
                caller was reading (``phases``, the attempt's scope, is cancelled:
                the attempt timed out), or the call was cancelled.
        """
        slack = self._deadline_slack
        lend = Lend(events, reads, self._backend, slack)
        call.lend = lend
        call.send.nudge()  # a caller waiting on its pipe reads instead
        try:
            while lend.live:
                due = _next(clock)  # as the caller's reads left the clock
                if due <= self._now():
                    if lend.reading:  # the provider kept the caller waiting: timed out
                        phases.cancel()
                        await anyio.lowlevel.checkpoint()  # raises: phases catches it
                    # The caller was busy with its own work: not the provider's time.
                    # Take the reading back; a content event restarts idle, as after
                    # a wait for a slow consumer.
                    if clock.first_content_at is not None:
                        clock.on_content_event(self._now())
                    return False
                with self._scope(deadline=due + slack) as lend.timer:
                    await lend.wait()
                lend.timer = None
        finally:
            lend.revoke()
            call.lend = None
        if lend.error is not None:
            raise lend.error
        return True


class _Sent:
    """Called when an attempt's request went out (client_stream's on_request_sent):
    the connect phase is over, first_token runs on, and the sending slot is free.

    An object rather than a closure: one object per attempt for the cyclic
    collector to scan, where a closure over five variables was seven.
    """

    __slots__ = ("call", "clock", "held", "now", "phases", "sending")

    def __init__(
        self,
        call: _Call,
        sending: anyio.Semaphore,
        clock: PhaseClock,
        phases: anyio.CancelScope,
        now: Callable[[], float],
    ) -> None:
        self.call = call
        self.now = now
        self.sending = sending
        self.clock = clock
        self.phases = phases
        self.held = True  # the sending slot, until the request went out

    def __call__(self) -> None:
        self.call.sent = True
        self.release()
        self.clock.on_connected(self.now())
        self.phases.deadline = _next(self.clock)

    def release(self) -> None:
        """Give the sending slot back (once)."""
        if self.held:
            self.held = False
            self.sending.release()


def _next(clock: PhaseClock) -> float:
    deadline = clock.next_deadline()
    return math.inf if deadline is None else deadline.when


def _feed_headers(
    gate: RateLimitActor, model: str, permit: RatePermit, info: RateLimitInfo
) -> None:
    gate.feedback(model, HeadersFeedback(info=info, now=anyio.current_time(), permit=permit))


def _settle_rate(
    gate: RateLimitActor,
    model: str,
    permit: RatePermit,
    now: float,
    response: Response | None,
    failure: Exception | None,
    ttft: float | None,
) -> None:
    """Tell the rate limits how an attempt ended: a 429, or the actual usage."""
    if isinstance(failure, RateLimitError):
        info = failure.rate_limits
        if info is not None and not info.empty:
            # The 429's own headers first: they lower the buckets to what the
            # provider says remains and slow their refill to its reset time.
            _feed_headers(gate, model, permit, info)
        release = ReleaseRequest(
            permit=permit,
            now=now,
            outcome="rate_limited",
            retry_after=failure.retry_after,
            limit=failure.limit,
        )
    elif failure is not None:
        release = ReleaseRequest(permit=permit, now=now, outcome="failed")
    else:
        assert response is not None
        usage = response.usage
        release = ReleaseRequest(
            permit=permit,
            now=now,
            outcome="completed",
            usage_tokens=usage.total_tokens,
            ttft=ttft,
            # What an input-token limit counts: Anthropic leaves cache reads out.
            usage_input_tokens=max(0, usage.input_tokens - usage.cache_read_tokens),
            usage_output_tokens=usage.output_tokens,
        )
    gate.release(model, release)
