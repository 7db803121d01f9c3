"""What a supervisor runs and how it reacts: child specs, strategy config, and the pure rules.

The vocabulary is Erlang/OTP's (``supervisor`` in STDLIB):

* a child's **restart type** says whether its exit is restarted: ``permanent`` always,
  ``transient`` only after a crash (an exception), ``temporary`` never;
* its **shutdown** says how it is stopped: ask it (its context's stop request), wait up to
  that many seconds, then cancel it; ``"brutal_kill"`` cancels at once, ``"infinity"``
  waits as long as it takes (meant for children that are supervisors themselves);
* the supervisor's **strategy** says which children a restart touches: ``one_for_one`` the
  one that exited, ``one_for_all`` every child, ``rest_for_one`` that child and every
  child started after it;
* **intensity** and **period**: more than ``intensity`` restarts within ``period``
  seconds and the supervisor gives up (it stops every child and escalates);
* **auto_shutdown** with **significant** children: the supervisor stops itself when any
  (or the last) significant child ends without being restarted.

The rules that need no IO live here as pure functions (:func:`should_restart`,
:func:`affected_children`) so that they are tested without an event loop.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias

import msgspec

if TYPE_CHECKING:
    from .supervisor import ChildContext

__all__ = [
    "DEFAULT_AUTO_SHUTDOWN",
    "DEFAULT_INTENSITY",
    "DEFAULT_PERIOD",
    "DEFAULT_RESTART",
    "DEFAULT_SHUTDOWN",
    "DEFAULT_STRATEGY",
    "AutoShutdown",
    "ChildSpec",
    "ChildStart",
    "ExitKind",
    "Restart",
    "Shutdown",
    "Strategy",
    "SupervisorSpec",
    "affected_children",
    "should_restart",
]

Restart: TypeAlias = Literal["permanent", "transient", "temporary"]
Strategy: TypeAlias = Literal["one_for_one", "one_for_all", "rest_for_one"]
AutoShutdown: TypeAlias = Literal["never", "any_significant", "all_significant"]
Shutdown: TypeAlias = float | Literal["brutal_kill", "infinity"]
ChildStart: TypeAlias = Callable[["ChildContext"], Awaitable[None]]

ExitKind: TypeAlias = Literal["normal", "shutdown", "crashed", "killed"]
"""How one run of a child ended.

