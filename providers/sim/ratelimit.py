"""Per-API-key rate limits: token buckets, 429 decisions and quota headers.

Each key has a request bucket (``rpm``) and a token bucket (``tpm``), and, for
Anthropic's separate limits, an input-token (``itpm``) and an output-token bucket
(``otpm``), each refilled continuously at limit/60 per second up to the limit (a
full minute's worth). A request costs one request, its estimated tokens (input +
the ``max_tokens`` it asks for, or the profile's output length) of ``tpm``, its
input of ``itpm`` and its ``max_tokens`` of ``otpm``, charged when it is admitted.
``remaining`` is what is left after the charge; ``reset`` is how long until the
bucket is full again; a refused request gets ``retry-after``: how long until it
would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    # "requests", "tokens", "input_tokens" or "output_tokens"
    refused_on: str | None = None
    retry_after: float | None = None
    used: int = 0
    requested: int = 0
    limit: int = 0
    input_tokens: Quota | None = None  # itpm
    output_tokens: Quota | None = None  # otpm


# The buckets of one key, in the order admission checks them, and the name a refusal
# gives each.
_KINDS = ("requests", "tokens", "input_tokens", "output_tokens")


class RateLimiter:
    def __init__(self) -> None:
        # key -> (the limits the buckets were made for, the buckets in _KINDS order)
        self._buckets: dict[str, tuple[tuple[int | None, ...], list[_Bucket | None]]] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def admit(
        self,
        key: str,
        limits: RateLimit,
        cost: int,
        now: float,
        *,
        input_cost: int | None = None,
        output_cost: int | None = None,
    ) -> Decision:
        """Admit one request costing ``cost`` tokens (``input_cost`` and
        ``output_cost`` of it for itpm/otpm; without them all of ``cost`` is input)."""
        wanted = (limits.rpm, limits.tpm, limits.itpm, limits.otpm)
        if not any(wanted):
            return Decision(ok=True, requests=None, tokens=None)
        entry = self._buckets.get(key)
        if entry is None or entry[0] != wanted:
            entry = (wanted, [_Bucket(n, now) if n else None for n in wanted])
            self._buckets[key] = entry
        buckets = entry[1]
        inputs = cost if input_cost is None else input_cost
        outputs = 0 if output_cost is None else output_cost
        amounts = (1, cost, inputs, outputs)
        for bucket in buckets:
            if bucket is not None:
                bucket.refill(now)
        for kind, bucket, amount in zip(_KINDS, buckets, amounts, strict=True):
            if bucket is not None and bucket.level < amount:
                fits = amount <= bucket.capacity
                return _decision(
                    buckets,
                    ok=False,
                    refused_on=kind,
                    retry_after=bucket.wait_for(amount) if fits else 60.0,
                    used=_used(bucket),
                    requested=amount,
                    limit=int(bucket.capacity),
                )
        for bucket, amount in zip(buckets, amounts, strict=True):
            if bucket is not None:
                bucket.level -= amount
        return _decision(buckets, ok=True)

    def settle(
        self,
        key: str,
        limits: RateLimit,
        *,
        now: float,
        input_credit: int = 0,
        output_credit: int = 0,
    ) -> None:
        """Give an admitted request's over-estimate back to the itpm and otpm buckets
        (as Anthropic does; tpm keeps the whole reservation, as OpenAI does). The
        input credit (cache reads) is known when the request is planned; the output
        one when it ends: Anthropic estimates OTPM from max_tokens at the start and
        adjusts it at the end."""
        entry = self._buckets.get(key)
        if entry is None or entry[0] != (limits.rpm, limits.tpm, limits.itpm, limits.otpm):
            return
        for bucket, credit in ((entry[1][2], input_credit), (entry[1][3], output_credit)):
            if bucket is not None and credit > 0:
                bucket.refill(now)
                bucket.level = min(bucket.capacity, bucket.level + credit)


def _decision(buckets: list[_Bucket | None], *, ok: bool, **refusal: Any) -> Decision:
    """A Decision with every bucket's quota as it is now (after the charge, if any)."""
    requests, tokens, inputs, outputs = (_quota(b) for b in buckets)
    return Decision(
        ok=ok,
        requests=requests,
        tokens=tokens,
        input_tokens=inputs,
        output_tokens=outputs,
        **refusal,
    )


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
    """Anthropic's quota headers. With itpm/otpm, ``input-tokens-*`` and
    ``output-tokens-*`` are theirs and ``tokens-*`` the more restrictive now (the
    smaller share left; a tpm counts too). With only a tpm, it is reported under
    all three names."""
    out: list[tuple[str, str]] = []

    def block(prefix: str, q: Quota) -> None:
        nonlocal out
        out += [
            (f"anthropic-ratelimit-{prefix}-limit", str(q.limit)),
            (f"anthropic-ratelimit-{prefix}-remaining", str(q.remaining)),
            (f"anthropic-ratelimit-{prefix}-reset", _instant(now_unix, q.reset)),
        ]

    if d.requests is not None:
        block("requests", d.requests)
    separate = d.input_tokens is not None or d.output_tokens is not None
    if not separate:
        if d.tokens is not None:
            for prefix in ("input-tokens", "output-tokens", "tokens"):
                block(prefix, d.tokens)
        return out
    if d.input_tokens is not None:
        block("input-tokens", d.input_tokens)
    if d.output_tokens is not None:
        block("output-tokens", d.output_tokens)
    present = [q for q in (d.tokens, d.input_tokens, d.output_tokens) if q is not None]
    block("tokens", min(present, key=lambda q: q.remaining / q.limit))
    return out
