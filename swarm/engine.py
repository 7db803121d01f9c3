"""The engine: the public entry point of the runtime.

::

    async with swarm.open_engine() as engine:          # no config, no key: the simulator
        async with engine.stream(request) as call:      # events as they arrive
            async for event in call: ...
        response = await engine.complete(request)
        async for result in engine.map(requests, concurrency=100): ...

Actors (permanent one_for_one children of the engine's supervisor, talking
through bounded channels; a crashed actor is restarted alone, and its calls are
settled by its sweep: requeued before their commit point, failed after it):

* the scheduler owns the queue (``SchedulerCore``) and the in-flight counts per
  provider (its credits); it admits calls from the submit channel while the queue
  has room, expires deadlines, and dispatches a call to a provider actor only when
  that provider has room, so priorities and fairness decide who goes next;
* one provider actor per provider account owns its connection pool (sharded over
  httpx clients of at most ``CONNECTIONS_PER_CLIENT`` connections, together sized
  to the provider's ``max_concurrency``; see docs/transport.md) and runs each
  dispatched call as a task in its own task group; it reports back on the control
  channel (done, fallback, requeue).

Invariant: every call accepted is in exactly one of: the submit channel, the
scheduler's queue, a provider's inbox or task, or finished (ledger record and
terminal event). ``ledger.accepted == in_flight + completed + failed + cancelled``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Literal, cast

import anyio
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from providers.errors import TimeoutError as ProviderTimeoutError
from providers.events import Response, Usage
from providers.messages import Request

from . import logs
from .call import _TOKEN, CallOptions, CallStream, _Call
from .config import ConfigError, EngineConfig, ProviderConfig, environment
from .errors import EngineClosed, EngineOverloaded
from .events import CallEvent, Cancelled, Completed, ErrorInfo, Failed, Terminal
from .ledger import CallRecord, Ledger, LedgerStatistics, record_from_lifecycle
from .loop import loop_clock
from .pipe import PipeReceiver, PipeSender, current_backend, open_pipe
from .pricing import PriceTable
from .provider_actor import ProviderActor, ProviderStatistics
from .rate_actor import ADMIT_WINDOW, RateLimitActor
from .ratelimit import RateLimitConfig, RateLimiterStatistics
from .routing import Deployment, Router
from .scheduler import QueueFull, SchedulerCore
from .supervisor import (
    ChildContext,
    ChildSpec,
    Supervisor,
    SupervisorSpec,
    SupervisorStatistics,
    open_supervisor,
)
from .tokens import estimate_input_tokens, estimate_output_tokens

if TYPE_CHECKING:
    from providers.sim import SimConfig

__all__ = ["Engine", "EngineStatistics", "MapResult", "open_engine"]

# The simulator's providers, one per wire family, when the engine embeds it.
SIM_PROVIDERS = {
    "sim": "openai",
    "sim-responses": "openai-responses",
    "sim-anthropic": "anthropic",
    "sim-gemini": "gemini",
}
SIM_KEY = "sk-sim-local"

# Restarts of the engine's actors tolerated within SUPERVISOR_PERIOD seconds before
# the engine gives up (an actor that keeps crashing is a bug, not a transient).
SUPERVISOR_INTENSITY = 10
SUPERVISOR_PERIOD = 60.0


def _actor_child(
    actor: ProviderActor | RateLimitActor,
) -> Callable[[ChildContext], Awaitable[None]]:
    async def child(ctx: ChildContext) -> None:
        await actor.run()

    return child


class EngineStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A live snapshot: calls queued, each provider actor's counts, the ledger's
    totals, the supervisor of the engine's actors (restarts after crashes), and the
    calls each provider's rate-limit actor holds waiting for a permit.

    The limiters' levels and rates are ``await engine.rate_limit_statistics()``: a
    shared (Redis) limiter's figures need a round trip, which a snapshot must not.
    """

    queued: int
    providers: dict[str, ProviderStatistics]
    ledger: LedgerStatistics
    supervisor: SupervisorStatistics | None = None
    rate_limit_waiting: dict[str, int] = msgspec.field(default_factory=dict)


