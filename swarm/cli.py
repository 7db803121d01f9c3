"""The ``swarm`` command.

Exit codes scripts can rely on:
    0  success
    1  the job ran and found a problem (a stream ended in an error, a check failed)
    2  usage error (bad flags or arguments; argparse's convention)
    3  an input file could not be read
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from providers.families import FAMILY_NAMES

from .cli_errors import UsageError, check_listenable, check_ports, run_guarded
from .gcpolicy import throughput_gc

# Commands that own their process and may hold thousands of live calls: they run
# with the collector's thresholds raised (swarm.gcpolicy).
GC_TUNED_COMMANDS = frozenset({"run", "bench"})

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INPUT = 3


def _read_chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _cmd_replay(args: argparse.Namespace) -> int:
    from providers.replay import READ_SIZE, replay_lines

    out = sys.stdout.buffer
    problem = False
    try:
        if args.file == "-":
            source: BinaryIO = sys.stdin.buffer
        else:
            source = Path(args.file).open("rb")
    except OSError as exc:
        print(f"swarm replay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_INPUT
    try:
        for line in replay_lines(args.family, _read_chunks(source, READ_SIZE)):
            if line.startswith(b'{"type":"replay_error"'):
                problem = True
            elif line.startswith(b'{"type":"error"'):
                problem = True
            if args.events_only and line.startswith(b'{"type":"response"'):
                continue
            out.write(line + b"\n")
            out.flush()
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return EXIT_PROBLEM if problem else EXIT_OK


def _cmd_sim(args: argparse.Namespace) -> int:
    from providers.sim.cli import run

    return run(args)


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .run.command import run_command

    # ConfigError covers SpecError too: a file that cannot be used.
    codes = [(UsageError, EXIT_USAGE), (ConfigError, EXIT_INPUT)]
    return run_guarded("swarm run", lambda: run_command(args), codes)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchmark.command import bench_command
    from .benchmark.data import BenchDataError
    from .benchmark.target import TargetError

    codes = [(UsageError, EXIT_USAGE), (BenchDataError, EXIT_INPUT), (TargetError, EXIT_PROBLEM)]
    return run_guarded("swarm bench", lambda: bench_command(args), codes)


def _cmd_providers(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .providers_command import providers_command

    codes = [(ConfigError, EXIT_INPUT)]
    return run_guarded("swarm providers", lambda: providers_command(args), codes)


def _cmd_dash(args: argparse.Namespace) -> int:
    import anyio
    import httpx

    from .dashboard.attach import run_attached

    url = args.metrics
    if not url.startswith(("http://", "https://")):
        print(
            f"swarm dash: {url!r} is not a URL; give the engine's metrics endpoint, e.g. "
            "http://127.0.0.1:9464/metrics (swarm run --metrics-port 9464)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        check_ports(("--port", args.port), ("--ws-port", args.ws_port))
        check_listenable(args.host, args.port, "--port")
        check_listenable(args.host, args.ws_port, "--ws-port")
    except UsageError as exc:
        print(f"swarm dash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        httpx.get(url, timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        print(
            f"swarm dash: cannot scrape {url}: {exc}; is the engine running with its "
            "metrics endpoint on?",
            file=sys.stderr,
        )
        return EXIT_PROBLEM

    def announce(dashboard_url: str) -> None:
        print(f"dashboard at {dashboard_url}", flush=True)

    try:
        anyio.run(
            lambda: run_attached(
                url,
                host=args.host,
                port=args.port,
                ws_port=args.ws_port,
                seconds=args.seconds,
                announce=announce,
            ),
            backend="trio",
        )
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarm",
        description="A runtime for multi-agent LLM swarms (and its tools).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="decode a recorded raw provider stream into normalized events (JSON lines)",
        description=(
            "Decode a recorded raw stream (the exact bytes a provider sent) into normalized "
            "events, one JSON object per line, then the assembled response "
            '({"type": "response", ...}). A stream that ends in an error or cannot be '
            'decoded prints {"type": "replay_error", ...} and exits 1.'
        ),
    )
    replay.add_argument(
        "--family",
        required=True,
        choices=FAMILY_NAMES,
        help="the wire family the recording is in",
    )
    replay.add_argument("file", help="the recorded stream, or - for standard input")
    replay.add_argument(
        "--events-only", action="store_true", help="print the events, not the assembled response"
    )
    replay.set_defaults(handler=_cmd_replay)

    run = commands.add_parser(
        "run",
        help="run a swarm: a spec file, or the built-in demo on the simulator",
        description=(
            "Run a swarm described by a SPEC file (agents, routes, inputs, pattern, "
            "budget), or without one the demo swarm on the built-in simulator (no key, no "
            "network; hundreds of agents with tool calls), with a live display on stderr, "
            "a summary table on stdout and --json for the full report. --calls N runs "
            "plain streaming calls instead. Exit 0 when every input was answered, 1 when "
            "some failed or the budget ran out, 2 for bad flags, 3 for a file that cannot "
            "be used."
        ),
    )
    from .run.command import add_arguments as add_run_arguments

    add_run_arguments(run)
    run.set_defaults(handler=_cmd_run)

    bench = commands.add_parser(
        "bench",
        help="measure an LLM endpoint (or the simulator) under concurrency",
        description=(
            "Load an OpenAI-compatible, Anthropic or Gemini endpoint (or the simulator, "
            "started for the run) with a closed loop of concurrent requests or an open "
            "loop at a request rate, and report time to first token, time per output "
            "token, inter-token latency, end-to-end latency, throughput, goodput against "
            "SLOs, errors and the client's own health. Metric definitions and the JSON "
            "schema: docs/bench.md. Exit 0 when every request completed, 1 when some "
            "failed, 2 for bad flags, 3 for a dataset that cannot be used."
        ),
    )
    from .benchmark.command import add_arguments as add_bench_arguments

    add_bench_arguments(bench)
    bench.set_defaults(handler=_cmd_bench)

    providers = commands.add_parser(
        "providers",
        help="the vendor presets, which keys are set, and a health check of each provider",
        description=(
            "List the vendor presets with their base URLs and key variables (set or not; "
            "key values are never shown), say which providers the engine would use here "
            "(from --config, else from the keys set, else the built-in simulator), and "
            "with --check list each one's models (a free call that needs a valid key). "
            "Exit 0 when every check passed, 1 when one failed, 3 for a config that "
            "cannot be used."
        ),
    )
    from .providers_command import add_arguments as add_providers_arguments

    add_providers_arguments(providers)
    providers.set_defaults(handler=_cmd_providers)

    dash = commands.add_parser(
        "dash",
        help="a live dashboard of an engine in another process, from its metrics endpoint",
        description=(
            "Serve the live dashboard of a running engine, attached through its Prometheus "
            "endpoint (swarm run --metrics-port, or open_metrics_server(engine) in an "
            "application): providers, breakers, rate-limit buckets, calls, throughput. "
            "Agents and their token streams live in the engine's process: swarm run "
            "--dashboard shows those."
        ),
    )
    dash.add_argument("metrics", metavar="METRICS_URL", help="e.g. http://127.0.0.1:9464/metrics")
    dash.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    dash.add_argument("--port", type=int, default=0, help="port to serve on (default: any)")
    dash.add_argument(
        "--ws-port", type=int, default=0, help="port of the page's WebSocket (default: any)"
    )
    dash.add_argument("--seconds", type=float, default=None, help="stop after this long")
    dash.set_defaults(handler=_cmd_dash)

    from providers.sim.cli import add_arguments as add_sim_arguments

    sim = commands.add_parser(
        "sim",
        help="serve the built-in LLM simulator (OpenAI, Anthropic, Gemini wire formats)",
        description="Serve the simulator on 127.0.0.1 for any OpenAI-, Anthropic- or "
        "Gemini-compatible client.",
    )
    add_sim_arguments(sim)
    sim.set_defaults(handler=_cmd_sim)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in GC_TUNED_COMMANDS:
        # These own their process and may hold thousands of live calls (swarm.gcpolicy).
        with throughput_gc():
            code: int = args.handler(args)
    else:
        code = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
