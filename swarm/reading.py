"""Who reads a call's response: the provider actor's task, or the caller's (a lend).

By default the provider actor's task runs an attempt from start to end, and it
reads the response too, forwarding each network read's events through the call's
pipe. Then every read costs two task wake-ups: the actor's (the socket is
readable) and the caller's (events arrived). On trio each is a pass of the run
loop with its own ``epoll_wait``; measured at 100 paced streams, the second one
made a streamed token cost 40 us of CPU instead of 27.

So once an attempt's response is open and its caller is waiting for it (parked
in ``CallStream.__anext__``; a caller that will gather results later is not, and
the actor reads for it as before), the actor *lends* it the response: the caller's
``CallStream.__anext__`` reads the network itself (:meth:`Lend.read`) while the
actor's task waits, and the actor takes the attempt back when the stream ends,
fails, or a phase deadline passes. The actor stays the owner: connecting,
retries, restarts, fallbacks, rate limits and breakers, the ledger, cancellation
and the call's deadline are all where they were.

Invariants:

* A lend exists only over a cancellation-safe stream (``EventStream.cancel_safe``):
  the caller's task may be cancelled in the middle of a read (a ``move_on_after``
  around one step of its loop), and reading must be able to go on afterwards.
* Exactly one task reads at a time: the caller while the lend is live, the actor
  before it and after it is revoked. The actor revokes a lend only when the
  caller is not inside :meth:`Lend.read`, or by closing the stream (a read in
  progress then fails, and the lend being revoked, the failure is not reported).
* Phase timeouts still bound the provider: the actor wakes when the attempt's
  phase deadline passes (as the caller's reads left its clock); if the caller
  was inside a read then, the attempt timed out; if it was busy elsewhere, the
  time was the caller's, and the actor takes the reading back, as a slow consumer
  gets (its events buffered, the deadline lifted while the buffer is full).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import anyio

from providers.client import EventStream

from .lifecycle import CallLifecycle
from .pipe import Backend, make_parker
from .resilience.timeouts import CONTENT_EVENTS, PhaseClock

if TYPE_CHECKING:
    from .call import _Call
    from .events import CallEvent

__all__ = ["AttemptReads", "Lend"]

# Content events: they reset the idle gap and count for time to first token. A set
# of exact types: `type(e) in` is one hash lookup per event, where isinstance
# against a tuple tries each class (the event Structs are not subclassed).
_CONTENT_TYPES = frozenset(CONTENT_EVENTS)


class AttemptReads:
    """One attempt's bookkeeping per network read, whichever task reads.

    Attributes:
        committed: A read's events arrived (the attempt's commit point).
        visible: Events of this attempt reached the caller (a retry would be a
            visible restart).
    """

    __slots__ = ("call", "clock", "committed", "life", "now", "visible")

    def __init__(self, call: _Call, clock: PhaseClock, now: Callable[[], float]) -> None:
        self.call = call
        self.life: CallLifecycle = call.life
        self.clock = clock
        self.now = now
        self.committed = False
        self.visible = False

    def take(self, batch: list[object]) -> tuple[float, int]:
        """Record the events of one read, which arrived together: the time and the
        number of content events. Per read, not per event: one clock reading."""
        now = self.now()
        if not self.committed:
            self.life.first_byte(now)
            self.clock.on_first_byte(now)
            self.committed = True
        content = 0
        kinds = _CONTENT_TYPES
        for event in batch:
            if type(event) in kinds:
                content += 1
        if content:
            self.life.content(now, content)
            self.clock.on_content_event(now)
            self.call.streamed += content
        return now, content


class Lend:
    """An attempt's open response, lent to the caller's task to read.

    The caller calls :meth:`read` while :attr:`live`; the actor waits in
    :meth:`wait` until the lend comes back (:attr:`ended` or :attr:`error` set) or
    it revokes it (:meth:`revoke`).

    Attributes:
        reading: The caller's task is inside :meth:`read` now.
        ended: The response was read to its end.
        error: What a read raised (the caller gets it through the actor: a retry,
            a restart or the call's ``Failed``).
    """

    __slots__ = (
        "_events",
        "_parker",
        "_reads",
        "_rearm",
        "_slack",
        "ended",
        "error",
        "reading",
        "revoked",
        "timer",
    )

    def __init__(
        self, events: EventStream, reads: AttemptReads, backend: Backend, slack: float
    ) -> None:
        self._events = events
        self._reads = reads
        self._slack = slack
        # The actor's watchdog scope while it sleeps (its deadline is the phase's).
        self.timer: anyio.CancelScope | None = None
        self._parker = make_parker(backend)
        self.reading = False
        self.ended = False
        self.error: Exception | None = None
        self.revoked = False
        # The phase deadline moves earlier once, at the first content event (from
        # first_token to idle); the read moves the actor's watchdog then (a scope's
        # deadline can be set from another task). Every other move is later, which
        # the actor finds when it wakes.
        self._rearm = True

    @property
    def live(self) -> bool:
        return not (self.revoked or self.ended or self.error is not None)

    async def read(self) -> list[CallEvent] | None:
        """The caller's task: the next read's events, or None once the lend is over
        (ended, failed or revoked: what follows comes through the call's pipe).

        A cancellation while it waits leaves the lend and the stream as they were.
        """
        if not self.live:
            return None
        self.reading = True
        try:
            batch = await self._events.next_batch()
        except Exception as exc:
            self.reading = False
            if not self.revoked:  # revoked: the actor closed the stream under us
                self.error = exc
                self._parker.wake()
            return None
        except BaseException:
            self.reading = False  # cancelled: nothing was consumed, the lend stays
            raise
        self.reading = False
        if batch is None:
            self.ended = True
            self._parker.wake()
            return None
        _, content = self._reads.take(cast("list[object]", batch))
        self._reads.visible = True
        if content and self._rearm:
            self._rearm = False
            timer = self.timer
            due = self._reads.clock.next_deadline()
            if timer is not None and due is not None and due.when + self._slack < timer.deadline:
                timer.deadline = due.when + self._slack
        return cast("list[CallEvent]", batch)

    async def wait(self) -> None:
        """The actor's task: until the lend is over (cancellable: its watchdog)."""
        while self.live:
            await self._parker.park()

    def revoke(self) -> None:
        """The actor takes the reading back (idempotent)."""
        self.revoked = True
        self._parker.wake()
