"""The rate-limit actor: one per provider account, a lane per model, between the
scheduler and the provider actor.

::

    scheduler ──admit(call)──► RateLimitActor ──dispatch(call, permit)──► ProviderActor
        ▲   (at most ADMIT_WINDOW     │  lane per model: a RateLimitBackend,     │
        │    per lane at once)        │  admits in the scheduler's order,        │
        └──────── "ungate" ◄──────────┘  retries of running calls first          │
                                      ◄── release / feedback (never wait) ───────┘

Why a gate before dispatch, not a wait inside the call: a call waiting for its
permit inside the provider actor holds one of the provider's ``max_concurrency``
credits, so a flood of low-priority calls parked on an exhausted RPM bucket would
keep a later high-priority call out for as long as they wait. Here the scheduler
sends a lane at most ``ADMIT_WINDOW`` calls at a time, in its own priority and
fair-queuing order, and the lane grants them in that order as the limits allow;
everything else stays in the scheduler's queue, where priorities still decide. The
window bounds the inversion to ``ADMIT_WINDOW`` calls per (provider, model) while a
lane is blocked, and lets a burst through an open lane without a round trip per call.

Retries need a permit too: the call's task asks its lane (``acquire``) and waits;
retries go before new admits, since their calls already hold a provider credit.

The lanes' limiters (behind :class:`~swarm.ratelimit.RateLimitBackend`) live on this
object, not in its task, so a restarted actor keeps every bucket, permit and cut.

Invariants:

* A call handed to this actor (``admit``) is, until it leaves, in exactly one lane's
  admit queue (or in the inbox on its way there). It leaves exactly once: dispatched
  with a permit, ended (cancelled by its caller, its deadline passed, shutdown), or
  sent back to the scheduler (a crash); each way the scheduler gets ``ungate``.
* Releases and feedback are messages sent with ``send_nowait`` on an inbox bounded
  at ``4 * max_concurrency + ...``: each call in flight has at most one admit or
  retry waiting and one attempt's headers and release unsent, so it never fills.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import anyio

from providers.errors import TimeoutError as ProviderTimeoutError

from .provider_actor import InjectedCrash, ProviderActor
from .ratelimit import (
    AcquireRequest,
    Feedback,
    HeadersFeedback,
    LocalBackend,
    Permit,
    RateLimitBackend,
    RateLimitConfig,
    RateLimiter,
    RateLimiterStatistics,
    ReleaseRequest,
    TokenCost,
    Wait,
)
from .tokens import estimate_input_tokens, estimate_output_tokens

if TYPE_CHECKING:
    from .call import _Call
    from .engine import Engine
    from .routing import Deployment

__all__ = ["ADMIT_WINDOW", "RateLimitActor"]

# Calls the scheduler may have handed one lane and not yet had back ("ungate").
ADMIT_WINDOW = 16


def call_cost(call: _Call) -> TokenCost:
    """What a call reserves of a token limit: its input estimate plus max_tokens."""
    return TokenCost(
        input_tokens=estimate_input_tokens(call.request),
        max_tokens=estimate_output_tokens(call.request),
    )


class _Admit:
    __slots__ = ("call", "cost", "deployment")

    def __init__(self, call: _Call, deployment: Deployment) -> None:
        self.call = call
        self.deployment = deployment
        self.cost = call_cost(call)


class _RetryWaiter:
    """A running call's task waiting for a permit for its next attempt."""

    __slots__ = ("cancelled", "cost", "event", "model", "permit", "restarted")

    def __init__(self, model: str, cost: TokenCost) -> None:
        self.model = model
        self.cost = cost
        self.event = anyio.Event()
        self.permit: Permit | None = None
        self.cancelled = False  # its task stopped waiting (the lane skips it)
        self.restarted = False  # the actor restarted: ask again


class _Release:
    __slots__ = ("model", "request")

    def __init__(self, model: str, request: ReleaseRequest | Feedback) -> None:
        self.model = model
        self.request = request


class _Cancel:
    __slots__ = ("call",)

    def __init__(self, call: _Call) -> None:
        self.call = call


