"""Pacing: when each event of a stream is due, and one scheduler that sends them.

A streaming response is a :class:`StreamJob`: an iterator of ``(offset, bytes)``
items, ``offset`` in seconds from the request's arrival. The connection's own task
sends whatever is due at once (headers, the preamble, everything when the
model is unpaced), and hands the job to the :class:`Scheduler` while it waits for
the next item.

The scheduler is one task for every stream (a timer wheel, not one sleeping task
per token): it wakes when the earliest job is due, and for each due job gathers
*every* item due by now into one chunked-encoding frame (writes are coalesced
when several tokens are due) and sends it with a non-blocking ``send`` on the raw
socket. Only when the socket's buffer is full (a slow client), the stream ends or
the connection fails does it wake the job's own task, which finishes the write
with awaits. So a paced token costs a heap operation and one ``send`` call, not a
task switch.

Every write the scheduler makes records how late it was against the schedule
(``lag``), which ``/sim/stats`` reports as a histogram.
"""

from __future__ import annotations

import heapq
import math
import random
import socket
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.lowlevel

from .config import ModelProfile

__all__ = ["DISCONNECT", "LagHistogram", "Scheduler", "StreamJob", "Timing"]

DISCONNECT: Final = b"\x00DISCONNECT\x00"
"""An item payload meaning: close the connection here (a fault)."""

_RES = 0.0005  # the timer wheel's slot width, in seconds
_INV_RES = 1.0 / _RES
_TICK = 0.002  # while jobs wait, the scheduler wakes at least this often
_MAX_BATCH = 1 << 16


class Timing:
    """Offsets of a stream's events: index ``-1`` (preamble) at 0, token ``i`` at
    ``ttft + i / tokens_per_second``."""

    __slots__ = ("interval", "ttft")

    def __init__(self, ttft: float, interval: float) -> None:
        self.ttft = ttft
        self.interval = interval

    @classmethod
    def draw(cls, profile: ModelProfile, rng: random.Random) -> Timing:
        ttft = profile.ttft
        if profile.ttft_max is not None and profile.ttft_max > ttft:
            ttft = rng.uniform(ttft, profile.ttft_max)
        tps = profile.tokens_per_second
        return cls(ttft, 1.0 / tps if tps > 0 else 0.0)

    def at(self, index: float) -> float:
        return 0.0 if index < 0 else self.ttft + index * self.interval

    def total(self, n_tokens: int) -> float:
        """When the last of ``n_tokens`` tokens is out."""
        return self.ttft + max(0, n_tokens - 1) * self.interval


class LagHistogram:
    """Lateness of scheduled writes, in 0.1 ms buckets up to 10 s."""

    __slots__ = ("buckets", "count", "max")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.buckets = [0] * 100_001
        self.count = 0
        self.max = 0.0

    def add(self, lag: float) -> None:
        if lag < 0:
            lag = 0.0
        i = int(lag * 10_000)
        self.buckets[i if i < 100_000 else 100_000] += 1
        self.count += 1
        if lag > self.max:
            self.max = lag

    def quantile(self, q: float) -> float:
        if not self.count:
            return 0.0
        target = max(1, math.ceil(q * self.count))
        seen = 0
        for i, c in enumerate(self.buckets):
            seen += c
            if seen >= target:
                return min((i + 1) / 10_000, self.max)
        return self.max

    def summary(self) -> dict[str, float | int]:
        return {
            "writes": self.count,
            "p50_ms": round(self.quantile(0.5) * 1000, 2),
            "p90_ms": round(self.quantile(0.9) * 1000, 2),
            "p99_ms": round(self.quantile(0.99) * 1000, 2),
            "max_ms": round(self.max * 1000, 2),
        }


