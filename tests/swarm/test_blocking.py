"""The blocking API (swarm.blocking) from plain threads: complete, stream as a
plain iterator, map; early exits cancel; errors reach the calling thread; one
engine serves several threads; it refuses to run inside an event loop."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import msgspec
import pytest
from anyio.from_thread import start_blocking_portal

from providers import Message, Request, TextDelta
from providers.sim import ModelProfile, SimConfig, open_simulator
from swarm import EngineConfig, ProviderConfig
from swarm.blocking import BlockingEngine, open_engine
from swarm.events import Completed


def ask(text: str = "hi", max_tokens: int = 20) -> Request:
    return Request(model="gpt-4o-mini", messages=[Message.user(text)], max_tokens=max_tokens)


@pytest.fixture(params=["trio", "asyncio"])
def engine(request: pytest.FixtureRequest) -> object:
    with open_engine(env={}, backend=request.param) as blocking:  # the built-in simulator
        yield blocking


@pytest.fixture
def slow_engine() -> object:
    """An engine on a paced simulator (its own portal thread), so calls are still
    streaming when the reader leaves."""
    profile = ModelProfile(tokens_per_second=100, output_tokens=400)
    with start_blocking_portal("trio") as portal:
        with portal.wrap_async_context_manager(
            open_simulator(SimConfig(models={"slow": profile}))
        ) as sim:
            config = EngineConfig(
                providers={
                    "sim": ProviderConfig(
                        family="openai", base_url=sim.openai_base_url, api_key="sk-t"
                    )
                },
                default_provider="sim",
            )
            with open_engine(config, env={}) as blocking:
                yield blocking


def wait_idle(engine: BlockingEngine) -> None:
    for _ in range(500):
        if not engine.engine.ledger.statistics().in_flight:
            return
        threading.Event().wait(0.01)
    raise AssertionError("calls still in flight")


def test_complete_returns_the_response(engine: BlockingEngine) -> None:
    response = engine.complete(ask())
    assert response.text and response.usage.output_tokens > 0


def test_stream_is_a_plain_iterator_of_the_calls_events(engine: BlockingEngine) -> None:
    with engine.stream(ask(max_tokens=40)) as events:
        seen = list(events)
        again = list(events)  # exhausted: iterating again yields nothing
    assert isinstance(seen[-1], Completed)
    text = "".join(e.text for e in seen if isinstance(e, TextDelta))
    assert text == seen[-1].response.text
    assert again == []


def test_stream_response_reads_to_the_end(engine: BlockingEngine) -> None:
    with engine.stream(ask()) as events:
        assert events.response().text


def test_leaving_a_stream_early_cancels_the_call(slow_engine: BlockingEngine) -> None:
    engine = slow_engine
    with engine.stream(msgspec.structs.replace(ask(max_tokens=400), model="slow")) as events:
        for event in events:
            if isinstance(event, TextDelta):
                break
    wait_idle(engine)
    stats = engine.engine.ledger.statistics()
    assert stats.cancelled == 1 and stats.completed == 0


def test_map_yields_every_result_with_its_index(engine: BlockingEngine) -> None:
    results = list(engine.map([ask(f"q{i}") for i in range(20)], concurrency=4))
    assert sorted(r.index for r in results) == list(range(20))
    assert all(r.ok and r.response is not None for r in results)


def test_stopping_a_map_early_cancels_the_rest(slow_engine: BlockingEngine) -> None:
    engine = slow_engine
    request = msgspec.structs.replace(ask(max_tokens=5), model="slow")
    results = engine.map([request] * 50, concurrency=8)
    first = next(iter(results))
    results.close()  # type: ignore[attr-defined]
    assert first.ok
    wait_idle(engine)
    stats = engine.engine.ledger.statistics()
    assert stats.completed + stats.cancelled == stats.accepted < 50


def test_one_engine_serves_several_threads(engine: BlockingEngine) -> None:
    texts: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                with engine.stream(ask()) as events:
                    texts.append(events.response().text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(texts) == 30 and all(texts)


def test_errors_are_raised_in_the_calling_thread(engine: BlockingEngine) -> None:
    with pytest.raises(TypeError):
        engine.complete(ask(), no_such_option=1)
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        with engine.stream(ask(), batch=0):
            pass
    with pytest.raises(ValueError, match="concurrency must be an int >= 1"):
        list(engine.map([ask()], concurrency=0))
    assert engine.complete(ask()).text  # and the engine goes on


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_it_refuses_to_block_an_event_loop(anyio_backend: str) -> None:
    with pytest.raises(RuntimeError, match=r"use `async with swarm\.open_engine"):
        with open_engine(env={}):
            pass
    await anyio.lowlevel.checkpoint()
