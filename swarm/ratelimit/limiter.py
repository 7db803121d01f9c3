"""The rate limiter of one (provider, key, model): RPM, TPM, concurrency, adaptation (sans-IO).

A rate-limit actor owns one :class:`RateLimiter` and feeds it events with the time
they happened::

    try_acquire(cost, now) ──► Permit ──► (the call runs) ──► release(permit, now, outcome, ...)
                          └──► Wait(seconds, reason)              ▲
    on_response_headers(info, now, permit=...)  every response ───┘  (corrects the buckets)
    on_rate_limited(retry_after, now)           a 429 seen outside a permit's release

Admission is all-or-nothing: a permit holds one request of the RPM bucket, the request's
input estimate plus its ``max_tokens`` of the TPM bucket, and (when configured) a
concurrency slot; a Wait takes nothing. The reason of a Wait names the limit that binds
longest (``rpm``, ``tpm``, ``itpm``, ``otpm``), ``concurrency`` (seconds None: until a
permit is released), or ``paused`` (a 429's ``retry-after`` has not run out).

Anthropic limits input and output tokens separately (ITPM, OTPM) instead of one TPM:
the input-token bucket holds the input estimate, the output-token bucket the
``max_tokens``, and both settle to the usage the response reports (Anthropic adjusts
both to the actual counts; it does not count cache reads towards ITPM, so neither does
the settlement). Learned from ``anthropic-ratelimit-input-tokens-*`` and
``-output-tokens-*``; the combined ``-tokens-*`` figures, the more restrictive of the
two, are then not a limit of their own and are not used.

Settling a permit (``release``), by outcome:

================  ================================================================
``completed``     The provider served it: the request stays counted. With
``failed``        ``usage_tokens``, usage above the reservation is charged (the
``cancelled``     bucket may go into debt); usage below it is refunded only when
                  ``refund_unused_tokens`` says the provider credits it back.
                  Without usage the reservation stands (the provider may have
                  counted it; the next headers correct it).
``unsent``        Nothing reached the provider (cancelled while connecting, a
                  connection refused): request and tokens are refunded in full.
``rate_limited``  A 429: the provider refused and did not count it, so request and
                  tokens are refunded, then the 429 is applied (``on_rate_limited``).
================  ================================================================

A 429 lowers the named bucket (both when unknown) to zero, cuts its allowed rate
multiplicatively (``adaptive.AIMDController``, once per congestion event) and pauses all
admission until ``retry_after`` has passed. Headers lower a bucket to the provider's
``remaining`` (see ``TokenBucket.correct``) and a reported limit below the configured one
becomes the ceiling.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import msgspec

from providers.ratelimits import RateLimitInfo

from ..errors import SwarmError
from .adaptive import AIMDConfig, AIMDController
from .bucket import TokenBucket
from .concurrency import ConcurrencyLimit, FixedConcurrency, GradientConcurrency, concurrency_limit
from .unheard import UnheardTally

__all__ = [
    "LimitKind",
    "Outcome",
    "Permit",
    "RateLimitConfig",
    "RateLimitPermitError",
    "RateLimiter",
    "RateLimiterStatistics",
    "TokenCost",
    "Wait",
    "WaitReason",
]

WaitReason = Literal["rpm", "tpm", "itpm", "otpm", "concurrency", "paused"]
Outcome = Literal["completed", "failed", "cancelled", "unsent", "rate_limited"]
LimitKind = Literal["requests", "tokens"]

_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
_LIMIT_KINDS: frozenset[str] = frozenset(get_args(LimitKind))


class RateLimitPermitError(SwarmError, RuntimeError):
    """A permit released twice, or one this limiter never issued (a caller bug)."""


class TokenCost(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What one call may cost the token budget, reserved at admission.

    Attributes:
        input_tokens: The estimate of the prompt's tokens (>= 0).
        max_tokens: The most the call may generate (>= 0): reserved in full, settled
            from the actual usage when the call ends.
    """

    input_tokens: int
    max_tokens: int

    def __post_init__(self) -> None:
        if self.input_tokens < 0:
            raise ValueError(f"TokenCost.input_tokens must be >= 0, got {self.input_tokens!r}")
        if self.max_tokens < 0:
            raise ValueError(f"TokenCost.max_tokens must be >= 0, got {self.max_tokens!r}")

    @property
    def total(self) -> int:
        """Tokens reserved at admission: the input estimate plus ``max_tokens``."""
        return self.input_tokens + self.max_tokens


