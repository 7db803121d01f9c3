"""Each endpoint in each mode, decoded by our own family decoders; formats; the
in-process context manager on both backends; reproducibility; length caps."""

from __future__ import annotations

import socket

import anyio
import httpx
import msgspec
import pytest

from providers.families import get_family
from providers.sim import ModelProfile, SimConfig, open_simulator
from providers.sim.config import load_config
from providers.sim.text import corpus

from .common import (
    FAMILIES,
    WEATHER_SCHEMA,
    decode,
    finish_of,
    post,
    request,
    text_of,
    usage_of,
)

pytestmark = pytest.mark.anyio

FAST = SimConfig(seed=7, default_profile=ModelProfile(output_tokens=20))


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_context_manager_serves_on_both_backends(anyio_backend: str) -> None:
    async with open_simulator(FAST) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
        assert sim.openai_base_url == sim.base_url + "/v1"
        assert sim.anthropic_base_url == sim.base_url
        async with httpx.AsyncClient() as client:
            for family in FAMILIES:
                r = await post(client, sim.base_url, family)
                assert r.status_code == 200
                assert finish_of(decode(family, r.content)) == "stop"
    # the port is closed once the block is left
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", sim.port), timeout=2):
        pass


@pytest.mark.parametrize("family", FAMILIES)
async def test_streaming_endpoint(family: str) -> None:
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, family)
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["content-type"].startswith("text/event-stream")
        events = decode(family, r.content)
        text = text_of(events)
        assert len(text.split()) == 20
        assert len(set(text.split())) > 5  # readable-looking, not one repeated word
        assert text[0].isupper()
        assert finish_of(events) == "stop"
        usage = usage_of(events)
        assert usage.output_tokens == 20
        assert usage.input_tokens >= 1


@pytest.mark.parametrize("family", FAMILIES)
async def test_non_streaming_endpoint_matches_stream(family: str) -> None:
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        streamed = text_of(decode(family, (await post(client, sim.base_url, family)).content))
        r = await post(client, sim.base_url, family, stream=False)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert int(r.headers["content-length"]) == len(r.content)
        response = get_family(family).decode_response(r.content)
        assert response.text == streamed
        assert response.finish_reason == "stop"
        assert response.usage.output_tokens == 20


