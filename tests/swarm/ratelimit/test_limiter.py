"""The RateLimiter facade on virtual time: admission, settlement, 429s and headers."""

from __future__ import annotations

import math
import random
from typing import Any

import msgspec
import pytest

from providers.ratelimits import RateLimitInfo
from swarm.ratelimit import (
    AIMDConfig,
    FixedConcurrency,
    GradientConcurrency,
    Permit,
    RateLimitConfig,
    RateLimiter,
    RateLimitPermitError,
    TokenCost,
    Wait,
)

# Binary fractions, so recovery values are exact floats.
AIMD = AIMDConfig(decrease_factor=0.5, recovery_per_second=1 / 32, floor_fraction=1 / 16)


def limiter(**overrides: Any) -> RateLimiter:
    # No slow start unless a test asks for it: these tests follow the buckets, and a
    # burst before any response is how they fill them (the slow start has its own).
    fields: dict[str, Any] = {
        "requests_per_minute": None,
        "tokens_per_minute": None,
        "adaptive": AIMD,
        "learning_probes": 0,
    }
    fields.update(overrides)
    if fields["tokens_per_minute"] is not None:
        fields.setdefault("refund_unused_tokens", False)
    return RateLimiter(RateLimitConfig(**fields), now=0.0)


def cost(input_tokens: int = 0, max_tokens: int = 0) -> TokenCost:
    return TokenCost(input_tokens=input_tokens, max_tokens=max_tokens)


def granted(result: Permit | Wait) -> Permit:
    assert isinstance(result, Permit), result
    return result


# -- admission -------------------------------------------------------------------------------


def test_rpm_60_grants_a_minutes_burst_then_one_request_per_second() -> None:
    rl = limiter(requests_per_minute=60)
    for _ in range(60):
        granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=1.0, reason="rpm")
    assert rl.try_acquire(cost(), 0.25) == Wait(seconds=0.75, reason="rpm")
    granted(rl.try_acquire(cost(), 1.0))
    assert rl.try_acquire(cost(), 1.0) == Wait(seconds=1.0, reason="rpm")
    granted(rl.try_acquire(cost(), 2.0))


def test_tpm_reserves_the_input_estimate_plus_max_tokens() -> None:
    rl = limiter(tokens_per_minute=6000)  # 100 tokens/s
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    assert p.tokens == 3000
    granted(rl.try_acquire(cost(1000, 2000), 0.0))
    assert rl.try_acquire(cost(1000, 2000), 0.0) == Wait(seconds=30.0, reason="tpm")
    assert rl.statistics(0.0).tokens_available == 0.0


def test_unused_tokens_are_refunded_when_the_provider_refunds_them() -> None:
    rl = limiter(tokens_per_minute=6000, refund_unused_tokens=True)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 10.0, "completed", usage_tokens=1200)
    # 10 s of refill (1000) + the 1800 not used
    assert rl.statistics(10.0).tokens_available == 2800.0
    assert rl.try_acquire(cost(1000, 2000), 10.0) == Wait(seconds=2.0, reason="tpm")


def test_unused_tokens_are_kept_when_the_provider_keeps_them() -> None:
    rl = limiter(tokens_per_minute=6000, refund_unused_tokens=False)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 10.0, "completed", usage_tokens=1200)
    assert rl.statistics(10.0).tokens_available == 1000.0
    assert rl.try_acquire(cost(1000, 2000), 10.0) == Wait(seconds=20.0, reason="tpm")


@pytest.mark.parametrize("refund", [True, False])
def test_usage_beyond_the_reservation_is_charged(refund: bool) -> None:
    rl = limiter(tokens_per_minute=6000, refund_unused_tokens=refund)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 0.0, "completed", usage_tokens=4000)
    assert rl.statistics(0.0).tokens_available == -1000.0
    assert rl.try_acquire(cost(1000, 2000), 0.0) == Wait(seconds=40.0, reason="tpm")


def test_without_usage_the_reservation_stands() -> None:
    rl = limiter(tokens_per_minute=6000, refund_unused_tokens=True)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 0.0, "failed")
    assert rl.statistics(0.0).tokens_available == 3000.0


def test_a_request_larger_than_the_token_capacity_waits_for_a_full_bucket() -> None:
    rl = limiter(tokens_per_minute=6000)
    p = granted(rl.try_acquire(cost(100, 0), 0.0))
    assert rl.try_acquire(cost(9000, 1000), 0.0) == Wait(seconds=1.0, reason="tpm")
    rl.release(p, 0.5, "unsent")
    big = granted(rl.try_acquire(cost(9000, 1000), 0.5))
    assert big.tokens == 10_000
    assert rl.statistics(0.5).tokens_available == -4000.0


