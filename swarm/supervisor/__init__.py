"""Supervision with Erlang/OTP semantics, on anyio (trio by default, asyncio too).

A supervisor runs children (async callables) in a task group, restarts them by policy
(``one_for_one``, ``one_for_all``, ``rest_for_one``; ``permanent``, ``transient``,
``temporary``), gives up and escalates after too many restarts within a period, and stops
them in reverse start order: asked first, cancelled after their shutdown timeout.

::

    spec = SupervisorSpec(
        strategy="one_for_one", intensity=3, period=5.0,
        children=[ChildSpec(id="scheduler", start=run_scheduler, shutdown=10.0)],
    )
    async with open_supervisor(spec, on_child_exit=requeue_unfinished) as sup:
        ...

``swarm.supervisor.intensity`` holds the sans-IO restart accounting and
``swarm.supervisor.spec`` the specs and the pure restart rules.
"""

from __future__ import annotations

from .intensity import RestartIntensity as RestartIntensity
from .spec import DEFAULT_AUTO_SHUTDOWN as DEFAULT_AUTO_SHUTDOWN
from .spec import DEFAULT_INTENSITY as DEFAULT_INTENSITY
from .spec import DEFAULT_PERIOD as DEFAULT_PERIOD
from .spec import DEFAULT_RESTART as DEFAULT_RESTART
from .spec import DEFAULT_SHUTDOWN as DEFAULT_SHUTDOWN
from .spec import DEFAULT_STRATEGY as DEFAULT_STRATEGY
from .spec import AutoShutdown as AutoShutdown
from .spec import ChildSpec as ChildSpec
from .spec import ChildStart as ChildStart
from .spec import ExitKind as ExitKind
from .spec import Restart as Restart
from .spec import Shutdown as Shutdown
from .spec import Strategy as Strategy
from .spec import SupervisorSpec as SupervisorSpec
from .supervisor import ChildContext as ChildContext
from .supervisor import ChildExit as ChildExit
from .supervisor import ChildInfo as ChildInfo
from .supervisor import ChildRunningError as ChildRunningError
from .supervisor import ChildState as ChildState
from .supervisor import DuplicateChildError as DuplicateChildError
from .supervisor import StopReason as StopReason
from .supervisor import Supervisor as Supervisor
from .supervisor import SupervisorClosedError as SupervisorClosedError
from .supervisor import SupervisorError as SupervisorError
from .supervisor import SupervisorEscalation as SupervisorEscalation
from .supervisor import SupervisorState as SupervisorState
from .supervisor import SupervisorStatistics as SupervisorStatistics
from .supervisor import SupervisorUsageError as SupervisorUsageError
from .supervisor import UnknownChildError as UnknownChildError
from .supervisor import open_supervisor as open_supervisor
from .supervisor import supervisor_child as supervisor_child

__all__ = [
    "DEFAULT_AUTO_SHUTDOWN",
    "DEFAULT_INTENSITY",
    "DEFAULT_PERIOD",
    "DEFAULT_RESTART",
    "DEFAULT_SHUTDOWN",
    "DEFAULT_STRATEGY",
    "AutoShutdown",
    "ChildContext",
    "ChildExit",
    "ChildInfo",
    "ChildRunningError",
    "ChildSpec",
    "ChildStart",
    "ChildState",
    "DuplicateChildError",
    "ExitKind",
    "Restart",
    "RestartIntensity",
    "Shutdown",
    "StopReason",
    "Strategy",
    "Supervisor",
    "SupervisorClosedError",
    "SupervisorError",
    "SupervisorEscalation",
    "SupervisorSpec",
    "SupervisorState",
    "SupervisorStatistics",
    "SupervisorUsageError",
    "UnknownChildError",
    "open_supervisor",
    "supervisor_child",
]