async def test_wire_details() -> None:
    """Byte-level details each family's clients rely on."""
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        chat = (await post(client, sim.base_url, "openai")).content
        assert chat.endswith(b"data: [DONE]\n\n")
        assert b'"choices":[],"usage":{"prompt_tokens":' in chat
        assert b'"delta":{"role":"assistant","content":"","refusal":null}' in chat
        assert b"event:" not in chat

        ant = (await post(client, sim.base_url, "anthropic")).content.decode()
        names = [line[7:] for line in ant.splitlines() if line.startswith("event: ")]
        assert names[:3] == ["message_start", "content_block_start", "ping"]
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert set(names[3:-3]) == {"content_block_delta"}

        resp = (await post(client, sim.base_url, "openai-responses")).content.decode()
        names = [line[7:] for line in resp.splitlines() if line.startswith("event: ")]
        assert names[:4] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert names[-4:] == [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        seqs = [
            msgspec.json.decode(line[6:])["sequence_number"]
            for line in resp.splitlines()
            if line.startswith("data: ")
        ]
        assert seqs == list(range(len(seqs)))

        gem = (await post(client, sim.base_url, "gemini")).content
        assert gem.startswith(b'data: {"candidates": [{"content": {"parts": [{"text": "')
        assert gem.endswith(b"\r\n\r\n")
        assert gem.count(b"\r\n\r\n") == 20
        assert b'"finishReason": "STOP"' in gem


@pytest.mark.parametrize("family", ["openai", "openai-responses"])
async def test_openai_delta_events_carry_obfuscation_padding_unless_turned_off(
    family: str,
) -> None:
    """OpenAI pads streamed deltas with a random-length "obfuscation" field by
    default; clients must ignore it, and stream_options.include_obfuscation=false
    removes it."""
    tools = [("get_weather", WEATHER_SCHEMA)]
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        for kw in ({}, {"tools": tools}):  # text deltas, then tool-argument deltas
            path, body = request(family, **kw)  # type: ignore[arg-type]
            url, headers = sim.base_url + path, {"authorization": "Bearer sk-test"}
            padded = (await client.post(url, json=body, headers=headers)).content
            body["stream_options"] = {
                **body.get("stream_options", {}),
                "include_obfuscation": False,
            }
            plain = (await client.post(url, json=body, headers=headers)).content
            chunks = [
                msgspec.json.decode(line[6:])
                for line in padded.decode().splitlines()
                if line.startswith("data: {")
            ]
            deltas = [
                c for c in chunks if c.get("choices") or str(c.get("type", "")).endswith(".delta")
            ]
            assert deltas and all(isinstance(c.get("obfuscation"), str) for c in deltas)
            assert len({len(c["obfuscation"]) for c in deltas}) > 1  # lengths vary
            assert b'"obfuscation"' not in plain
            # Our decoder reads the same stream either way.
            assert decode(family, padded) == decode(family, plain)


async def test_keep_alive_reuses_one_connection() -> None:
    async with open_simulator(FAST) as sim:
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as s:
            path, body = request("openai", stream=False)
            raw = msgspec.json.encode(body)
            req = (
                f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                f"content-length: {len(raw)}\r\n\r\n"
            ).encode() + raw
            await s.send(req + req)  # pipelined
            data = b""
            with anyio.fail_after(10):
                while data.count(b"HTTP/1.1 200 OK") < 2 or not data.endswith(b"}"):
                    data += await s.receive()
        assert sim.stats.snapshot()["requests"] == 2


async def test_models_listings() -> None:
    cfg = SimConfig(models={"gpt-a": ModelProfile(), "gpt-b": ModelProfile()})
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await client.get(sim.openai_base_url + "/models")
        assert [m["id"] for m in r.json()["data"]] == ["gpt-a", "gpt-b"]
        assert r.json()["object"] == "list"
        r = await client.get(
            sim.base_url + "/v1/models", headers={"anthropic-version": "2023-06-01"}
        )
        assert r.json()["data"][0]["type"] == "model" and r.json()["has_more"] is False
        r = await client.get(sim.gemini_base_url + "/models")
        assert r.json()["models"][0]["name"] == "models/gpt-a"


async def test_models_listings_check_the_key_in_each_familys_error_shape() -> None:
    cfg = SimConfig(api_keys=["sk-good"])
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        ok = await client.get(
            sim.openai_base_url + "/models", headers={"authorization": "Bearer sk-good"}
        )
        assert ok.status_code == 200
        r = await client.get(
            sim.openai_base_url + "/models", headers={"authorization": "Bearer sk-bad"}
        )
        assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
        r = await client.get(
            sim.base_url + "/v1/models",
            headers={"anthropic-version": "2023-06-01", "x-api-key": "sk-bad"},
        )
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        # The Gemini API answers a bad key 400 INVALID_ARGUMENT, its ErrorInfo's reason
        # API_KEY_INVALID (not 401).
        r = await client.get(sim.gemini_base_url + "/models", headers={"x-goog-api-key": "bad"})
        error = r.json()["error"]
        assert (r.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
        assert error["details"][0]["reason"] == "API_KEY_INVALID"
        assert error["message"] == "API key not valid. Please pass a valid API key."
        stats = sim.stats.snapshot()
        assert stats["by_family"] == {"models": 4}
        assert stats["by_outcome"] == {"ok": 1, "unauthorized": 3}


async def test_unknown_model_and_path_and_bad_json() -> None:
    cfg = SimConfig(strict_models=True, models={"known": ModelProfile()})
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, "openai", model="unknown")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "model_not_found"
        r = await post(client, sim.base_url, "anthropic", model="unknown")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
        r = await client.post(sim.base_url + "/v1/nothing", json={})
        assert r.status_code == 404
        r = await client.post(sim.openai_base_url + "/chat/completions", content=b"{not json")
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"
        r = await client.post(
            sim.base_url + "/v1/messages", json={"model": "known", "messages": []}
        )
        assert r.status_code == 400 and r.json()["type"] == "error"
        stats = sim.stats.snapshot()
        # Two unknown models and the unknown URL (family "unknown": no model).
        assert stats["by_outcome"] == {"not_found": 3, "bad_request": 2}
        assert stats["by_family"] == {"openai": 2, "anthropic": 2, "unknown": 1}


async def test_context_window() -> None:
    cfg = SimConfig(default_profile=ModelProfile(context_window=10))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        r = await post(client, sim.base_url, "openai", text="x" * 400)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize("family", FAMILIES)
async def test_max_tokens_cap_finishes_with_length(family: str) -> None:
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        events = decode(family, (await post(client, sim.base_url, family, max_tokens=5)).content)
        assert len(text_of(events).split()) == 5
        assert finish_of(events) == "length"
        assert usage_of(events).output_tokens == 5


async def test_reproducible_with_seed() -> None:
    async def texts(seed: int) -> list[str]:
        cfg = SimConfig(
            seed=seed, default_profile=ModelProfile(output_tokens=10, output_tokens_max=40)
        )
        async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
            out = []
            for family in FAMILIES:
                for prompt in ("one", "two"):
                    r = await post(client, sim.base_url, family, text=prompt)
                    out.append(text_of(decode(family, r.content)))
            return out

    a, b, c = await texts(1), await texts(1), await texts(2)
    assert a == b
    assert a != c
    assert a[0] != a[1]  # another prompt, another answer
    assert len({len(t.split()) for t in a}) > 1  # lengths drawn from the distribution


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_paced_stream_follows_its_schedule(anyio_backend: str) -> None:
    cfg = SimConfig(default_profile=ModelProfile(output_tokens=5, ttft=0.05, tokens_per_second=100))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        t0 = anyio.current_time()
        r = await post(client, sim.base_url, "openai")
        elapsed = anyio.current_time() - t0
        assert finish_of(decode("openai", r.content)) == "stop"
        assert elapsed >= 0.05 + 4 * 0.01 - 0.002  # never early (a lower bound only)
        lag = sim.stats.snapshot()["schedule_lag"]
        assert lag["writes"] >= 5  # each token went out on its own, at its time


async def test_non_streaming_waits_for_generation() -> None:
    cfg = SimConfig(default_profile=ModelProfile(output_tokens=5, ttft=0.05, tokens_per_second=100))
    async with open_simulator(cfg) as sim, httpx.AsyncClient() as client:
        t0 = anyio.current_time()
        r = await post(client, sim.base_url, "anthropic", stream=False)
        assert r.status_code == 200
        assert anyio.current_time() - t0 >= 0.09 - 0.002


def test_corpus_is_sentences() -> None:
    c = corpus(0)
    text = "".join(c.take(c.start_of_sentence(__import__("random").Random(1)), 60))
    assert text[0].isupper() and "." in text


def test_load_config_toml(tmp_path: object) -> None:
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "sim.toml"
    p.write_text(
        "seed = 3\n[default_profile]\nttft = 0.1\ntokens_per_second = 20\n"
        '[models."m1"]\noutput_tokens = 7\n[rate_limit]\nrpm = 10\n'
        '[[faults]]\nkind = "status"\nstatus = 529\nrate = 0.5\n'
    )
    cfg = load_config(p)
    assert cfg.seed == 3 and cfg.models["m1"].output_tokens == 7 and cfg.rate_limit.rpm == 10
    assert cfg.faults[0].status == 529
    p.write_text("nonsense = 1\n")
    with pytest.raises(ValueError, match="nonsense"):
        load_config(p)


async def test_gemini_stream_without_sse_is_a_json_array() -> None:
    async with open_simulator(FAST) as sim, httpx.AsyncClient() as client:
        path, body = request("gemini")
        r = await client.post(sim.base_url + path.replace("?alt=sse", ""), json=body)
        assert r.headers["content-type"].startswith("application/json")
        chunks = msgspec.json.decode(r.content)
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert len(text.split()) == 20
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_anthropic_refuses_tool_blocks_it_cannot_match() -> None:
    """As the API does: tool_use / tool_result blocks need tools defined, and a
    tool_result needs its tool_use in the conversation."""
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
    orphan = {"type": "tool_result", "tool_use_id": "toolu_9", "content": "sunny"}
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}

    def body(messages: list[dict[str, object]], tools: list[object]) -> dict[str, object]:
        out: dict[str, object] = {"model": "m", "max_tokens": 10, "messages": messages}
        if tools:
            out["tools"] = tools
        return out

    conversation = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [result]},
    ]
    async with open_simulator(SimConfig()) as sim, httpx.AsyncClient() as client:
        url = sim.base_url + "/v1/messages"
        r = await client.post(url, json=body(conversation, []))
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert "must define tools" in r.json()["error"]["message"]
        r = await client.post(
            url, json=body([conversation[0], {"role": "user", "content": [orphan]}], [tool])
        )
        assert r.status_code == 400 and "toolu_9" in r.json()["error"]["message"]
        r = await client.post(url, json=body(conversation, [tool]))
        assert r.status_code == 200
