"""Rate limits and their headers, faults, /sim/stats and prompt-cache accounting."""

from __future__ import annotations

import anyio
import httpx
import msgspec
import pytest

from providers.errors import OverloadedError, RateLimitError, ServerError, StreamDecodeError
from providers.families import get_family
from providers.ratelimits import parse_rate_limit_headers
from providers.sim import Fault, ModelProfile, RateLimit, SimConfig, open_simulator
from providers.sim.ratelimit import format_duration

from .common import FAMILIES, decode, errors_of, finish_of, post, request, text_of, usage_of

pytestmark = pytest.mark.anyio


# -- rate limits ------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
async def test_rpm_limit_gives_the_family_429(family: str) -> None:
    cfg = SimConfig(rate_limit=RateLimit(rpm=2))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        ok1 = await post(client, sim.base_url, family)
        ok2 = await post(client, sim.base_url, family)
        refused = await post(client, sim.base_url, family)
        assert ok1.status_code == ok2.status_code == 200
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        err = get_family(family).map_error(
            429, refused.headers, refused.content, provider="sim", model="m", now=0.0
        )
        assert isinstance(err, RateLimitError)
        body = refused.json()
        if family in ("openai", "openai-responses"):
            assert (
                body["error"]["code"] == "rate_limit_exceeded"
                and body["error"]["type"] == "requests"
            )
            assert "retry-after-ms" in refused.headers
            # Both requests of the minute are counted, though a sliver has refilled.
            assert "Limit 2, Used 2, Requested 1." in body["error"]["message"]
            info = parse_rate_limit_headers(ok1.headers, 0.0)
            assert (info.requests_limit, info.requests_remaining) == (2, 1)
            assert parse_rate_limit_headers(ok2.headers, 0.0).requests_remaining == 0
            assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        elif family == "anthropic":
            assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
            assert refused.headers["x-should-retry"] == "true"
            assert ok1.headers["anthropic-ratelimit-requests-limit"] == "2"
            assert ok1.headers["anthropic-ratelimit-requests-remaining"] == "1"
            assert ok1.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        else:
            assert body["error"]["status"] == "RESOURCE_EXHAUSTED" and body["error"]["code"] == 429
            assert any(d["@type"].endswith("RetryInfo") for d in body["error"]["details"])
        # limits are per key: another key is served
        path, req = request(family)
        other = await client.post(sim.base_url + path, json=req, headers={"x-api-key": "other"})
        assert other.status_code == 200
        outcomes = sim.stats.snapshot()["by_outcome"]
        assert outcomes == {"ok": 3, "rate_limited": 1}


async def test_tpm_limit_and_key_specific_limits() -> None:
    cfg = SimConfig(
        default_profile=ModelProfile(output_tokens=10),
        rate_limit=RateLimit(tpm=100),
        key_rate_limits={"vip": RateLimit(rpm=1000, tpm=1_000_000)},
    )
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request("openai", max_tokens=60)
        first = await client.post(
            sim.base_url + path, json=body, headers={"authorization": "Bearer a"}
        )
        assert first.status_code == 200
        tokens_left = int(first.headers["x-ratelimit-remaining-tokens"])
        assert 100 - 60 - 10 <= tokens_left < 100 - 60
        assert first.headers["x-ratelimit-limit-tokens"] == "100"
        assert "x-ratelimit-limit-requests" not in first.headers  # no request limit set
        second = await client.post(
            sim.base_url + path, json=body, headers={"authorization": "Bearer a"}
        )
        assert second.status_code == 429
        assert second.json()["error"]["type"] == "tokens"
        for _ in range(3):
            vip = await client.post(
                sim.base_url + path, json=body, headers={"authorization": "Bearer vip"}
            )
            assert vip.status_code == 200
            assert vip.headers["x-ratelimit-limit-requests"] == "1000"


