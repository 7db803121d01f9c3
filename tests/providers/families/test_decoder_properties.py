"""Properties every family's stream decoder keeps, whatever bytes arrive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import StreamDecodeError
from providers.families import FAMILY_NAMES, get_family

from ..streamcheck import STREAMS

FOLDERS = {
    "openai": "openai_chat",
    "openai-responses": "openai_responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
}

# Pieces of real recordings, shuffled and cut, reach deep into each decoder far more
# often than uniform random bytes do.
_pieces: dict[str, list[bytes]] = {
    family: [
        line + b"\n"
        for path in sorted((STREAMS / folder).glob("*.sse"))
        for line in path.read_bytes().split(b"\n")
    ]
    for family, folder in FOLDERS.items()
}


@pytest.mark.parametrize("family", FAMILY_NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_bytes_raise_only_stream_decode_errors(family: str, data: st.DataObject) -> None:
    pieces = data.draw(
        st.lists(st.one_of(st.sampled_from(_pieces[family]), st.binary(max_size=40)), max_size=30)
    )
    decoder = get_family(family).stream_decoder()
    try:
        for piece in pieces:
            decoder.feed(piece)
        decoder.end()
    except StreamDecodeError:
        pass


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_nothing_is_emitted_after_the_terminal_event(family: str) -> None:
    for path in sorted((STREAMS / FOLDERS[family]).glob("*.sse")):
        data = path.read_bytes()
        decoder = get_family(family).stream_decoder()
        events = decoder.feed(data) + decoder.end()
        terminal = [i for i, e in enumerate(events) if type(e).__name__ in ("Finish", "ErrorEvent")]
        assert terminal == [len(events) - 1], f"{path.name}: terminal events at {terminal}"
        assert decoder.done, path.name
