"""What the permits still waiting for response headers hold, by grant order (sans-IO).

A provider's rate-limit headers are its snapshot when it admitted one call, R. What
this client granted and the provider had not admitted by then is not in the snapshot.
Which calls those are cannot be known; the limiter estimates them as the calls granted
*after* R (``id > R``) whose own headers have not come back by the time R's do. Either
condition alone miscounts when calls overtake each other:

* "granted after R" (a mark taken at grant time) counts a call that overtook R on the
  way in as missing from the snapshot, so it is charged twice; with calls admitted in
  a shuffled order that drove a bucket tens of thousands of tokens into debt.
* "headers not back" counts a call admitted before R whose response is slower (a
  longer time to first token) as missing, so it is charged twice too.

A call is charged twice only when both are wrong at once (granted after R, admitted
before it, answered after it). This module keeps the sums that estimate needs:
``after(id)`` is what the unheard permits granted after ``id`` hold, in O(log n), with
two Fenwick trees over the (dense, increasing) permit ids of a sliding window.
"""

from __future__ import annotations

__all__ = ["UnheardTally"]


class UnheardTally:
    """Requests and tokens of live (unheard) permits, summed over ids after a given one.

    Invariants: every live id is in ``[base, base + size)``; ``_live`` maps each live id
    to what it holds, and the trees hold exactly those amounts at ``id - base``.
    """

    __slots__ = ("_base", "_live", "_requests", "_size", "_tokens", "_total")

    def __init__(self) -> None:
        self._base = 0
        self._size = 64
        self._requests = [0] * (self._size + 1)
        self._tokens = [0] * (self._size + 1)
        self._live: dict[int, tuple[int, int]] = {}
        self._total = (0, 0)

    def __len__(self) -> int:
        return len(self._live)

    @property
    def total(self) -> tuple[int, int]:
        """(requests, tokens) over every live permit."""
        return self._total

    def add(self, permit_id: int, requests: int, tokens: int) -> None:
        """Count a new permit. Ids must increase from one call to the next."""
        if self._live and permit_id <= (last := next(reversed(self._live))):
            raise ValueError(f"permit ids must increase: {permit_id} after {last}")
        if not self._live and permit_id >= self._base + self._size:
            self._base = permit_id  # nothing live: the window simply moves
        if permit_id >= self._base + self._size:
            self._rebuild(permit_id)
        self._live[permit_id] = (requests, tokens)
        self._update(permit_id - self._base, requests, tokens)
        self._total = (self._total[0] + requests, self._total[1] + tokens)

    def remove(self, permit_id: int) -> None:
        """Stop counting a permit (its headers came back, or it was released)."""
        held = self._live.pop(permit_id, None)
        if held is None:
            return
        self._update(permit_id - self._base, -held[0], -held[1])
        self._total = (self._total[0] - held[0], self._total[1] - held[1])

    def after(self, permit_id: int) -> tuple[int, int]:
        """(requests, tokens) held by live permits with an id greater than ``permit_id``."""
        pos = permit_id - self._base
        if pos < 0:
            return self._total
        if pos >= self._size:
            return (0, 0)
        # Prefix sum over positions 0..pos (tree index pos + 1).
        r = t = 0
        i = pos + 1
        requests, tokens = self._requests, self._tokens
        while i > 0:
            r += requests[i]
            t += tokens[i]
            i -= i & -i
        return (self._total[0] - r, self._total[1] - t)

    def _update(self, pos: int, requests: int, tokens: int) -> None:
        i = pos + 1
        size = self._size
        tree_r, tree_t = self._requests, self._tokens
        while i <= size:
            tree_r[i] += requests
            tree_t[i] += tokens
            i += i & -i

    def _rebuild(self, new_id: int) -> None:
        # The window starts at the oldest live id and is at least twice the span up to
        # ``new_id`` (a power of two), so a rebuild (O(size)) comes after at least as
        # many adds as that span: O(1) amortized. It shrinks again once old ids go.
        base = next(iter(self._live), new_id)
        size = max(64, 1 << (2 * (new_id - base + 1) - 1).bit_length())
        tree_r = [0] * (size + 1)
        tree_t = [0] * (size + 1)
        for pid, (r, t) in self._live.items():
            tree_r[pid - base + 1] += r
            tree_t[pid - base + 1] += t
        for i in range(1, size + 1):  # linear Fenwick build
            j = i + (i & -i)
            if j <= size:
                tree_r[j] += tree_r[i]
                tree_t[j] += tree_t[i]
        self._base, self._size = base, size
        self._requests, self._tokens = tree_r, tree_t