``normal``: it returned on its own. ``shutdown``: it returned after the supervisor asked it
to stop. ``crashed``: it raised an exception. ``killed``: it was cancelled (its shutdown
timeout passed, ``brutal_kill``, or the supervisor's owner was cancelled).
"""

_RESTARTS: frozenset[str] = frozenset({"permanent", "transient", "temporary"})
_STRATEGIES: frozenset[str] = frozenset({"one_for_one", "one_for_all", "rest_for_one"})
_AUTO_SHUTDOWNS: frozenset[str] = frozenset({"never", "any_significant", "all_significant"})

DEFAULT_RESTART: Restart = "permanent"
"""OTP's default: a child is kept alive unless said otherwise."""
DEFAULT_SHUTDOWN: float = 5.0
"""Seconds a child gets to stop after being asked, before it is cancelled (OTP: 5000 ms)."""
DEFAULT_STRATEGY: Strategy = "one_for_one"
DEFAULT_INTENSITY: int = 1
"""At most this many restarts within :data:`DEFAULT_PERIOD` seconds (OTP's defaults)."""
DEFAULT_PERIOD: float = 5.0
DEFAULT_AUTO_SHUTDOWN: AutoShutdown = "never"


class ChildSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One child of a supervisor: how to run it, whether to restart it, how to stop it.

    Attributes:
        id: Names the child within its supervisor (unique there); used by
            ``terminate_child``, ``restart_child`` and in every report.
        start: ``async def child(ctx: ChildContext) -> None``. Each run gets a fresh
            context; the child should watch ``ctx.wait_stop_requested()`` and return
            when asked (a graceful stop), and is cancelled when its shutdown runs out.
            Returning is a ``normal`` exit, raising an ``Exception`` is a crash.
        restart: ``"permanent"`` (always restarted), ``"transient"`` (restarted only
            after a crash) or ``"temporary"`` (never restarted, and forgotten once it
            has ended).
        shutdown: Seconds (>= 0) between the stop request and cancellation;
            ``"brutal_kill"`` cancels without asking; ``"infinity"`` never cancels
            (use it for a child that is itself a supervisor, whose own children have
            their own timeouts; a worker given ``"infinity"`` must always return).
        significant: With the supervisor's ``auto_shutdown``, this child's end (without
            restart) can shut the supervisor down. Only for transient or temporary
            children, as in OTP.
        signals_ready: The child calls ``ctx.ready()`` once it is initialized, and the
            supervisor waits for that (or for the run to end) before it starts the next
            child or returns from ``start_child``/``restart_child``: OTP's synchronous
            start, so that a child started later can rely on it. Without it, a child
            counts as started once it has run up to its first checkpoint. A child that
            signals readiness but never calls ``ready()`` and never ends holds its
            supervisor at that start (as an OTP ``init`` that never returns).

    Raises:
        ValueError: A field is out of its domain; the message names the field and the fix.
    """

    id: str
    start: ChildStart
    restart: Restart = DEFAULT_RESTART
    shutdown: Shutdown = DEFAULT_SHUTDOWN
    significant: bool = False
    signals_ready: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"ChildSpec.id must be a non-empty str (got {self.id!r})")
        if not callable(self.start):
            raise ValueError(
                f"ChildSpec.start of {self.id!r} must be an async callable taking a "
                f"ChildContext (got {self.start!r})"
            )
        if self.restart not in _RESTARTS:
            raise ValueError(
                f"ChildSpec.restart of {self.id!r} must be 'permanent', 'transient' or "
                f"'temporary' (got {self.restart!r})"
            )
        if isinstance(self.shutdown, str):
            if self.shutdown not in ("brutal_kill", "infinity"):
                raise ValueError(
                    f"ChildSpec.shutdown of {self.id!r} must be seconds >= 0, 'brutal_kill' "
                    f"or 'infinity' (got {self.shutdown!r})"
                )
        elif (
            isinstance(self.shutdown, bool)
            or not isinstance(self.shutdown, int | float)
            or not math.isfinite(self.shutdown)
            or self.shutdown < 0
        ):
            raise ValueError(
                f"ChildSpec.shutdown of {self.id!r} must be finite seconds >= 0, "
                f"'brutal_kill' or 'infinity' (got {self.shutdown!r}); use 'infinity' "
                "for no timeout"
            )
        if not isinstance(self.significant, bool):
            raise ValueError(
                f"ChildSpec.significant of {self.id!r} must be a bool (got {self.significant!r})"
            )
        if not isinstance(self.signals_ready, bool):
            raise ValueError(
                f"ChildSpec.signals_ready of {self.id!r} must be a bool "
                f"(got {self.signals_ready!r})"
            )
        if self.significant and self.restart == "permanent":
            raise ValueError(
                f"ChildSpec {self.id!r}: a significant child must be 'transient' or "
                "'temporary' (a permanent child never ends without restart); change "
                "restart or set significant=False"
            )


class SupervisorSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A supervisor's flags and its initial children (started in this order).

    Attributes:
        name: Names the supervisor in reports and errors.
        strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
        intensity: At most this many restarts (int >= 0) within ``period``...
        period: ...seconds (> 0); one more and the supervisor stops every child and
            raises :class:`~swarm.supervisor.SupervisorEscalation`. A restart that
            touches several children (``one_for_all``) counts once.
        children: The initial children, in start order (any sequence; kept as a tuple).
        auto_shutdown: ``"never"``, ``"any_significant"`` (stop when any significant
            child ends without restart) or ``"all_significant"`` (when the last one
            does). Significant children require something other than ``"never"``.

    Raises:
        ValueError: A field is out of its domain, two children share an id, or a
            significant child is given with ``auto_shutdown="never"``.
    """

    name: str = "supervisor"
    strategy: Strategy = DEFAULT_STRATEGY
    intensity: int = DEFAULT_INTENSITY
    period: float = DEFAULT_PERIOD
    children: Sequence[ChildSpec] = ()
    auto_shutdown: AutoShutdown = DEFAULT_AUTO_SHUTDOWN

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SupervisorSpec.name must be a non-empty str (got {self.name!r})")
        if self.strategy not in _STRATEGIES:
            raise ValueError(
                f"SupervisorSpec.strategy must be 'one_for_one', 'one_for_all' or "
                f"'rest_for_one' (got {self.strategy!r})"
            )
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int):
            raise ValueError(f"SupervisorSpec.intensity must be an int (got {self.intensity!r})")
        if self.intensity < 0:
            raise ValueError(
                f"SupervisorSpec.intensity must be >= 0 (got {self.intensity}); it is how "
                "many restarts are allowed within period (0: none)"
            )
        if (
            isinstance(self.period, bool)
            or not isinstance(self.period, int | float)
            or not math.isfinite(self.period)
            or self.period <= 0
        ):
            raise ValueError(
                f"SupervisorSpec.period must be finite seconds > 0 (got {self.period!r})"
            )
        if self.auto_shutdown not in _AUTO_SHUTDOWNS:
            raise ValueError(
                "SupervisorSpec.auto_shutdown must be 'never', 'any_significant' or "
                f"'all_significant' (got {self.auto_shutdown!r})"
            )
        if not isinstance(self.children, Sequence):
            raise ValueError(
                "SupervisorSpec.children must be a sequence of ChildSpec "
                f"(got {type(self.children).__name__})"
            )
        children = tuple(self.children)
        seen: set[str] = set()
        for child in children:
            if not isinstance(child, ChildSpec):
                raise ValueError(
                    f"SupervisorSpec.children must hold ChildSpec objects (got {child!r})"
                )
            if child.id in seen:
                raise ValueError(
                    f"SupervisorSpec.children: two children share the id {child.id!r}; "
                    "give each child its own id"
                )
            seen.add(child.id)
            check_significance(child, self.auto_shutdown)
        # Frozen: keep an immutable copy so the spec cannot change under the supervisor.
        msgspec.structs.force_setattr(self, "children", children)