class Permit(msgspec.Struct, kw_only=True, frozen=True, tag="permit"):
    """Admission of one call; hand it back to ``release`` exactly once.

    A plain serializable record, tagged so that ``Permit | Wait`` decodes (a shared
    backend ships it across processes); the
    limiter that issued it keeps the authoritative state, so a permit built by hand,
    or released twice, is refused with :class:`RateLimitPermitError`.

    Attributes:
        id: Unique within the limiter that issued it.
        granted_at: When it was granted.
        tokens: Tokens reserved (the cost's total; 0 without a TPM limit).
        holds_request: It took one request from the RPM limit (False when that limit
            was not known yet at its grant: there is nothing to refund or count).
        holds_tokens: It took ``tokens`` from the TPM limit (likewise).
        input_tokens: Taken from the input-token limit (ITPM), when it holds one.
        output_tokens: Taken from the output-token limit (OTPM), when it holds one.
    """

    id: int
    granted_at: float
    tokens: int
    holds_request: bool = False
    holds_tokens: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    holds_input: bool = False
    holds_output: bool = False


class Wait(msgspec.Struct, kw_only=True, frozen=True, tag="wait"):
    """Not admitted now; nothing was taken.

    Attributes:
        seconds: How long until admission could succeed, or None when it waits for a
            permit to be released (``concurrency``).
        reason: Which limit refused: ``rpm``, ``tpm``, ``concurrency`` or ``paused``.
    """

    seconds: float | None
    reason: WaitReason


class RateLimitConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The limits of one (provider, key, model).

    ``RateLimitConfig()`` with no limit at all is the adaptive default: it limits
    nothing until the provider's response headers report a limit, and from then on
    keeps to it (see ``learn_from_headers``).

    Attributes:
        requests_per_minute: The request limit, or None (default) for none configured.
        tokens_per_minute: The token limit (input + output), or None for none configured.
        input_tokens_per_minute, output_tokens_per_minute: Separate input and output
            token limits (Anthropic's ITPM and OTPM), or None. Each call reserves its
            input estimate of the one and its ``max_tokens`` of the other, both
            settled to the reported usage when it ends.
        refund_unused_tokens: Whether the provider credits back the part of
            ``max_tokens`` a call did not use. Required when ``tokens_per_minute`` is
            set: refunding what the provider keeps makes the local bucket overshoot
            (429s); keeping what it refunds wastes throughput. The simulator keeps it.
            A token limit learned from headers keeps it unless this says True.
        learn_from_headers: A limit that is not configured is created from the first
            response that reports it (``x-ratelimit-limit-requests``,
            ``anthropic-ratelimit-tokens-limit``...), its bucket set to what the
            response says remains. Configured limits are corrected by headers either way.
        learning_probes: At most this many permits are out until the first response
            is seen (a slow start: a flood sent before the first headers come back
            would meet the limit it could have learned, or overrun one configured
            higher than the provider's). The first response to open (with rate-limit
            headers or without) or the first settled attempt ends it. Not applied
            when there is nothing to learn or correct (no rate limit configured and
            learning off). 0: no slow start.
        request_burst: The RPM bucket's capacity; default ``requests_per_minute`` (a
            provider's bucket holds one minute's worth).
        token_burst: The TPM bucket's capacity; default ``tokens_per_minute``.
        concurrency: A fixed or latency-adaptive concurrency limit, or None for none.
        adaptive: How 429s cut the allowed rates; None: a 429 pauses and empties the
            bucket but never lowers the rate.
    """

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    refund_unused_tokens: bool | None = None
    learn_from_headers: bool = True
    learning_probes: int = 1
    request_burst: int | None = None
    token_burst: int | None = None
    concurrency: FixedConcurrency | GradientConcurrency | None = None
    adaptive: AIMDConfig | None = msgspec.field(default_factory=AIMDConfig)

    def __post_init__(self) -> None:
        for name in (
            "requests_per_minute",
            "tokens_per_minute",
            "input_tokens_per_minute",
            "output_tokens_per_minute",
            "request_burst",
            "token_burst",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(
                    f"RateLimitConfig.{name} must be >= 1, or None for no limit; got {value!r}"
                )
        if self.tokens_per_minute is not None and self.refund_unused_tokens is None:
            raise ValueError(
                "RateLimitConfig.refund_unused_tokens is required with tokens_per_minute: "
                "set True if the provider credits back unused max_tokens when a call ends, "
                "False if it keeps the whole reservation (the simulator does)"
            )
        if self.learning_probes < 0:
            raise ValueError(
                f"RateLimitConfig.learning_probes must be >= 0, got {self.learning_probes!r}"
            )
        if self.request_burst is not None and self.requests_per_minute is None:
            raise ValueError("RateLimitConfig.request_burst needs requests_per_minute")
        if self.token_burst is not None and self.tokens_per_minute is None:
            raise ValueError("RateLimitConfig.token_burst needs tokens_per_minute")


class RateLimiterStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of one limiter.

    Rates are per minute. ``*_per_minute`` is the rate allowed now (after 429 cuts),
    ``*_ceiling`` the configured one or the provider's lower figure; ``*_available``
    what the bucket could grant now (negative while in debt). None: no such limit.
    """

    requests_per_minute: float | None
    requests_ceiling: float | None
    requests_available: float | None
    tokens_per_minute: float | None
    tokens_ceiling: float | None
    tokens_available: float | None
    concurrency_limit: int | None
    inflight: int
    paused_for: float
    grants: int
    waits_rpm: int
    waits_tpm: int
    waits_concurrency: int
    waits_paused: int
    rate_limited: int
    decreases: int
    released: int
    input_tokens_per_minute: float | None = None
    input_tokens_available: float | None = None
    output_tokens_per_minute: float | None = None
    output_tokens_available: float | None = None
    waits_itpm: int = 0
    waits_otpm: int = 0


# With no ``adaptive`` config the controller still tracks reported limits, never cuts.
_NO_DECREASE = AIMDConfig(decrease_factor=1.0)


class _Limit:
    """One bucket and the controller of its rate."""

    __slots__ = ("bucket", "burst", "controller")

    def __init__(self, per_minute: int, burst: int | None, aimd: AIMDConfig, now: float) -> None:
        ceiling = per_minute / 60.0
        self.burst = float(per_minute if burst is None else burst)
        self.controller = AIMDController(aimd, ceiling=ceiling, now=now)
        self.bucket = TokenBucket(rate=ceiling, capacity=self.burst, now=now)

    def sync(self, now: float) -> None:
        # Invariant: the bucket refills at the controller's rate as of the last event,
        # and its capacity shrinks with the ceiling. Between events the rate of the last
        # one applies, which under-credits a recovery ramp: the safe side.
        ctl = self.controller
        rate = ctl.rate(now)
        capacity = self.burst * ctl.ceiling / ctl.configured_ceiling
        if rate != self.bucket.rate or capacity != self.bucket.capacity:
            self.bucket.set_rate(rate, now, capacity=capacity)


class _Held:
    __slots__ = ("heard", "permit", "slot")

    def __init__(self, permit: Permit, slot: bool) -> None:
        self.permit = permit
        self.slot = slot
        # Its own response headers were applied: the provider's figures then already
        # hold what it charged this call at admission (see ``release``).
        self.heard = False


