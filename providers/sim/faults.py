"""Fault injection: which faults hit a request, and how a stream is broken.

A fault hits a request when a draw from ``random.Random((fault.seed, fault
index, request digest, n))`` is below its rate, ``n`` counting the identical
requests seen before. So the same run gets the same faults whatever the
interleaving of unrelated requests, and a retry of a failed request is drawn
afresh (a rate below 1 lets retries through). Outside its ``start``..``end``
window (seconds since the simulator started) a fault is off.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .config import Fault
from .pacing import DISCONNECT

__all__ = ["FaultPlan", "Faults", "break_stream"]


@dataclass(slots=True)
class FaultPlan:
    status: int | None = None
    slow_headers: float = 0.0
    stream: Fault | None = None
    kinds: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str | None:
        if self.status is not None:
            return f"fault:status_{self.status}"
        if self.stream is not None:
            return f"fault:{self.stream.kind}"
        if self.slow_headers:
            return "fault:slow_headers"
        return None


class Faults:
    def __init__(self, faults: list[Fault], started: float) -> None:
        self.faults = list(faults)
        self.started = started
        self._seen: dict[bytes, int] = {}

    def reset(self) -> None:
        self._seen.clear()

    def decide(
        self, *, digest: bytes, family: str, model: str, key: str, stream: bool, now: float
    ) -> FaultPlan:
        plan = FaultPlan()
        if not self.faults:
            return plan
        n = self._seen.get(digest, 0)
        if len(self._seen) > 1_000_000:
            self._seen.clear()
        self._seen[digest] = n + 1
        elapsed = now - self.started
        for i, f in enumerate(self.faults):
            if f.start is not None and elapsed < f.start:
                continue
            if f.end is not None and elapsed >= f.end:
                continue
            if (f.models and model not in f.models) or (f.families and family not in f.families):
                continue
            if (f.keys and key not in f.keys) or (
                f.streaming is not None and f.streaming != stream
            ):
                continue
            if f.rate < 1.0:
                draw = random.Random(f"{f.seed}:{i}:{digest.hex()}:{n}").random()
                if draw >= f.rate:
                    continue
            if f.kind == "status":
                if plan.status is None:
                    plan.status = f.status
            elif f.kind == "slow_headers":
                plan.slow_headers += f.duration
            elif plan.stream is None:
                plan.stream = f
            plan.kinds.append(f.kind)
        return plan


def break_stream(
    items: Iterator[tuple[float, bytes]],
    fault: Fault,
    malformed: bytes,
    error: Callable[[int], bytes],
) -> Iterator[tuple[float, bytes]]:
    """``items`` with ``fault`` applied at event number ``fault.after`` (or at the
    last event when the stream is shorter). ``error(k)`` is the error event sent
    after ``k`` events (its sequence number, where the family numbers events)."""
    k = 0
    shift = 0.0
    cur = next(items, None)
    while cur is not None:
        nxt = next(items, None)
        off, data = cur
        if k == fault.after or (nxt is None and k < fault.after):
            kind = fault.kind
            if kind == "disconnect":
                yield off + shift, DISCONNECT
                return
            if kind == "stall":
                shift += fault.duration
                if fault.then == "drop":
                    yield off + shift, DISCONNECT
                    return
            elif kind == "malformed":
                yield off + shift, malformed
                yield off + shift, DISCONNECT
                return
            elif kind == "error_event":
                yield off + shift, error(k)
                return
        yield off + shift, data
        k += 1
        cur = nxt
