"""The outputs of ``swarm bench``: the summary table, the JSON report (schema in
docs/bench.md), the per-request CSV, and a self-contained HTML page of plots.

The HTML page draws its charts as inline SVG: no script, no network, no plotting
library; it opens anywhere and can be attached to a ticket as it is.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from .metrics import Distribution, PointSummary, RequestRecord
from .target import Target

__all__ = ["SCHEMA_VERSION", "BenchReport", "format_table", "write_csv", "write_html"]

SCHEMA_VERSION = 1


class BenchReport(msgspec.Struct, kw_only=True, frozen=True):
    """The ``--json`` file (docs/bench.md documents every field)."""

    schema_version: int
    started_at: str  # ISO 8601, UTC
    target: Target
    settings: dict[str, Any]
    warmup_ok: int
    points: list[PointSummary]
    records: list[RequestRecord]
    simulator_cpu_seconds: float | None = None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _pair(d: Distribution) -> str:
    return f"{_ms(d.p50)} / {_ms(d.p99)}"


def format_table(points: Sequence[PointSummary]) -> str:
    """One row per load point; latencies as p50 / p99 in milliseconds."""
    header = [
        "load",
        "ok",
        "failed",
        "req/s",
        "out tok/s",
        "TTFT ms",
        "TPOT ms",
        "ITL ms",
        "E2E ms",
        "goodput",
        "lag p99 ms",
        "client CPU",
    ]
    rows = []
    for p in points:
        goodput = "-" if p.goodput is None else f"{p.goodput:.2f}/s ({p.goodput_share:.0%})"
        rows.append(
            [
                p.label,
                str(p.completed),
                str(p.failed),
                f"{p.request_throughput:.2f}",
                f"{p.output_throughput:,.0f}",
                _pair(p.ttft),
                _pair(p.tpot),
                _pair(p.itl),
                _pair(p.e2e),
                goodput,
                _ms(p.client.schedule_lag.p99),
                f"{p.client.cpu_percent:.0f}%",
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    lines.append("(latency columns: p50 / p99)")
    for p in points:
        extra = []
        if p.errors:
            extra.append(
                "errors "
                + ", ".join(
                    f"{k} {n} (first: {p.error_examples.get(k, '')[:160]})"
                    for k, n in sorted(p.errors.items())
                )
            )
        extra.append(f"tokens from {p.token_source}")
        lines.append(f"{p.label}: " + "; ".join(extra))
    return "\n".join(lines)


CSV_FIELDS = [
    "point",
    "index",
    "ok",
    "error",
    "intended",
    "start",
    "sent",
    "first_token",
    "end",
    "ttft",
    "tpot",
    "e2e",
    "schedule_lag",
    "queue_delay",
    "input_tokens",
    "output_tokens",
    "token_source",
    "chunks",
    "itl_mean",
]


def write_csv(records: Sequence[RequestRecord], out: IO[str]) -> None:
    """One row per request (times in seconds)."""
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for r in records:
        itl = sum(r.itl) / len(r.itl) if r.itl else None
        values = [
            r.point,
            r.index,
            r.ok,
            r.error or "",
            r.intended,
            r.start,
            r.sent,
            r.first_token,
            r.end,
            r.ttft,
            r.tpot,
            r.e2e,
            r.schedule_lag,
            r.queue_delay,
            r.input_tokens,
            r.output_tokens,
            r.token_source,
            r.chunks,
            itl,
        ]
        writer.writerow(
            ["" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in values]
        )


def _svg_chart(
    title: str,
    x_label: str,
    xs: Sequence[float],
    series: dict[str, Sequence[float | None]],
    y_label: str,
) -> str:
    """A line chart as inline SVG (axes, ticks, one polyline per series)."""
    w, h, left, bottom, top, right = 560, 320, 64, 44, 28, 130
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    ys = [v for s in series.values() for v in s if v is not None]
    x_min, x_max = min(xs), max(xs)
    y_max = max(ys) if ys else 1.0
    y_max = y_max * 1.1 if y_max > 0 else 1.0
    x_span = (x_max - x_min) or 1.0

    def px(x: float) -> float:
        return left + (x - x_min) / x_span * (w - left - right)

    def py(y: float) -> float:
        return h - bottom - y / y_max * (h - bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{w / 2}" y="16" text-anchor="middle" font-weight="bold">'
        f"{html.escape(title)}</text>",
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#333"/>',
    ]
    for k in range(5):
        tick = y_max * k / 4
        parts.append(
            f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick:.3g}</text>'
        )
    for x in xs:
        parts.append(
            f'<text x="{px(x):.1f}" y="{h - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{x:g}</text>'
        )
    parts.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 6}" text-anchor="middle" '
        f'font-size="12">{html.escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + h - bottom) / 2}" font-size="12" '
        f'transform="rotate(-90 14 {(top + h - bottom) / 2})" text-anchor="middle">'
        f"{html.escape(y_label)}</text>"
    )
    for n, (name, values) in enumerate(series.items()):
        color = colors[n % len(colors)]
        points = " ".join(
            f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, values, strict=True) if y is not None
        )
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        for x, y in zip(xs, values, strict=True):
            if y is not None:
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        parts.append(
            f'<text x="{w - right + 10}" y="{top + 16 * n + 10}" font-size="12" '
            f'fill="{color}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(report: BenchReport, path: str | Path) -> None:
    """Latency against load and throughput against load, one page, no scripts."""
    points = report.points
    xs = [p.value for p in points]
    x_label = "concurrency" if points and points[0].mode == "concurrency" else "requests/s"

    def ms(values: Sequence[float | None]) -> list[float | None]:
        return [None if v is None else v * 1000 for v in values]

    latency = _svg_chart(
        "Latency against load",
        x_label,
        xs,
        {
            "TTFT p50": ms([p.ttft.p50 for p in points]),
            "TTFT p99": ms([p.ttft.p99 for p in points]),
            "E2E p50": ms([p.e2e.p50 for p in points]),
            "E2E p99": ms([p.e2e.p99 for p in points]),
        },
        "milliseconds",
    )
    throughput = _svg_chart(
        "Throughput against load",
        x_label,
        xs,
        {"output tok/s": [p.output_throughput for p in points]},
        "output tokens per second",
    )
    rows = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td>{p.completed}</td><td>{p.failed}</td>"
        f"<td>{p.request_throughput:.2f}</td><td>{p.output_throughput:,.0f}</td>"
        f"<td>{_pair(p.ttft)}</td><td>{_pair(p.tpot)}</td><td>{_pair(p.e2e)}</td></tr>"
        for p in points
    )
    t = report.target
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swarm bench: {html.escape(t.model)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} svg{{margin:1em 1em 0 0}}</style>
</head><body>
<h1>swarm bench</h1>
<p>{html.escape(t.kind)} · {html.escape(t.family)} · {html.escape(t.model)} ·
{html.escape(t.base_url)} · started {html.escape(report.started_at)}</p>
<table><tr><th>load</th><th>ok</th><th>failed</th><th>req/s</th><th>out tok/s</th>
<th>TTFT ms p50 / p99</th><th>TPOT ms p50 / p99</th><th>E2E ms p50 / p99</th></tr>{rows}</table>
<div>{latency}{throughput}</div>
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
