"""What a ``swarm`` command raises for its caller to turn into an exit code
(swarm.cli): bad flags, and the one function that maps errors to codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["UsageError", "run_guarded"]


class UsageError(Exception):
    """Flags that do not go together or are out of range (exit 2)."""


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