async def test_anthropic_input_and_output_token_limits_are_separate_buckets() -> None:
    """Anthropic limits input tokens (ITPM) and output tokens (OTPM) per minute
    separately; its headers report each, and tokens-* the more restrictive now."""
    cfg = SimConfig(
        default_profile=ModelProfile(output_tokens=10), rate_limit=RateLimit(itpm=1000, otpm=100)
    )
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request("anthropic", text="word " * 40, max_tokens=40)
        first = await client.post(sim.base_url + path, json=body)
        assert first.status_code == 200
        h = first.headers
        info = parse_rate_limit_headers(h, 0.0)
        assert (info.input_tokens_limit, info.output_tokens_limit) == (1000, 100)
        used_in = 1000 - info.input_tokens_remaining  # type: ignore[operator]
        assert 40 <= used_in < 200  # the prompt's estimate, not the output's
        assert info.output_tokens_remaining == 60  # max_tokens reserved
        # 60% of the output budget left against ~90% of the input's: tokens-* is output's.
        assert (info.tokens_limit, info.tokens_remaining) == (100, 60)
        # The answer was 10 tokens of the 40 reserved: Anthropic gives the other 30
        # back, so 90 are left, and the next 40 leave 50.
        second = await client.post(sim.base_url + path, json=body)
        assert second.status_code == 200
        assert second.headers["anthropic-ratelimit-output-tokens-remaining"] == "50"
        # One asking for 95 output tokens with 80 left is refused on OTPM, named so,
        # although the input budget has room.
        path, greedy = request("anthropic", text="word " * 40, max_tokens=95)
        refused = await client.post(sim.base_url + path, json=greedy)
        assert refused.status_code == 429
        message = refused.json()["error"]["message"]
        assert "of 100 output tokens per minute" in message
        err = get_family("anthropic").map_error(
            429, refused.headers, refused.content, provider="sim", model="m", now=0.0
        )
        assert isinstance(err, RateLimitError) and err.limit == "tokens"
        # A long prompt with a small answer is refused on ITPM instead.
        path, big = request("anthropic", text="word " * 4000, max_tokens=1)
        refused = await client.post(sim.base_url + path, json=big, headers={"x-api-key": "k2"})
        assert refused.status_code == 429
        assert "of 1000 input tokens per minute" in refused.json()["error"]["message"]


async def test_anthropic_gives_unused_output_tokens_back_when_the_answer_ends() -> None:
    # Anthropic estimates OTPM from max_tokens at the start and adjusts it at the
    # end: while a call streams, its whole max_tokens is held.
    cfg = SimConfig(
        default_profile=ModelProfile(output_tokens=10, tokens_per_second=40),
        rate_limit=RateLimit(itpm=100_000, otpm=100),
    )
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request("anthropic", max_tokens=40)
        async with client.stream("POST", sim.base_url + path, json=body) as streaming:
            assert streaming.headers["anthropic-ratelimit-output-tokens-remaining"] == "60"
            # Admitted while the first streams: 40 + 40 held, its unused 30 not back.
            second = await client.post(
                sim.base_url + path, json={**body, "stream": False, "max_tokens": 40}
            )
            assert second.headers["anthropic-ratelimit-output-tokens-remaining"] == "20"
            await streaming.aread()
        # Both ended, 10 used each: 80 left (and a little refilled), less the next 40.
        third = await client.post(sim.base_url + path, json=body)
        assert 40 <= int(third.headers["anthropic-ratelimit-output-tokens-remaining"]) <= 43


def test_limits_must_be_positive() -> None:
    for name in ("rpm", "tpm", "itpm", "otpm"):
        with pytest.raises(ValueError, match=f"RateLimit: {name} must be >= 1"):
            RateLimit(**{name: 0})


def test_openai_duration_format() -> None:
    assert format_duration(0.02) == "20ms"
    assert format_duration(1.0) == "1s"
    assert format_duration(17.28) == "17.28s"
    assert format_duration(360.0) == "6m0s"


