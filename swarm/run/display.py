"""The live terminal display of ``swarm run`` and its end-of-run tables.

Rendering is pure (a :class:`Snapshot` in, lines out) so it is tested without a
terminal; :class:`LiveDisplay` owns the IO: on a terminal it redraws the block in
place a few times a second, otherwise (a log, CI) it writes one compact line
every few seconds. It writes to stderr, so stdout keeps only the summary.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import IO

import anyio
import msgspec

from ..engine import EngineStatistics
from ..provider_actor import ProviderStatistics
from ..ratelimit import RateLimiterStatistics
from .report import SwarmRunReport, format_summary

__all__ = ["LiveDisplay", "Progress", "Snapshot", "render_live", "render_report"]


class Progress:
    """Inputs done and failed so far (the runner counts, the display reads)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.answered = 0
        self.failed = 0
        self.errors: dict[str, int] = {}

    def done(self, error: BaseException | None) -> None:
        if error is None:
            self.answered += 1
        else:
            self.failed += 1
            kind = type(error).__name__
            self.errors[kind] = self.errors.get(kind, 0) + 1


class Snapshot(msgspec.Struct, kw_only=True, frozen=True):
    """Everything one frame shows."""

    title: str
    elapsed: float
    inputs_total: int
    inputs_answered: int
    inputs_failed: int
    input_errors: dict[str, int]
    agents: int
    agents_busy: int
    engine: EngineStatistics
    rate_limits: dict[str, dict[str, RateLimiterStatistics]]
    tokens_per_second: float


def _breaker(stats: ProviderStatistics) -> str:
    """The provider's breakers in one word: all closed, or which are not."""
    if not stats.breakers:
        return "-"
    bad = {m: s for m, s in stats.breakers.items() if s != "closed"}
    if not bad:
        return "closed"
    return ", ".join(f"{m} {s.replace('_', '-')}" for m, s in sorted(bad.items()))


