"""The supervisor: runs children in a task group and restarts them with OTP's semantics.

::

    async with open_supervisor(spec, on_child_exit=requeue) as sup:
        ...                      # children run; sup.start_child / terminate_child / ...
    # leaving the block stops every child in reverse start order, each with its shutdown

How it works. Every child run is a task of the supervisor's task group, inside a cancel
scope of its own. A child that ends on its own (returns, or raises an ``Exception``) is
reported at once to ``on_child_exit`` and queued for the *manager*, one task that takes
every decision in turn under the supervisor's lock (as OTP's supervisor process reads its
mailbox): whether to restart (by restart type), whether the restart intensity allows it
(:class:`~swarm.supervisor.intensity.RestartIntensity`), and which siblings the strategy
stops (in reverse start order) and starts again (in start order). The public operations
take the same lock, so they never interleave with a decision.

Stopping a child: set its context's stop request, wait up to its ``shutdown`` seconds for
it to end, then cancel its scope and wait for its task to be gone. Whatever interrupts the
wait (the caller's cancellation) cancels the child at once: a stop never returns or raises
while the child's task still runs, so no child is ever orphaned.

Errors::

    SupervisorError                          root of what the supervisor raises
    ├── SupervisorEscalation                 restart intensity exceeded; the supervisor
    │                                        stopped its children; __cause__: last crash
    └── SupervisorUsageError (RuntimeError)  misuse of the handle, never retried
        ├── SupervisorClosedError            the supervisor is closing or closed
        ├── UnknownChildError (LookupError)  no child has that id
        ├── DuplicateChildError              a child already has that id
        └── ChildRunningError                the operation needs a stopped child

Supervision trees: :func:`supervisor_child` makes a whole supervisor a child of another;
its escalation is that child's crash, so a failure climbs until a supervisor can absorb it.

Cancellation of the supervisor's owner is structured: it cancels the block and every child
together (no graceful stop: that is what leaving the block is for), and each child's exit
is still reported to ``on_child_exit`` as ``killed``.

Where this differs from OTP, on purpose:

* A ``one_for_all``/``rest_for_one`` restart starts again the affected children that were
  running (or had crashed alongside), not those stopped before it (terminated by the
  caller, or transient children that had ended cleanly); OTP restarts every
  non-temporary spec of the set.
* A crash while the initial children start is an ordinary crash (restart, intensity);
  OTP fails the supervisor's start instead. There is no ``simple_one_for_one`` and no
  restart backoff (neither has OTP).
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal, TypeAlias, final

import anyio
import msgspec
from anyio.abc import TaskGroup

from .. import logs
from ..errors import SwarmError
from .intensity import RestartIntensity
from .spec import (
    ChildSpec,
    ExitKind,
    Restart,
    Shutdown,
    Strategy,
    SupervisorSpec,
    affected_children,
    check_significance,
    should_restart,
)

__all__ = [
    "ChildContext",
    "ChildExit",
    "ChildInfo",
    "ChildRunningError",
    "ChildState",
    "DuplicateChildError",
    "StopReason",
    "Supervisor",
    "SupervisorClosedError",
    "SupervisorError",
    "SupervisorEscalation",
    "SupervisorState",
    "SupervisorStatistics",
    "SupervisorUsageError",
    "UnknownChildError",
    "open_supervisor",
    "supervisor_child",
]

ChildState: TypeAlias = Literal["running", "stopping", "exited", "stopped"]
"""``running``; ``stopping`` (being stopped by the supervisor); ``exited`` (ended on its
own, the supervisor has not decided yet); ``stopped`` (not running, spec kept)."""
SupervisorState: TypeAlias = Literal["starting", "running", "closing", "closed"]
StopReason: TypeAlias = Literal["exited", "escalated", "auto_shutdown", "cancelled"]
"""Why a supervisor closed: its block ended (``exited``), restart intensity was exceeded
(``escalated``), significant children ended (``auto_shutdown``), or its owner was
cancelled or interrupted (``cancelled``)."""

# Only the runtime creates contexts and handles (trio's NoPublicConstructor, as a token).
_PRIVATE = object()


# --- errors -------------------------------------------------------------------------------


class SupervisorError(SwarmError):
    """Root of the errors a supervisor raises (part of the runtime's ``SwarmError`` tree)."""


class SupervisorEscalation(SupervisorError):
    """A supervisor gave up: more than ``intensity`` restarts within ``period`` seconds.

    Raised out of :func:`open_supervisor` after every child has been stopped, with the
    last crash as ``__cause__`` (None when a permanent child returned normally). Under a
    parent supervisor it is that child's crash, so escalation climbs the tree.

    Attributes:
        supervisor: The supervisor's name.
        exit: The child exit whose restart was refused.
        intensity: The supervisor's intensity.
        period: The supervisor's period, in seconds.
    """

    def __init__(self, supervisor: str, exit: ChildExit, *, intensity: int, period: float):
        self.supervisor = supervisor
        self.exit = exit
        self.intensity = intensity
        self.period = period
        what = (
            f"crashed with {exit.exception!r}" if exit.kind == "crashed" else f"ended ({exit.kind})"
        )
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {exit.id!r} {what}, and one more "
            f"restart would exceed {intensity} restart(s) within {period:g} s; all its "
            "children were stopped"
        )


