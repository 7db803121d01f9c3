"""A flood of calls against a fake provider, in virtual time (a pure Python event loop).

The fake provider enforces hidden per-minute limits with its own token buckets (written
here independently of ``swarm.ratelimit.bucket``, as the simulator's are): a request
costs one request and its input plus ``max_tokens``, charged when it arrives, and is
answered 429 with ``retry-after`` (the time until it would fit) when either bucket is
short. A provider may credit unused ``max_tokens`` back when a call ends. Responses
carry the provider's headers (limit, remaining after the charge, time until full),
unless the provider is configured to hide them.

Clients: ``workers`` callers, each in a loop: ask the limiter, wait as told, send, get
the response headers after the time to first token, release when the stream ends.
Every event happens on a virtual clock; nothing sleeps.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from providers.ratelimits import RateLimitInfo
from swarm.ratelimit import Permit, RateLimitConfig, RateLimiter, TokenCost, Wait


class _ProviderBucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self.t = 0.0

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.t) * self.rate)
        self.t = now

    def until_fits(self, amount: float) -> float:
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)

    def until_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass
class FakeProvider:
    """Hidden limits; 429 when exceeded. ``headers``: "full", "no_limit" or "none"."""

    rpm: int | None
    tpm: int | None
    refunds: bool = False
    headers: str = "full"
    requests_admitted: list[float] = field(default_factory=list)
    tokens_charged: list[tuple[float, float]] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._req = _ProviderBucket(self.rpm) if self.rpm else None
        self._tok = _ProviderBucket(self.tpm) if self.tpm else None

    def admit(self, cost: int, now: float) -> tuple[bool, RateLimitInfo, float | None]:
        for b in (self._req, self._tok):
            if b is not None:
                b.refill(now)
        retry: float | None = None
        if self._req is not None and self._req.level < 1.0:
            retry = self._req.until_fits(1.0)
        elif self._tok is not None and self._tok.level < min(cost, self._tok.capacity):
            retry = self._tok.until_fits(cost)
        ok = retry is None
        if ok:
            if self._req is not None:
                self._req.level -= 1.0
            if self._tok is not None:
                self._tok.level -= cost
            self.requests_admitted.append(now)
            self.tokens_charged.append((now, float(cost)))
        else:
            self.refused_at.append(now)
        return ok, self._info(retry), retry

    def settle(self, charged: int, used: int, now: float) -> None:
        if self.refunds and self._tok is not None and used < charged:
            self._tok.refill(now)
            self._tok.level = min(self._tok.capacity, self._tok.level + (charged - used))
            self.tokens_charged.append((now, float(used - charged)))

    def _info(self, retry: float | None) -> RateLimitInfo:
        if self.headers == "none":
            return RateLimitInfo(retry_after=retry)
        limits = self.headers == "full"
        req, tok = self._req, self._tok
        return RateLimitInfo(
            requests_limit=int(req.capacity) if req and limits else None,
            requests_remaining=max(0, math.floor(req.level)) if req else None,
            requests_reset=req.until_full() if req else None,
            tokens_limit=int(tok.capacity) if tok and limits else None,
            tokens_remaining=max(0, math.floor(tok.level)) if tok else None,
            tokens_reset=tok.until_full() if tok else None,
            retry_after=retry,
        )


@dataclass
class FloodResult:
    duration: float
    sent: int
    rate_limited: int
    requests_in_window: float
    tokens_in_window: float
    window: float
    sent_in_window: int
    rate_limited_in_window: int

    @property
    def rate_limited_fraction(self) -> float:
        """429s over requests sent, the whole run (the initial burst included)."""
        return self.rate_limited / self.sent if self.sent else 0.0

    @property
    def rate_limited_fraction_in_window(self) -> float:
        """429s over requests sent, after the warm-up."""
        return self.rate_limited_in_window / self.sent_in_window if self.sent_in_window else 0.0

    def request_utilization(self, rpm: int) -> float:
        """Requests the provider admitted after the warm-up, over what it allows."""
        return self.requests_in_window / (rpm / 60.0 * self.window)

    def token_utilization(self, tpm: int) -> float:
        """Tokens the provider kept after the warm-up, over what it allows."""
        return self.tokens_in_window / (tpm / 60.0 * self.window)


@dataclass
class Workload:
    """What each call looks like."""

    input_tokens: tuple[int, int] = (200, 2000)
    max_tokens: int = 1000
    output_tokens: tuple[int, int] = (50, 1000)
    estimate_error: float = 0.0  # the client's input estimate is off by up to this fraction
    estimate_bias: float = 1.0  # ... after scaling the true count by this
    ttft: tuple[float, float] = (0.2, 1.0)
    tokens_per_second: float = 100.0
    network: float = 0.02
    # Each request's way to the provider takes up to this much longer, drawn per call:
    # with it the provider admits calls in a different order than they were granted
    # (separate connections, a busy event loop, a proxy), and headers come back in yet
    # another (each call's time to first token differs).
    network_jitter: float = 0.0


def run_flood(
    config: RateLimitConfig,
    provider: FakeProvider,
    *,
    workers: int,
    duration: float,
    warmup: float,
    workload: Workload | None = None,
    seed: int = 1,
    observe: Callable[[float, RateLimiter], None] | None = None,
) -> FloodResult:
    """Flood ``provider`` through a limiter for ``duration`` virtual seconds.

    Throughput is measured over ``[warmup, duration]``, after the buckets' initial
    burst has been spent.
    """
    wl = workload or Workload()
    rng = random.Random(seed)
    limiter = RateLimiter(config, now=0.0)
    queue: list[tuple[float, int, Callable[[float], None]]] = []
    seq = itertools.count()
    concurrency_waiters: list[Callable[[float], None]] = []
    stats = {"sent": 0, "rate_limited": 0}

    def at(t: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(queue, (t, next(seq), fn))

    def wake_one(now: float) -> None:
        if concurrency_waiters:
            at(now, concurrency_waiters.pop(0))

    def attempt(now: float) -> None:
        true_input = rng.randint(*wl.input_tokens)
        noise = 1.0 + rng.uniform(-wl.estimate_error, wl.estimate_error)
        estimate = round(true_input * wl.estimate_bias * noise)
        output = rng.randint(*wl.output_tokens)
        try_call(now, true_input, estimate, output)

    def try_call(now: float, true_input: int, estimate: int, output: int) -> None:
        result = limiter.try_acquire(
            TokenCost(input_tokens=estimate, max_tokens=wl.max_tokens), now
        )
        if isinstance(result, Wait):
            again = lambda t: try_call(t, true_input, estimate, output)  # noqa: E731
            if result.seconds is None:
                concurrency_waiters.append(again)
            else:
                at(now + result.seconds, again)
            return
        way = wl.network + (rng.uniform(0.0, wl.network_jitter) if wl.network_jitter else 0.0)
        at(now + way, lambda t: arrive(t, result, true_input, output))

    def arrive(now: float, permit: Permit, true_input: int, output: int) -> None:
        stats["sent"] += 1
        charged = true_input + wl.max_tokens
        ok, info, retry = provider.admit(charged, now)
        if not ok:
            stats["rate_limited"] += 1

            def refused(t: float) -> None:
                limiter.on_response_headers(info, t, permit=permit)
                limiter.release(permit, t, "rate_limited", retry_after=retry)
                wake_one(t)
                attempt(t)

            at(now + wl.network, refused)
            return
        ttft = rng.uniform(*wl.ttft)
        gen = output / wl.tokens_per_second

        def first_token(t: float) -> None:
            limiter.on_response_headers(info, t, permit=permit)

        def done(t: float) -> None:
            provider.settle(charged, true_input + output, t - wl.network)
            limiter.release(permit, t, "completed", usage_tokens=true_input + output, ttft=ttft)
            wake_one(t)
            attempt(t)

        at(now + wl.network + ttft, first_token)
        at(now + wl.network + ttft + gen, done)

    for _ in range(workers):
        at(0.0, attempt)
    next_observe = 0.0
    while queue:
        t, _, fn = heapq.heappop(queue)
        if t > duration:
            break
        if observe is not None and t >= next_observe:
            observe(t, limiter)
            next_observe += 1.0
        fn(t)

    window = duration - warmup
    reqs = sum(1 for t in provider.requests_admitted if warmup <= t < duration)
    toks = sum(c for t, c in provider.tokens_charged if warmup <= t < duration)
    refused = sum(1 for t in provider.refused_at if warmup <= t < duration)
    return FloodResult(
        duration=duration,
        sent=stats["sent"],
        rate_limited=stats["rate_limited"],
        requests_in_window=reqs,
        tokens_in_window=toks,
        window=window,
        sent_in_window=reqs + refused,
        rate_limited_in_window=refused,
    )
