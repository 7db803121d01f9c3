"""The backend seam: serializable messages, LocalBackend on trio and asyncio, cancellation."""

from __future__ import annotations

import anyio
import msgspec
import pytest
import trio
import trio.testing

from providers.ratelimits import RateLimitInfo
from swarm.ratelimit import (
    AcquireRequest,
    Feedback,
    HeadersFeedback,
    LocalBackend,
    Permit,
    RateLimitBackend,
    RateLimitConfig,
    RateLimitedFeedback,
    RateLimiter,
    RateLimitPermitError,
    ReleaseRequest,
    TokenCost,
    Wait,
)

COST = TokenCost(input_tokens=100, max_tokens=100)


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def backend(rpm: int = 60) -> tuple[LocalBackend, RateLimiter]:
    limiter = RateLimiter(RateLimitConfig(requests_per_minute=rpm, tokens_per_minute=None), now=0.0)
    return LocalBackend(limiter), limiter


def test_local_backend_implements_the_protocol() -> None:
    assert isinstance(backend()[0], RateLimitBackend)


@pytest.mark.parametrize("codec", [msgspec.json, msgspec.msgpack])
def test_every_message_survives_the_wire(codec: object) -> None:
    encode = codec.encode  # type: ignore[attr-defined]
    decode = codec.decode  # type: ignore[attr-defined]
    permit = Permit(id=7, granted_at=1.5, tokens=200, holds_request=True, holds_tokens=True)
    messages: list[object] = [
        AcquireRequest(cost=COST, now=1.0),
        ReleaseRequest(
            permit=permit, now=2.0, outcome="rate_limited", retry_after=1.5, limit="tokens"
        ),
        HeadersFeedback(
            info=RateLimitInfo(requests_remaining=3, tokens_reset=1.25), now=2.0, permit=permit
        ),
        RateLimitedFeedback(now=3.0, retry_after=2.0, limit="requests", sent_at=1.0),
    ]
    for message in messages:
        assert decode(encode(message), type=type(message)) == message
    for message in messages[2:]:
        assert decode(encode(message), type=Feedback) == message
    for result in (
        permit,
        Wait(seconds=None, reason="concurrency"),
        Wait(seconds=1.0, reason="rpm"),
    ):
        assert decode(encode(result), type=Permit | Wait) == result


@pytest.mark.anyio
async def test_acquire_release_and_feedback_reach_the_limiter() -> None:
    be, limiter = backend()
    permit = await be.acquire(AcquireRequest(cost=COST, now=0.0))
    assert isinstance(permit, Permit)
    await be.feedback(
        HeadersFeedback(info=RateLimitInfo(requests_remaining=10), now=0.0, permit=permit)
    )
    assert (await be.statistics(0.0)).requests_available == 10.0
    await be.release(ReleaseRequest(permit=permit, now=1.0, outcome="completed"))
    await be.feedback(RateLimitedFeedback(now=1.0, retry_after=5.0))
    assert await be.acquire(AcquireRequest(cost=COST, now=2.0)) == Wait(
        seconds=4.0, reason="paused"
    )
    stats = limiter.statistics(2.0)
    assert (stats.grants, stats.released, stats.rate_limited) == (1, 1, 1)
    with pytest.raises(RateLimitPermitError):
        await be.release(ReleaseRequest(permit=permit, now=3.0, outcome="completed"))


@pytest.mark.anyio
async def test_a_cancelled_acquire_takes_nothing() -> None:
    be, limiter = backend()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await be.acquire(AcquireRequest(cost=COST, now=0.0))
        pytest.fail("a cancelled acquire returned")
    assert scope.cancelled_caught
    stats = limiter.statistics(0.0)
    assert (stats.grants, stats.inflight, stats.requests_available) == (0, 0, 60.0)


@pytest.mark.anyio
async def test_release_and_feedback_happen_even_in_a_cancelled_scope() -> None:
    be, limiter = backend()
    permit = await be.acquire(AcquireRequest(cost=COST, now=0.0))
    assert isinstance(permit, Permit)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await be.release(ReleaseRequest(permit=permit, now=0.0, outcome="unsent"))
        await be.feedback(RateLimitedFeedback(now=0.0, retry_after=1.0))
    # The scope's cancellation is still pending: the next checkpoint delivers it; the
    # operations themselves were not interrupted.
    stats = limiter.statistics(0.0)
    assert (stats.inflight, stats.released, stats.requests_available) == (0, 1, 0.0)
    assert stats.rate_limited == 1


@pytest.mark.trio
async def test_an_actor_following_waits_runs_at_exactly_the_allowed_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An actor loop on trio's virtual clock: RPM 60 with a burst of 2 grants at
    0, 0, 1, 2, 3, ... seconds, and a 429 with retry-after 5 pauses it exactly."""
    be = LocalBackend(
        RateLimiter(
            RateLimitConfig(requests_per_minute=60, tokens_per_minute=None, request_burst=2),
            now=trio.current_time(),
        )
    )
    t0 = trio.current_time()
    granted_at: list[float] = []

    async def admit() -> Permit:
        while True:
            result = await be.acquire(AcquireRequest(cost=COST, now=trio.current_time()))
            if isinstance(result, Permit):
                granted_at.append(trio.current_time() - t0)
                return result
            assert result.seconds is not None
            await trio.sleep(result.seconds)

    for _ in range(5):
        permit = await admit()
        await be.release(
            ReleaseRequest(permit=permit, now=trio.current_time(), outcome="completed")
        )
    assert granted_at == [0.0, 0.0, 1.0, 2.0, 3.0]
    await be.feedback(RateLimitedFeedback(now=trio.current_time(), retry_after=5.0))
    await admit()
    assert granted_at[-1] == 8.0
