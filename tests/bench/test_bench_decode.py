"""The decode benchmark runs and prints well-formed figures (no timing asserted)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

import bench_decode

ROW = re.compile(
    r"^(?P<family>\S+)\s+(?P<decoder>json\.loads loop|SSEDecoder|family decoder)\s+"
    r"(?P<feed>whole|per-event)\s+(?P<rate>[\d,]+)\s+(?P<cpu>[\d.]+)\s+[\d.]+-[\d.]+$"
)


def test_bench_prints_a_row_per_family_decoder_and_feed(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_decode.main(["--tokens", "300", "--runs", "1"]) == 0
    rows = [m for line in capsys.readouterr().out.splitlines() if (m := ROW.match(line))]
    seen = {(m["family"], m["decoder"], m["feed"]) for m in rows}
    assert len(seen) == len(bench_decode.STREAMS) * 3 * 2
    for m in rows:
        assert int(m["rate"].replace(",", "")) > 0
        assert float(m["cpu"]) >= 0


@pytest.mark.parametrize("family", list(bench_decode.STREAMS))
def test_bench_streams_decode_to_their_text(family: str) -> None:
    bench_decode.check(family, bench_decode.STREAMS[family](50), 50)
