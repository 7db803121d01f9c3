"""A sans-IO Server-Sent Events decoder: bytes in, events out.

Follows the WHATWG HTML "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html):

* UTF-8, decoded with replacement of invalid sequences; a single leading BOM is
  dropped; a character split across chunks is reassembled.
* Lines end with CRLF, LF or CR, mixed freely, and a CRLF may be split across
  chunks.
* ``:comment`` lines are ignored (they are how servers send keep-alives).
* ``field: value`` with one leading space of the value stripped; a line without a
  colon is a field with an empty value.
* ``data`` lines accumulate, joined by LF; ``event`` sets the type (default
  ``message``); ``id`` sets the last event id unless it contains NUL; ``retry``
  takes only ASCII digits, bogus values are ignored; unknown fields are ignored.
* A blank line dispatches the event; an event with no data is not dispatched.
* An incomplete event at the end of the stream is discarded.

The only error it raises is :class:`~providers.errors.SSEError`, when a line grows
past ``max_line_bytes`` (a bound so that a hostile or broken server cannot make us
buffer without end).

Hot path: this runs for every token of every stream. Complete lines of a chunk are
decoded from UTF-8 in one call and split once; the common ``data:`` line takes the
first branch.
"""

from __future__ import annotations

import msgspec

from .errors import SSEError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event.

    Attributes:
        event: The event type (``message`` when the stream named none).
        data: The data lines joined with LF.
        id: The last event id in force when the event was dispatched.
        retry: The reconnection time (ms) if this event's block set one.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Incremental SSE decoder. Feed chunks of any size; read dispatched events.

    Invariants:
        * ``_parts`` holds the bytes of the current incomplete line only (in the
          pieces they came in, ``_parts_len`` bytes in all), with line ends
          already normalized, so no piece contains CR or LF.
        * ``_skip_lf`` is true exactly when the last byte seen was a CR that ended
          a line, so that an LF starting the next chunk completes a CRLF instead of
          ending an empty line.
    """

    __slots__ = (
        "_bom_checked",
        "_data",
        "_event",
        "_last_id",
        "_max_line",
        "_parts",
        "_parts_len",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._parts: list[bytes] = []
        self._parts_len = 0
        self._skip_lf = False
        self._bom_checked = False
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None
        self._max_line = max_line_bytes

    @property
    def last_event_id(self) -> str:
        return self._last_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode a chunk and return the events it completed (often none or one).

        Raises:
            SSEError: a line is longer than ``max_line_bytes`` (however the stream
                was split into chunks).
        """
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        parts = self._parts
        if parts:
            if self._bom_checked and b"\n" not in chunk and b"\r" not in chunk:
                # No line end: the pending line goes on. Keep its pieces and join
                # them once it ends (joining on every piece would copy a long line
                # again and again: quadratic in its length).
                if chunk:
                    parts.append(chunk)
                    self._parts_len += len(chunk)
                    if self._parts_len > self._max_line:
                        raise self._too_long()
                return []
            parts.append(chunk)
            buf = b"".join(parts)
            parts.clear()
            self._parts_len = 0
        else:
            buf = chunk  # the common case: no line pending, no copy
        if not self._bom_checked:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._keep(buf)  # could still be the start of a BOM
                return []
            self._bom_checked = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            if buf[-1] == 0x0D:
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buf.rfind(b"\n")
        if end < 0:
            self._keep(buf)
            return []
        rest = buf[end + 1 :]
        if rest:  # inline: this runs for every chunk
            self._keep(rest)
        if end > self._max_line and max(map(len, buf[:end].split(b"\n"))) > self._max_line:
            raise self._too_long()  # a whole line over the limit, in one chunk
        return self._lines(buf[:end].decode("utf-8", "replace").split("\n"))

    def _keep(self, rest: bytes) -> None:
        """``rest`` (no line end in it) starts the next line."""
        if len(rest) > self._max_line:
            raise self._too_long()
        if rest:
            self._parts.append(rest)
            self._parts_len = len(rest)

    def _too_long(self) -> SSEError:
        return SSEError(
            f"SSE line longer than {self._max_line} bytes; the stream is not SSE or "
            "the limit (max_line_bytes) is too small"
        )

    def _lines(self, lines: list[str]) -> list[ServerSentEvent]:
        out: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line.startswith("data:"):
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
            elif not line:
                if data:
                    out.append(
                        ServerSentEvent(
                            self._event or "message",
                            data[0] if len(data) == 1 else "\n".join(data),
                            self._last_id,
                            self._retry,
                        )
                    )
                    data.clear()
                self._event = ""
                self._retry = None
            elif line[0] == ":":
                continue
            else:
                name, colon, value = line.partition(":")
                if colon and value.startswith(" "):
                    value = value[1:]
                if name == "event":
                    self._event = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    if "\x00" not in value:
                        self._last_id = value
                elif name == "retry":
                    if value and value.isascii() and value.isdigit():
                        self._retry = int(value)
        return out

    def end(self) -> list[ServerSentEvent]:
        """The stream ended. Per the spec an incomplete event is discarded, so this
        returns nothing; it resets the decoder's buffers."""
        self._parts.clear()
        self._parts_len = 0
        self._data.clear()
        self._event = ""
        self._retry = None
        self._skip_lf = False
        return []