def _limit(limits: dict[str, RateLimiterStatistics] | None) -> str:
    """The tightest request bucket of a provider: what is left of its RPM, and
    the 429s and waits seen."""
    if not limits:
        return "none"
    parts: list[str] = []
    with_rpm = [s for s in limits.values() if s.requests_per_minute is not None]
    if with_rpm:
        tight = min(
            with_rpm, key=lambda s: (s.requests_available or 0) / (s.requests_per_minute or 1)
        )
        parts.append(
            f"rpm {max(0, tight.requests_available or 0):,.0f}/{tight.requests_per_minute:,.0f}"
        )
    elif any(
        s.tokens_per_minute is not None or s.output_tokens_per_minute is not None
        for s in limits.values()
    ):
        parts.append("tokens only")
    elif any(s.released for s in limits.values()):
        parts.append("none reported")  # responses came back without limit headers
    else:
        parts.append("learning")  # the first response (and its headers) is still out
    limited = sum(s.rate_limited for s in limits.values())
    waits = sum(
        s.waits_rpm + s.waits_tpm + s.waits_itpm + s.waits_otpm + s.waits_concurrency
        for s in limits.values()
    )
    if waits:
        parts.append(f"{waits} waits")
    if limited:
        parts.append(f"{limited} 429s")
    return ", ".join(parts)


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int], indent: str = ""
) -> list[str]:
    """Aligned columns: ``numeric`` ones to the right, the others to the left."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [
            f"{c:>{w}}" if i in numeric else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _provider_rows(
    providers: dict[str, ProviderStatistics],
    limits: dict[str, dict[str, RateLimiterStatistics]],
) -> list[list[str]]:
    return [
        [
            name,
            p.family,
            str(p.running),
            str(p.completed),
            str(p.failed),
            str(p.retries),
            _breaker(p),
            _limit(limits.get(name)),
        ]
        for name, p in sorted(providers.items())
        if p.attempts or p.running  # providers the run never used stay out of the way
    ]


_PROVIDER_HEADER = [
    "provider",
    "family",
    "running",
    "done",
    "failed",
    "retries",
    "breaker",
    "rate limit",
]


_NUMERIC = {2, 3, 4, 5}


def render_live(s: Snapshot) -> list[str]:
    """The block a terminal redraws in place."""
    ledger = s.engine.ledger
    running = sum(p.running for p in s.engine.providers.values())
    done = s.inputs_answered + s.inputs_failed
    lines = [
        f"{s.title}  {s.elapsed:5.1f} s",
        f"  inputs  {done}/{s.inputs_total} done ({s.inputs_failed} failed)   "
        f"agents {s.agents_busy}/{s.agents} busy",
        f"  calls   {s.engine.queued} queued, {running} in flight, {ledger.completed} done, "
        f"{ledger.failed} failed   {s.tokens_per_second:,.0f} tok/s",
    ]
    rows = _provider_rows(s.engine.providers, s.rate_limits)
    lines += _table(_PROVIDER_HEADER, rows, _NUMERIC, "  ")
    errors = dict(s.input_errors)
    lines.append(
        "  errors  "
        + (", ".join(f"{k} {n}" for k, n in sorted(errors.items())) if errors else "none")
    )
    return lines


def render_line(s: Snapshot) -> str:
    """One line for a log (not a terminal)."""
    ledger = s.engine.ledger
    running = sum(p.running for p in s.engine.providers.values())
    return (
        f"[{s.elapsed:6.1f} s] inputs {s.inputs_answered + s.inputs_failed}/{s.inputs_total} "
        f"({s.inputs_failed} failed); calls {s.engine.queued} queued, {running} in flight, "
        f"{ledger.completed} done, {ledger.failed} failed; {s.tokens_per_second:,.0f} tok/s"
    )


def render_report(report: SwarmRunReport, samples: int = 3) -> str:
    """The end-of-run summary: inputs and agents, the calls, per provider, and a
    few answers."""
    sw = report.swarm
    stats = sw.agents.values()
    turns = sum(a.turns for a in stats)
    tool_calls = sum(a.tool_calls for a in stats)
    agent_errors = sum(a.errors for a in stats)
    restarts = sum(a.restarts for a in stats)
    head = [
        ("swarm", f"{report.spec} ({report.pattern}, {report.agents} agents)"),
        (
            "inputs",
            f"{report.inputs:,} ({report.answered:,} answered, {report.failed:,} failed)",
        ),
        (
            "agent work",
            f"{turns:,} model turns, {tool_calls:,} tool calls, "
            f"{agent_errors} errors, {restarts} restarts",
        ),
        ("prompt cache", f"{sw.cache_hit_rate:.0%} of input tokens read from cache"),
    ]
    if sw.stopped == "budget":
        head.append(("stopped", f"budget: {sw.budget_reason}"))
    width = max(len(k) for k, _ in head)
    body = format_summary(report.summary)
    width = max(width, *(len(line.split("  ")[0]) for line in body.splitlines()))
    lines = [f"{k:<{width}}  {v}" for k, v in head]
    for line in body.splitlines():
        key, _, value = line.partition("  ")
        lines.append(f"{key.strip():<{width}}  {value.strip()}")
    lines.append("")
    lines += _table(
        _PROVIDER_HEADER, _provider_rows(report.providers, report.rate_limits), _NUMERIC
    )
    shown = [o for o in report.outcomes if o.ok][:samples]
    failed = [o for o in report.outcomes if not o.ok][:samples]
    if shown:
        lines.append("")
        for o in shown:
            text = " ".join((o.text or "").split())
            lines.append(f"#{o.index} {_clip(str(o.input), 40)} -> {_clip(text, 72)}")
    for o in failed:
        lines.append(f"#{o.index} failed: {_clip(o.error or '', 100)}")
    return "\n".join(lines)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class LiveDisplay:
    """Draws snapshots from ``take`` until cancelled; then clears its block."""

    def __init__(self, out: IO[str], take: Callable[[], Awaitable[Snapshot]]) -> None:
        self._out = out
        self._take = take
        self._live = out.isatty()
        self._drawn = 0  # lines of the block on screen now

    async def run(self) -> None:
        period = 0.25 if self._live else 2.0
        next_line = time.monotonic() + period
        try:
            while True:
                await anyio.sleep(max(0.0, next_line - time.monotonic()))
                next_line += period
                self.draw(await self._take())
        finally:
            self.clear()

    def draw(self, snapshot: Snapshot) -> None:
        if self._live:
            lines = render_live(snapshot)
            # Up to the block's first line, clear to the end of the screen, redraw.
            prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self._out.write(prefix + "\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            self._out.write(render_line(snapshot) + "\n")
        self._out.flush()

    def clear(self) -> None:
        if self._live and self._drawn:
            self._out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._out.flush()
            self._drawn = 0
