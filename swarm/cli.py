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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
