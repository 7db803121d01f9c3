"""Test children for the supervisor: they log their runs and crash or return on command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio

from swarm.supervisor import ChildContext, ChildExit, ChildSpec


class Boom(Exception):
    """The injected crash."""


class Worker:
    """A child that logs ``start <id>`` / ``stop <id>``, and crashes or returns on command.

    With ``ignore_stop`` it does not watch its stop request, so only cancellation ends it.
    """

    def __init__(self, log: list[str], child_id: str, *, ignore_stop: bool = False) -> None:
        self.log = log
        self.id = child_id
        self.ignore_stop = ignore_stop
        self.runs = 0
        self.contexts: list[ChildContext] = []
        self.ended_at: list[float] = []
        self._command: anyio.Event | None = None
        self._action: Literal["crash", "return"] = "return"
        self._new_run: anyio.Event | None = None

    def spec(self, **kwargs: Any) -> ChildSpec:
        return ChildSpec(id=self.id, start=self, **kwargs)

    async def __call__(self, ctx: ChildContext) -> None:
        self.runs += 1
        self.contexts.append(ctx)
        if self._new_run is not None:
            self._new_run.set()
        self.log.append(f"start {self.id}")
        command = self._command = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:

                async def until(wait: Callable[[], Awaitable[None]]) -> None:
                    await wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(until, command.wait)
                if not self.ignore_stop:
                    tg.start_soon(until, ctx.wait_stop_requested)
            if command.is_set() and self._action == "crash":
                raise Boom(f"{self.id} crashed")
        finally:
            self.log.append(f"stop {self.id}")
            self.ended_at.append(anyio.current_time())

    async def wait_runs(self, runs: int) -> None:
        """Wait until this child has started ``runs`` times."""
        while self.runs < runs:
            self._new_run = anyio.Event()
            await self._new_run.wait()

    def crash(self) -> None:
        assert self._command is not None, f"{self.id} is not running"
        self._action = "crash"
        self._command.set()

    def finish(self) -> None:
        assert self._command is not None, f"{self.id} is not running"
        self._action = "return"
        self._command.set()


def workers(log: list[str], *ids: str, **kwargs: Any) -> dict[str, Worker]:
    return {child_id: Worker(log, child_id, **kwargs) for child_id in ids}


class Exits:
    """An ``on_child_exit`` that keeps every report and logs it beside the starts/stops."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log
        self.exits: list[ChildExit] = []

    def __call__(self, exit: ChildExit) -> None:
        self.exits.append(exit)
        if self.log is not None:
            self.log.append(f"exit {exit.id} {exit.kind}")

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.id, e.kind) for e in self.exits]


class Streams:
    """Counts live streams: tasks that wait forever and count themselves out in finally."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    async def stream(self) -> None:
        self.opened += 1
        try:
            await anyio.sleep_forever()
        finally:
            self.closed += 1
