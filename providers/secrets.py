"""A string that never shows itself: API keys live in :class:`Secret`."""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """An API key or token.

    Its ``repr`` and ``str`` are masked, so a key cannot leak through a log line,
    an error message, a traceback's locals or a config dump. Call
    :meth:`reveal` at the single place the key goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret takes a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Picklable (for Ray and subprocess workers) but still never printed.
        return (Secret, (self._value,))
