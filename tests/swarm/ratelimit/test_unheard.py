"""UnheardTally against a brute-force model: sums after an id, over any order of
adds, removes and queries, across window moves and rebuilds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.ratelimit.unheard import UnheardTally

# An op: add the next id (with gaps), remove a live or dead id, or query an id.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 40), st.integers(0, 3), st.integers(0, 500)),
        st.tuples(st.just("remove"), st.integers(0, 200), st.just(0), st.just(0)),
        st.tuples(st.just("after"), st.integers(-5, 400), st.just(0), st.just(0)),
    ),
    max_size=300,
)


@settings(max_examples=200)
@given(OPS)
def test_sums_match_a_brute_force_model(ops: list[tuple[str, int, int, int]]) -> None:
    tally = UnheardTally(width=2)
    live: dict[int, tuple[int, int]] = {}
    next_id = 0
    ids: list[int] = []
    for op, a, b, c in ops:
        if op == "add":
            next_id += a  # ids increase, sometimes far apart (a window move)
            tally.add(next_id, b, c)
            live[next_id] = (b, c)
            ids.append(next_id)
        elif op == "remove":
            victim = ids[a % len(ids)] if ids else a
            tally.remove(victim)  # twice, or never added: a no-op
            live.pop(victim, None)
        else:
            query = ids[a % len(ids)] if ids and a >= 0 else a
            expected = tuple(sum(v[k] for pid, v in live.items() if pid > query) for k in range(2))
            assert tally.after(query) == expected
        assert len(tally) == len(live)
        assert tally.total == tuple(sum(v[k] for v in live.values()) for k in range(2))


def test_four_amounts_a_permit() -> None:
    tally = UnheardTally(width=4)
    tally.add(1, 1, 100, 60, 40)
    tally.add(2, 1, 50, 30, 20)
    assert tally.after(0) == (2, 150, 90, 60)
    assert tally.after(1) == (1, 50, 30, 20)
    tally.remove(2)
    assert tally.after(1) == (0, 0, 0, 0) and tally.total == (1, 100, 60, 40)


def test_misuse_is_refused() -> None:
    tally = UnheardTally(width=2)
    tally.add(5, 1, 1)
    with pytest.raises(ValueError, match="ids must increase"):
        tally.add(5, 1, 1)
    with pytest.raises(ValueError, match="holds 2 amounts"):
        tally.add(6, 1)
    with pytest.raises(ValueError, match="width must be >= 1"):
        UnheardTally(width=0)