class SupervisorUsageError(SupervisorError, RuntimeError):
    """The supervisor handle was misused; retrying the same call cannot help."""


class SupervisorClosedError(SupervisorUsageError):
    """The supervisor is closing or closed: it starts, stops and restarts nothing more."""


class UnknownChildError(SupervisorUsageError, LookupError):
    """No child of this supervisor has that id."""


class DuplicateChildError(SupervisorUsageError):
    """A child of this supervisor already has that id (running or stopped)."""


class ChildRunningError(SupervisorUsageError):
    """The operation needs a stopped child (``restart_child``, ``delete_child``)."""


# --- records ------------------------------------------------------------------------------


class ChildExit(msgspec.Struct, kw_only=True, frozen=True):
    """One run of a child has ended; what ``on_child_exit`` receives.

    Attributes:
        supervisor: The supervisor's name.
        id: The child's id.
        kind: ``normal``, ``shutdown``, ``crashed`` or ``killed`` (see ``ExitKind``).
        exception: The exception of a crash; None otherwise.
        incarnation: Which run ended: 0 for the first start of this id, +1 per start.
        at: When it ended, on the event loop's clock (``anyio.current_time()``).
    """

    supervisor: str
    id: str
    kind: ExitKind
    exception: BaseException | None
    incarnation: int
    at: float


class ChildInfo(msgspec.Struct, kw_only=True, frozen=True):
    """One child as :meth:`Supervisor.which_children` sees it.

    Attributes:
        id: The child's id.
        state: See ``ChildState``.
        restart: Its restart type.
        shutdown: Its shutdown.
        significant: Whether its end can shut the supervisor down.
        restarts: How many times the supervisor restarted it (a ``restart_child`` call
            is not counted: it is the caller's start, not a restart).
        incarnation: Its current or last run (0: the first).
    """

    id: str
    state: ChildState
    restart: Restart
    shutdown: Shutdown
    significant: bool
    restarts: int
    incarnation: int


class SupervisorStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of a supervisor (trio's ``statistics()`` habit).

    Attributes:
        name: The supervisor's name.
        state: ``starting``, ``running``, ``closing`` or ``closed``.
        strategy: Its strategy.
        children: Children it knows (running or not).
        running: Children whose task is live (``running`` or ``stopping``).
        restarts: Restart decisions taken; one per restart, however many children it
            touched.
        recent_restarts: Of those, the ones within the last ``period`` seconds.
        intensity: Its intensity.
        period: Its period.
        pending_exits: Exits waiting for a decision.
        stop_reason: Why it closed, or None while open.
    """

    name: str
    state: SupervisorState
    strategy: Strategy
    children: int
    running: int
    restarts: int
    recent_restarts: int
    intensity: int
    period: float
    pending_exits: int
    stop_reason: StopReason | None


# --- the child's side ---------------------------------------------------------------------


@final
class ChildContext:
    """What a child run receives: who it is, and whether it is asked to stop.

    A child should return soon after ``wait_stop_requested()`` completes (a graceful
    stop); when ``stop_deadline`` passes it is cancelled. Created by the supervisor only.
    """

    __slots__ = ("_deadline", "_id", "_incarnation", "_ready", "_stop", "_supervisor")

    def __init__(self, token: object, *, supervisor: str, id: str, incarnation: int) -> None:
        if token is not _PRIVATE:
            raise TypeError("ChildContext has no public constructor; a supervisor creates it")
        self._supervisor = supervisor
        self._id = id
        self._incarnation = incarnation
        self._stop = anyio.Event()
        self._ready = anyio.Event()
        self._deadline: float | None = None

    @property
    def id(self) -> str:
        """The child's id."""
        return self._id

    @property
    def supervisor(self) -> str:
        """The supervisor's name."""
        return self._supervisor

    @property
    def incarnation(self) -> int:
        """0 on the first start of this id, +1 per start since (a restart is a new run)."""
        return self._incarnation

    @property
    def stop_requested(self) -> bool:
        """Whether the supervisor has asked this run to stop."""
        return self._stop.is_set()

    @property
    def stop_deadline(self) -> float | None:
        """When this run will be cancelled (``anyio.current_time()`` clock).

        None until a stop is requested; ``math.inf`` under ``shutdown="infinity"``.
        """
        return self._deadline

    def ready(self) -> None:
        """Tell the supervisor this run is initialized (idempotent).

        Only waited for when the child's spec has ``signals_ready=True``; then the
        supervisor starts the next child (or returns from ``start_child``) after this.
        """
        self._ready.set()

    async def wait_stop_requested(self) -> None:
        """Wait until the supervisor asks this run to stop (returns at once if it has)."""
        await self._stop.wait()

    def _request_stop(self, deadline: float) -> None:
        if not self._stop.is_set():
            self._deadline = deadline
            self._stop.set()

    def __repr__(self) -> str:
        return (
            f"<ChildContext {self._supervisor}/{self._id} incarnation={self._incarnation} "
            f"stop_requested={self.stop_requested}>"
        )


class _Child:
    """The supervisor's record of one child id (its spec and its current run)."""

    __slots__ = ("ctx", "done", "incarnation", "last_exit", "restarts", "scope", "spec", "state")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.state: ChildState = "stopped"
        self.restarts = 0
        self.incarnation = -1  # no run yet; the first start makes it 0
        # The current (or last) run's context, cancel scope and completion: replaced
        # together by each start, so they always describe the same run.
        self.ctx: ChildContext | None = None
        self.scope: anyio.CancelScope | None = None
        self.done: anyio.Event | None = None
        self.last_exit: ChildExit | None = None


# The (supervisor, child id) pairs the current task runs under, outermost first. A child
# (or any task it spawned) that asks its own supervisor to stop it would wait for itself.
_LINEAGE: contextvars.ContextVar[tuple[tuple[Supervisor, str], ...]] = contextvars.ContextVar(
    "swarm_supervisor_lineage", default=()
)


# --- the supervisor -----------------------------------------------------------------------


@final
class Supervisor:
    """The handle of a running supervisor; get one from :func:`open_supervisor`.

    Its operations take the supervisor's lock, so they run one at a time and never in the
    middle of a restart decision. Each is atomic under cancellation, with one exception
    that favours structure: a caller cancelled while waiting for a child's graceful stop
    cancels that child at once (it is still stopped, then the cancellation propagates).
    """

    def __init__(
        self,
        token: object,
        *,
        spec: SupervisorSpec,
        on_child_exit: Callable[[ChildExit], None] | None,
        task_group: TaskGroup,
    ) -> None:
        if token is not _PRIVATE:
            raise TypeError("Supervisor has no public constructor; use open_supervisor()")
        self._spec = spec
        self._on_child_exit = on_child_exit
        self._tg = task_group
        self._lock = anyio.Lock()
        self._intensity = RestartIntensity(intensity=spec.intensity, period=spec.period)
        self._state: SupervisorState = "starting"
        self._stop_reason: StopReason | None = None
        self._escalation: SupervisorEscalation | None = None
        # Invariant: `_order` holds exactly the keys of `_children`, in start order.
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        # Exits for the manager, oldest first. Bounded by the number of children: a run
        # is queued once, when it moves running -> exited, and a child leaves `exited`
        # only through the manager (or a stop/terminate that makes the entry stale).
        self._pending: deque[tuple[_Child, int]] = deque()
        self._wakeup = anyio.Event()
        self._manager_scope = anyio.CancelScope()
        self._lineage = _LINEAGE.get()

    # -- observation (synchronous, no lock: a snapshot between two checkpoints) --

    @property
    def name(self) -> str:
        """The supervisor's name."""
        return self._spec.name

    @property
    def spec(self) -> SupervisorSpec:
        """The spec it was opened with (children added later are not in it)."""
        return self._spec

    def which_children(self) -> list[ChildInfo]:
        """Every child it knows, in start order."""
        return [self._info(self._children[child_id]) for child_id in self._order]

    def statistics(self) -> SupervisorStatistics:
        """A snapshot of its state and counters."""
        now = anyio.current_time()
        return SupervisorStatistics(
            name=self._spec.name,
            state=self._state,
            strategy=self._spec.strategy,
            children=len(self._children),
            running=sum(1 for c in self._children.values() if c.state in ("running", "stopping")),
            restarts=self._intensity.restarts,
            # Every restart time is an earlier anyio.current_time(), so `now` is not behind.
            recent_restarts=self._intensity.recent(now),
            intensity=self._spec.intensity,
            period=self._spec.period,
            pending_exits=len(self._pending),
            stop_reason=self._stop_reason,
        )

    # -- operations --

    async def start_child(self, spec: ChildSpec) -> None:
        """Add a child after the others and start it.

        Returns once the child has run up to its first checkpoint, or, with
        ``signals_ready``, once it has called ``ctx.ready()`` (or ended). Cancelled while
        waiting for that, the child is cancelled and forgotten.

        Raises:
            DuplicateChildError: A child already has ``spec.id``.
            SupervisorClosedError: The supervisor is closing or closed.
            ValueError: ``spec`` is significant and the supervisor's auto_shutdown is
                ``"never"``.
        """
        check_significance(spec, self._spec.auto_shutdown)
        self._check_open()
        async with self._lock:
            self._check_open()
            if spec.id in self._children:
                raise DuplicateChildError(
                    f"supervisor {self.name!r} already has a child {spec.id!r}; "
                    "delete_child it first or pick another id"
                )
            child = _Child(spec)
            self._children[spec.id] = child
            self._order.append(spec.id)
            try:
                await self._spawn(child)
            except BaseException:
                if child.state == "stopped" and self._children.get(spec.id) is child:
                    self._forget(child)
                raise

    async def terminate_child(self, child_id: str) -> None:
        """Stop a child (graceful, then cancelled after its shutdown); keep its spec.

        The child is not restarted; ``restart_child`` starts it again. A temporary child
        is forgotten. Terminating a child that is not running does nothing.

        Raises:
            UnknownChildError: No child has this id.
            SupervisorClosedError: The supervisor is closing or closed.
            SupervisorUsageError: Called from the child itself (or a task it spawned),
                which would wait for itself; return or raise instead.
        """
        self._check_not_self(child_id, "terminate")
        self._check_open()
        async with self._lock:
            self._check_open()
            child = self._get(child_id)
            if child.state == "running":
                await self._stop_child(child)
            elif child.state == "exited":
                child.state = "stopped"  # its queued exit is now stale
            if child.spec.restart == "temporary":
                self._forget(child)

    async def restart_child(self, child_id: str) -> None:
        """Start a stopped child again (not counted as a restart by the intensity).

        Raises:
            UnknownChildError: No child has this id.
            ChildRunningError: The child is running (or being stopped, or its exit is
                waiting for the supervisor's decision).
            SupervisorClosedError: The supervisor is closing or closed.
        """
        self._check_open()
        async with self._lock:
            self._check_open()
            child = self._get(child_id)
            if child.state != "stopped":
                raise ChildRunningError(
                    f"child {child_id!r} of supervisor {self.name!r} is {child.state}; "
                    "terminate_child it first"
                )
            await self._spawn(child)

    async def delete_child(self, child_id: str) -> None:
        """Forget a stopped child's spec.

        Raises:
            UnknownChildError: No child has this id.
            ChildRunningError: The child is not stopped.
            SupervisorClosedError: The supervisor is closing or closed.
        """
        self._check_open()
        async with self._lock:
            self._check_open()
            child = self._get(child_id)
            if child.state != "stopped":
                raise ChildRunningError(
                    f"child {child_id!r} of supervisor {self.name!r} is {child.state}; "
                    "terminate_child it first"
                )
            self._forget(child)

    # -- internals: lifecycle --

    async def _start_initial(self) -> None:
        async with self._lock:
            for spec in self._spec.children:
                child = _Child(spec)
                self._children[spec.id] = child
                self._order.append(spec.id)
                await self._spawn(child)
            if self._state == "starting":
                self._state = "running"

    async def _close(self) -> None:
        """The block ended: stop every child in reverse order, then the manager."""
        async with self._lock:
            if self._state in ("starting", "running"):
                await self._shutdown_all("exited")
            self._manager_scope.cancel()

    async def _shutdown_all(self, reason: StopReason) -> None:
        # Caller holds the lock. Reverse start order, one child at a time, each with its
        # own shutdown; what is queued for the manager becomes stale.
        self._state = "closing"
        self._stop_reason = reason
        for child_id in reversed(list(self._order)):
            child = self._children[child_id]
            if child.state == "running":
                await self._stop_child(child)
            elif child.state == "exited":
                child.state = "stopped"
        self._pending.clear()
        self._state = "closed"

    async def _give_up(self, reason: StopReason) -> None:
        # Caller (the manager) holds the lock. Children first, then the block: the owner
        # sees the supervisor end only once nothing it started is left.
        await self._shutdown_all(reason)
        self._tg.cancel_scope.cancel()

    # -- internals: one child --

    async def _spawn(self, child: _Child) -> None:
        # Caller holds the lock. Start a new run and wait (shielded: it is one scheduling
        # round, the run's code up to its first checkpoint) until it has begun, so that
        # children begin in start order and the operation is atomic under cancellation.
        # anyio runs a spawned task's first step even in a cancelled scope, so `begun`
        # is always set. A child that signals readiness is then waited for, unshielded.
        child.incarnation += 1
        child.ctx = ChildContext(
            _PRIVATE, supervisor=self.name, id=child.spec.id, incarnation=child.incarnation
        )
        child.scope = anyio.CancelScope()
        child.done = anyio.Event()
        child.state = "running"
        begun = anyio.Event()
        self._tg.start_soon(
            self._run_child, child, child.ctx, child.scope, child.done, begun, name=child.spec.id
        )
        with anyio.CancelScope(shield=True):
            await begun.wait()
        if child.spec.signals_ready:
            try:
                await child.ctx._ready.wait()  # also set when the run ends
            except BaseException:
                # Cancelled before the child was ready: as far as the caller knows it
                # never started, so it must not keep running.
                if child.state == "running":
                    child.state = "stopping"
                    child.scope.cancel()
                    with anyio.CancelScope(shield=True):
                        await child.done.wait()
                    child.state = "stopped"
                raise

    async def _run_child(
        self,
        child: _Child,
        ctx: ChildContext,
        scope: anyio.CancelScope,
        done: anyio.Event,
        begun: anyio.Event,
    ) -> None:
        _LINEAGE.set((*self._lineage, (self, child.spec.id)))
        kind: ExitKind
        error: Exception | None = None
        try:
            with scope:
                begun.set()
                await child.spec.start(ctx)
        except Exception as exc:
            # A crash, also when it happened while being stopped (the stopper decides
            # what to do with the run; the report says what happened).
            kind, error = "crashed", exc
        except BaseException:
            # Not ours: the owner's cancellation, KeyboardInterrupt... Report the run as
            # killed (its calls must go back to the scheduler) and let it propagate.
            self._run_ended(child, ctx, done, "killed", None, spontaneous=False)
            raise
        else:
            if scope.cancelled_caught:
                kind = "killed"
            elif ctx.stop_requested:
                kind = "shutdown"
            else:
                kind = "normal"
        self._run_ended(child, ctx, done, kind, error, spontaneous=True)

    def _run_ended(
        self,
        child: _Child,
        ctx: ChildContext,
        done: anyio.Event,
        kind: ExitKind,
        error: Exception | None,
        *,
        spontaneous: bool,
    ) -> None:
        # Synchronous: the state change, the queueing and the report happen together,
        # before any restart of this child can run.
        exit = ChildExit(
            supervisor=self.name,
            id=ctx.id,
            kind=kind,
            exception=error,
            incarnation=ctx.incarnation,
            at=anyio.current_time(),
        )
        done.set()
        ctx._ready.set()  # a run that ended is as started as it will ever be
        if kind == "crashed":
            logs.event(
                logging.WARNING,
                "child.crashed",
                supervisor=self.name,
                child=ctx.id,
                incarnation=ctx.incarnation,
                error=f"{type(error).__name__}: {error}",
            )
        elif kind == "killed":
            # Cancelled: past its shutdown timeout, brutal_kill, or the supervisor's
            # owner cancelled (every engine close does that): not worth a warning.
            logs.event(
                logging.DEBUG,
                "child.killed",
                supervisor=self.name,
                child=ctx.id,
                incarnation=ctx.incarnation,
            )
        if child.ctx is ctx and child.state == "running":
            child.last_exit = exit
            if spontaneous:
                child.state = "exited"
                self._pending.append((child, ctx.incarnation))
                self._wakeup.set()
            else:
                child.state = "stopped"
        if self._on_child_exit is not None:
            self._on_child_exit(exit)

    async def _stop_child(self, child: _Child) -> None:
        # Caller holds the lock; child.state == "running". Ask, wait up to the shutdown,
        # cancel. Invariant: when this returns or raises, the run's task has ended.
        assert child.ctx is not None and child.scope is not None and child.done is not None
        ctx, scope, done = child.ctx, child.scope, child.done
        child.state = "stopping"
        shutdown = child.spec.shutdown
        now = anyio.current_time()
        try:
            if shutdown == "brutal_kill":
                ctx._request_stop(now)
            elif shutdown == "infinity":
                ctx._request_stop(math.inf)
                await done.wait()
            else:
                ctx._request_stop(now + shutdown)
                with anyio.move_on_after(shutdown):
                    await done.wait()
        finally:
            # Also on our own cancellation: the child is cancelled now rather than
            # after its timeout, and we wait (shielded, it is being cancelled) until
            # its task is gone, so that nothing outlives its supervisor's decision.
            scope.cancel()
            with anyio.CancelScope(shield=True):
                await done.wait()
            child.state = "stopped"

    # -- internals: the manager --

    async def _manage(self) -> None:
        with self._manager_scope:
            while True:
                if not self._pending:
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                    continue
                async with self._lock:
                    while self._pending and self._state == "running":
                        child, incarnation = self._pending.popleft()
                        await self._decide(child, incarnation)
                    if self._state in ("closing", "closed"):
                        return  # nothing is decided any more; the closer owns the rest

    async def _decide(self, child: _Child, incarnation: int) -> None:
        # Caller holds the lock. One queued exit: restart it (and its strategy's
        # siblings), let it go, give up, or shut down (significant children).
        if (
            self._children.get(child.spec.id) is not child
            or child.state != "exited"
            or child.incarnation != incarnation
        ):
            return  # stale: the child was stopped, restarted or deleted since
        exit = child.last_exit
        assert exit is not None
        if not should_restart(child.spec.restart, exit.kind):
            child.state = "stopped"
            if child.spec.restart == "temporary":
                self._forget(child)
            if self._auto_shutdown_due(child):
                await self._give_up("auto_shutdown")
            return
        if not self._intensity.record_restart(exit.at):
            self._escalation = SupervisorEscalation(
                self.name, exit, intensity=self._spec.intensity, period=self._spec.period
            )
            logs.event(
                logging.ERROR,
                "supervisor.escalated",
                supervisor=self.name,
                child=exit.id,
                intensity=self._spec.intensity,
                period=self._spec.period,
                error=str(self._escalation),
            )
            await self._give_up("escalated")
            return
        affected = affected_children(self._spec.strategy, self._order, child.spec.id)
        again: set[str] = {child.spec.id}
        for sibling_id in reversed(affected):
            sibling = self._children[sibling_id]
            if sibling is child:
                continue
            if sibling.state == "running":
                await self._stop_child(sibling)
            elif sibling.state == "exited":
                # Ended on its own before we got to it (its queued exit goes stale). A
                # crash is folded into this restart, as OTP does; a clean end keeps its
                # own decision.
                assert sibling.last_exit is not None
                if not should_restart(sibling.spec.restart, sibling.last_exit.kind):
                    continue
                sibling.state = "stopped"
            else:
                continue  # stopped before: a terminated child stays stopped
            if sibling.spec.restart == "temporary":
                self._forget(sibling)  # never restarted, even for a sibling's sake
            else:
                again.add(sibling_id)
        for child_id in affected:
            if child_id in again:
                restarted = self._children[child_id]
                restarted.restarts += 1
                logs.event(
                    logging.WARNING,
                    "child.restarted",
                    supervisor=self.name,
                    child=child_id,
                    cause=exit.id,
                    strategy=self._spec.strategy,
                    restarts=restarted.restarts,
                )
                await self._spawn(restarted)

    def _auto_shutdown_due(self, ended: _Child) -> bool:
        mode = self._spec.auto_shutdown
        if mode == "never" or not ended.spec.significant:
            return False
        if mode == "any_significant":
            return True
        return not any(
            c.spec.significant and c.state in ("running", "stopping")
            for c in self._children.values()
        )

    # -- internals: helpers --

    def _get(self, child_id: str) -> _Child:
        try:
            return self._children[child_id]
        except KeyError:
            raise UnknownChildError(
                f"supervisor {self.name!r} has no child {child_id!r} (children: {self._order!r})"
            ) from None

    def _forget(self, child: _Child) -> None:
        del self._children[child.spec.id]
        self._order.remove(child.spec.id)

    def _check_open(self) -> None:
        if self._state not in ("starting", "running"):
            raise SupervisorClosedError(
                f"supervisor {self.name!r} is {self._state}"
                + (f" ({self._stop_reason})" if self._stop_reason else "")
            )

    def _check_not_self(self, child_id: str, verb: str) -> None:
        if (self, child_id) in _LINEAGE.get():
            raise SupervisorUsageError(
                f"child {child_id!r} cannot {verb} itself through supervisor {self.name!r} "
                "(it would wait for its own end); return or raise instead"
            )

    def _info(self, child: _Child) -> ChildInfo:
        return ChildInfo(
            id=child.spec.id,
            state=child.state,
            restart=child.spec.restart,
            shutdown=child.spec.shutdown,
            significant=child.spec.significant,
            restarts=child.restarts,
            incarnation=child.incarnation,
        )

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self._state} children={len(self._children)}>"


