"""The scheduler's sans-IO core: admission, priorities, fairness, deadlines.

Calls wait here until a deployment of their route has room, then leave in this
order:

1. higher ``priority`` first: strict, or with ``aging`` seconds set, a call's
   priority rises one level for each ``aging`` seconds it has waited, so a steady
   stream of high-priority calls cannot starve the rest forever (a call of
   priority ``p`` outranks any call of priority ``q`` queued ``(q - p + 1) *
   aging`` seconds after it). Aging is counted in windows of ``aging`` seconds
   since the call was enqueued (``enqueued_at``): the effective level ``priority
   + (window(now) - window(enqueued_at))`` compares two calls by ``priority -
   window(enqueued_at)`` whatever ``now`` is, so the heap order never changes as
   time passes and calls of one window still share their level fairly;
2. within a priority, weighted fair queuing across tenants (or agents): each
   tenant's calls get virtual finish tags ``F = max(V, F_prev(tenant)) + cost /
   weight``, and the smallest tag goes first, so a tenant that floods the queue
   gets its weighted share and no more, while an idle tenant's next call is not
   penalized for the past (``V``, the virtual clock, is the tag of the last call
   dispatched);
3. then arrival order.

Queues are kept per route, and the IO side says which routes can take a call now
(``ready``), so a saturated deployment never blocks calls bound elsewhere and
choosing costs O(routes), not O(queued calls).

Deadlines: :meth:`expire` removes every call whose deadline has passed (it fails
at once, without touching a provider); :meth:`next_deadline` tells the IO side when
to look again.

Invariant: every call pushed is, at any time, in exactly one of: queued here,
returned by :meth:`pop`, returned by :meth:`expire`, or returned by :meth:`remove`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["QueueFull", "SchedulerCore", "Ticket"]

T = TypeVar("T")


class QueueFull(Exception):
    """The scheduler holds as many calls as it may (``max_queued``)."""


@dataclass(order=True)
class Ticket(Generic[T]):
    """A queued call. Ordered by (-level, virtual finish tag, arrival); the level
    is the priority, less the call's aging window when aging is on."""

    sort_key: tuple[int, float, int]
    call: T = field(compare=False)
    route: Hashable = field(compare=False)
    tenant: str = field(compare=False)
    deadline: float | None = field(compare=False)
    removed: bool = field(default=False, compare=False)


class SchedulerCore(Generic[T]):
    """Holds queued calls and decides which leaves next.

    Args:
        max_queued: How many calls may wait at once (bounded admission).
        weights: Tenant weights for fair queuing (default 1.0 each).
        aging: Seconds of waiting that raise a call's priority by one level, or
            None for strict priorities.
    """

    def __init__(
        self,
        *,
        max_queued: int,
        weights: dict[str, float] | None = None,
        aging: float | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        if aging is not None and not (aging > 0 and math.isfinite(aging)):
            raise ValueError(f"aging must be a positive number of seconds or None, got {aging!r}")
        self._aging = aging
        self._max = max_queued
        self._weights = dict(weights or {})
        for tenant, weight in self._weights.items():
            if weight <= 0:
                raise ValueError(f"tenant {tenant!r}: weight must be positive, got {weight}")
        self._queues: dict[Hashable, list[Ticket[T]]] = {}
        self._deadlines: list[tuple[float, int, Ticket[T]]] = []
        self._finish: dict[str, float] = {}
        self._virtual = 0.0
        self._seq = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def full(self) -> bool:
        return self._size >= self._max

    def push(
        self,
        call: T,
        *,
        route: Hashable,
        priority: int = 0,
        tenant: str = "",
        cost: float = 1.0,
        deadline: float | None = None,
        enqueued_at: float = 0.0,
    ) -> Ticket[T]:
        """Queue a call.

        Args:
            cost: The call's size for fairness (e.g. estimated tokens); a tenant's
                share is measured in cost, not in calls.
            enqueued_at: When the call started waiting (for aging; a requeued call
                passes its first time, so it keeps its age).

        Raises:
            QueueFull: ``max_queued`` calls are already waiting.
        """
        if self._size >= self._max:
            raise QueueFull(f"{self._size} calls are queued, the limit (max_queued) is {self._max}")
        weight = self._weights.get(tenant, 1.0)
        start = max(self._virtual, self._finish.get(tenant, 0.0))
        tag = start + max(cost, 0.0) / weight
        self._finish[tenant] = tag
        seq = next(self._seq)
        level = priority
        if self._aging is not None:
            level -= math.floor(enqueued_at / self._aging)
        ticket = Ticket((-level, tag, seq), call, route, tenant, deadline)
        heapq.heappush(self._queues.setdefault(route, []), ticket)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, seq, ticket))
        self._size += 1
        return ticket

    def _head(self, route: Hashable) -> Ticket[T] | None:
        queue = self._queues.get(route)
        while queue and queue[0].removed:
            heapq.heappop(queue)
        if not queue:
            self._queues.pop(route, None)
            return None
        return queue[0]

    def pop(self, ready: Callable[[Hashable], bool]) -> Ticket[T] | None:
        """Remove and return the next call whose route is ``ready``, or None."""
        best: Ticket[T] | None = None
        for route in list(self._queues):
            head = self._head(route)
            if head is not None and (best is None or head < best) and ready(route):
                best = head
        if best is None:
            return None
        heapq.heappop(self._queues[best.route])
        self._virtual = max(self._virtual, best.sort_key[1])
        self._take(best)  # after: an emptied scheduler resets the virtual clock
        return best

    def remove(self, ticket: Ticket[T]) -> bool:
        """Take a queued call out (its caller went away). False if it had left already."""
        if ticket.removed:
            return False
        self._take(ticket)
        return True

    def _take(self, ticket: Ticket[T]) -> None:
        ticket.removed = True
        self._size -= 1
        if self._size == 0:
            # Nothing waits: forget tenant history so tags do not grow without end.
            self._finish.clear()
            self._virtual = 0.0
            self._deadlines.clear()
            self._queues.clear()

    def expire(self, now: float) -> list[Ticket[T]]:
        """Remove and return every queued call whose deadline is at or before ``now``."""
        out: list[Ticket[T]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, ticket = heapq.heappop(self._deadlines)
            if not ticket.removed:
                self._take(ticket)
                out.append(ticket)
        return out

    def next_deadline(self) -> float | None:
        """The earliest deadline among queued calls, or None."""
        while self._deadlines and self._deadlines[0][2].removed:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def queued_routes(self) -> list[Hashable]:
        """Routes with at least one call waiting."""
        return [route for route in list(self._queues) if self._head(route) is not None]
