"""Structured logs: what the engine decided, one event per line, on the standard
``logging`` module (logger ``swarm``), so any handler an application already has
receives them; :class:`JSONFormatter` writes them as JSON lines.

Events (the message is the event's name; its fields ride in ``record.swarm``):

- ``call.failed`` (WARNING): call, route, deployment, error type and message,
  attempts; ``call.completed`` (DEBUG): call, deployment, tokens, duration.
- ``attempt.retry`` (INFO): call, deployment, the attempt that failed, the error
  type, the delay before the next.
- ``call.fallback`` (INFO): call, from which deployment, the error type.
- ``breaker.transition`` (WARNING): deployment, from, to, reason.
- ``child.crashed`` (WARNING): supervisor, child (an actor or agent), incarnation,
  the error; ``child.killed`` (DEBUG): a child cancelled (past its shutdown timeout,
  or its supervisor's owner cancelled, as every engine close does);
  ``child.restarted`` (WARNING): supervisor,
  child, the child whose exit caused it (``cause``: a sibling under one_for_all or
  rest_for_one), the strategy, its restarts so far; ``supervisor.escalated``
  (ERROR): supervisor, the child whose exit was one too many, the intensity.
- ``agent.summary_failed`` (WARNING): agent, the error (its memory was trimmed).

No event carries a key, a prompt or an answer: only ids, names, counts, times and
error messages (which the provider layer has already redacted). As a second line of
defence the formatter masks anything shaped like an API key.
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

import msgspec

__all__ = ["LOGGER", "JSONFormatter", "event", "log_to", "mask_keys"]

LOGGER = logging.getLogger("swarm")
# A library's logger stays quiet until the application configures logging (without
# a handler, Python's last-resort handler would print warnings to stderr).
LOGGER.addHandler(logging.NullHandler())

# Shapes of the vendors' keys: OpenAI and most compatible ones (sk-...), Anthropic
# (sk-ant-...), Google (AIza...), Groq (gsk_...), xAI (xai-...), bearer tokens.
_KEY_SHAPES = re.compile(
    r"(?:sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{16,}|"
    r"xai-[A-Za-z0-9]{16,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)


def mask_keys(text: str) -> str:
    """``text`` with anything shaped like an API key replaced by ``***``."""
    return _KEY_SHAPES.sub("***", text)


def event(level: int, name: str, **fields: Any) -> None:
    """Log event ``name`` with ``fields`` (nothing is built unless the level is on)."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, name, extra={"swarm": fields})


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, event, and
    the event's fields; every string masked by :func:`mask_keys`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "swarm", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        text = msgspec.json.encode(out, enc_hook=str).decode()
        return mask_keys(text)


def log_to(path: str, level: int = logging.INFO) -> logging.Handler:
    """Write the ``swarm`` logger's events at ``level`` and above to ``path`` as JSON
    lines (appending); returns the handler (remove it from ``LOGGER`` when done)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JSONFormatter())
    handler.setLevel(level)
    LOGGER.addHandler(handler)
    if LOGGER.level == logging.NOTSET or LOGGER.level > level:
        LOGGER.setLevel(level)
    return handler