def test_the_limit_that_binds_longest_is_the_reason() -> None:
    rl = limiter(requests_per_minute=60, request_burst=1, tokens_per_minute=12_000)
    granted(rl.try_acquire(cost(6000, 0), 0.0))  # 6000 tokens left, 200/s
    assert rl.try_acquire(cost(100, 0), 0.0) == Wait(seconds=1.0, reason="rpm")
    assert rl.try_acquire(cost(6300, 0), 0.0) == Wait(seconds=1.5, reason="tpm")
    assert rl.try_acquire(cost(6100, 0), 0.0) == Wait(seconds=1.0, reason="rpm")


def test_a_wait_takes_nothing_from_any_limit() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    granted(rl.try_acquire(cost(3000, 0), 0.0))
    before = rl.statistics(0.0)
    assert rl.try_acquire(cost(5000, 0), 0.0) == Wait(seconds=20.0, reason="tpm")
    after = rl.statistics(0.0)
    assert (after.requests_available, after.tokens_available) == (59.0, 3000.0)
    assert after.grants == before.grants == 1
    assert after.waits_tpm == 1


def test_concurrency_waits_for_a_release() -> None:
    rl = limiter(concurrency=FixedConcurrency(limit=2))
    p = granted(rl.try_acquire(cost(), 0.0))
    granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=None, reason="concurrency")
    rl.release(p, 1.0, "completed")
    granted(rl.try_acquire(cost(), 1.0))
    stats = rl.statistics(1.0)
    assert (stats.inflight, stats.concurrency_limit, stats.waits_concurrency) == (2, 2, 1)


def test_a_concurrency_refusal_takes_no_tokens() -> None:
    rl = limiter(requests_per_minute=60, concurrency=FixedConcurrency(limit=1))
    granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=None, reason="concurrency")
    assert rl.statistics(0.0).requests_available == 59.0


def test_ttft_samples_reach_an_adaptive_concurrency_limit() -> None:
    rl = limiter(
        concurrency=GradientConcurrency(
            max_limit=64,
            min_limit=1,
            initial_limit=4,
            window=0.0,
            window_min_samples=1,
            queue_size=4.0,
            smoothing=0.25,
            tolerance=1.0,
            warmup=1,
        )
    )
    permits = [granted(rl.try_acquire(cost(), 0.0)) for _ in range(4)]
    rl.release(permits[0], 1.0, "completed", ttft=0.5)
    assert rl.statistics(1.0).concurrency_limit == 5  # 4 * 3/4 + (4 + 4) / 4


# -- releasing -------------------------------------------------------------------------------


def test_a_permit_released_twice_raises_and_changes_nothing() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    p = granted(rl.try_acquire(cost(100, 100), 0.0))
    rl.release(p, 0.0, "unsent")
    before = rl.statistics(0.0)
    with pytest.raises(RateLimitPermitError, match="already released"):
        rl.release(p, 0.0, "unsent")
    assert rl.statistics(0.0) == before


def test_a_permit_not_issued_here_is_refused() -> None:
    rl = limiter(requests_per_minute=60)
    real = granted(rl.try_acquire(cost(), 0.0))
    with pytest.raises(RateLimitPermitError):
        rl.release(Permit(id=99, granted_at=0.0, tokens=0), 0.0, "completed")
    forged = msgspec.structs.replace(real, tokens=5)
    with pytest.raises(RateLimitPermitError):
        rl.release(forged, 0.0, "completed")
    rl.release(real, 0.0, "completed")  # the real one is still outstanding


def test_an_unsent_call_refunds_its_request_and_tokens_in_full() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000, refund_unused_tokens=False)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 0.0, "unsent")
    stats = rl.statistics(0.0)
    assert (stats.requests_available, stats.tokens_available) == (60.0, 6000.0)
    assert stats.inflight == 0


