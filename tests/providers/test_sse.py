"""The SSE decoder against the WHATWG event-stream rules."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SSEError
from providers.sse import ServerSentEvent, SSEDecoder


def decode(data: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(data)
    events += decoder.end()
    return events


def decode_chunks(chunks: list[bytes]) -> list[ServerSentEvent]:
    return decode_state(chunks)[0]


# The events, then the stream's state after them: last event id, reconnection time.
Decoded = tuple[list[ServerSentEvent], str, int | None]


def decode_state(chunks: list[bytes]) -> Decoded:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.end()
    return events, decoder.last_event_id, decoder.reconnection_time


def reference(data: bytes) -> Decoded:
    """A deliberately naive transcription of the WHATWG algorithm, for differential tests.

    Decodes the whole stream first, then walks it character by character.
    """
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[str] = []
    current = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\r":
            lines.append(current)
            current = ""
            if i + 1 < len(text) and text[i + 1] == "\n":
                i += 1
        elif ch == "\n":
            lines.append(current)
            current = ""
        else:
            current += ch
        i += 1
    # The trailing unterminated line (``current``) is never processed.
    events: list[ServerSentEvent] = []
    data_buf = ""
    event_type = ""
    last_id = ""
    retry: int | None = None
    reconnection: int | None = None  # the spec's "reconnection time": set when read
    for line in lines:
        if line == "":
            if data_buf == "":
                event_type = ""
                retry = None
                continue
            if data_buf.endswith("\n"):
                data_buf = data_buf[:-1]
            events.append(ServerSentEvent(event_type or "message", data_buf, last_id, retry))
            data_buf = ""
            event_type = ""
            retry = None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data_buf += value + "\n"
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry":
            if value and all(c in "0123456789" for c in value):
                retry = reconnection = int(value)
    return events, last_id, reconnection


# -- the spec's rules, one by one ---------------------------------------------------


def test_data_lines_join_with_lf_and_default_type_is_message() -> None:
    assert decode(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [
        ServerSentEvent("message", "YHOO\n+2\n10", "", None)
    ]


def test_one_leading_space_is_stripped_and_only_one() -> None:
    assert decode(b"data:test\n\ndata:  test\n\n") == [
        ServerSentEvent(data="test"),
        ServerSentEvent(data=" test"),
    ]


def test_comments_are_ignored() -> None:
    assert decode(b": keep-alive\n:\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_field_without_colon_has_empty_value() -> None:
    # The spec's example: "data\n\ndata\ndata\n\ndata:" gives "" then "\n", and the
    # last, unterminated block is discarded.
    assert decode(b"data\n\ndata\ndata\n\ndata:") == [
        ServerSentEvent(data=""),
        ServerSentEvent(data="\n"),
    ]


def test_block_without_data_is_not_dispatched_and_resets_event_type() -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_event_field_sets_type() -> None:
    assert decode(b"event: content_block_delta\ndata: {}\n\n") == [
        ServerSentEvent("content_block_delta", "{}")
    ]


def test_mixed_line_endings() -> None:
    assert decode(b"data: a\r\ndata: b\rdata: c\n\r\n") == [ServerSentEvent(data="a\nb\nc")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    assert decode_chunks([b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]) == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="b"),
    ]


def test_leading_bom_is_dropped_once() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [ServerSentEvent(data="a")]
    # A second BOM is part of the first line: the field name is "\ufeffdata", unknown.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_bom_split_across_chunks() -> None:
    assert decode_chunks([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [ServerSentEvent(data="a")]


def test_id_is_kept_and_id_with_nul_is_ignored() -> None:
    events = decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\ndata: c\n\nid\ndata: d\n\n")
    assert [(e.id, e.data) for e in events] == [("1", "a"), ("1", "b"), ("1", "c"), ("", "d")]


def test_retry_takes_only_ascii_digits() -> None:
    events = decode(b"retry: 3000\ndata: a\n\nretry: 30s\ndata: b\n\nretry: \xc2\xb2\ndata: c\n\n")
    assert [e.retry for e in events] == [3000, None, None]


def test_a_retry_in_a_block_of_its_own_sets_the_reconnection_time() -> None:
    # How servers send it: no data, so no event, but the time is set when read, and
    # kept by the blocks after it until a valid retry replaces it.
    decoder = SSEDecoder()
    assert decoder.reconnection_time is None
    assert decoder.feed(b"retry: 5000\n\ndata: x\n\n") == [ServerSentEvent(data="x")]
    assert decoder.reconnection_time == 5000
    decoder.feed(b"retry: 5s\n\nretry: \n\n")
    assert decoder.reconnection_time == 5000
    decoder.feed(b"retry: 250\n")  # a complete line of an event not yet dispatched
    assert decoder.reconnection_time == 250


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: a\n\n") == [ServerSentEvent(data="a")]


def test_incomplete_event_at_end_is_discarded() -> None:
    assert decode(b"data: a\n\ndata: b\n") == [ServerSentEvent(data="a")]


def test_utf8_split_across_chunks() -> None:
    payload = "data: héllo → 世界 🎉\n\n".encode()
    chunks = [payload[i : i + 1] for i in range(len(payload))]
    assert decode_chunks(chunks) == [ServerSentEvent(data="héllo → 世界 🎉")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: a\xffb\n\n") == [ServerSentEvent(data="a\ufffdb")]


def test_line_longer_than_limit_raises_sse_error() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    with pytest.raises(SSEError, match="max_line_bytes"):
        decoder.feed(b"data: " + b"x" * 100)


def test_long_line_limit_counts_across_chunks() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    decoder.feed(b"data: " + b"x" * 40)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 40)


def test_events_arrive_as_soon_as_their_blank_line_does() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data="a")]
    assert decoder.last_event_id == ""


# -- properties ----------------------------------------------------------------------

# Streams made of SSE-ish pieces hit the interesting paths far more often than
# uniformly random bytes do.
_pieces = st.sampled_from(
    [
        b"data",
        b"data:",
        b"data: ",
        b"event: x",
        b"event:",
        b"event:y",
        b"data:z",
        b"id: 7",
        b"id: a\x00b",
        b"retry: 10",
        b"retry: x1",
        b": c",
        b":",
        b"\r",
        b"\n",
        b"\r\n",
        b"\n\n",
        b" ",
        b"\xef\xbb\xbf",
        "é世🎉".encode(),
        b"\xff",
        b"payload",
        b'{"k": [1, 2]}',
    ]
)
sse_like = st.lists(_pieces, max_size=40).map(b"".join)
# Streams of data blocks, the shape OpenAI and Gemini send, with the irregular
# lines that make a block leave the decoder's fast path for data-only streams.
_data_pieces = st.sampled_from(
    [
        b"\n\ndata: ",
        b"\n\ndata:",
        b"\n\n\ndata: ",
        b'{"k": 1}',
        b"payload",
        b" ",
        b"\n",
        b"\r\n",
        b"\n\n",
        b"id: 3\n",
        b"event: e\n",
        b"retry: 0\n",
        b": ping\n",
        b"data: ",
    ]
)
data_led = st.lists(_data_pieces, max_size=40).map(lambda pieces: b"data: " + b"".join(pieces))
any_bytes = st.one_of(sse_like, data_led, st.binary(max_size=300))


@st.composite
def split_points(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if len(data) < 2:
        return [data]
    cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=min(20, len(data) - 1))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300)
@given(data=any_bytes)
def test_matches_reference_implementation(data: bytes) -> None:
    assert decode_state([data]) == reference(data)


@settings(max_examples=300)
@given(data=any_bytes)
def test_byte_by_byte_equals_whole(data: bytes) -> None:
    assert decode_state([data[i : i + 1] for i in range(len(data))]) == decode_state([data])


@settings(max_examples=300)
@given(st.data())
def test_random_splits_equal_whole(data: st.DataObject) -> None:
    payload = data.draw(any_bytes)
    chunks = data.draw(split_points(payload))
    assert decode_state(chunks) == decode_state([payload])


def plain(events: list[ServerSentEvent]) -> list[str | ServerSentEvent]:
    return [event.data if event.event == "message" else event for event in events]


@settings(max_examples=300)
@given(st.data())
def test_feed_data_gives_the_events_of_feed_with_messages_as_their_data(
    data: st.DataObject,
) -> None:
    payload = data.draw(any_bytes)
    chunks = data.draw(split_points(payload))
    decoder, whole = SSEDecoder(), SSEDecoder()
    got: list[str | ServerSentEvent] = []
    for chunk in chunks:
        got += decoder.feed_data(chunk)
    assert got == plain(whole.feed(payload))
    assert decoder.last_event_id == whole.last_event_id


def test_feed_data_keeps_the_id_for_the_events_that_follow() -> None:
    decoder = SSEDecoder()
    got = decoder.feed_data(b"data: a\n\nid: 5\ndata: b\n\ndata: c\n\nevent: e\ndata: d\n\n")
    assert got == ["a", "b", "c", ServerSentEvent("e", "d", "5")]
    assert decoder.last_event_id == "5"


@pytest.mark.parametrize("pending", [b"event: x\n", b"retry: 0\n", b"id: 9\n", b"data: a\n"])
def test_a_field_from_the_last_chunk_belongs_to_the_first_event_of_the_next(
    pending: bytes,
) -> None:
    # A chunk of data blocks after a field line that was not yet ended by a blank
    # line: that field is part of the chunk's first event, as if fed whole.
    later = b"data: b\n\ndata: c\n\n"
    split, whole = SSEDecoder(), SSEDecoder()
    assert split.feed(pending) + split.feed(later) == whole.feed(pending + later)
    split, whole = SSEDecoder(), SSEDecoder()
    assert split.feed_data(pending) + split.feed_data(later) == whole.feed_data(pending + later)


@settings(max_examples=200)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_sse_error(data: bytes) -> None:
    decoder = SSEDecoder(max_line_bytes=256)
    try:
        decoder.feed(data)
        decoder.end()
    except SSEError:
        pass


def test_a_whole_long_line_in_one_chunk_raises_too() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    with pytest.raises(SSEError, match="max_line_bytes"):
        decoder.feed(b"data: " + b"x" * 100 + b"\n\n")


def test_a_long_line_in_many_small_pieces_is_decoded_once_it_ends() -> None:
    decoder = SSEDecoder()  # 10,000 pieces of one 100 KB line, joined once at its end
    decoder.feed(b"data: ")
    for _ in range(10_000):
        assert decoder.feed(b"0123456789") == []
    (event,) = decoder.feed(b"\n\n")
    assert event.data == "0123456789" * 10_000


@settings(max_examples=300)
@given(st.data())
def test_whether_a_line_is_too_long_does_not_depend_on_the_split(data: st.DataObject) -> None:
    payload = data.draw(any_bytes)
    chunks = data.draw(split_points(payload))

    def raises(pieces: list[bytes]) -> bool:
        decoder = SSEDecoder(max_line_bytes=12)
        try:
            for piece in pieces:
                decoder.feed(piece)
        except SSEError:
            return True
        return False

    assert raises(chunks) == raises([payload])