def check_significance(child: ChildSpec, auto_shutdown: AutoShutdown) -> None:
    """Refuse a significant child under a supervisor that ignores significance.

    Raises:
        ValueError: ``child.significant`` with ``auto_shutdown == "never"``.
    """
    if child.significant and auto_shutdown == "never":
        raise ValueError(
            f"ChildSpec {child.id!r} is significant but the supervisor's auto_shutdown is "
            "'never'; set auto_shutdown='any_significant' or 'all_significant', or "
            "significant=False"
        )


def should_restart(restart: Restart, kind: ExitKind) -> bool:
    """Whether a child that ended on its own (``kind``) is restarted, by restart type.

    ``permanent``: always. ``transient``: only after a crash (``normal`` and ``shutdown``
    are clean ends). ``temporary``: never.
    """
    if restart == "permanent":
        return True
    if restart == "transient":
        return kind in ("crashed", "killed")
    return False


def affected_children(strategy: Strategy, order: Sequence[str], failed: str) -> tuple[str, ...]:
    """The ids a restart of ``failed`` touches under ``strategy``, in start order.

    They are stopped in the reverse of this order (except ``failed``, which has already
    ended) and started again in this order.

    Raises:
        ValueError: ``failed`` is not in ``order``.
    """
    try:
        index = list(order).index(failed)
    except ValueError:
        raise ValueError(f"child {failed!r} is not among the children {list(order)!r}") from None
    if strategy == "one_for_one":
        return (failed,)
    if strategy == "rest_for_one":
        return tuple(order[index:])
    return tuple(order)