def test_a_cancelled_call_settles_from_its_usage() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000, refund_unused_tokens=True)
    p = granted(rl.try_acquire(cost(1000, 2000), 0.0))
    rl.release(p, 0.0, "cancelled", usage_tokens=1500)
    stats = rl.statistics(0.0)
    assert (stats.requests_available, stats.tokens_available) == (59.0, 4500.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"outcome": "done"}, "outcome"),
        ({"outcome": "completed", "usage_tokens": -1}, "usage_tokens"),
        ({"outcome": "completed", "ttft": math.nan}, "ttft"),
        ({"outcome": "completed", "retry_after": 1.0}, "only go with"),
        ({"outcome": "rate_limited", "retry_after": -1.0}, "retry_after"),
        ({"outcome": "rate_limited", "limit": "bytes"}, "limit"),
    ],
)
def test_a_bad_release_raises_and_changes_nothing(kwargs: dict[str, Any], match: str) -> None:
    rl = limiter(requests_per_minute=60, concurrency=FixedConcurrency(limit=1))
    p = granted(rl.try_acquire(cost(), 0.0))
    before = rl.statistics(0.0)
    outcome = kwargs.pop("outcome")
    with pytest.raises(ValueError, match=match):
        rl.release(p, 0.0, outcome, **kwargs)
    assert rl.statistics(0.0) == before
    rl.release(p, 0.0, "completed")
    assert rl.statistics(0.0).inflight == 0


# -- 429s ------------------------------------------------------------------------------------


def test_a_429_pauses_everything_until_retry_after_then_runs_at_half_rate() -> None:
    rl = limiter(requests_per_minute=60)
    p = granted(rl.try_acquire(cost(), 0.0))
    rl.release(p, 0.5, "rate_limited", retry_after=2.0)
    assert rl.try_acquire(cost(), 1.0) == Wait(seconds=1.5, reason="paused")
    stats = rl.statistics(1.0)
    assert stats.paused_for == 1.5
    assert (stats.rate_limited, stats.decreases) == (1, 1)
    # The bucket was emptied at 0.5 and refills at the halved rate (0.5/s) ...
    granted(rl.try_acquire(cost(), 2.5))
    # ... which recovers by 1/32 of the ceiling (1/s) per second from the cut.
    assert rl.statistics(2.5).requests_per_minute == (0.5 + 2.0 / 32) * 60


def test_the_rate_recovers_to_the_ceiling() -> None:
    rl = limiter(requests_per_minute=60)
    rl.on_rate_limited(None, 0.0)
    assert rl.statistics(0.0).requests_per_minute == 30.0
    assert rl.statistics(8.0).requests_per_minute == 45.0
    assert rl.statistics(16.0).requests_per_minute == 60.0
    assert rl.statistics(100.0).requests_per_minute == 60.0


def test_a_429_storm_of_calls_sent_before_the_cut_is_one_decrease() -> None:
    rl = limiter(requests_per_minute=600)
    permits = [granted(rl.try_acquire(cost(), 0.0)) for _ in range(5)]
    for p in permits:
        rl.release(p, 1.0, "rate_limited", retry_after=0.0)
    stats = rl.statistics(1.0)
    assert (stats.rate_limited, stats.decreases) == (5, 1)
    assert stats.requests_per_minute == 300.0


def test_a_429_naming_its_limit_cuts_only_that_one() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    rl.on_rate_limited(None, 0.0, limit="tokens")
    stats = rl.statistics(0.0)
    assert (stats.requests_per_minute, stats.tokens_per_minute) == (60.0, 3000.0)
    assert (stats.requests_available, stats.tokens_available) == (60.0, 0.0)


def test_a_429_without_retry_after_waits_for_the_emptied_bucket() -> None:
    rl = limiter(requests_per_minute=60, adaptive=None)
    rl.on_rate_limited(None, 0.0)
    assert rl.statistics(0.0).requests_per_minute == 60.0  # adaptive=None: never cut
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=1.0, reason="rpm")


def test_a_refused_call_is_refunded_before_the_bucket_is_emptied() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000, adaptive=None)
    p = granted(rl.try_acquire(cost(1000, 1000), 0.0))
    other = granted(rl.try_acquire(cost(1000, 1000), 0.0))
    rl.release(p, 0.0, "rate_limited", limit="requests")
    stats = rl.statistics(0.0)
    # the requests bucket is emptied; the tokens bucket only gets the refund back
    assert (stats.requests_available, stats.tokens_available) == (0.0, 4000.0)
    rl.release(other, 0.0, "completed")


# -- headers ---------------------------------------------------------------------------------


def test_a_lower_reported_limit_becomes_the_ceiling_and_the_capacity() -> None:
    rl = limiter(requests_per_minute=120, tokens_per_minute=12_000)
    rl.on_response_headers(RateLimitInfo(requests_limit=60, tokens_limit=6000), 0.0)
    stats = rl.statistics(0.0)
    assert (stats.requests_ceiling, stats.requests_per_minute) == (60.0, 60.0)
    assert (stats.tokens_ceiling, stats.tokens_per_minute) == (6000.0, 6000.0)
    assert (stats.requests_available, stats.tokens_available) == (60.0, 6000.0)


