"""Anthropic's separate input- and output-token limits (ITPM, OTPM): on virtual time
through the RateLimiter, and end to end against the simulator enforcing them.

The case that matters: a long prompt with a short answer. With one TPM bucket
learned from ``anthropic-ratelimit-tokens-*`` (the more restrictive of the two,
here the output limit) and charged input + max_tokens, the limiter admitted about
one call a minute where Anthropic admits forty at once.
"""

from __future__ import annotations

import anyio
import pytest

from providers import Message, Request
from providers.ratelimits import RateLimitInfo
from providers.sim import ModelProfile, RateLimit, SimConfig
from swarm import EngineConfig, open_engine
from swarm.ratelimit import Permit, RateLimitConfig, RateLimiter, TokenCost, Wait


def anthropic_info(
    input_remaining: int, output_remaining: int, *, input_limit: int = 100_000
) -> RateLimitInfo:
    """Headers as Anthropic sends them: each limit, and tokens-* the scarcer one."""
    output_limit = 2_000
    scarcer = min(
        (input_remaining / input_limit, input_limit, input_remaining),
        (output_remaining / output_limit, output_limit, output_remaining),
    )
    return RateLimitInfo(
        requests_limit=4_000,
        requests_remaining=3_999,
        tokens_limit=scarcer[1],
        tokens_remaining=scarcer[2],
        input_tokens_limit=input_limit,
        input_tokens_remaining=input_remaining,
        output_tokens_limit=output_limit,
        output_tokens_remaining=output_remaining,
    )


LONG_PROMPT = TokenCost(input_tokens=2_000, max_tokens=50)


def granted(result: Permit | Wait) -> Permit:
    assert isinstance(result, Permit), result
    return result


def test_learned_separately_a_long_prompt_is_limited_by_what_each_limit_allows() -> None:
    rl = RateLimiter(RateLimitConfig(), now=0.0)
    first = granted(rl.try_acquire(LONG_PROMPT, 0.0))  # the learning probe
    rl.on_response_headers(anthropic_info(98_000, 1_950), 0.0, permit=first)
    stats = rl.statistics(0.0)
    assert stats.tokens_per_minute is None  # tokens-* is not a limit of its own
    assert stats.input_tokens_per_minute == pytest.approx(100_000)
    assert stats.output_tokens_per_minute == pytest.approx(2_000)
    # 1,950 output tokens left at 50 a call: 39 more now (the input side has room
    # for 49), then the output limit binds.
    permits = [granted(rl.try_acquire(LONG_PROMPT, 0.0)) for _ in range(39)]
    wait = rl.try_acquire(LONG_PROMPT, 0.0)
    assert isinstance(wait, Wait) and wait.reason == "otpm"
    assert wait.seconds == pytest.approx(50 / (2_000 / 60))
    assert all(p.input_tokens == 2_000 and p.output_tokens == 50 for p in permits)


def test_input_and_output_settle_to_the_reported_usage_both_ways() -> None:
    rl = RateLimiter(
        RateLimitConfig(input_tokens_per_minute=10_000, output_tokens_per_minute=1_000), now=0.0
    )
    permit = granted(rl.try_acquire(TokenCost(input_tokens=4_000, max_tokens=500), 0.0))
    before = rl.statistics(0.0)
    assert (before.input_tokens_available, before.output_tokens_available) == (6_000, 500)
    # A cache read made the prompt cheaper than estimated; the answer was short.
    rl.release(
        permit, 0.0, "completed", usage_tokens=3_000, usage_input_tokens=2_500,
        usage_output_tokens=120,
    )  # fmt: skip
    after = rl.statistics(0.0)
    assert (after.input_tokens_available, after.output_tokens_available) == (7_500, 880)
    # A longer prompt than estimated is charged the difference (the bucket may owe).
    permit = granted(rl.try_acquire(TokenCost(input_tokens=1_000, max_tokens=100), 0.0))
    rl.release(permit, 0.0, "completed", usage_input_tokens=9_000, usage_output_tokens=100)
    assert rl.statistics(0.0).input_tokens_available == 7_500 - 9_000


