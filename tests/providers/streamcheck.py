"""Feed recorded streams to a family's decoder in different splits.

Every recorded stream must decode to the same events whether it arrives whole,
byte by byte, or cut at arbitrary points; these helpers make that one line in a
test.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from providers.events import StreamEvent
from providers.families import get_family

STREAMS = Path(__file__).parent / "streams"


def recorded(family_dir: str, name: str) -> bytes:
    """The raw bytes of ``tests/providers/streams/<family_dir>/<name>``."""
    return (STREAMS / family_dir / name).read_bytes()


def decode_chunks(family: str, chunks: list[bytes]) -> list[StreamEvent]:
    decoder = get_family(family).stream_decoder()
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.end())
    return events


def decode_whole(family: str, data: bytes) -> list[StreamEvent]:
    return decode_chunks(family, [data])


def decode_bytewise(family: str, data: bytes) -> list[StreamEvent]:
    return decode_chunks(family, [data[i : i + 1] for i in range(len(data))])


def decode_random_splits(family: str, data: bytes, seed: int) -> list[StreamEvent]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 40))))
    bounds = [0, *cuts, len(data)]
    return decode_chunks(family, [data[a:b] for a, b in itertools.pairwise(bounds)])


def decode_every_way(family: str, data: bytes) -> list[StreamEvent]:
    """Decode whole, byte by byte and at random cuts; assert all agree; return the events."""
    whole = decode_whole(family, data)
    assert decode_bytewise(family, data) == whole, "byte-by-byte decoding differs from whole"
    for seed in range(5):
        assert decode_random_splits(family, data, seed) == whole, f"split (seed {seed}) differs"
    return whole