def test_configured_too_high_the_first_headers_keep_the_providers_burst() -> None:
    # Configured at twice the provider's 60 rpm; 40 calls go out before the first
    # response reports the limit and what is left after the first call (59).
    rl = limiter(requests_per_minute=120)
    permits = [granted(rl.try_acquire(cost(), 0.0)) for _ in range(40)]
    info = RateLimitInfo(requests_limit=60, requests_remaining=59, requests_reset=1.0)
    rl.on_response_headers(info, 0.0, permit=permits[0])
    # The provider has 20 left (60 - 40): the lower capacity and the header together
    # take off its 60 of surplus once, not twice.
    assert rl.statistics(0.0).requests_available == 20.0
    for _ in range(20):
        granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=1.0, reason="rpm")


def test_configured_too_high_one_call_goes_first_and_its_headers_set_the_burst() -> None:
    # The default slow start holds a configured limit to one call until the first
    # response: configured at twice the provider's 60 rpm with a minute's burst, a flood
    # would send 120 at once and 60 of them would be refused.
    rl = RateLimiter(RateLimitConfig(requests_per_minute=120), now=0.0)
    probe = granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=None, reason="concurrency")
    info = RateLimitInfo(requests_limit=60, requests_remaining=59, requests_reset=1.0)
    rl.on_response_headers(info, 0.05, permit=probe)
    sent = 1
    while isinstance(rl.try_acquire(cost(), 0.05), Permit):
        sent += 1
    assert sent == 60  # exactly the provider's minute, none over it
    assert rl.statistics(0.05).requests_ceiling == 60.0


def test_configured_without_headers_the_first_settled_call_ends_the_slow_start() -> None:
    # A provider that sends no rate-limit headers: the configured figure is all there
    # is, and the wait for it lasted one call.
    rl = RateLimiter(RateLimitConfig(tokens_per_minute=6000, refund_unused_tokens=False), now=0.0)
    probe = granted(rl.try_acquire(cost(10, 90), 0.0))
    assert isinstance(rl.try_acquire(cost(10, 90), 0.0), Wait)
    rl.release(probe, 0.2, "completed", usage_tokens=50)
    for _ in range(59):
        granted(rl.try_acquire(cost(10, 90), 0.2))


def test_a_response_without_rate_limit_headers_ends_the_slow_start_when_it_opens() -> None:
    # Most OpenAI-compatible servers send no rate-limit headers: the first response
    # opening is all there is to wait for (its end may be a long stream away), and
    # nothing was heard, so its release settles the permit in full.
    rl = RateLimiter(RateLimitConfig(tokens_per_minute=6000, refund_unused_tokens=True), now=0.0)
    probe = granted(rl.try_acquire(cost(10, 90), 0.0))
    assert rl.probing and isinstance(rl.try_acquire(cost(10, 90), 0.0), Wait)
    rl.on_response_headers(RateLimitInfo(), 0.1, permit=probe)
    assert not rl.probing
    other = granted(rl.try_acquire(cost(10, 90), 0.1))
    rl.release(probe, 0.1, "completed", usage_tokens=20)  # 80 of its 100 refunded
    rl.release(other, 0.1, "completed", usage_tokens=100)
    assert rl.statistics(0.1).tokens_available == pytest.approx(6000 - 120 + 0.1 * 100)


def test_a_higher_reported_limit_is_ignored() -> None:
    rl = limiter(requests_per_minute=60)
    rl.on_response_headers(RateLimitInfo(requests_limit=10_000), 0.0)
    assert rl.statistics(0.0).requests_ceiling == 60.0


def test_remaining_lowers_the_buckets() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    rl.on_response_headers(RateLimitInfo(requests_remaining=10, tokens_remaining=500), 0.0)
    stats = rl.statistics(0.0)
    assert (stats.requests_available, stats.tokens_available) == (10.0, 500.0)
    assert rl.try_acquire(cost(1000, 0), 0.0) == Wait(seconds=5.0, reason="tpm")


