"""The running event loop's cheap primitives, looked up once per actor.

Library code goes through anyio, which finds the backend on every call: 0.30 us
for ``anyio.current_time()`` against 0.06 for the loop clock's bound method, and
1.5 us to make an ``anyio.CancelScope`` against 0.24 for trio's own. On the
per-call path of the engine (a dozen clock readings, three scopes a call) these
are looked up once, when an actor starts in the running loop, and used directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import anyio
import trio

from .pipe import current_backend

__all__ = ["cancel_scope_factory", "loop_clock"]


def loop_clock() -> Callable[[], float]:
    """The running loop's clock, the one ``anyio.current_time`` reads, without
    anyio's backend lookup on every call (it is read once per streamed event)."""
    if current_backend() == "asyncio":
        return asyncio.get_running_loop().time
    # trio.current_time() looks the run's clock up on every call; the clock is fixed
    # for a run, so its bound method reads the same time with less work.
    return trio.lowlevel.current_clock().current_time


def cancel_scope_factory() -> Callable[..., anyio.CancelScope]:
    """The running loop's own cancel scope class: on trio, trio's (anyio's wrapper
    costs 1.5 us to make against 0.24, and more to enter and leave; a call makes
    three). Both take ``deadline=`` and ``shield=`` and have the attributes the
    engine uses (``deadline``, ``cancel``, ``cancelled_caught``)."""
    if current_backend() == "asyncio":
        return anyio.CancelScope
    return cast("Callable[..., anyio.CancelScope]", trio.CancelScope)