_Message = _Admit | _RetryWaiter | _Release | _Cancel


class _Lane:
    """One model's limits and the calls waiting for them."""

    __slots__ = ("admits", "backend", "model", "retries", "try_at")

    def __init__(self, model: str, backend: RateLimitBackend) -> None:
        self.model = model
        self.backend = backend
        self.admits: deque[_Admit] = deque()
        self.retries: deque[_RetryWaiter] = deque()
        # Do not ask the backend again before this time (it said Wait); -inf: ask now;
        # inf: until a release or feedback arrives (a concurrency wait).
        self.try_at = -math.inf

    @property
    def waiting(self) -> bool:
        return bool(self.admits or self.retries)


class RateLimitActor:
    """The rate limits of one provider account, a lane per model. Created by the engine.

    Args:
        name: The provider's name.
        default: The limits of every model without its own entry in ``models``.
        models: Limits by exact model name.
        provider: The provider actor its admitted calls go to.
        engine: Where calls end and control messages go.
    """

    def __init__(
        self,
        name: str,
        *,
        default: RateLimitConfig | None,
        models: dict[str, RateLimitConfig],
        provider: ProviderActor,
        engine: Engine,
    ) -> None:
        self.name = name
        self._default = default
        self._models = models
        self._provider = provider
        self._engine = engine
        bound = 4 * provider.max_concurrency + ADMIT_WINDOW * max(1, len(models)) + 1024
        self._send, self._receive = anyio.create_memory_object_stream[_Message](bound)
        self._lanes: dict[str, _Lane] = {}
        self._loop: anyio.CancelScope | None = None
        # The loop sleeps with its inbox empty (admit may act for it then).
        self._idle = False
        self._crash_requested = False

    def limits(self, model: str) -> bool:
        """Whether calls to ``model`` go through this actor (it has limits)."""
        return model in self._models or self._default is not None

    # -- messages from other actors (never wait) ---------------------------------------------

    def _post(self, message: _Message) -> None:
        self._idle = False  # a message waits: the lanes may be stale until it is handled
        self._send.send_nowait(message)

    def admit(self, call: _Call, deployment: Deployment) -> None:
        """From the scheduler: grant ``call`` a permit in turn, then dispatch it."""
        call.gate = self
        message = _Admit(call, deployment)
        if self._idle and not call.cancel_requested:
            # The actor sleeps with its inbox empty, so its lanes are current: when no
            # call waits in this one and its in-memory limiter grants now, grant and
            # dispatch from here, as the actor's next step would, without the pass of
            # the event loop that waking it costs (on the way to every first token).
            lane = self._lane(deployment.model)
            backend = lane.backend
            now = anyio.current_time()
            if (
                isinstance(backend, LocalBackend)
                and not lane.admits
                and not lane.retries
                and now >= lane.try_at
            ):
                granted = backend.try_acquire(AcquireRequest(cost=message.cost, now=now))
                if not isinstance(granted, Wait):
                    self._leave(call, done=False)
                    call.permit = (lane.model, granted)
                    self._provider.dispatch(call, deployment)
                    return
                lane.try_at = math.inf if granted.seconds is None else now + granted.seconds
        self._post(message)

    def cancel(self, call: _Call) -> None:
        """From a caller: a call it handed here was cancelled (see ``admit``)."""
        self._post(_Cancel(call))

    def release(self, model: str, request: ReleaseRequest) -> None:
        """Settle a permit (from a call's task; not a cancellation point)."""
        if not self._settle_here(model, request):
            self._post(_Release(model, request))

    def feedback(self, model: str, message: Feedback) -> None:
        """Rate-limit headers or a 429 (from a call's task; not a cancellation point).

        A response without rate-limit headers matters only to a limiter in its slow
        start (it ends it); to a local one past it, it is dropped here, unposted.
        """
        if isinstance(message, HeadersFeedback) and message.info.empty:
            lane = self._lanes.get(model)
            backend = None if lane is None else lane.backend
            if isinstance(backend, LocalBackend) and not backend.probing:
                return
        if not self._settle_here(model, message):
            self._post(_Release(model, message))

    def _settle_here(self, model: str, request: ReleaseRequest | Feedback) -> bool:
        """While the actor sleeps with its inbox empty and no call waits in this
        model's lane, apply a release or feedback to its in-memory limiter here, as
        the actor's next step would, without waking it (two passes of the event
        loop per call otherwise). False: post it to the actor."""
        if not self._idle:
            return False
        lane = self._lane(model)
        backend = lane.backend
        if not isinstance(backend, LocalBackend) or lane.admits or lane.retries:
            return False
        if isinstance(request, ReleaseRequest):
            backend.release_now(request)
        else:
            backend.feedback_now(request)
        lane.try_at = -math.inf  # what it could grant has changed
        return True

    async def acquire(self, call: _Call, model: str) -> Permit:
        """A permit for a running call's next attempt (retries go before new admits).

        Atomic under cancellation: cancelled, it takes nothing (a permit granted in
        the meantime is released unused).
        """
        cost = call_cost(call)
        while True:
            waiter = _RetryWaiter(model, cost)
            self._post(waiter)
            try:
                await waiter.event.wait()
            except BaseException:
                waiter.cancelled = True
                if waiter.permit is not None:
                    now = anyio.current_time()
                    unused = ReleaseRequest(permit=waiter.permit, now=now, outcome="unsent")
                    self.release(model, unused)
                raise
            if waiter.permit is not None:
                return waiter.permit
            # The actor restarted while this waited; its lanes start empty: ask again.

    # -- reading -----------------------------------------------------------------------------

    async def statistics(self) -> dict[str, RateLimiterStatistics]:
        """Each model's limiter (those used so far)."""
        now = anyio.current_time()
        return {model: await lane.backend.statistics(now) for model, lane in self._lanes.items()}

    def waiting(self) -> int:
        """Calls waiting for a permit now (admits and retries)."""
        return sum(len(lane.admits) + len(lane.retries) for lane in self._lanes.values())

    # -- the actor ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The loop: apply messages, grant what the limits allow, sleep until the
        next message or the soonest time a lane could grant or a deadline passes."""
        receive = self._receive
        try:
            with anyio.CancelScope() as self._loop:
                wake_at = -math.inf
                while True:
                    # A message already waiting is taken without a pass of the event
                    # loop (anyio's receive always yields first); only an empty inbox
                    # waits, and that is where this actor yields.
                    try:
                        message = receive.receive_nowait()
                    except anyio.WouldBlock:
                        message = None
                        self._idle = True  # see admit
                        try:
                            with anyio.move_on_at(wake_at):
                                message = await receive.receive()
                        finally:
                            self._idle = False
                    if message is not None:
                        await self._handle(message)
                    while True:  # everything already waiting, before granting anything
                        try:
                            message = receive.receive_nowait()
                        except anyio.WouldBlock:
                            break
                        await self._handle(message)
                    wake_at = await self._serve()
            if self._crash_requested:
                self._crash_requested = False
                raise InjectedCrash(f"rate-limit actor {self.name}: injected crash")
        finally:
            self._loop = None
            self.sweep()

    def crash(self) -> None:
        """Fault hook for tests: make the actor's loop fail as a crash would."""
        if self._loop is not None and not self._crash_requested:
            self._crash_requested = True
            self._loop.cancel()

    def sweep(self) -> None:
        """Settle what the stopped loop held. Admits: cancelled at shutdown, else back
        to the scheduler (no provider saw them). Retry waiters: told to ask again (their
        tasks are cancelled at shutdown anyway). At shutdown the inbox is drained too;
        after a crash it is kept, so no release or feedback is lost."""
        engine = self._engine
        admits: list[_Call] = []
        for lane in self._lanes.values():
            admits.extend(admit.call for admit in lane.admits)
            lane.admits.clear()
            for waiter in lane.retries:
                waiter.restarted = True
                waiter.event.set()
            lane.retries.clear()
            lane.try_at = -math.inf
        if engine.closing:
            while True:
                try:
                    message = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                if isinstance(message, _Admit):
                    admits.append(message.call)
                elif isinstance(message, _RetryWaiter):
                    message.restarted = True
                    message.event.set()
        for call in admits:
            self._leave(call, done=True)
            if call.terminal is None:
                if engine.closing:
                    engine.finish_cancelled(call, "shutdown")
                else:
                    engine._control(("requeue", call, self.name))

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    # -- internals ---------------------------------------------------------------------------

    def _lane(self, model: str) -> _Lane:
        lane = self._lanes.get(model)
        if lane is None:
            config = self._models.get(model, self._default)
            assert config is not None, "a model without limits has no lane"
            limiter = RateLimiter(config, now=anyio.current_time())
            lane = self._lanes[model] = _Lane(model, LocalBackend(limiter))
        return lane

    async def _handle(self, message: _Message) -> None:
        if isinstance(message, _Admit):
            call = message.call
            if call.cancel_requested:
                self._leave(call, done=True)
                if call.terminal is None:
                    self._engine.finish_cancelled(call, "caller")
            else:
                self._lane(message.deployment.model).admits.append(message)
        elif isinstance(message, _RetryWaiter):
            self._lane(message.model).retries.append(message)
        elif isinstance(message, _Release):
            lane = self._lane(message.model)
            if isinstance(message.request, ReleaseRequest):
                await lane.backend.release(message.request)
            else:
                await lane.backend.feedback(message.request)
            lane.try_at = -math.inf  # what it could grant has changed
        else:
            call = message.call
            for lane in self._lanes.values():
                for admit in lane.admits:
                    if admit.call is call:
                        lane.admits.remove(admit)
                        self._leave(call, done=True)
                        if call.terminal is None:
                            self._engine.finish_cancelled(call, "caller")
                        return

    async def _serve(self) -> float:
        """Grant every lane what it can now; the soonest time to look again."""
        wake_at = math.inf
        for lane in self._lanes.values():
            if lane.waiting:
                wake_at = min(wake_at, await self._serve_lane(lane))
        return wake_at

    async def _serve_lane(self, lane: _Lane) -> float:
        now = anyio.current_time()
        soonest = math.inf
        # Calls whose deadline passed while waiting fail here, as in the scheduler's
        # queue: no provider was called. The others wake the loop at their deadline.
        for admit in [a for a in lane.admits if a.call.deadline is not None]:
            deadline = admit.call.deadline
            assert deadline is not None
            if deadline <= now:
                lane.admits.remove(admit)
                self._expire(admit.call, lane.model)
            else:
                soonest = min(soonest, deadline)
        retries = lane.retries
        while retries or lane.admits:
            while retries and retries[0].cancelled:
                retries.popleft()
            if not (retries or lane.admits):
                break
            if now < lane.try_at:
                return min(soonest, lane.try_at)
            # Retries first: their calls already hold a provider credit.
            head: _RetryWaiter | _Admit = retries[0] if retries else lane.admits[0]
            granted = await lane.backend.acquire(AcquireRequest(cost=head.cost, now=now))
            if isinstance(granted, Wait):
                lane.try_at = math.inf if granted.seconds is None else now + granted.seconds
                continue  # the check above returns
            if isinstance(head, _RetryWaiter):
                retries.popleft()
                head.permit = granted
                head.event.set()
            else:
                lane.admits.popleft()
                call = head.call
                self._leave(call, done=False)
                call.permit = (lane.model, granted)
                self._provider.dispatch(call, head.deployment)
        return soonest

    def _leave(self, call: _Call, *, done: bool) -> None:
        """``call`` leaves this actor: the scheduler may send its lane another. With
        ``done``, it did not go on to the provider, whose credit comes back too."""
        call.gate = None
        self._engine._control(("ungate", call, self.name))
        if done:
            self._engine._control(("done", call, self.name))

    def _expire(self, call: _Call, model: str) -> None:
        self._leave(call, done=True)
        if call.terminal is None:
            timeout = call.options.timeout
            self._engine.finish_failed(
                call,
                ProviderTimeoutError(
                    f"call {call.id} to {self.name}/{model}: its deadline ({timeout} s) "
                    "passed while it waited for the rate limit; no provider was called",
                    phase="total",
                ),
            )