def test_headers_answering_a_permit_do_not_forgive_calls_sent_since() -> None:
    rl = limiter(requests_per_minute=60)
    first = granted(rl.try_acquire(cost(), 0.0))
    for _ in range(9):
        granted(rl.try_acquire(cost(), 0.0))
    # The provider had 55 left after admitting the first: another client used 4.
    rl.on_response_headers(RateLimitInfo(requests_remaining=55), 1.0, permit=first)
    # 55 - the 9 sent since (the provider's refill since its snapshot is not guessed).
    assert rl.statistics(1.0).requests_available == 46.0


def test_calls_that_overtook_a_permit_are_not_charged_twice() -> None:
    # Granted 1, 2, 3; the provider admitted them 3, 2, 1 and answered in that order.
    # Each snapshot then already holds the calls answered before it.
    rl = limiter(requests_per_minute=60)
    p1, p2, p3 = (granted(rl.try_acquire(cost(), 0.0)) for _ in range(3))
    for permit, remaining in ((p3, 59), (p2, 58), (p1, 57)):
        rl.on_response_headers(RateLimitInfo(requests_remaining=remaining), 0.0, permit=permit)
    assert rl.statistics(0.0).requests_available == 57.0


def test_a_shuffled_admission_order_never_drifts_from_the_provider() -> None:
    # The provider admits 256 calls in a shuffled order and answers each at once; no
    # other client: every header agrees with the bucket, whatever the order. (A mark
    # taken at grant time charged each overtaking call twice: the level ended in debt
    # by tens of thousands of tokens instead of at the 8,288 the provider had left.)
    rl = limiter(tokens_per_minute=60_000)
    permits = [granted(rl.try_acquire(cost(2, 200), 0.0)) for _ in range(256)]
    random.Random(7).shuffle(permits)
    left = 60_000
    for permit in permits:
        left -= 202
        rl.on_response_headers(RateLimitInfo(tokens_remaining=left), 0.0, permit=permit)
    assert left == 8_288
    assert rl.statistics(0.0).tokens_available == 8_288.0


def test_a_header_for_a_call_released_before_it_still_counts_later_calls() -> None:
    rl = limiter(requests_per_minute=60)
    first = granted(rl.try_acquire(cost(), 0.0))
    later = [granted(rl.try_acquire(cost(), 0.0)) for _ in range(4)]
    rl.release(first, 0.0, "failed")
    # Another client used 5 before the provider admitted the first; the 4 later calls
    # are still out, so they are not in that snapshot.
    rl.on_response_headers(RateLimitInfo(requests_remaining=54), 0.0, permit=first)
    assert rl.statistics(0.0).requests_available == 50.0
    for p in later:
        rl.release(p, 0.0, "completed")


def test_reset_slows_the_refill_to_the_providers() -> None:
    rl = limiter(requests_per_minute=60)
    for _ in range(60):
        granted(rl.try_acquire(cost(), 0.0))
    rl.on_response_headers(RateLimitInfo(requests_remaining=0, requests_reset=240.0), 0.0)
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=4.0, reason="rpm")


def test_bad_figures_raise_and_change_nothing() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    before = rl.statistics(0.0)
    with pytest.raises(ValueError, match="tokens_reset"):
        rl.on_response_headers(
            RateLimitInfo(requests_remaining=1, tokens_remaining=1, tokens_reset=-1.0), 0.0
        )
    assert rl.statistics(0.0) == before


def test_headers_without_figures_change_nothing() -> None:
    rl = limiter(requests_per_minute=60, tokens_per_minute=6000)
    before = rl.statistics(0.0)
    rl.on_response_headers(RateLimitInfo(), 0.0)
    assert rl.statistics(0.0) == before


# -- configuration ---------------------------------------------------------------------------


def test_refund_policy_is_required_with_a_token_limit() -> None:
    with pytest.raises(ValueError, match="refund_unused_tokens is required"):
        RateLimitConfig(requests_per_minute=None, tokens_per_minute=1000)


def test_a_token_limit_alone_can_be_written_in_toml() -> None:
    # TOML has no null: a limit left out is no limit (it used to be a required field,
    # which made a TPM-only config impossible to write in a config file).
    config = msgspec.toml.decode(
        b"tokens_per_minute = 1000\nrefund_unused_tokens = false\n", type=RateLimitConfig
    )
    assert (config.requests_per_minute, config.tokens_per_minute) == (None, 1000)


# -- limits learned from headers ---------------------------------------------------------------


def test_with_no_figure_configured_one_call_goes_first_until_a_response_is_seen() -> None:
    rl = RateLimiter(RateLimitConfig(), now=0.0)
    probe = granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=None, reason="concurrency")
    rl.release(probe, 0.1, "completed")  # no headers: nothing to learn, no slow start
    for _ in range(100):
        granted(rl.try_acquire(cost(), 0.1))


