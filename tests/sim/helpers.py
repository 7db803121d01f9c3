"""Helpers for the simulator's tests: a simulator in a background thread, and
raw reads of its streams."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from providers.sim import SimConfig, Simulator, open_simulator

__all__ = ["sim_in_thread"]


@contextmanager
def sim_in_thread(config: SimConfig | None = None) -> Iterator[Simulator]:
    """Run a simulator on trio in a daemon thread (for synchronous clients: the
    official SDKs' sync clients, httpx.Client)."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        with trio.CancelScope() as scope:
            box["scope"] = scope
            box["token"] = trio.lowlevel.current_trio_token()
            async with open_simulator(config) as sim:
                box["sim"] = sim
                ready.set()
                await trio.sleep_forever()

    def runner() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test thread
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the simulator did not start")
    if "error" in box:
        raise box["error"]
    try:
        yield box["sim"]
    finally:
        trio.from_thread.run_sync(box["scope"].cancel, trio_token=box["token"])
        thread.join(10)
