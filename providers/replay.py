"""Decode a recorded raw stream (the exact bytes a provider sent) into events.

The engine behind ``swarm replay``: useful to check what a decoder makes of a
captured stream, and to turn recordings into fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from .assemble import ResponseAssembler
from .errors import ProviderError
from .events import Response, StreamEvent
from .families import get_family

__all__ = ["ReplayResult", "replay", "replay_lines"]

# Read recordings in small pieces so a replay exercises the incremental path the
# way a network does (events split across reads), not one whole-buffer parse.
READ_SIZE = 4096


class ReplayResult(msgspec.Struct, kw_only=True):
    events: list[StreamEvent]
    response: Response | None
    error: str | None = None


def replay(family: str, chunks: Iterable[bytes]) -> Iterator[StreamEvent | ReplayResult]:
    """Decode ``chunks`` with ``family``; yield each event, then a ReplayResult.

    Decoding errors do not raise: the result's ``error`` says what went wrong, so
    a damaged recording still shows every event decoded before the damage.

    Raises:
        ValueError: ``family`` is not a known family.
    """
    decoder = get_family(family).stream_decoder()
    assembler = ResponseAssembler()
    events: list[StreamEvent] = []
    error: str | None = None
    try:
        for chunk in chunks:
            for event in decoder.feed(chunk):
                assembler.feed(event)
                events.append(event)
                yield event
        for event in decoder.end():
            assembler.feed(event)
            events.append(event)
            yield event
    except ProviderError as exc:
        error = f"{type(exc).__name__}: {exc}"
    response: Response | None = None
    if error is None:
        if assembler.error is not None:
            error = f"{assembler.error.kind}: {assembler.error.message}"
        else:
            try:
                response = assembler.result()
            except ProviderError as exc:
                error = f"{type(exc).__name__}: {exc}"
    yield ReplayResult(events=events, response=response, error=error)


_encoder = msgspec.json.Encoder()


def replay_lines(family: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Like :func:`replay`, as JSON lines: one per event, then the response
    (``{"type": "response", ...}``) or ``{"type": "replay_error", "message": ...}``."""
    for item in replay(family, chunks):
        if isinstance(item, ReplayResult):
            if item.response is not None:
                yield _encoder.encode(item.response)
            if item.error is not None:
                yield _encoder.encode({"type": "replay_error", "message": item.error})
        else:
            yield _encoder.encode(item)