class MapResult(msgspec.Struct, kw_only=True, frozen=True):
    """One result of ``engine.map``: the request's index and its terminal event."""

    index: int
    event: Terminal

    @property
    def response(self) -> Response | None:
        return self.event.response if isinstance(self.event, Completed) else None

    @property
    def ok(self) -> bool:
        return isinstance(self.event, Completed)


_ControlKind = Literal["done", "requeue", "cancel", "ungate"]


class Engine:
    """Runs calls. Obtained from :func:`open_engine` (no public constructor)."""

    def __init__(self, config: EngineConfig, env: Mapping[str, str], token: object) -> None:
        if token is not _TOKEN:
            raise TypeError("use swarm.open_engine() to get an Engine")
        self.config = config
        # Each call's events go through a pipe that parks its reader with the loop's
        # own primitive (swarm/pipe.py): the loop is looked up once, here.
        self._backend = current_backend()
        # The loop's clock without anyio's backend lookup per reading (it is made
        # inside the running loop: open_engine).
        self._now = loop_clock()
        # First what can refuse the configuration (a key variable not set), so a
        # refusal leaves nothing open behind it (the channels below).
        endpoints = {name: p.endpoint(name, env) for name, p in config.providers.items()}
        self._router = Router(config)
        self._ledger = Ledger()
        self._ledger.add_listener(_log_call)
        self._prices = PriceTable().with_prices(config.prices)
        # Fallbacks re-enter without a token (they were admitted once), so the core
        # has headroom for one per call that can be in flight.
        self._core: SchedulerCore[_Call] = SchedulerCore(
            max_queued=config.scheduler.max_queued
            + sum(p.max_concurrency for p in config.providers.values()),
            weights=config.scheduler.tenant_weights,
            aging=config.scheduler.priority_aging,
        )
        total = sum(p.max_concurrency for p in config.providers.values())
        max_queued = config.scheduler.max_queued
        # Admission: a call takes a token before it enters and gives it back when it
        # leaves the queue (dispatched, expired, cancelled), so exactly max_queued
        # calls can wait; the submit channel is transport and never fills.
        self._admission = anyio.Semaphore(max_queued)
        self._submit_send, self._submit_receive = anyio.create_memory_object_stream[_Call](
            max_queued
        )
        # Control messages never wait: per call in flight at most one "ungate", one
        # "done" and one "requeue" unread at once, and one "cancel" per call, so this
        # bound is never reached.
        self._control_send, self._control_receive = anyio.create_memory_object_stream[
            tuple[_ControlKind, _Call, str]
        ](3 * total + config.scheduler.max_queued + 1024)
        self._actors: dict[str, ProviderActor] = {}
        for name, provider in config.providers.items():
            self._actors[name] = ProviderActor(
                name,
                endpoints[name],
                provider.resolved_family(),
                max_concurrency=provider.max_concurrency,
                max_connecting=provider.max_connecting,
                transport=provider.transport,
                engine=self,
                retry=config.retry,
                retry_budget=config.retry_budget,
                breaker=config.breaker,
                timeouts=config.timeouts,
                caller_reads=config.caller_reads,
            )
        # One rate-limit actor per provider that has limits: calls to a limited model
        # pass through it between the scheduler and the provider actor.
        self._gates: dict[str, RateLimitActor] = {}
        for name, provider in config.providers.items():
            if provider.rate_limit is not None or provider.model_rate_limits:
                gate = self._gates[name] = RateLimitActor(
                    name,
                    default=provider.rate_limit,
                    models=dict(provider.model_rate_limits),
                    provider=self._actors[name],
                    engine=self,
                )
                self._actors[name].gate = gate
        # Calls handed to a rate-limit lane and not yet back ("ungate"), per
        # deployment, and the deployment of each such call.
        self._gated: dict[Deployment, int] = {}
        self._gate_of: dict[str, Deployment] = {}
        self._in_flight = {name: 0 for name in config.providers}
        # The same per deployment (several models, or several routes' targets, can
        # share one provider): least_outstanding balances deployments.
        self._in_flight_at: dict[Deployment, int] = {}
        self._wake = anyio.Event()
        # The scheduler sleeps with its channels empty (submit may act for it then).
        self._scheduler_idle = False
        self._closing = False
        self._drained = anyio.Event()
        self._ids = itertools.count(1)
        self._supervisor: Supervisor | None = None

    # -- public API -----------------------------------------------------------------------

    async def submit(
        self,
        request: Request,
        *,
        priority: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109 - the call's deadline, not this await's
        tenant: str = "",
        agent: str | None = None,
        allow_restart: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> CallStream:
        """Accept a call and return its handle (see :meth:`stream` for the options).

        With ``scheduler.when_full = "wait"`` this waits while the queue is full.

        Raises:
            UnknownRoute: ``request.model`` names no provider, alias or default.
            EngineOverloaded: the queue is full and the engine refuses.
            EngineClosed: the engine is closing.
        """
        options = CallOptions(
            priority=priority,
            timeout=timeout,
            tenant=tenant,
            agent=agent,
            allow_restart=allow_restart,
            metadata=metadata or {},
        )
        return await self._submit(request, options, collector=None)

    @asynccontextmanager
    async def stream(
        self,
        request: Request,
        *,
        priority: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109 - the call's deadline, not this await's
        tenant: str = "",
        agent: str | None = None,
        allow_restart: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> AsyncIterator[CallStream]:
        """Run a call and yield its event stream; leaving the block early cancels it.

        Args:
            request: What to ask; ``request.model`` names the route
                (``provider/model``, an alias, or a model of the default provider).
            priority: Higher leaves the queue first.
            timeout: Seconds until the call fails, queueing and retries included.
            tenant: Fair-queuing group.
            agent: The agent making the call (kept in the ledger).
            allow_restart: Prefer a ``Restart`` over failing when a stream breaks
                after it began; None (the default) takes the config's
                ``retry.restarts_allowed`` (False unless set).
            metadata: Kept in the ledger.
        """
        call = await self.submit(
            request,
            priority=priority,
            timeout=timeout,
            tenant=tenant,
            agent=agent,
            allow_restart=allow_restart,
            metadata=metadata,
        )
        async with call:
            yield call

    async def complete(self, request: Request, **options: object) -> Response:
        """Run a call to the end and return its response.

        Raises:
            ProviderError: the call failed (the provider's typed error).
            CallFailed: the call was cancelled.
        """
        call = await self.submit(request, **options)  # type: ignore[arg-type]
        async with call:
            return await call.response()

    async def map(
        self,
        requests: Iterable[Request],
        *,
        concurrency: int = 64,
        **options: object,
    ) -> AsyncIterator[MapResult]:
        """Run many calls, at most ``concurrency`` at once; yield results as they finish.

        Leaving the loop early cancels the calls still running.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        call_options = CallOptions(**options)  # type: ignore[arg-type]
        send, receive = anyio.create_memory_object_stream[tuple[int, Terminal]](concurrency)
        it = enumerate(requests)
        running: dict[int, CallStream] = {}

        async def submit_next() -> bool:
            for index, request in it:
                handle = await self._submit(request, call_options, collector=(send, index))
                running[index] = handle
                return True
            return False

        try:
            for _ in range(concurrency):
                if not await submit_next():
                    break
            while running:
                index, terminal = await receive.receive()
                done = running.pop(index, None)
                if done is not None:
                    await done.aclose()
                await submit_next()
                yield MapResult(index=index, event=terminal)
        finally:
            for handle in running.values():
                handle.cancel()
                handle._receive.close()
            send.close()
            receive.close()

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            queued=len(self._core),
            providers={name: actor.statistics() for name, actor in self._actors.items()},
            ledger=self._ledger.statistics(),
            supervisor=None if self._supervisor is None else self._supervisor.statistics(),
            rate_limit_waiting={name: gate.waiting() for name, gate in self._gates.items()},
        )

    async def rate_limit_statistics(self) -> dict[str, dict[str, RateLimiterStatistics]]:
        """Each provider's rate limiters, by model (those used so far): allowed rates
        (after 429 cuts, or as learned from headers), what the buckets hold now,
        permits in flight, waits and 429s. Providers without limits are absent."""
        return {name: await gate.statistics() for name, gate in self._gates.items()}

    def estimate_cost(self, model: str, usage: Usage) -> float | None:
        """Estimated USD for ``usage`` on ``model`` from the engine's price table
        (the defaults plus ``EngineConfig.prices``); None when the model is unpriced."""
        return self._prices.cost(model, usage)

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    # -- admission --------------------------------------------------------------------------

    def _fair_group(self, call: _Call) -> str:
        """The fair-queuing group of a call: its tenant, or its agent (``fair_by``)."""
        if self.config.scheduler.fair_by == "agent":
            return call.options.agent or ""
        return call.options.tenant

    async def _submit(
        self,
        request: Request,
        options: CallOptions,
        collector: tuple[MemoryObjectSendStream[tuple[int, Terminal]], int] | None,
    ) -> CallStream:
        if self._closing:
            raise EngineClosed("the engine is closing; it takes no new calls")
        route = self._router.resolve(request.model)
        pipe: tuple[PipeSender[CallEvent], PipeReceiver[CallEvent]]
        pipe = open_pipe(self.config.stream_buffer, self._backend)
        send, receive = pipe
        call = _Call(f"call-{next(self._ids)}", request, options, route, send, self._now())
        call.collector = collector
        # A bound method, not a closure per call (three fewer objects for the cyclic
        # collector to scan in every live call).
        handle = CallStream(call, receive, self._request_cancel, _TOKEN)
        self._ledger.accept(call.id)
        try:
            if self.config.scheduler.when_full == "refuse":
                try:
                    self._admission.acquire_nowait()
                except anyio.WouldBlock:
                    raise EngineOverloaded(
                        f"the engine's queue is full ({self.config.scheduler.max_queued} calls, "
                        "scheduler.max_queued); retry later or raise the limit"
                    ) from None
            elif self._admission.value:
                # Room now: take it without anyio's acquire, which yields to the event
                # loop even then (a pass on the way to every first token).
                self._admission.acquire_nowait()
                try:
                    await anyio.lowlevel.checkpoint_if_cancelled()
                except BaseException:
                    self._admission.release()
                    raise
            else:
                await self._admission.acquire()
            call.admitted = True
            if self._closing:
                raise EngineClosed("the engine closed while this call waited for room")
            direct = self._scheduler_idle and not self._wake.is_set()
            if not direct:
                self._submit_send.send_nowait(call)
        except BaseException:
            self._ledger.withdraw(call.id)  # never accepted
            send.close()
            receive.close()
            raise
        if direct:
            # The scheduler waits with nothing to do (nothing woke it since), so its
            # state is current: queue and dispatch from here, as its next step would,
            # without the pass of the event loop that waking it costs (on the way to
            # every first token; the rate-limit and provider actors' admit and
            # dispatch do the same).
            # Still queued (no room), the call may need the scheduler's timer.
            self._enqueue(call)
            self._dispatch_ready()
            if call.ticket is None:
                return handle
        self._wake.set()
        return handle

    def _request_cancel(self, call: _Call) -> None:
        if call.terminal is not None or call.cancel_requested:
            return
        call.cancel_requested = True
        if call.scope is not None:
            call.scope.cancel()  # running: its provider task records the cancellation
        elif call.gate is not None:
            call.gate.cancel(call)  # waiting for a rate-limit permit
        else:
            self._control(("cancel", call, ""))

    def _control(self, message: tuple[_ControlKind, _Call, str]) -> None:
        kind = message[0]
        if (
            (kind == "done" or kind == "ungate")
            and self._scheduler_idle
            and not self._wake.is_set()
        ):
            # A credit back while the scheduler sleeps with nothing to do: apply it
            # here (see submit); wake it only if calls wait for the room it made.
            self._apply_control(*message)
            if len(self._core):
                self._wake.set()
            return
        self._control_send.send_nowait(message)  # bounded so that it never blocks
        self._wake.set()

    # -- the scheduler actor -----------------------------------------------------------------

    async def _scheduler(self) -> None:
        core = self._core
        try:
            while True:
                wake = self._wake = anyio.Event()
                self._handle_control()
                while True:
                    try:
                        call = self._submit_receive.receive_nowait()
                    except anyio.WouldBlock:
                        break
                    self._enqueue(call)
                now = anyio.current_time()
                for ticket in core.expire(now):
                    self._fail_queued(ticket.call, now)
                self._dispatch_ready()
                deadline = core.next_deadline()
                # Idle: nothing waits in its channels and it sleeps (see submit).
                self._scheduler_idle = (
                    not wake.is_set()
                    and self._submit_receive.statistics().current_buffer_used == 0
                    and self._control_receive.statistics().current_buffer_used == 0
                )
                try:
                    with anyio.move_on_at(math.inf if deadline is None else deadline):
                        await wake.wait()
                finally:
                    self._scheduler_idle = False
        finally:
            # At shutdown the queue is cancelled; after a crash it is kept for the
            # restarted scheduler (the queue lives in the engine, not in this task).
            if self._closing:
                self._cancel_all_queued()

    def _enqueue(self, call: _Call) -> None:
        if call.cancel_requested:
            self._leave_queue(call)
            self._finish_cancelled(call, "caller")
            return
        key = (call.route.name, tuple(call.tried))
        estimate = estimate_input_tokens(call.request) + estimate_output_tokens(call.request)
        try:
            call.ticket = self._core.push(
                call,
                route=key,
                priority=call.options.priority,
                tenant=self._fair_group(call),
                cost=estimate,
                deadline=call.deadline,
                enqueued_at=call.life.accepted_at,
            )
        except QueueFull:  # pragma: no cover - admission only reads while there is room
            raise AssertionError("scheduler admitted a call into a full queue") from None

    def _handle_control(self) -> None:
        while True:
            try:
                kind, call, provider = self._control_receive.receive_nowait()
            except anyio.WouldBlock:
                return
            self._apply_control(kind, call, provider)

    def _apply_control(self, kind: _ControlKind, call: _Call, provider: str) -> None:
        """One control message: the scheduler's own step, or _control's."""
        if kind == "done":
            self._in_flight[provider] -= 1
            deployment = call.dispatched
            if deployment is not None:
                call.dispatched = None
                left = self._in_flight_at[deployment] - 1
                if left:
                    self._in_flight_at[deployment] = left
                else:
                    del self._in_flight_at[deployment]
        elif kind == "ungate":
            deployment = self._gate_of.pop(call.id)
            self._gated[deployment] -= 1
        elif kind == "requeue":
            # A fallback: already admitted, so it bypasses the admission bound.
            if call.terminal is None:
                self._enqueue(call)
        elif kind == "cancel" and call.ticket is not None and self._core.remove(call.ticket):
            call.ticket = None
            self._leave_queue(call)
            self._finish_cancelled(call, "caller")

    def _outstanding(self, deployment: Deployment) -> int:
        return self._in_flight_at.get(deployment, 0)

    def _latency(self, deployment: Deployment) -> float | None:
        return self._actors[deployment.provider].latency(deployment.model)

    def _has_room(self, deployment: Deployment) -> bool:
        actor = self._actors[deployment.provider]
        if self._in_flight[deployment.provider] >= actor.max_concurrency:
            return False
        gate = actor.gate
        if gate is None or not gate.limits(deployment.model):
            return True
        return self._gated.get(deployment, 0) < ADMIT_WINDOW

    def _dispatch_ready(self) -> None:
        # Queue keys are (route name, deployments already tried); the choice for a
        # key is computed once per round, and afresh after each dispatch.
        choices: dict[Hashable, Deployment | None] = {}

        def ready(key: Hashable) -> bool:
            if key not in choices:
                name, tried = cast(tuple[str, tuple[Deployment, ...]], key)
                choices[key] = self._router.resolve(name).choose(
                    exclude=tried,
                    has_room=self._has_room,
                    outstanding=self._outstanding,
                    latency=self._latency,
                )
            return choices[key] is not None

        while (ticket := self._core.pop(ready)) is not None:
            call = ticket.call
            call.ticket = None
            self._leave_queue(call)
            deployment = choices[ticket.route]
            assert deployment is not None
            self._in_flight[deployment.provider] += 1
            call.dispatched = deployment
            self._in_flight_at[deployment] = self._in_flight_at.get(deployment, 0) + 1
            actor = self._actors[deployment.provider]
            gate = actor.gate
            if gate is not None and gate.limits(deployment.model):
                self._gated[deployment] = self._gated.get(deployment, 0) + 1
                self._gate_of[call.id] = deployment
                gate.admit(call, deployment)
            else:
                actor.dispatch(call, deployment)
            choices.clear()  # room changed

    def _leave_queue(self, call: _Call) -> None:
        if call.admitted:
            call.admitted = False
            self._admission.release()

    def _fail_queued(self, call: _Call, now: float) -> None:
        call.ticket = None
        self._leave_queue(call)
        timeout = call.options.timeout
        error = ProviderTimeoutError(
            f"call {call.id} to {call.request.model}: its deadline ({timeout} s) passed "
            "while it was queued; no provider was called",
            phase="total",
        )
        self.finish_failed(call, error)

    def _finish_leftovers(self) -> None:
        """After every actor stopped: end each call that is still open, so that the
        ledger balances even when the engine died of an escalation."""
        self._closing = True
        for gate in self._gates.values():
            gate.sweep()  # calls waiting for a permit when its actor stopped
        for actor in self._actors.values():
            actor.sweep()  # calls dispatched to an actor that was not restarted
        while True:
            try:
                kind, call, _ = self._control_receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if kind == "requeue" and call.terminal is None:
                self._finish_cancelled(call, "shutdown")
        self._cancel_all_queued()

    def _cancel_all_queued(self) -> None:
        for ticket in self._core.expire(math.inf):
            self._finish_cancelled(ticket.call, "shutdown")
        while True:
            try:
                call = self._submit_receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            self._finish_cancelled(call, "shutdown")
        while (left := self._core.pop(lambda key: True)) is not None:
            self._finish_cancelled(left.call, "shutdown")

    # -- endings (called by the scheduler and by provider tasks) ------------------------------

    def finish_completed(self, call: _Call, response: Response, deployment: Deployment) -> None:
        now = anyio.current_time()
        call.life.complete(now)
        cost = self._prices.cost(deployment.model, response.usage)
        self._record(call, response=response, cost=cost)
        self._deliver(call, Completed(call_id=call.id, response=response))

    def finish_failed(self, call: _Call, error: BaseException) -> None:
        now = anyio.current_time()
        call.life.fail(now)
        call.error = error
        info = ErrorInfo.from_exception(error, provider=call.life.deployment)
        self._record(call, error=info)
        self._deliver(call, Failed(call_id=call.id, error=info))

    def _finish_cancelled(self, call: _Call, reason: Literal["caller", "shutdown"]) -> None:
        call.life.cancel(anyio.current_time())
        self._record(call)
        self._deliver(call, Cancelled(call_id=call.id, reason=reason))

    finish_cancelled = _finish_cancelled

    def _record(
        self,
        call: _Call,
        *,
        response: Response | None = None,
        cost: float | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        record = record_from_lifecycle(
            call.life,
            route=call.route.name,
            model=response.model if response is not None else None,
            tenant=call.options.tenant or None,
            agent=call.options.agent,
            usage=response.usage if response is not None else None,
            cost_usd=cost,
            finish_reason=response.finish_reason if response is not None else None,
            error=error,
            metadata=call.options.metadata,
            discarded_usage=call.discarded,
            discarded_cost_usd=call.discarded_cost,
            discarded_estimated=call.discarded_estimated,
        )
        self._ledger.finish(record)
        if self._closing and self._ledger.statistics().in_flight == 0:
            self._drained.set()

    def _deliver(self, call: _Call, terminal: Terminal) -> None:
        """Send the terminal event and close the call's stream, without waiting: a
        caller that went away, or reads slowly, does not hold the engine up. When
        the stream's buffer is full the event stays on ``call.terminal``, where the
        ``CallStream`` finds it after the buffered events (it is never lost)."""
        call.terminal = terminal
        if call.collector is not None:
            collector, index = call.collector
            try:
                collector.send_nowait((index, terminal))
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        else:
            try:
                call.send.send_nowait(terminal)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        call.send.close()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    async def _supervise(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the scheduler and the provider actors under one supervisor.

        one_for_one, permanent children: a crashed actor is restarted alone. Its
        uncommitted calls went back to the scheduler as its tasks were cancelled;
        the queue itself lives in the engine and survives a scheduler restart.
        Too many crashes (SUPERVISOR_INTENSITY within SUPERVISOR_PERIOD) escalate:
        the engine stops and ``open_engine`` raises an exception group holding
        ``SupervisorEscalation`` (``except* SupervisorEscalation``), after every
        open call has ended Cancelled.
        """
        children = [ChildSpec(id="scheduler", start=self._scheduler_child, shutdown="brutal_kill")]
        for actor in self._actors.values():
            children.append(
                ChildSpec(
                    id=f"provider:{actor.name}", start=_actor_child(actor), shutdown="brutal_kill"
                )
            )
        for gate in self._gates.values():
            children.append(
                ChildSpec(
                    id=f"ratelimit:{gate.name}", start=_actor_child(gate), shutdown="brutal_kill"
                )
            )
        spec = SupervisorSpec(
            name="engine",
            strategy="one_for_one",
            intensity=SUPERVISOR_INTENSITY,
            period=SUPERVISOR_PERIOD,
            children=children,
        )
        async with open_supervisor(spec) as supervisor:
            self._supervisor = supervisor
            task_status.started()
            await anyio.sleep_forever()

    async def _scheduler_child(self, ctx: ChildContext) -> None:
        await self._scheduler()

    async def _shutdown(self, tg: TaskGroup) -> None:
        self._closing = True
        supervisor = self._supervisor
        if self._ledger.statistics().in_flight == 0 or (
            supervisor is not None and supervisor.statistics().state != "running"
        ):
            # Nothing to wait for: no call is open, or no actor runs (an escalation).
            self._drained.set()
        with anyio.move_on_after(self.config.shutdown_timeout, shield=True):
            await self._drained.wait()
        tg.cancel_scope.cancel()
        # Wake submitters still waiting for room: they find the engine closed.
        for _ in range(self._admission.statistics().tasks_waiting):
            self._admission.release()

    def _close_channels(self) -> None:
        """After every actor has stopped: close the engine's own channels."""
        for channel in (
            self._submit_send,
            self._submit_receive,
            self._control_send,
            self._control_receive,
        ):
            channel.close()
        for actor in self._actors.values():
            actor.close()
        for gate in self._gates.values():
            gate.close()


def _log_call(record: CallRecord) -> None:
    """The ledger's view of each call as a log event (see swarm.logs)."""
    if record.outcome == "failed":
        error = record.error
        logs.event(
            logging.WARNING,
            "call.failed",
            call=record.id,
            route=record.route,
            deployment=record.deployment,
            attempts=record.attempts,
            error=error.kind if error else None,
            message=error.message if error else None,
            agent=record.agent,
            tenant=record.tenant,
        )
    elif logs.LOGGER.isEnabledFor(logging.DEBUG):
        logs.event(
            logging.DEBUG,
            f"call.{record.outcome}",
            call=record.id,
            route=record.route,
            deployment=record.deployment,
            attempts=record.attempts,
            input_tokens=record.usage.input_tokens,
            output_tokens=record.usage.output_tokens,
            ttft=record.ttft,
            duration=record.duration,
            agent=record.agent,
        )


def _simulator_config(
    config: EngineConfig, base_urls: Mapping[str, str], *, limited: bool
) -> EngineConfig:
    # A simulator that enforces rate limits gets the adaptive limiter, which keeps to
    # the limits its response headers report, as a real provider's account would.
    limits = RateLimitConfig() if limited else None
    providers = {
        name: ProviderConfig(
            family=family, base_url=base_urls[family], api_key=SIM_KEY, rate_limit=limits
        )
        for name, family in SIM_PROVIDERS.items()
    }
    return msgspec.structs.replace(
        config, providers=providers, default_provider="sim", simulator=False
    )


@asynccontextmanager
async def open_engine(
    config: EngineConfig | None = None,
    *,
    env: Mapping[str, str] | None = None,
    simulator: SimConfig | None = None,
) -> AsyncIterator[Engine]:
    """Start an engine for the ``async with`` block; close it at the end.

    With no providers configured and no API key in the environment, the built-in
    simulator starts in process and every route goes to it (the provider ``sim``
    speaks OpenAI Chat Completions; ``sim-anthropic``, ``sim-gemini`` and
    ``sim-responses`` speak the other families).

    ``simulator`` configures that embedded simulator (model profiles: pacing,
    tool rounds; rate limits; faults); it is ignored when the simulator does not
    run. When it sets rate limits, the simulator's providers keep to the limits
    its response headers report (``RateLimitConfig()``).

    On exit, calls in flight get ``config.shutdown_timeout`` seconds to finish, then
    everything left is cancelled (each such call ends ``Cancelled``).

    Raises:
        ConfigError: the configuration is invalid or a key variable is missing.
    """
    env = environment() if env is None else env
    config = (config or EngineConfig()).with_environment(env)
    async with AsyncExitStack() as stack:
        if config.uses_simulator:
            from providers.sim import RateLimit as SimRateLimit
            from providers.sim import SimConfig, open_simulator

            sim_config = simulator or SimConfig()
            sim = await stack.enter_async_context(open_simulator(sim_config))
            limited = sim_config.rate_limit != SimRateLimit() or bool(sim_config.key_rate_limits)
            config = _simulator_config(
                config,
                {family: sim.base_url_for(family) for family in SIM_PROVIDERS.values()},
                limited=limited,
            )
        if not config.providers:
            raise ConfigError("no provider is configured")
        engine = Engine(config, env, _TOKEN)
        # An error raised in the caller's block reaches the caller as itself, not
        # wrapped in the engine's task group's ExceptionGroup: it is held while the
        # engine shuts down, then raised. If the engine failed too, both are raised
        # together in one group (nothing is lost).
        body_error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(engine._supervise)
                try:
                    yield engine
                except Exception as exc:
                    body_error = exc
                finally:
                    await engine._shutdown(tg)
        except BaseExceptionGroup as group:
            if body_error is None:
                raise
            raise BaseExceptionGroup(group.message, [body_error, *group.exceptions]) from None
        finally:
            engine._finish_leftovers()
            engine._close_channels()
        if body_error is not None:
            raise body_error