@asynccontextmanager
async def open_supervisor(
    spec: SupervisorSpec,
    *,
    on_child_exit: Callable[[ChildExit], None] | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a supervisor for the duration of the block.

    The children start in order (each runs up to its first checkpoint before the next
    one starts), then the block runs. Leaving the block (normally or by an exception)
    stops every child in reverse start order, each asked first and cancelled after its
    shutdown; then the block's exception, if any, propagates unchanged.

    If the supervisor gives up (restart intensity exceeded), it stops every child, cancels
    the block and raises :class:`SupervisorEscalation`. If significant children shut it
    down (``auto_shutdown``), it stops every child and cancels the block, which then ends
    without error (like ``move_on_after``; ``statistics().stop_reason`` tells).

    A child crashing while the initial children start is handled like any crash (restart
    and intensity), not as a failure to open.

    Args:
        spec: The strategy, the intensity and the initial children.
        on_child_exit: Called synchronously with every ended run, spontaneous or not,
            before any restart of that child: the hook for an owner to take back the
            run's unfinished work. It must not block and should not raise (an exception
            from it is a bug and takes the supervisor down with it).

    Raises:
        SupervisorEscalation: Restart intensity was exceeded (``__cause__``: the crash).
        ExceptionGroup: The block failed while the supervisor escalated (both inside).
    """
    body_error: Exception | None = None
    sup: Supervisor | None = None
    try:
        async with anyio.create_task_group() as tg:
            sup = Supervisor(_PRIVATE, spec=spec, on_child_exit=on_child_exit, task_group=tg)
            tg.start_soon(sup._manage, name=f"supervisor {spec.name} manager")
            await sup._start_initial()
            try:
                yield sup
            except Exception as exc:
                # Re-raised after the task group, so that it is not wrapped in a group.
                body_error = exc
            await sup._close()
    except BaseException:
        if sup is not None and sup._stop_reason is None:
            sup._stop_reason = "cancelled"
        raise
    finally:
        if sup is not None:
            sup._state = "closed"
    assert sup is not None  # the task group ran its body
    escalation = sup._escalation
    if escalation is not None:
        if body_error is not None:
            raise ExceptionGroup(
                f"supervisor {spec.name!r} escalated while its block failed",
                [escalation, body_error],
            )
        raise escalation from escalation.exit.exception
    if body_error is not None:
        raise body_error


def supervisor_child(
    spec: SupervisorSpec,
    *,
    id: str | None = None,
    restart: Restart = "permanent",
    shutdown: Shutdown = "infinity",
    significant: bool = False,
    on_child_exit: Callable[[ChildExit], None] | None = None,
) -> ChildSpec:
    """The child spec of a whole supervisor: how supervision trees are built.

    The child opens a supervisor on ``spec``, signals ready once that supervisor's
    initial children have started (so the parent starts its next child after the whole
    subtree), and runs until its parent asks it to stop; then it stops its own children
    in reverse order. Its escalation is a crash of this child in the parent; its
    ``auto_shutdown`` is a normal exit (so a transient, significant child carries it up).

    Args:
        spec: The nested supervisor.
        id: The child's id in the parent (default: ``spec.name``).
        restart: Its restart type in the parent.
        shutdown: ``"infinity"`` (the default, as OTP advises for supervisors: the
            subtree's children have their own timeouts) or seconds after which the whole
            subtree is cancelled (structured: nothing in it outlives the cancellation).
        significant: For the parent's ``auto_shutdown``.
        on_child_exit: The nested supervisor's exit hook.

    Raises:
        ValueError: As :class:`ChildSpec` does, for the fields given.
    """

    async def run_supervisor(ctx: ChildContext) -> None:
        async with open_supervisor(spec, on_child_exit=on_child_exit):
            ctx.ready()
            await ctx.wait_stop_requested()

    return ChildSpec(
        id=spec.name if id is None else id,
        start=run_supervisor,
        restart=restart,
        shutdown=shutdown,
        significant=significant,
        signals_ready=True,
    )