def test_the_first_headers_end_the_slow_start_before_the_probe_completes() -> None:
    rl = RateLimiter(RateLimitConfig(learning_probes=2), now=0.0)
    probes = [granted(rl.try_acquire(cost(), 0.0)) for _ in range(2)]
    assert isinstance(rl.try_acquire(cost(), 0.0), Wait)
    rl.on_response_headers(
        RateLimitInfo(requests_limit=60, requests_remaining=50), 0.0, permit=probes[0]
    )
    for _ in range(50):
        granted(rl.try_acquire(cost(), 0.0))
    assert rl.try_acquire(cost(), 0.0) == Wait(seconds=1.0, reason="rpm")
    with pytest.raises(ValueError, match="learning_probes"):
        RateLimitConfig(learning_probes=-1)


def test_with_no_figure_configured_nothing_is_limited_until_headers_say_so() -> None:
    rl = RateLimiter(RateLimitConfig(learning_probes=0), now=0.0)
    first = [granted(rl.try_acquire(cost(10, 90), 0.0)) for _ in range(500)]
    assert rl.statistics(0.0).requests_per_minute is None
    # The first response reports 60 rpm with 10 left and 6000 tpm with 3000 left.
    info = RateLimitInfo(
        requests_limit=60,
        requests_remaining=10,
        requests_reset=1.0,
        tokens_limit=6000,
        tokens_remaining=3000,
        tokens_reset=30.0,
    )
    rl.on_response_headers(info, 0.0, permit=first[0])
    stats = rl.statistics(0.0)
    assert (stats.requests_ceiling, stats.tokens_ceiling) == (60.0, 6000.0)
    assert (stats.requests_available, stats.tokens_available) == (10.0, 3000.0)
    for _ in range(10):
        granted(rl.try_acquire(cost(10, 90), 0.0))
    wait = rl.try_acquire(cost(10, 90), 0.0)
    assert isinstance(wait, Wait) and wait.reason == "rpm"
    # Permits from before the limits existed reserved nothing: settling them neither
    # refunds nor charges what the headers already counted.
    for permit in first:
        rl.release(permit, 0.0, "unsent")
    assert rl.statistics(0.0).requests_available == 0.0


def test_learning_can_be_switched_off() -> None:
    rl = RateLimiter(RateLimitConfig(learn_from_headers=False), now=0.0)
    rl.on_response_headers(RateLimitInfo(requests_limit=1, requests_remaining=0), 0.0)
    assert rl.statistics(0.0).requests_per_minute is None
    granted(rl.try_acquire(cost(), 0.0))


def test_a_configured_limit_is_kept_and_only_the_missing_one_is_learned() -> None:
    rl = limiter(requests_per_minute=60)
    rl.on_response_headers(RateLimitInfo(requests_limit=600, tokens_limit=1000), 0.0)
    stats = rl.statistics(0.0)
    assert stats.requests_ceiling == 60.0
    assert stats.tokens_ceiling == pytest.approx(1000.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"requests_per_minute": 0, "tokens_per_minute": None}, "requests_per_minute"),
        (
            {
                "requests_per_minute": None,
                "tokens_per_minute": 10,
                "refund_unused_tokens": True,
                "token_burst": 0,
            },
            "token_burst",
        ),
        (
            {"requests_per_minute": None, "tokens_per_minute": None, "request_burst": 5},
            "request_burst needs",
        ),
    ],
)
def test_bad_limits_name_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RateLimitConfig(**kwargs)


def test_config_decodes_from_json_and_refuses_unknown_fields() -> None:
    cfg = msgspec.json.decode(
        b'{"requests_per_minute": 60, "tokens_per_minute": null,'
        b' "concurrency": {"type": "gradient", "max_limit": 100}}',
        type=RateLimitConfig,
    )
    assert cfg.concurrency == GradientConcurrency(max_limit=100)
    assert cfg.adaptive == AIMDConfig()
    with pytest.raises(msgspec.ValidationError, match="rpm"):
        msgspec.json.decode(
            b'{"requests_per_minute": 60, "tokens_per_minute": null, "rpm": 5}',
            type=RateLimitConfig,
        )


def test_token_cost_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="input_tokens"):
        TokenCost(input_tokens=-1, max_tokens=0)
    with pytest.raises(ValueError, match="max_tokens"):
        TokenCost(input_tokens=0, max_tokens=-1)
