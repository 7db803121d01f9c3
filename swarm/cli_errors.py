"""What a ``swarm`` command raises for its caller to turn into an exit code
(swarm.cli): bad flags, the checks that catch them before a run starts, and the
one function that maps errors to codes."""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["UsageError", "check_listenable", "check_ports", "check_writable", "run_guarded"]


class UsageError(Exception):
    """Flags that do not go together or are out of range (exit 2)."""


def check_writable(path: str, flag: str) -> None:
    """Refuse an output file that could not be written, before the run it reports on
    (a run of an hour must not end in a traceback and an unwritten report).

    Raises:
        UsageError: ``path`` is a directory, its directory does not exist, or it
            is not writable; the message names ``flag`` and the fix.
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(
            f"{flag} {path}: the directory {parent} does not exist; create it or write elsewhere"
        )
    writable = os.access(target, os.W_OK) if target.exists() else os.access(parent, os.W_OK)
    if not writable:
        raise UsageError(f"{flag} {path}: permission denied; write it somewhere writable")


def check_ports(page: tuple[str, int], socket_: tuple[str, int]) -> None:
    """A page's port and its WebSocket's, as (flag, value): each 0-65535, and not
    the same fixed port (0, any free one, may be both).

    Raises:
        UsageError: naming the flag and the value.
    """
    for flag, value in (page, socket_):
        if not 0 <= value <= 65535:
            raise UsageError(f"{flag} must be 0-65535, got {value}")
    if page[1] and page[1] == socket_[1]:
        raise UsageError(f"{page[0]} and {socket_[0]} must differ")


def check_listenable(host: str, port: int, flag: str) -> None:
    """Refuse a port that cannot be listened on (in use, or a privileged port),
    before the run starts. Port 0 (any free one) always passes.

    The real listener binds later; a port taken in between still fails there,
    but the common case, a port already in use, is told up front and plainly.

    Raises:
        UsageError: the address cannot be bound; the message names ``flag``.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"{flag}: cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the real listener does, so that a port in TIME_WAIT is not refused.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = (
                "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            )
            raise UsageError(
                f"{flag} {port}: {host}:{port} {why}; choose another port, or 0 for any free one"
            ) from None


def run_guarded(
    prog: str, command: Callable[[], int], codes: Sequence[tuple[type[Exception], int]]
) -> int:
    """Run ``command``; an error of a listed type prints ``prog: message`` on stderr
    and becomes its exit code (first match wins)."""
    try:
        return command()
    except tuple(kind for kind, _ in codes) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return next(code for kind, code in codes if isinstance(exc, kind))