async def test_unknown_keys_refused_when_keys_configured() -> None:
    async with open_simulator(SimConfig(api_keys=["good"])) as sim, httpx.AsyncClient() as client:
        path, body = request("anthropic")
        r = await client.post(sim.base_url + path, json=body, headers={"x-api-key": "bad"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await client.post(sim.base_url + path, json=body, headers={"x-api-key": "good"})
        assert r.status_code == 200


# -- faults -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 529])
@pytest.mark.parametrize("family", FAMILIES)
async def test_status_fault_before_first_byte(family: str, status: int) -> None:
    cfg = SimConfig(faults=[Fault(kind="status", status=status)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, family)
        assert r.status_code == status
        err = get_family(family).map_error(
            status, r.headers, r.content, provider="sim", model="m", now=0.0
        )
        assert isinstance(err, (ServerError, OverloadedError)) and err.retryable
        if status == 502:
            assert r.headers["content-type"] == "text/html"
        elif family == "anthropic" and status == 529:
            assert r.json()["error"]["type"] == "overloaded_error"
        assert sim.stats.snapshot()["by_outcome"] == {f"fault:status_{status}": 1}


@pytest.mark.parametrize("family", FAMILIES)
async def test_disconnect_fault(family: str) -> None:
    cfg = SimConfig(faults=[Fault(kind="disconnect", after=3)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request(family)
        got = b""
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", sim.base_url + path, json=body) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    got += chunk
        dec = get_family(family).stream_decoder()
        dec.feed(got)
        assert not dec.done
        with pytest.raises(StreamDecodeError):
            dec.end()
        with pytest.raises(httpx.RemoteProtocolError):
            await post(client, sim.base_url, family, stream=False)
        assert sim.stats.snapshot()["by_outcome"] == {"fault:disconnect": 2}


@pytest.mark.parametrize("then", ["continue", "drop"])
async def test_stall_fault(then: str) -> None:
    cfg = SimConfig(faults=[Fault(kind="stall", after=2, duration=0.2, then=then)])  # type: ignore[arg-type]
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        t0 = anyio.current_time()
        if then == "continue":
            r = await post(client, sim.base_url, "anthropic")
            assert finish_of(decode("anthropic", r.content)) == "stop"
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, sim.base_url, "anthropic")
        assert anyio.current_time() - t0 >= 0.2 - 0.002
        assert sim.stats.snapshot()["by_outcome"] == {"fault:stall": 1}


@pytest.mark.parametrize("family", FAMILIES)
async def test_malformed_chunk(family: str) -> None:
    cfg = SimConfig(faults=[Fault(kind="malformed", after=3)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request(family)
        got = b""
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", sim.base_url + path, json=body) as r:
                async for chunk in r.aiter_raw():
                    got += chunk
        with pytest.raises(StreamDecodeError):
            decode(family, got)


@pytest.mark.parametrize("family", FAMILIES)
async def test_error_event_inside_a_200_stream(family: str) -> None:
    cfg = SimConfig(faults=[Fault(kind="error_event", after=4)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, family)
        assert r.status_code == 200
        if family == "anthropic":
            assert (
                b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"'
                in r.content
            )
        if family == "openai-responses":
            assert b"event: response.failed\n" in r.content
        events = decode(family, r.content)
        (error,) = errors_of(events)
        assert error.retryable
        if family == "anthropic":
            assert error.provider_type == "overloaded_error"
        assert sim.stats.snapshot()["by_outcome"] == {"fault:error_event": 1}


async def test_a_responses_failure_past_a_short_streams_end_numbers_on() -> None:
    # The fault's event number is past the end: the error replaces the last event,
    # and its sequence number follows the ones sent (0, 1, ... n-1, then n).
    cfg = SimConfig(faults=[Fault(kind="error_event", after=500)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, "openai-responses", max_tokens=3)
    numbers = [
        msgspec.json.decode(line[6:])["sequence_number"]
        for line in r.content.split(b"\n")
        if line.startswith(b"data: ")
    ]
    assert numbers == list(range(len(numbers)))
    assert b"event: response.failed\n" in r.content


async def test_slow_headers() -> None:
    cfg = SimConfig(faults=[Fault(kind="slow_headers", duration=0.2)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        t0 = anyio.current_time()
        r = await post(client, sim.base_url, "openai")
        assert r.status_code == 200 and finish_of(decode("openai", r.content)) == "stop"
        assert anyio.current_time() - t0 >= 0.2 - 0.002
        assert sim.stats.snapshot()["by_outcome"] == {"fault:slow_headers": 1}


async def test_fault_window_and_filters() -> None:
    async with open_simulator(SimConfig()) as sim, httpx.AsyncClient() as client:
        sim.set_faults([Fault(kind="status", status=503, start=1000.0)])  # later: off now
        assert (await post(client, sim.base_url, "openai")).status_code == 200
        sim.set_faults([Fault(kind="status", status=503, start=0.0, end=1000.0)])  # an outage now
        assert (await post(client, sim.base_url, "openai")).status_code == 503
        sim.set_faults([Fault(kind="status", status=503, families=["anthropic"])])
        assert (await post(client, sim.base_url, "openai")).status_code == 200
        assert (await post(client, sim.base_url, "anthropic")).status_code == 503
        sim.set_faults([Fault(kind="status", status=503, models=["other"], streaming=True)])
        assert (await post(client, sim.base_url, "openai")).status_code == 200


async def test_fault_rate_is_seeded_and_retries_are_drawn_afresh() -> None:
    async def run() -> list[int]:
        cfg = SimConfig(faults=[Fault(kind="status", status=500, rate=0.5, seed=11)])
        async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
            out = []
            for i in range(30):
                out.append(
                    (
                        await post(client, sim.base_url, "openai", text=f"q{i % 5}", stream=False)
                    ).status_code
                )
            return out

    first, second = await run(), await run()
    assert first == second
    assert 5 < first.count(500) < 25
    # each prompt was asked six times: not always the same answer
    per_prompt = [{first[i] for i in range(k, 30, 5)} for k in range(5)]
    assert any(len(s) == 2 for s in per_prompt)


# -- stats ----------------------------------------------------------------------------


async def test_stats_count_by_key_model_and_outcome() -> None:
    cfg = SimConfig(key_rate_limits={"limited": RateLimit(rpm=1)})
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        for key, model in [
            ("a", "m1"),
            ("a", "m1"),
            ("a", "m2"),
            ("limited", "m1"),
            ("limited", "m1"),
        ]:
            path, body = request("openai", model=model)
            await client.post(
                sim.base_url + path, json=body, headers={"authorization": f"Bearer {key}"}
            )
        stats = (await client.get(sim.base_url + "/sim/stats")).json()
        assert stats["requests"] == 5
        assert stats["by_key"] == {"a": 3, "limited": 2}
        assert stats["by_model"] == {"m1": 4, "m2": 1}
        assert stats["by_outcome"] == {"ok": 4, "rate_limited": 1}
        assert {
            "key": "a",
            "model": "m1",
            "family": "openai",
            "outcome": "ok",
            "count": 2,
        } in stats["counts"]
        assert stats["tokens"]["output"] == 4 * 48
        assert len(stats["log"]) == 5
        # Every API request is counted, not only generations: a model listing (a
        # health check) and an unknown URL, with no model; the simulator's own
        # /sim/* endpoints are not.
        await client.get(sim.openai_base_url + "/models", headers={"authorization": "Bearer a"})
        await client.post(sim.base_url + "/v1/nothing", json={})
        stats = (await client.get(sim.base_url + "/sim/stats")).json()
        assert stats["requests"] == 7
        assert stats["by_family"] == {"openai": 5, "models": 1, "unknown": 1}
        assert stats["by_outcome"] == {"ok": 5, "rate_limited": 1, "not_found": 1}
        await client.post(sim.base_url + "/sim/reset")
        assert (await client.get(sim.base_url + "/sim/stats")).json()["requests"] == 0


async def test_a_client_that_hangs_up_before_a_non_streaming_answer_is_counted_so() -> None:
    cfg = SimConfig(default_profile=ModelProfile(ttft=0.3))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        path, body = request("openai", stream=False)
        with pytest.raises(httpx.ReadTimeout):
            await client.post(sim.base_url + path, json=body, timeout=0.05)
        with anyio.fail_after(5):
            while sim.stats.snapshot()["requests"] == 0:  # noqa: ASYNC110 (no event to wait on)
                await anyio.sleep(0.02)
        assert sim.stats.snapshot()["by_outcome"] == {"client_disconnected": 1}


# -- prompt cache -----------------------------------------------------------------------

LONG = "the shared prefix of every request " * 40  # about 350 tokens


@pytest.mark.parametrize("family", ["openai", "openai-responses", "gemini"])
async def test_repeated_prefix_is_cached(family: str) -> None:
    cfg = SimConfig(default_profile=ModelProfile(cache_min_tokens=128))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        if family == "gemini":
            sys_msgs = [
                {"role": "user", "parts": [{"text": LONG}]},
                {"role": "model", "parts": [{"text": "ok"}]},
            ]
            a = [*sys_msgs, {"role": "user", "parts": [{"text": "first"}]}]
            b = [*sys_msgs, {"role": "user", "parts": [{"text": "second"}]}]
        else:
            sys_msgs = [{"role": "system", "content": LONG}]
            a = [*sys_msgs, {"role": "user", "content": "first"}]
            b = [*sys_msgs, {"role": "user", "content": "second"}]
        u1 = usage_of(
            decode(family, (await post(client, sim.base_url, family, messages=a)).content)
        )
        u2 = usage_of(
            decode(family, (await post(client, sim.base_url, family, messages=b)).content)
        )
        assert u1.cache_read_tokens == 0
        assert 128 <= u2.cache_read_tokens <= u2.input_tokens
        if family != "gemini":
            assert u2.cache_read_tokens % 128 == 0  # OpenAI reports 128-token steps
        # another key does not share the cache
        path, body = request(family, messages=b)
        other = await client.post(
            sim.base_url + path, json=body, headers={"authorization": "Bearer other"}
        )
        assert usage_of(decode(family, other.content)).cache_read_tokens == 0
        assert sim.stats.snapshot()["tokens"]["cached"] == u2.cache_read_tokens


async def test_anthropic_cache_control_writes_then_reads() -> None:
    cfg = SimConfig(default_profile=ModelProfile(cache_min_tokens=128))
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        usages = []
        for question in ("first", "second"):
            path, body = request("anthropic", text=question)
            body["system"] = system
            r = await client.post(sim.base_url + path, json=body)
            usages.append(r)
        m1 = next(line for line in usages[0].text.splitlines() if '"message_start"' in line)
        m2 = next(line for line in usages[1].text.splitlines() if '"message_start"' in line)
        assert '"cache_creation_input_tokens":0' not in m1 and '"cache_read_input_tokens":0' in m1
        assert '"cache_read_input_tokens":0' not in m2 and '"cache_creation_input_tokens":0' in m2
        # message_start carries the whole usage object, the write broken down by TTL.
        start = msgspec.json.decode(m1[len("data: ") :])["message"]["usage"]
        written = start["cache_creation_input_tokens"]
        assert start["cache_creation"] == {
            "ephemeral_5m_input_tokens": written,
            "ephemeral_1h_input_tokens": 0,
        }
        assert start["output_tokens"] == 1 and start["service_tier"] == "standard"
        u1 = usage_of(decode("anthropic", usages[0].content))
        u2 = usage_of(decode("anthropic", usages[1].content))
        assert u1.cache_write_tokens > 100 and u1.cache_read_tokens == 0
        assert u2.cache_read_tokens == u1.cache_write_tokens and u2.cache_write_tokens == 0
        assert u1.input_tokens == u2.input_tokens  # normalized: every prompt token
        # without a breakpoint nothing is cached
        path, body = request("anthropic", text="third")
        body["system"] = LONG
        r = await client.post(sim.base_url + path, json=body)
        u3 = usage_of(decode("anthropic", r.content))
        assert u3.cache_read_tokens == 0 and u3.cache_write_tokens == 0


async def test_text_is_unchanged_by_faults_that_continue() -> None:
    async with open_simulator(SimConfig()) as sim, httpx.AsyncClient() as client:
        plain = text_of(decode("openai", (await post(client, sim.base_url, "openai")).content))
        sim.set_faults([Fault(kind="stall", after=1, duration=0.01)])
        stalled = text_of(decode("openai", (await post(client, sim.base_url, "openai")).content))
        assert plain == stalled


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_paced_faults_on_asyncio(anyio_backend: str) -> None:
    profile = ModelProfile(output_tokens=6, ttft=0.01, tokens_per_second=200)
    cfg = SimConfig(default_profile=profile, faults=[Fault(kind="stall", after=3, duration=0.05)])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, "anthropic")
        assert finish_of(decode("anthropic", r.content)) == "stop"
        sim.set_faults([Fault(kind="disconnect", after=4)])
        with pytest.raises(httpx.RemoteProtocolError):
            await post(client, sim.base_url, "openai")
        sim.set_faults([])
        r = await post(client, sim.base_url, "gemini")
        assert len(text_of(decode("gemini", r.content)).split()) == 6
        assert sim.stats.snapshot()["by_outcome"] == {
            "fault:stall": 1,
            "fault:disconnect": 1,
            "ok": 1,
        }


async def test_faults_over_http() -> None:
    async with open_simulator(SimConfig()) as sim, httpx.AsyncClient() as client:
        r = await client.post(
            sim.base_url + "/sim/faults", json=[{"kind": "status", "status": 502}]
        )
        assert r.json() == {"faults": 1}
        assert (await client.get(sim.base_url + "/sim/faults")).json()[0]["status"] == 502
        assert (await post(client, sim.base_url, "openai")).status_code == 502
        r = await client.post(sim.base_url + "/sim/faults", json=[{"kind": "nonsense"}])
        assert r.status_code == 400
        await client.post(sim.base_url + "/sim/faults", json=[])
        assert (await post(client, sim.base_url, "openai")).status_code == 200
