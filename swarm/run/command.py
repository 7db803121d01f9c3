"""``swarm run`` from the command line: pick the job (a spec, the demo, or plain
calls), run it on trio, print the summary, write the JSON report.

Exit codes (swarm.cli): 0 every input answered (every call completed); 1 the run
went through but something failed (an input, a call, the budget ran out); 2 a
usage error; 3 a spec, config or inputs file that cannot be used.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec

from ..cli_errors import UsageError, check_listenable, check_ports, check_writable
from ..config import ConfigError, EngineConfig, load_config
from ..logs import LOGGER, log_to
from .calls import run_calls
from .demo import DEMO_AGENTS, DEMO_INPUTS, demo_spec
from .display import render_report
from .report import format_summary
from .runner import run_spec
from .spec import SwarmSpec, load_spec

__all__ = ["add_arguments", "run_command"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "spec",
        nargs="?",
        default=None,
        metavar="SPEC",
        help="a swarm spec (TOML: agents, routes, inputs, pattern, budget); "
        "without one, the built-in demo swarm runs on the simulator",
    )
    demo = run.add_argument_group("the demo (no SPEC)")
    demo.add_argument(
        "--agents", type=int, default=None,
        help=f"agents in the demo swarm (default {DEMO_AGENTS}; at least 3)",
    )  # fmt: skip
    demo.add_argument(
        "--inputs", type=int, default=None,
        help=f"questions the demo works through (default {DEMO_INPUTS})",
    )  # fmt: skip
    demo.add_argument(
        "--print-demo", action="store_true",
        help="print the demo as a spec file (a start for your own) and exit",
    )  # fmt: skip
    calls = run.add_argument_group("plain calls (no agents)")
    calls.add_argument(
        "--calls", type=int, default=None,
        help="run this many plain streaming calls instead of a swarm",
    )  # fmt: skip
    calls.add_argument("--model", default=None, help="their route or model (default gpt-4o-mini)")
    calls.add_argument(
        "--max-tokens", type=int, default=None, help="their cap on output tokens (default 64)"
    )
    run.add_argument(
        "--concurrency", type=int, default=None,
        help="inputs (or plain calls) in flight at once (default: the spec's; 100 for --calls)",
    )  # fmt: skip
    run.add_argument(
        "--config", default=None, metavar="FILE",
        help="an engine config (TOML) in place of the spec's [engine]: real providers",
    )  # fmt: skip
    run.add_argument("--json", default=None, metavar="FILE", help="write the run report here")
    run.add_argument(
        "--otel-spans",
        default=None,
        metavar="FILE",
        help="write OpenTelemetry spans (GenAI conventions: model calls, tool runs, agent "
        "messages) to FILE as JSON lines; needs pip install 'swarm-runtime[otel]'",
    )
    run.add_argument("--quiet", action="store_true", help="no live display")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics during the run (0: any port)",
    )
    run.add_argument(
        "--dashboard",
        action="store_true",
        help="serve a live dashboard during the run (its URL is printed; 127.0.0.1 unless "
        "--dashboard-host, then with a token in the URL)",
    )
    run.add_argument("--dashboard-host", default="127.0.0.1", help="address for --dashboard")
    run.add_argument(
        "--dashboard-port", type=int, default=0, help="port for --dashboard (default: any free)"
    )
    run.add_argument(
        "--dashboard-ws-port",
        type=int,
        default=0,
        help="port for the dashboard's WebSocket (default: any free; fix it to open a firewall)",
    )
    run.add_argument(
        "--log",
        default=None,
        metavar="FILE",
        help="write the engine's events (failures, retries, fallbacks, breaker changes) "
        "as JSON lines; never a key or a prompt",
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning"],
        default="info",
        help="with --log: debug adds every finished call (default info)",
    )
    run.add_argument(
        "--metrics-tails",
        action="store_true",
        help="with --metrics-port: also serve each agent's streamed text at /swarm/tail, "
        "for swarm dash's token view (loopback only)",
    )
    run.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 exposes it)",
    )


def _check(args: argparse.Namespace) -> None:
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise UsageError(f"--metrics-port must be 0-65535, got {args.metrics_port}")
    check_ports(
        ("--dashboard-port", args.dashboard_port), ("--dashboard-ws-port", args.dashboard_ws_port)
    )
    if args.dashboard and args.calls is not None:
        raise UsageError("--dashboard shows a swarm run, not --calls")
    if args.metrics_port is not None and args.calls is not None:
        raise UsageError("--metrics-port serves a swarm run's metrics, not --calls")
    if args.metrics_tails and args.metrics_port is None:
        raise UsageError("--metrics-tails adds to the metrics endpoint: give --metrics-port too")
    if args.metrics_tails and args.metrics_host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(
            "--metrics-tails serves what agents write, on loopback only; drop it or "
            f"--metrics-host {args.metrics_host}"
        )
    for flag in ("agents", "inputs", "calls", "concurrency", "max_tokens"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.agents is not None and args.agents < 3:
        raise UsageError("--agents must be at least 3 (the demo has three stages)")
    demo_flags = [f for f in ("agents", "inputs") if getattr(args, f) is not None]
    calls_flags = [f for f in ("model", "max_tokens") if getattr(args, f) is not None]
    if args.spec is not None and (demo_flags or args.calls is not None or args.print_demo):
        flag = demo_flags[0] if demo_flags else ("calls" if args.calls else "print_demo")
        raise UsageError(
            f"--{flag.replace('_', '-')} is for the demo or plain calls, not a SPEC "
            "(set it in the spec file)"
        )
    if args.calls is not None and demo_flags:
        raise UsageError(f"--{demo_flags[0]} is for the demo swarm, not --calls")
    if calls_flags and args.calls is None:
        raise UsageError(
            f"--{calls_flags[0].replace('_', '-')} is for plain calls (--calls N); "
            "a swarm's agents set their own models"
        )
    if args.spec is None and args.calls is None and args.config is not None:
        raise UsageError(
            "the demo runs on the built-in simulator; to run on your providers give a "
            "SPEC with --config (swarm run --print-demo > my-swarm.toml is a start)"
        )
    # What would fail only after the run: checked before it starts.
    if args.json:
        check_writable(args.json, "--json")
    if args.otel_spans:
        check_writable(args.otel_spans, "--otel-spans")
        if not _has_module("opentelemetry.sdk.trace"):
            raise UsageError(
                "--otel-spans needs the OpenTelemetry SDK: pip install 'swarm-runtime[otel]'"
            )
    if args.metrics_port is not None:
        check_listenable(args.metrics_host, args.metrics_port, "--metrics-port")
    if args.dashboard:
        check_listenable(args.dashboard_host, args.dashboard_port, "--dashboard-port")
        check_listenable(args.dashboard_host, args.dashboard_ws_port, "--dashboard-ws-port")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _write_json(path: str, report: msgspec.Struct) -> None:
    Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    print(f"report written to {path}")


def run_command(args: argparse.Namespace) -> int:
    """Run ``swarm run``; raises ConfigError (exit 3) and UsageError (exit 2)."""
    _check(args)
    if args.log:
        try:
            handler = log_to(args.log, getattr(logging, args.log_level.upper()))
        except OSError as exc:
            raise ConfigError(f"cannot write the log {args.log}: {exc.strerror}") from None
        try:
            return _run(args)
        finally:
            LOGGER.removeHandler(handler)
            handler.close()
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    progress: IO[str] | None = None if args.quiet else sys.stderr
    config: EngineConfig | None = load_config(args.config) if args.config else None
    if args.calls is not None:
        calls: int = args.calls
        report = anyio.run(
            lambda: run_calls(
                calls=calls,
                concurrency=args.concurrency or 100,
                model=args.model or "gpt-4o-mini",
                max_tokens=args.max_tokens or 64,
                config=config,
                progress=progress,
                spans=args.otel_spans,
            ),
            backend="trio",
        )
        print(format_summary(report.summary))
        if args.json:
            _write_json(args.json, report)
        return EXIT_OK if report.summary.failed == 0 else EXIT_PROBLEM
    if args.spec is None:
        spec: SwarmSpec = demo_spec(args.agents or DEMO_AGENTS, args.inputs or DEMO_INPUTS)
        base, source = Path.cwd(), "the demo"
        if args.print_demo:
            sys.stdout.write(_demo_toml(spec))
            return EXIT_OK
    else:
        spec = load_spec(args.spec)
        base, source = Path(args.spec).resolve().parent, f"spec {args.spec}"
    if args.concurrency is not None:
        spec = msgspec.structs.replace(spec, concurrency=args.concurrency)
    swarm_report = anyio.run(
        lambda: run_spec(
            spec,
            base=base,
            config=config,
            progress_out=progress,
            source=source,
            metrics=None if args.metrics_port is None else (args.metrics_host, args.metrics_port),
            dashboard=(
                (args.dashboard_host, args.dashboard_port, args.dashboard_ws_port)
                if args.dashboard
                else None
            ),
            spans=args.otel_spans,
            metrics_tails=args.metrics_tails,
        ),
        backend="trio",
    )
    print(render_report(swarm_report))
    if args.json:
        _write_json(args.json, swarm_report)
    problem = (
        swarm_report.failed
        or swarm_report.summary.failed
        or (swarm_report.swarm.stopped == "budget")
    )
    return EXIT_PROBLEM if problem else EXIT_OK


def _non_defaults(value: Any) -> Any:
    """``value`` as builtins, each Struct keeping only the fields that differ from
    their defaults (and its tag), so a printed spec says only what matters."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        config = value.__struct_config__
        if config.tag_field is not None:
            out[config.tag_field] = config.tag
        for field in msgspec.structs.fields(value):
            current = getattr(value, field.name)
            if field.default is not msgspec.NODEFAULT:
                default = field.default
            elif field.default_factory is not msgspec.NODEFAULT:
                default = field.default_factory()
            else:
                default = msgspec.NODEFAULT
            if current != default:
                out[field.encode_name] = _non_defaults(current)
        return out
    if isinstance(value, list | tuple):
        return [_non_defaults(v) for v in value]
    if isinstance(value, dict):
        return {k: _non_defaults(v) for k, v in value.items()}
    return msgspec.to_builtins(value)


def _demo_toml(spec: SwarmSpec) -> str:
    """The demo as a spec file: only what differs from the defaults."""
    text = msgspec.toml.encode(_non_defaults(spec)).decode()
    return (
        "# The demo swarm of `swarm run`, as a spec: edit it and run `swarm run FILE`.\n"
        "# Every setting: swarm/run/spec.py (SwarmSpec); simulator: providers.sim.SimConfig.\n"
        + text
    )
