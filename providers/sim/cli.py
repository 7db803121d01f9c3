"""``swarm sim`` / ``python -m providers.sim``: run the simulator as a server."""

from __future__ import annotations

import argparse
import gc
import sys

import msgspec

from . import tune_gc
from .config import Fault, ModelProfile, RateLimit, SimConfig, load_config

__all__ = ["add_arguments", "build_config", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default 8000; 0: any free port)"
    )
    parser.add_argument("--config", default=None, help="a TOML or JSON SimConfig file")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--ttft", type=float, default=None, help="time to first token, seconds")
    parser.add_argument("--tps", type=float, default=None, help="tokens per second (0: unpaced)")
    parser.add_argument("--output-tokens", type=int, default=None, help="answer length in tokens")
    parser.add_argument(
        "--output-tokens-max",
        type=int,
        default=None,
        help="with --output-tokens: draw the length uniformly up to this",
    )
    parser.add_argument("--tool-calls", type=int, default=None, help="parallel tool calls per turn")
    parser.add_argument(
        "--tool-rounds", type=int, default=None, help="tool rounds before the model answers"
    )
    parser.add_argument(
        "--bad-tool-calls",
        type=float,
        default=None,
        metavar="P",
        help="chance a tool call is wrong (bad arguments or an unoffered tool), 0-1",
    )
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per API key")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per minute per API key")
    parser.add_argument(
        "--itpm", type=int, default=None, help="input tokens per minute per API key (Anthropic's)"
    )
    parser.add_argument(
        "--otpm", type=int, default=None, help="output tokens per minute per API key (Anthropic's)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='a fault, e.g. \'{"kind":"status","status":529,"rate":0.1}\' (repeatable)',
    )


def build_config(args: argparse.Namespace, base: SimConfig | None = None) -> SimConfig:
    """The SimConfig the command line asks for (the file's, ``base`` if loaded
    already, then the flags)."""
    if base is not None:
        cfg = base
    else:
        cfg = load_config(args.config) if args.config else SimConfig(port=8000)
    if args.host is not None:
        cfg.host = args.host
    if args.port is not None:
        cfg.port = args.port
    if args.seed is not None:
        cfg.seed = args.seed
    prof = msgspec.structs.asdict(cfg.default_profile)
    for flag, field in (
        ("ttft", "ttft"),
        ("tps", "tokens_per_second"),
        ("output_tokens", "output_tokens"),
        ("output_tokens_max", "output_tokens_max"),
        ("tool_calls", "tool_calls"),
        ("tool_rounds", "tool_rounds"),
        ("bad_tool_calls", "bad_tool_calls"),
    ):
        value = getattr(args, flag)
        if value is not None:
            prof[field] = value
    cfg.default_profile = ModelProfile(**prof)
    flags = ("rpm", "tpm", "itpm", "otpm")
    if any(getattr(args, flag) is not None for flag in flags):
        cfg.rate_limit = RateLimit(
            **{
                flag: getattr(args, flag)
                if getattr(args, flag) is not None
                else getattr(cfg.rate_limit, flag)
                for flag in flags
            }
        )
    for text in args.fault:
        cfg.faults.append(msgspec.json.decode(text, type=Fault))
    return cfg


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (blocking; runs trio). Returns the exit status."""
    import trio

    from .server import Simulator

    # Exit status as swarm run's: 3 a config file that cannot be used, 2 a bad flag
    # (or a port that cannot be bound), 0 stopped by Ctrl-C.
    base = None
    if args.config:
        try:
            base = load_config(args.config)
        except (ValueError, msgspec.ValidationError, OSError) as exc:
            print(f"swarm sim: the config file {args.config}: {exc}", file=sys.stderr)
            return 3
    try:
        cfg = build_config(args, base)
    except (ValueError, msgspec.ValidationError, OSError) as exc:
        print(f"swarm sim: {exc}", file=sys.stderr)
        return 2
    sim = Simulator(cfg)
    # A collection pauses every stream: keep the pauses short (see tune_gc).
    tune_gc()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(sim.serve)
            sim.port = port
            print(f"simulator listening on {sim.base_url}", flush=True)
            print(f"  OpenAI:    base_url={sim.openai_base_url}", flush=True)
            print(f"  Anthropic: base_url={sim.anthropic_base_url}", flush=True)
            print(
                f"  Gemini:    {sim.gemini_base_url}/models/MODEL:streamGenerateContent?alt=sse",
                flush=True,
            )
            print(f"  stats:     {sim.base_url}/sim/stats", flush=True)
            gc.freeze()

    try:
        trio.run(main)
    except KeyboardInterrupt:
        return 0
    except (OSError, BaseExceptionGroup) as raised:
        # Binding fails inside the nursery, so it comes wrapped in a group.
        cause: BaseException = raised
        if isinstance(raised, BaseExceptionGroup):
            found, rest = raised.split(OSError)
            if found is None or rest is not None:
                raise
            cause = found
            while isinstance(cause, BaseExceptionGroup):
                cause = cause.exceptions[0]
        print(
            f"swarm sim: cannot listen on {cfg.host}:{cfg.port}: {cause}; pick another "
            "--port (0: any free port) or stop what holds it",
            file=sys.stderr,
        )
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m providers.sim", description="Run the LLM simulator."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
