"""The ledger accounts for every accepted call, exactly once."""

from __future__ import annotations

import io

import msgspec
import pytest

from providers.events import Usage
from swarm.events import ErrorInfo
from swarm.ledger import CallRecord, Ledger, LedgerError, record_from_lifecycle
from swarm.lifecycle import CallLifecycle
from swarm.pricing import PriceTable


def test_accept_and_finish_balance() -> None:
    ledger = Ledger()
    for i in range(5):
        ledger.accept(f"c{i}")
    usage = Usage(input_tokens=10, output_tokens=5)
    ledger.finish(
        CallRecord(id="c0", route="r", outcome="completed", attempts=1, usage=usage, cost_usd=0.5)
    )
    ledger.finish(CallRecord(id="c1", route="r", outcome="failed", attempts=3,
                             error=ErrorInfo(kind="ServerError", message="500")))  # fmt: skip
    ledger.finish(CallRecord(id="c2", route="r", outcome="cancelled"))
    stats = ledger.statistics()
    assert (stats.accepted, stats.in_flight, stats.completed, stats.failed, stats.cancelled) == (
        5, 2, 1, 1, 1,
    )  # fmt: skip
    assert stats.attempts == 4
    assert stats.input_tokens == 10 and stats.output_tokens == 5
    assert stats.cost_usd == 0.5
    assert stats.accepted == stats.in_flight + stats.completed + stats.failed + stats.cancelled


def test_double_finish_and_unknown_finish_raise() -> None:
    ledger = Ledger()
    ledger.accept("a")
    ledger.finish(CallRecord(id="a", route="r", outcome="completed"))
    with pytest.raises(LedgerError, match="not in flight"):
        ledger.finish(CallRecord(id="a", route="r", outcome="failed"))
    with pytest.raises(LedgerError):
        ledger.finish(CallRecord(id="never", route="r", outcome="completed"))
    with pytest.raises(LedgerError, match="accepted twice"):
        ledger.accept("b")
        ledger.accept("b")
    assert ledger.statistics().completed == 1


def test_keep_bounds_memory_but_counters_see_everything() -> None:
    ledger = Ledger(keep=3, unread=5)
    for i in range(10):
        ledger.accept(str(i))
        ledger.finish(CallRecord(id=str(i), route="r", outcome="completed"))
    assert [r.id for r in ledger.records()] == ["7", "8", "9"]
    assert ledger.statistics().completed == 10
    # Nobody drained: the oldest undrained records were dropped, and counted.
    assert [r.id for r in ledger.drain()] == ["5", "6", "7", "8", "9"]
    assert ledger.drain() == []
    assert ledger.statistics().dropped == 5
    ledger.accept("10")
    ledger.finish(CallRecord(id="10", route="r", outcome="completed"))
    assert [r.id for r in ledger.drain()] == ["10"]


def test_jsonl_export_round_trips() -> None:
    ledger = Ledger()
    life = CallLifecycle("x", now=0.0)
    life.dispatch("anthropic", now=0.1)
    life.first_byte(now=0.2)
    life.content(now=0.3)
    life.content(now=0.35)
    life.complete(now=0.5)
    ledger.accept("x")
    record = record_from_lifecycle(
        life, route="anthropic/claude-sonnet-4-5", model="claude-sonnet-4-5",
        usage=Usage(input_tokens=100, output_tokens=20), finish_reason="stop",
    )  # fmt: skip
    ledger.finish(record)
    out = io.BytesIO()
    assert ledger.export_jsonl(out) == 1
    back = msgspec.json.decode(out.getvalue().splitlines()[0], type=CallRecord)
    assert back == record
    assert back.attempts == 1 and back.ttft == pytest.approx(0.2)


def test_record_needs_a_terminal_lifecycle() -> None:
    life = CallLifecycle("y", now=0.0)
    with pytest.raises(LedgerError, match="still queued"):
        record_from_lifecycle(life, route="r")


def test_prices_by_longest_prefix_and_cache_rules() -> None:
    table = PriceTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.15 + 0.60)
    assert table.cost("openai/gpt-4o", usage) == pytest.approx(2.50 + 10.00)
    # Anthropic: 1M prompt tokens of which 600k cache reads and 200k cache writes.
    cached = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=600_000,
                   cache_write_tokens=200_000)  # fmt: skip
    assert table.cost("claude-sonnet-4-5-20250929", cached) == pytest.approx(
        0.2 * 3.00 + 0.6 * 0.30 + 0.2 * 3.75
    )
    assert table.cost("claude-opus-4-20250514", usage) == pytest.approx(15.0 + 75.0)
    assert table.cost("claude-opus-4-5", usage) == pytest.approx(5.0 + 25.0)
    # Gemini 2.5 Pro's long-prompt tier bills the whole request at its rates.
    long = Usage(input_tokens=300_000, output_tokens=0)
    assert table.cost("gemini-2.5-pro", long) == pytest.approx(0.3 * 2.50)
    assert table.cost("some-local-model", usage) is None
    custom = table.with_prices({"some-local": table.price("gpt-4o") or pytest.fail()})
    assert custom.cost("some-local-model", usage) == pytest.approx(12.5)


def test_listeners_see_each_finished_call_and_a_failing_one_is_counted() -> None:
    ledger = Ledger()
    seen: list[str] = []

    def broken(record: CallRecord) -> None:
        raise RuntimeError("listener bug")

    remove = ledger.add_listener(lambda r: seen.append(r.id))
    ledger.add_listener(broken)
    for n in ("a", "b"):
        ledger.accept(n)
        ledger.finish(CallRecord(id=n, route="m", outcome="completed"))
    assert seen == ["a", "b"]
    assert ledger.listener_errors == 2
    assert ledger.statistics().completed == 2  # the books were kept regardless
    remove()
    remove()  # idempotent
    ledger.accept("c")
    ledger.finish(CallRecord(id="c", route="m", outcome="failed"))
    assert seen == ["a", "b"]