class RateLimiter:
    """RPM, TPM and concurrency limits of one (provider, key, model), adapted from feedback.

    Args:
        config: The limits.
        now: The time the limiter is created; buckets start full.
    """

    def __init__(self, config: RateLimitConfig, *, now: float) -> None:
        aimd = config.adaptive if config.adaptive is not None else _NO_DECREASE
        self._aimd = aimd
        self._config = config
        self._rpm = (
            _Limit(config.requests_per_minute, config.request_burst, aimd, now)
            if config.requests_per_minute is not None
            else None
        )
        self._tpm = (
            _Limit(config.tokens_per_minute, config.token_burst, aimd, now)
            if config.tokens_per_minute is not None
            else None
        )
        itpm, otpm = config.input_tokens_per_minute, config.output_tokens_per_minute
        self._itpm = _Limit(itpm, None, aimd, now) if itpm is not None else None
        self._otpm = _Limit(otpm, None, aimd, now) if otpm is not None else None
        self._concurrency: ConcurrencyLimit | None = (
            concurrency_limit(config.concurrency, now=now) if config.concurrency else None
        )
        self._refund_unused = bool(config.refund_unused_tokens)
        # A slow start until the first response: before it, nothing says the limits
        # are right. With none configured a flood would meet the limit it could have
        # learned; with one configured too high (a tier changed, a key shared), a flood
        # drawn against its full burst overshoots the real one at once: every call over
        # it a 429. Headers correct a configured limit as well, so one round trip of
        # probing protects both. Without headers to learn from and no limit to correct,
        # there is nothing to wait for.
        configured = (
            self._rpm is not None
            or self._tpm is not None
            or self._itpm is not None
            or self._otpm is not None
        )
        self._probing = config.learning_probes > 0 and (configured or config.learn_from_headers)
        self._outstanding: dict[int, _Held] = {}
        # The outstanding permits whose response headers have not come back, with what
        # they hold: how stale a header is (see ``on_response_headers``).
        self._unheard = UnheardTally(width=4)  # requests, tokens, input, output
        self._next_id = 1
        self._paused_until = -math.inf
        self._grants = 0
        self._waits: dict[WaitReason, int] = {r: 0 for r in get_args(WaitReason)}
        self._rate_limited = 0
        self._released = 0

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    @property
    def probing(self) -> bool:
        """In the slow start: waiting for the first response (``learning_probes``)."""
        return self._probing

    @property
    def inflight(self) -> int:
        """Permits granted and not yet released."""
        return len(self._outstanding)

    @property
    def paused_until(self) -> float:
        """Admission is paused until this time (after a 429's retry-after)."""
        return self._paused_until

    # -- admission -------------------------------------------------------------------------

    def try_acquire(self, cost: TokenCost, now: float) -> Permit | Wait:
        """Admit a call costing ``cost`` now, or say how long to wait and why.

        All-or-nothing: a Wait takes nothing from any limit.

        Raises:
            ValueError: ``now`` is not finite; nothing changes.
        """
        _check_now(now)
        self._sync(now)
        if now < self._paused_until:
            return self._wait(self._paused_until - now, "paused")
        tokens = cost.total if self._tpm else 0
        inputs = cost.input_tokens if self._itpm else 0
        outputs = cost.max_tokens if self._otpm else 0
        longest: tuple[float, WaitReason] = (0.0, "rpm")
        for lim, amount, reason in (
            (self._rpm, 1, "rpm"),
            (self._tpm, tokens, "tpm"),
            (self._itpm, inputs, "itpm"),
            (self._otpm, outputs, "otpm"),
        ):
            if lim is not None:
                wait = lim.bucket.wait_time(float(amount), now)
                if wait > longest[0]:
                    longest = (wait, reason)  # type: ignore[assignment]
        if longest[0] > 0.0:
            return self._wait(*longest)
        if self._probing and len(self._outstanding) >= self._config.learning_probes:
            return self._wait(None, "concurrency")
        slot = False
        if self._concurrency is not None:
            if not self._concurrency.acquire():
                return self._wait(None, "concurrency")
            slot = True
        if self._rpm:
            self._rpm.bucket.reserve(1.0, now)
        if self._tpm:
            self._tpm.bucket.reserve(float(tokens), now)
        if self._itpm:
            self._itpm.bucket.reserve(float(inputs), now)
        if self._otpm:
            self._otpm.bucket.reserve(float(outputs), now)
        permit = Permit(
            id=self._next_id,
            granted_at=now,
            tokens=tokens,
            holds_request=self._rpm is not None,
            holds_tokens=self._tpm is not None,
            input_tokens=inputs,
            output_tokens=outputs,
            holds_input=self._itpm is not None,
            holds_output=self._otpm is not None,
        )
        self._next_id += 1
        self._outstanding[permit.id] = _Held(permit, slot)
        if self._rpm or self._tpm or self._itpm or self._otpm:
            self._unheard.add(permit.id, 1 if self._rpm else 0, tokens, inputs, outputs)
        self._grants += 1
        return permit

    def release(
        self,
        permit: Permit,
        now: float,
        outcome: Outcome,
        *,
        usage_tokens: int | None = None,
        ttft: float | None = None,
        retry_after: float | None = None,
        limit: LimitKind | None = None,
        usage_input_tokens: int | None = None,
        usage_output_tokens: int | None = None,
    ) -> None:
        """Settle and give back a permit (see the module docstring for each outcome).

        Args:
            permit: A permit from ``try_acquire`` not yet released.
            now: When the call ended.
            outcome: ``completed``, ``failed``, ``cancelled``, ``unsent`` or
                ``rate_limited``.
            usage_tokens: The tokens the provider counted (input + output), if known.
            ttft: Time to first token, seconds, if the call got that far; feeds an
                adaptive concurrency limit.
            retry_after: For ``rate_limited``: the wait the provider asked for.
            limit: For ``rate_limited``: which limit the provider said was hit.
            usage_input_tokens: The input tokens an input-token limit counts (not
                cache reads), if known; settles the permit's ITPM reservation.
            usage_output_tokens: The output tokens, if known; settles its OTPM one.

        Raises:
            RateLimitPermitError: The permit was already released, or not issued here.
            ValueError: A bad argument. Either way nothing changes.
        """
        held = self._outstanding.get(permit.id)
        if held is None or held.permit != permit:
            raise RateLimitPermitError(
                f"permit {permit.id} was already released or was not issued by this limiter"
            )
        _check_now(now)
        if outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_OUTCOMES)}, got {outcome!r}")
        for name, value in (
            ("usage_tokens", usage_tokens),
            ("usage_input_tokens", usage_input_tokens),
            ("usage_output_tokens", usage_output_tokens),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if ttft is not None and not (ttft >= 0.0 and math.isfinite(ttft)):
            raise ValueError(f"ttft must be a finite number of seconds >= 0, got {ttft!r}")
        _check_rate_limited_args(retry_after, limit)
        if outcome != "rate_limited" and (retry_after is not None or limit is not None):
            raise ValueError("retry_after and limit only go with outcome='rate_limited'")

        del self._outstanding[permit.id]
        self._unheard.remove(permit.id)
        self._released += 1
        if outcome != "unsent":
            self._probing = False  # a response came back (its headers, if any, first)
        self._sync(now)
        if self._concurrency is not None:
            if ttft is not None:
                self._concurrency.on_sample(ttft, now)
            if held.slot:
                self._concurrency.release()
        if outcome in ("unsent", "rate_limited"):
            # Only what this permit reserved (a limit learned after its grant has none).
            if self._rpm and permit.holds_request:
                self._rpm.bucket.refund(1.0, now)
            if self._tpm and permit.holds_tokens:
                self._tpm.bucket.refund(float(permit.tokens), now)
            if self._itpm and permit.holds_input:
                self._itpm.bucket.refund(float(permit.input_tokens), now)
            if self._otpm and permit.holds_output:
                self._otpm.bucket.refund(float(permit.output_tokens), now)
        else:
            # What the provider charges at admission its headers for this call already
            # report (the correction applied them): settling it again from the usage
            # would count the difference twice, so a heard permit settles only what the
            # provider changes at the end, the unused output it gives back. (A permit
            # granted before a token limit was learned reserved nothing of it.)
            heard = held.heard
            if usage_tokens is not None and self._tpm and permit.holds_tokens:
                excess = usage_tokens - permit.tokens
                if excess > 0 and not heard:
                    self._tpm.bucket.take(float(excess), now)
                elif excess < 0 and self._refund_unused:
                    self._tpm.bucket.refund(float(-excess), now)
            # ITPM settles to the actual input (Anthropic counts it at admission),
            # OTPM gives the unused max_tokens back (Anthropic does, at the end).
            if (
                self._itpm is not None
                and permit.holds_input
                and usage_input_tokens is not None
                and not heard
            ):
                delta = usage_input_tokens - permit.input_tokens
                if delta > 0:
                    self._itpm.bucket.take(float(delta), now)
                elif delta < 0:
                    self._itpm.bucket.refund(float(-delta), now)
            if self._otpm is not None and permit.holds_output and usage_output_tokens is not None:
                delta = usage_output_tokens - permit.output_tokens
                if delta > 0 and not heard:
                    self._otpm.bucket.take(float(delta), now)
                elif delta < 0:
                    self._otpm.bucket.refund(float(-delta), now)
        if outcome == "rate_limited":
            self._apply_429(retry_after, now, limit, sent_at=permit.granted_at)

    # -- feedback --------------------------------------------------------------------------

    def on_response_headers(
        self, info: RateLimitInfo, now: float, *, permit: Permit | None = None
    ) -> None:
        """Correct the buckets from the rate-limit headers of a response.

        Args:
            info: The parsed headers (``providers.ratelimits.parse_rate_limit_headers``).
                ``*_limit`` is taken as per minute, as OpenAI and Anthropic report it; a
                reported limit can lower the ceiling, never raise it above configuration.
                Anthropic's ``input_tokens_*`` and ``output_tokens_*`` correct (or
                create) the input and output token limits; its combined ``tokens_*``
                are then ignored (they repeat the more restrictive of the two).
            now: When the headers arrived.
            permit: The permit of the call this response answers (released or not).
                With it, the provider's figures are taken as excluding what the permits
                granted after it and still waiting for their own headers hold (see
                ``swarm.ratelimit.unheard`` for why both conditions). None: the headers
                are taken as fresh.

        Raises:
            ValueError: ``now`` is not finite, or a figure is negative or not finite;
                nothing changes.
        """
        _check_now(now)
        for name in (
            "requests_limit",
            "requests_remaining",
            "requests_reset",
            "tokens_limit",
            "tokens_remaining",
            "tokens_reset",
            "input_tokens_limit",
            "input_tokens_remaining",
            "input_tokens_reset",
            "output_tokens_limit",
            "output_tokens_remaining",
            "output_tokens_reset",
        ):
            value = getattr(info, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"RateLimitInfo.{name} must be >= 0 and finite, got {value!r}")
        self._sync(now)
        self._probing = False  # a response opened: what it could teach, it has
        if info.empty:
            # A provider that sends no rate-limit headers (most OpenAI-compatible
            # servers): nothing to apply, and the permit is not "heard" (its release
            # settles it in full). Waiting for its end instead would hold every
            # other call for the whole of the first stream.
            return
        unseen: tuple[int, ...] = (0, 0, 0, 0)
        if permit is not None:
            held = self._outstanding.get(permit.id)
            if held is not None and held.permit == permit:
                self._unheard.remove(permit.id)
                held.heard = True
            unseen = self._unheard.after(permit.id)
        unseen_requests, unseen_tokens, unseen_input, unseen_output = unseen
        separate = _separate_token_limits(info)
        if self._config.learn_from_headers:
            self._learn(info, now, separate=separate)
        for lim, limit, remaining, reset, unseen_amount in (
            (
                self._rpm,
                info.requests_limit,
                info.requests_remaining,
                info.requests_reset,
                unseen_requests,
            ),
            (
                # With separate input and output limits, the combined figures are the
                # more restrictive of the two, not a limit of their own.
                None if separate else self._tpm,
                info.tokens_limit,
                info.tokens_remaining,
                info.tokens_reset,
                unseen_tokens,
            ),
            (
                self._itpm,
                info.input_tokens_limit,
                info.input_tokens_remaining,
                info.input_tokens_reset,
                unseen_input,
            ),
            (
                self._otpm,
                info.output_tokens_limit,
                info.output_tokens_remaining,
                info.output_tokens_reset,
                unseen_output,
            ),
        ):
            if lim is None:
                continue
            if limit is not None and limit > 0:
                lim.controller.on_limit_reported(limit / 60.0, now)
                lim.sync(now)
            if remaining is not None:
                lim.bucket.correct(float(remaining), reset, now, unseen=float(unseen_amount))

    def on_rate_limited(
        self,
        retry_after: float | None,
        now: float,
        *,
        limit: LimitKind | None = None,
        sent_at: float | None = None,
    ) -> None:
        """A 429 not settled through ``release`` (for one, use outcome ``rate_limited``).

        Empties the named bucket (both when ``limit`` is None, or names a limit this
        limiter does not have), cuts its rate once per congestion event and pauses all
        admission until ``now + retry_after``.

        Args:
            retry_after: Seconds the provider asked to wait, or None (no pause; the
                emptied bucket still makes the next grant wait for its refill).
            now: When the 429 arrived.
            limit: ``requests`` or ``tokens`` if the provider said which, else None.
            sent_at: When the refused request was sent; None: now (always cuts).

        Raises:
            ValueError: A bad argument; nothing changes.
        """
        _check_now(now)
        _check_rate_limited_args(retry_after, limit)
        if sent_at is not None and not math.isfinite(sent_at):
            raise ValueError(f"sent_at must be finite, got {sent_at!r}")
        self._sync(now)
        self._apply_429(retry_after, now, limit, sent_at=sent_at)

    # -- reading ---------------------------------------------------------------------------

    def statistics(self, now: float) -> RateLimiterStatistics:
        """A snapshot of limits, levels and counts at ``now``.

        Reading changes nothing: the levels are what ``try_acquire`` would see at
        ``now``, the rates what the controllers allow at ``now``.

        Raises:
            ValueError: ``now`` is not finite.
        """
        _check_now(now)
        rpm, tpm, itpm, otpm = self._rpm, self._tpm, self._itpm, self._otpm
        return RateLimiterStatistics(
            requests_per_minute=rpm.controller.rate(now) * 60.0 if rpm else None,
            requests_ceiling=rpm.controller.ceiling * 60.0 if rpm else None,
            requests_available=rpm.bucket.level(now) if rpm else None,
            tokens_per_minute=tpm.controller.rate(now) * 60.0 if tpm else None,
            tokens_ceiling=tpm.controller.ceiling * 60.0 if tpm else None,
            tokens_available=tpm.bucket.level(now) if tpm else None,
            concurrency_limit=self._concurrency.limit if self._concurrency else None,
            inflight=len(self._outstanding),
            paused_for=max(0.0, self._paused_until - now),
            grants=self._grants,
            waits_rpm=self._waits["rpm"],
            waits_tpm=self._waits["tpm"],
            waits_concurrency=self._waits["concurrency"],
            waits_paused=self._waits["paused"],
            rate_limited=self._rate_limited,
            decreases=sum(x.controller.decreases for x in (rpm, tpm, itpm, otpm) if x),
            released=self._released,
            input_tokens_per_minute=itpm.controller.rate(now) * 60.0 if itpm else None,
            input_tokens_available=itpm.bucket.level(now) if itpm else None,
            output_tokens_per_minute=otpm.controller.rate(now) * 60.0 if otpm else None,
            output_tokens_available=otpm.bucket.level(now) if otpm else None,
            waits_itpm=self._waits["itpm"],
            waits_otpm=self._waits["otpm"],
        )

    # -- internals -------------------------------------------------------------------------

    def _sync(self, now: float) -> None:
        for lim in (self._rpm, self._tpm, self._itpm, self._otpm):
            if lim is not None:
                lim.sync(now)

    def _learn(self, info: RateLimitInfo, now: float, *, separate: bool) -> None:
        # A limit created here starts full; the caller's correction then lowers it to
        # the response's ``remaining``. The permits granted before it hold nothing of
        # it and are not in its unheard sum: the provider counts them as they arrive,
        # and the next headers bring them in.
        if self._rpm is None and info.requests_limit:
            self._rpm = _Limit(info.requests_limit, None, self._aimd, now)
        if self._tpm is None and info.tokens_limit and not separate:
            self._tpm = _Limit(info.tokens_limit, None, self._aimd, now)
        if self._itpm is None and info.input_tokens_limit:
            self._itpm = _Limit(info.input_tokens_limit, None, self._aimd, now)
        if self._otpm is None and info.output_tokens_limit:
            self._otpm = _Limit(info.output_tokens_limit, None, self._aimd, now)

    def _wait(self, seconds: float | None, reason: WaitReason) -> Wait:
        self._waits[reason] += 1
        return Wait(seconds=seconds, reason=reason)

    def _apply_429(
        self,
        retry_after: float | None,
        now: float,
        limit: LimitKind | None,
        *,
        sent_at: float | None,
    ) -> None:
        self._rate_limited += 1
        tokens = [x for x in (self._tpm, self._itpm, self._otpm) if x]
        # "tokens" cannot say input or output: every token limit there is takes it.
        named = {"requests": [self._rpm] if self._rpm else [], "tokens": tokens}.get(
            limit or "", []
        )
        targets = named or [x for x in (self._rpm, *tokens) if x]
        for lim in targets:
            lim.bucket.correct(0.0, None, now)
            lim.controller.on_rate_limited(now, sent_at=sent_at)
            lim.sync(now)
        if retry_after is not None and retry_after > 0.0:
            self._paused_until = max(self._paused_until, now + retry_after)

    def __repr__(self) -> str:
        return (
            f"RateLimiter(rpm={self._config.requests_per_minute}, "
            f"tpm={self._config.tokens_per_minute}, inflight={len(self._outstanding)})"
        )


def _separate_token_limits(info: RateLimitInfo) -> bool:
    """Whether the headers report separate input and output token limits (Anthropic)."""
    return any(
        value is not None
        for value in (
            info.input_tokens_limit,
            info.input_tokens_remaining,
            info.output_tokens_limit,
            info.output_tokens_remaining,
        )
    )


def _check_now(now: float) -> None:
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")


def _check_rate_limited_args(retry_after: float | None, limit: str | None) -> None:
    if retry_after is not None and not (retry_after >= 0.0 and math.isfinite(retry_after)):
        raise ValueError(
            f"retry_after must be a finite number of seconds >= 0, got {retry_after!r}"
        )
    if limit is not None and limit not in _LIMIT_KINDS:
        raise ValueError(f"limit must be one of {sorted(_LIMIT_KINDS)} or None, got {limit!r}")
