"""Per-API-key rate limits: token buckets, 429 decisions and quota headers.

Each key has a request bucket (``rpm``) and a token bucket (``tpm``), both
refilled continuously at limit/60 per second up to the limit (a full minute's
worth). A request costs one request and its estimated tokens (input + the
``max_tokens`` it asks for, or the profile's output length), charged when it is
admitted. ``remaining`` is what is left after the charge; ``reset`` is how long
until the bucket is full again; a refused request gets ``retry-after``: how long
until it would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from .config import RateLimit

__all__ = ["Decision", "RateLimiter", "anthropic_headers", "format_duration", "openai_headers"]


class _Bucket:
    __slots__ = ("capacity", "level", "rate", "t")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / 60.0
        self.level = float(capacity)
        self.t = now

    def refill(self, now: float) -> None:
        if now > self.t:
            self.level = min(self.capacity, self.level + (now - self.t) * self.rate)
            self.t = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.level) / self.rate)

    def reset(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(slots=True)
class Quota:
    limit: int
    remaining: int
    reset: float  # seconds until full


@dataclass(slots=True)
class Decision:
    """The outcome of admitting one request."""

    ok: bool
    requests: Quota | None
    tokens: Quota | None
    refused_on: str | None = None  # "requests" or "tokens"
    retry_after: float | None = None
    used: int = 0
    requested: int = 0
    limit: int = 0


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[_Bucket | None, _Bucket | None, int | None, int | None]] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def admit(self, key: str, limits: RateLimit, cost: int, now: float) -> Decision:
        if limits.rpm is None and limits.tpm is None:
            return Decision(ok=True, requests=None, tokens=None)
        entry = self._buckets.get(key)
        if entry is None or entry[2] != limits.rpm or entry[3] != limits.tpm:
            entry = (
                _Bucket(limits.rpm, now) if limits.rpm else None,
                _Bucket(limits.tpm, now) if limits.tpm else None,
                limits.rpm,
                limits.tpm,
            )
            self._buckets[key] = entry
        req, tok, _, _ = entry
        if req is not None:
            req.refill(now)
        if tok is not None:
            tok.refill(now)
        if req is not None and req.level < 1.0:
            return Decision(
                ok=False,
                requests=_quota(req),
                tokens=_quota(tok),
                refused_on="requests",
                retry_after=req.wait_for(1.0),
                used=_used(req),
                requested=1,
                limit=int(req.capacity),
            )
        if tok is not None and tok.level < cost:
            wait = tok.wait_for(cost) if cost <= tok.capacity else 60.0
            return Decision(
                ok=False,
                requests=_quota(req),
                tokens=_quota(tok),
                refused_on="tokens",
                retry_after=wait,
                used=_used(tok),
                requested=cost,
                limit=int(tok.capacity),
            )
        if req is not None:
            req.level -= 1.0
        if tok is not None:
            tok.level -= cost
        return Decision(ok=True, requests=_quota(req), tokens=_quota(tok))


def _used(b: _Bucket) -> int:
    """What the 429 message reports as used: rounded up, as the providers count whole
    requests and tokens (at rpm 1, one request sent and a sliver refilled is "Used 1",
    not 0); the epsilon keeps float noise on a full bucket from adding one."""
    return max(0, math.ceil(b.capacity - b.level - 1e-9))


def _quota(b: _Bucket | None) -> Quota | None:
    if b is None:
        return None
    return Quota(limit=int(b.capacity), remaining=max(0, math.floor(b.level)), reset=b.reset())


def format_duration(seconds: float) -> str:
    """A duration as OpenAI writes it: ``20ms``, ``1s``, ``17.28s``, ``6m0s``."""
    if seconds < 1.0:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60.0:
        return f"{round(seconds, 3):g}s"
    minutes = int(seconds // 60)
    return f"{minutes}m{round(seconds - 60 * minutes, 3):g}s"


def _instant(now_unix: float, seconds: float) -> str:
    when = datetime.fromtimestamp(math.ceil(now_unix + seconds), tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_headers(d: Decision, *, ms: bool) -> list[tuple[str, str]]:
    if d.retry_after is None:
        return []
    out = [("retry-after", str(max(1, math.ceil(d.retry_after))))]
    if ms:
        out.append(("retry-after-ms", str(max(1, math.ceil(d.retry_after * 1000)))))
    return out


def openai_headers(d: Decision) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    r, t = d.requests, d.tokens
    if r is not None:
        out.append(("x-ratelimit-limit-requests", str(r.limit)))
    if t is not None:
        out.append(("x-ratelimit-limit-tokens", str(t.limit)))
    if r is not None:
        out.append(("x-ratelimit-remaining-requests", str(r.remaining)))
    if t is not None:
        out.append(("x-ratelimit-remaining-tokens", str(t.remaining)))
    if r is not None:
        out.append(("x-ratelimit-reset-requests", format_duration(r.reset)))
    if t is not None:
        out.append(("x-ratelimit-reset-tokens", format_duration(t.reset)))
    return out


def anthropic_headers(d: Decision, now_unix: float) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    r, t = d.requests, d.tokens
    if r is not None:
        out += [
            ("anthropic-ratelimit-requests-limit", str(r.limit)),
            ("anthropic-ratelimit-requests-remaining", str(r.remaining)),
            ("anthropic-ratelimit-requests-reset", _instant(now_unix, r.reset)),
        ]
    if t is not None:
        for prefix in ("input-tokens", "output-tokens", "tokens"):
            out += [
                (f"anthropic-ratelimit-{prefix}-limit", str(t.limit)),
                (f"anthropic-ratelimit-{prefix}-remaining", str(t.remaining)),
                (f"anthropic-ratelimit-{prefix}-reset", _instant(now_unix, t.reset)),
            ]
    return out