def test_an_unsent_call_refunds_both_and_a_token_429_empties_both() -> None:
    rl = RateLimiter(
        RateLimitConfig(input_tokens_per_minute=10_000, output_tokens_per_minute=1_000), now=0.0
    )
    permit = granted(rl.try_acquire(TokenCost(input_tokens=4_000, max_tokens=500), 0.0))
    rl.release(permit, 0.0, "unsent")
    full = rl.statistics(0.0)
    assert (full.input_tokens_available, full.output_tokens_available) == (10_000, 1_000)
    permit = granted(rl.try_acquire(TokenCost(input_tokens=10, max_tokens=10), 0.0))
    rl.release(permit, 0.0, "rate_limited", retry_after=2.0, limit="tokens")
    hit = rl.statistics(0.0)
    # "tokens" cannot say which: both are emptied, and admission pauses.
    assert (hit.input_tokens_available, hit.output_tokens_available) == (0, 0)
    assert hit.paused_for == 2.0
    assert rl.try_acquire(TokenCost(input_tokens=1, max_tokens=1), 1.0) == Wait(
        seconds=1.0, reason="paused"
    )


def test_the_input_side_binds_for_a_prompt_too_long_for_it() -> None:
    rl = RateLimiter(RateLimitConfig(), now=0.0)
    first = granted(rl.try_acquire(LONG_PROMPT, 0.0))
    rl.on_response_headers(anthropic_info(6_000, 1_950, input_limit=8_000), 0.0, permit=first)
    granted(rl.try_acquire(LONG_PROMPT, 0.0))
    granted(rl.try_acquire(LONG_PROMPT, 0.0))
    granted(rl.try_acquire(LONG_PROMPT, 0.0))
    wait = rl.try_acquire(LONG_PROMPT, 0.0)
    assert isinstance(wait, Wait) and wait.reason == "itpm"


def test_separate_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="input_tokens_per_minute must be >= 1"):
        RateLimitConfig(input_tokens_per_minute=0)
    with pytest.raises(ValueError, match="output_tokens_per_minute must be >= 1"):
        RateLimitConfig(output_tokens_per_minute=-5)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_against_the_simulators_anthropic_limits_the_first_minutes_burst_goes_through(
    anyio_backend: str,
) -> None:
    # itpm 100,000 / otpm 2,000, prompts of ~1,600 tokens answered in at most 50:
    # Anthropic admits 40 at once (the output side's 2,000 / 50). Before the input
    # and output limits were kept apart, two of them got through in 20 s.
    sim = SimConfig(
        default_profile=ModelProfile(output_tokens=50),
        rate_limit=RateLimit(itpm=100_000, otpm=2_000),
    )
    requests = [
        Request(
            model="sim-anthropic/claude-sim",
            messages=[Message.user("word " * 1_600 + str(i))],
            max_tokens=50,
        )
        for i in range(40)
    ]
    async with open_engine(EngineConfig(simulator=True), simulator=sim, env={}) as engine:
        with anyio.fail_after(60):  # bounded: the burst takes well under a second
            results = [r async for r in engine.map(requests, concurrency=40)]
        stats = (await engine.rate_limit_statistics())["sim-anthropic"]["claude-sim"]
    assert all(r.ok for r in results)
    assert stats.rate_limited == 0
    assert stats.output_tokens_per_minute == pytest.approx(2_000)
    assert stats.input_tokens_per_minute == pytest.approx(100_000)
    assert stats.tokens_per_minute is None


def test_what_a_permits_own_headers_reported_is_not_settled_again() -> None:
    """The provider charges the actual input at admission, and its headers for the
    call say so; settling the difference from the usage again would count it twice.
    The unused output it gives back at the end is still given back here."""
    rl = RateLimiter(RateLimitConfig(), now=0.0)
    probe = granted(rl.try_acquire(LONG_PROMPT, 0.0))
    rl.on_response_headers(anthropic_info(98_000, 1_950), 0.0, permit=probe)
    rl.release(probe, 0.0, "completed", usage_input_tokens=2_000, usage_output_tokens=50)
    permit = granted(rl.try_acquire(LONG_PROMPT, 0.0))  # reserves 2,000 in, 50 out
    # Its headers: the provider charged 2,400 input (more than estimated), 50 output.
    rl.on_response_headers(anthropic_info(98_000 - 2_400, 1_900), 0.0, permit=permit)
    level = rl.statistics(0.0)
    assert level.input_tokens_available == pytest.approx(95_600)
    rl.release(permit, 0.0, "completed", usage_input_tokens=2_400, usage_output_tokens=10)
    after = rl.statistics(0.0)
    assert after.input_tokens_available == pytest.approx(95_600)  # not 95,200
    assert after.output_tokens_available == pytest.approx(level.output_tokens_available + 40)
