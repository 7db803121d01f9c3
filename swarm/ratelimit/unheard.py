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
one Fenwick tree per amount over the (dense, increasing) permit ids of a sliding
window.
"""

from __future__ import annotations

__all__ = ["UnheardTally"]


class UnheardTally:
    """Amounts held by live (unheard) permits, summed over ids after a given one.

    Each permit holds ``width`` amounts (the limiter's: requests, tokens, input
    tokens, output tokens); every sum is a tuple of that width.

    Invariants: every live id is in ``[base, base + size)``; ``_live`` maps each live id
    to what it holds, and tree ``k`` holds exactly the ``k``-th amounts at ``id - base``.
    """

    __slots__ = ("_base", "_live", "_size", "_total", "_trees", "_width")

    def __init__(self, width: int = 2) -> None:
        if width < 1:
            raise ValueError(f"UnheardTally width must be >= 1, got {width}")
        self._width = width
        self._base = 0
        self._size = 64
        self._trees = [[0] * (self._size + 1) for _ in range(width)]
        self._live: dict[int, tuple[int, ...]] = {}
        self._total: tuple[int, ...] = (0,) * width

    def __len__(self) -> int:
        return len(self._live)

    @property
    def total(self) -> tuple[int, ...]:
        """The amounts over every live permit."""
        return self._total

    def add(self, permit_id: int, *amounts: int) -> None:
        """Count a new permit holding ``amounts``. Ids must increase from one call to
        the next."""
        if len(amounts) != self._width:
            raise ValueError(f"a permit holds {self._width} amounts, got {len(amounts)}")
        if self._live and permit_id <= (last := next(reversed(self._live))):
            raise ValueError(f"permit ids must increase: {permit_id} after {last}")
        if not self._live and permit_id >= self._base + self._size:
            self._base = permit_id  # nothing live: the window simply moves
        if permit_id >= self._base + self._size:
            self._rebuild(permit_id)
        self._live[permit_id] = amounts
        self._update(permit_id - self._base, amounts, 1)
        self._total = tuple(t + a for t, a in zip(self._total, amounts, strict=True))

    def remove(self, permit_id: int) -> None:
        """Stop counting a permit (its headers came back, or it was released)."""
        held = self._live.pop(permit_id, None)
        if held is None:
            return
        self._update(permit_id - self._base, held, -1)
        self._total = tuple(t - a for t, a in zip(self._total, held, strict=True))

    def after(self, permit_id: int) -> tuple[int, ...]:
        """The amounts held by live permits with an id greater than ``permit_id``."""
        pos = permit_id - self._base
        if pos < 0:
            return self._total
        if pos >= self._size:
            return (0,) * self._width
        # Prefix sums over positions 0..pos (tree index pos + 1).
        out = []
        for total, tree in zip(self._total, self._trees, strict=True):
            acc = 0
            i = pos + 1
            while i > 0:
                acc += tree[i]
                i -= i & -i
            out.append(total - acc)
        return tuple(out)

    def _update(self, pos: int, amounts: tuple[int, ...], sign: int) -> None:
        size = self._size
        for tree, amount in zip(self._trees, amounts, strict=True):
            if not amount:
                continue
            delta = sign * amount
            i = pos + 1
            while i <= size:
                tree[i] += delta
                i += i & -i

    def _rebuild(self, new_id: int) -> None:
        # The window starts at the oldest live id and is at least twice the span up to
        # ``new_id`` (a power of two), so a rebuild (O(size)) comes after at least as
        # many adds as that span: O(1) amortized. It shrinks again once old ids go.
        base = next(iter(self._live), new_id)
        size = max(64, 1 << (2 * (new_id - base + 1) - 1).bit_length())
        trees = [[0] * (size + 1) for _ in range(self._width)]
        for pid, amounts in self._live.items():
            for tree, amount in zip(trees, amounts, strict=True):
                tree[pid - base + 1] += amount
        for tree in trees:
            for i in range(1, size + 1):  # linear Fenwick build
                j = i + (i & -i)
                if j <= size:
                    tree[j] += tree[i]
        self._base, self._size, self._trees = base, size, trees
