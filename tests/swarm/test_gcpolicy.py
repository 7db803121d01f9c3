"""swarm.throughput_gc: the collector's thresholds raised for a block, then restored."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

import swarm
from swarm import cli
from swarm.gcpolicy import THROUGHPUT_THRESHOLDS


def test_thresholds_are_raised_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with swarm.throughput_gc():
        assert gc.get_threshold() == THROUGHPUT_THRESHOLDS
    assert gc.get_threshold() == before


def test_thresholds_are_restored_when_the_block_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="boom"), swarm.throughput_gc((1000, 5, 5)):
        assert gc.get_threshold() == (1000, 5, 5)
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


@pytest.mark.parametrize("bad", [(0, 10, 10), (700, -1, 10), (700, 10)])
def test_a_threshold_that_would_stop_collection_is_refused(bad: tuple[int, int, int]) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="three integers >= 1"), swarm.throughput_gc(bad):
        pass
    assert gc.get_threshold() == before


def test_swarm_run_and_bench_run_with_it_and_other_commands_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, tuple[int, int, int]] = {}

    def handler(name: str) -> Callable[[object], int]:
        def run(args: object) -> int:
            seen[name] = gc.get_threshold()
            return 0

        return run

    monkeypatch.setattr(cli, "_cmd_run", handler("run"))
    monkeypatch.setattr(cli, "_cmd_bench", handler("bench"))
    monkeypatch.setattr(cli, "_cmd_providers", handler("providers"))
    before = gc.get_threshold()
    for argv in (["run"], ["bench"], ["providers"]):
        assert cli.main(argv) == 0
    assert seen == {
        "run": THROUGHPUT_THRESHOLDS,
        "bench": THROUGHPUT_THRESHOLDS,
        "providers": before,
    }
    assert gc.get_threshold() == before
