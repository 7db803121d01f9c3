"""Sessions: a conversation's history kept within a token budget, saved as JSON.

A session holds the system prompt and the messages after it, grouped in turns: a
turn starts at a user message and holds everything until the next one (the
assistant's replies, its tool calls and their results), so trimming never
separates a tool call from its result, which every provider rejects. When the
history is over budget the oldest turns go first, by one of two policies:

* ``"trim"``: dropped;
* ``"summarize"``: replaced by one user message holding a summary, written by an
  async function the caller gives (for instance a model call through the engine).

The last turn is always kept whole, even over budget (a request without the
question is no request). Token counts are estimates (characters / 4, as the rate
limiters reserve), so the budget leaves room for the reply and the tool schemas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from providers.messages import ImagePart, Message, Request

from ..tokens import IMAGE_TOKENS

__all__ = ["Session", "SessionError", "message_tokens"]

Summarizer = Callable[[list[Message]], Awaitable[str]]
SUMMARY_PREFIX = "Summary of the earlier conversation: "


class SessionError(ValueError):
    """A session file or policy is invalid; the message names the problem."""


def message_tokens(message: Message) -> int:
    """The estimated tokens of one message (characters / 4, images at a flat rate)."""
    chars = 4  # role and framing
    images = 0
    if isinstance(message.content, str):
        chars += len(message.content)
    else:
        for part in message.content:
            if isinstance(part, ImagePart):
                images += 1
            else:
                chars += len(part.text)
    for call in message.tool_calls:
        chars += len(call.name) + len(call.arguments)
    return (chars + 3) // 4 + images * IMAGE_TOKENS


class _File(msgspec.Struct, kw_only=True):
    """The JSON form of a session (versioned so old files are read or refused)."""

    version: int
    system: str | None
    budget_tokens: int | None
    policy: Literal["trim", "summarize"]
    messages: list[Message]
    trimmed_turns: int = 0


_FILE_VERSION = 1
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_File)


class Session:
    """A conversation with a token budget.

    Args:
        system: The system prompt (always kept, counted in the budget).
        budget_tokens: Estimated tokens the history may hold (None: no bound).
        policy: ``"trim"`` drops the oldest turns; ``"summarize"`` replaces them
            with a summary (needs ``summarize=`` in :meth:`fit`).
        messages: A history to start from (no system messages: use ``system``).
    """

    def __init__(
        self,
        *,
        system: str | None = None,
        budget_tokens: int | None = None,
        policy: Literal["trim", "summarize"] = "trim",
        messages: Iterable[Message] = (),
    ) -> None:
        if budget_tokens is not None and budget_tokens < 1:
            raise SessionError(f"budget_tokens must be at least 1 or None, got {budget_tokens}")
        if policy not in ("trim", "summarize"):
            raise SessionError(f"unknown policy {policy!r}; choose 'trim' or 'summarize'")
        self.system = system
        self.budget_tokens = budget_tokens
        self.policy: Literal["trim", "summarize"] = policy
        self.messages: list[Message] = []
        self.trimmed_turns = 0  # turns dropped or summarized so far
        self.extend(messages)

    # -- history ----------------------------------------------------------------------

    def add(self, message: Message) -> None:
        if message.role == "system":
            raise SessionError("a session keeps its system prompt in system=, not in messages")
        self.messages.append(message)

    def extend(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.add(message)

    def turns(self) -> list[list[Message]]:
        """The history in turns (a turn starts at each user message)."""
        turns: list[list[Message]] = []
        for message in self.messages:
            if message.role == "user" or not turns:
                turns.append([message])
            else:
                turns[-1].append(message)
        return turns

    def tokens(self) -> int:
        """Estimated tokens of the system prompt and the history."""
        system = message_tokens(Message.system(self.system)) if self.system else 0
        return system + sum(message_tokens(m) for m in self.messages)

    def over_budget(self) -> bool:
        return self.budget_tokens is not None and self.tokens() > self.budget_tokens

    # -- keeping to the budget ----------------------------------------------------------

    def trim(self) -> list[Message]:
        """Drop the oldest turns until the history fits (the last turn stays);
        returns what was dropped."""
        if self.budget_tokens is None:
            return []
        turns = self.turns()
        total = self.tokens()
        cut = 0  # one pass with a running total: linear in the history's length
        while len(turns) - cut > 1 and total > self.budget_tokens:
            total -= sum(message_tokens(m) for m in turns[cut])
            cut += 1
        dropped = [m for turn in turns[:cut] for m in turn]
        if cut:
            self.messages = [m for turn in turns[cut:] for m in turn]
            self.trimmed_turns += cut
        return dropped

    async def fit(self, summarize: Summarizer | None = None) -> None:
        """Bring the history within budget by the session's policy.

        With ``"summarize"``, the oldest turns that must go are handed to
        ``summarize`` and replaced by one user message holding its summary (merged
        with an earlier summary, which is among what it is given).

        Raises:
            SessionError: the policy is ``"summarize"`` and no ``summarize`` given.
        """
        if not self.over_budget():
            return
        if self.policy == "trim":
            self.trim()
            return
        if summarize is None:
            raise SessionError("policy='summarize' needs fit(summarize=an async function)")
        turns = self.turns()
        gone: list[Message] = []
        # Summarize the fewest oldest turns that make the rest fit, with room for the
        # summary itself (estimated as a tenth of what it replaces).
        while len(turns) > 1:
            gone.extend(turns.pop(0))
            rest = [m for turn in turns for m in turn]
            projected = _tokens(self.system, rest) + sum(message_tokens(m) for m in gone) // 10
            if self.budget_tokens is None or projected <= self.budget_tokens:
                break
        if not gone:
            return
        summary = await summarize(gone)
        self.trimmed_turns += sum(1 for m in gone if m.role == "user") or 1
        self.messages = [Message.user(SUMMARY_PREFIX + summary)] + [
            m for turn in turns for m in turn
        ]
        if self.over_budget():  # the summary was longer than hoped: trim the rest
            self.trim()

    def request(self, model: str, **options: Any) -> Request:
        """A request carrying the system prompt and the history (trimmed first under
        the ``trim`` policy; call :meth:`fit` first for ``summarize``)."""
        if self.policy == "trim":
            self.trim()
        messages = ([Message.system(self.system)] if self.system else []) + list(self.messages)
        return Request(model=model, messages=messages, **options)

    # -- JSON -------------------------------------------------------------------------

    def dumps(self) -> bytes:
        return _encoder.encode(
            _File(
                version=_FILE_VERSION,
                system=self.system,
                budget_tokens=self.budget_tokens,
                policy=self.policy,
                messages=self.messages,
                trimmed_turns=self.trimmed_turns,
            )
        )

    @classmethod
    def loads(cls, data: bytes | str) -> Session:
        """Raises: SessionError naming what is wrong with the document."""
        try:
            file = _decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise SessionError(f"not a session document: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise SessionError(f"a session file must be JSON: {exc}") from exc
        if file.version != _FILE_VERSION:
            raise SessionError(
                f"session file version {file.version} is not supported (this swarm reads "
                f"version {_FILE_VERSION})"
            )
        try:
            session = cls(
                system=file.system,
                budget_tokens=file.budget_tokens,
                policy=file.policy,
                messages=file.messages,
            )
        except ValueError as exc:
            raise SessionError(f"invalid session document: {exc}") from exc
        session.trimmed_turns = file.trimmed_turns
        return session

    def save(self, path: str | Path) -> None:
        """Write the session as JSON (to a temporary file first, then renamed)."""
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(self.dumps())
        temporary.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> Session:
        """Raises: SessionError (bad content), OSError (unreadable file)."""
        return cls.loads(Path(path).read_bytes())


def _tokens(system: str | None, messages: list[Message]) -> int:
    head = message_tokens(Message.system(system)) if system else 0
    return head + sum(message_tokens(m) for m in messages)