class StreamJob:
    """One streaming response body being sent on a raw socket.

    Items come from ``items``; their payloads are framed as HTTP/1.1 chunks here
    (several items due together make one chunk). The end of the iterator writes
    the last chunk (``0\\r\\n\\r\\n``); a :data:`DISCONNECT` item ends the job with
    ``disconnect`` set, and the owner closes the connection.
    """

    __slots__ = (
        "_items",
        "_next",
        "cancelled",
        "disconnect",
        "due",
        "error",
        "events",
        "finished",
        "pending",
        "sock",
        "t0",
        "wake",
    )

    def __init__(
        self, sock: socket.socket, items: Iterator[tuple[float, bytes]], t0: float
    ) -> None:
        self.sock = sock
        self._items = items
        self.t0 = t0
        self.pending = b""
        self.finished = False
        self.disconnect = False
        self.error = False
        self.cancelled = False
        self.events = 0
        self.wake: anyio.Event | None = None
        self._next: tuple[float, bytes] | None = None
        self.due = t0
        self._advance()

    def _advance(self) -> None:
        nxt = next(self._items, None)
        self._next = nxt
        if nxt is not None:
            self.due = self.t0 + nxt[0]

    def collect(self, now: float) -> bytes:
        """Every item due by ``now`` as one write (a chunk frame, plus the last
        chunk if the stream ended). Sets ``finished``/``disconnect``."""
        parts: list[bytes] = []
        size = 0
        nxt = self._next
        items = self._items
        t0 = self.t0
        while nxt is not None and t0 + nxt[0] <= now and size < _MAX_BATCH:
            data = nxt[1]
            if data is DISCONNECT:
                self.disconnect = True
                self._next = None
                break
            parts.append(data)
            size += len(data)
            nxt = next(items, None)
        else:
            self._next = nxt
            if nxt is not None:
                self.due = t0 + nxt[0]
        self.events += len(parts)
        if parts:
            body = b"".join(parts)
            out = b"%x\r\n%b\r\n" % (len(body), body)
        else:
            out = b""
        if self._next is None and not self.disconnect:
            self.finished = True
            out += b"0\r\n\r\n"
        return out

    @property
    def done(self) -> bool:
        return self.finished or self.disconnect or self.error


class Scheduler:
    """One task that sends the paced writes of every stream (see the module doc).

    Jobs wait in a timer wheel: slots of ``_RES`` seconds, each a list of the
    jobs due in it, so adding a job is an append; a small heap holds only the
    numbers of the non-empty slots. A slot is served once its end has passed,
    so a write is never early, and late by at most ``_RES`` when the core keeps up.
    """

    def __init__(self, lag: LagHistogram) -> None:
        self._slots: dict[int, list[StreamJob]] = {}
        self._slot_heap: list[int] = []
        self._cursor = 0  # slots before this one have been served
        self._wake: anyio.Event = anyio.Event()
        self._target = -math.inf  # when the scheduler sleeps: the deadline it sleeps to
        self.lag = lag

    def add(self, job: StreamJob) -> None:
        """Send ``job``'s next items when due; ``job.wake`` is set when the job
        needs its owner (it ended, failed, or its socket is full)."""
        slot = int(job.due * _INV_RES)
        if slot < self._cursor:
            slot = self._cursor
        jobs = self._slots.get(slot)
        if jobs is not None:
            jobs.append(job)
            return
        self._slots[slot] = [job]
        heapq.heappush(self._slot_heap, slot)
        if (slot + 1) * _RES < self._target:
            self._target = -math.inf
            self._wake.set()

    async def run(self) -> None:
        """Serve due jobs until cancelled.

        With jobs waiting, the scheduler sleeps to the end of the earliest slot
        but never longer than ``_TICK`` (so a job added meanwhile into an earlier
        slot waits at most that long, without an event per sleep); with none, it
        waits for :meth:`add`.
        """
        slots = self._slots
        slot_heap = self._slot_heap
        current_time = anyio.current_time
        sleep_until = anyio.sleep_until
        heappop = heapq.heappop
        while True:
            if not slot_heap:
                self._wake = anyio.Event()
                self._target = math.inf
                await self._wake.wait()
                self._target = -math.inf
                continue
            now = current_time()
            ready = (slot_heap[0] + 1) * _RES
            if ready > now:
                await sleep_until(min(ready, now + _TICK))
                continue
            last = int(now * _INV_RES) - 1  # the last slot whose end has passed
            self._cursor = last + 1
            while slot_heap and slot_heap[0] <= last:
                for job in slots.pop(heappop(slot_heap)):
                    if not job.cancelled:
                        # The clock per job, not per pass: the writes before this
                        # one took time, and when the core falls behind that is the
                        # lateness the figure must show (~0.1 us against a send's ~5).
                        self._pump(job, current_time())
            await anyio.lowlevel.checkpoint()

    def _pump(self, job: StreamJob, now: float) -> None:
        lateness = now - job.due
        data = job.collect(max(now, job.due))
        if data:
            try:
                sent = job.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                job.error = True
                self._hand_back(job)
                return
            self.lag.add(lateness)
            if sent < len(data):
                job.pending = data[sent:]
                self._hand_back(job)
                return
        if job.done:
            self._hand_back(job)
            return
        self.add(job)

    @staticmethod
    def _hand_back(job: StreamJob) -> None:
        if job.wake is not None:
            job.wake.set()
