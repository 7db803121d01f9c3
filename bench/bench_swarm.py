"""A swarm of many agents, each doing a multi-turn tool loop, against the simulator.

The simulator runs in its own process pinned to one core (``bench_engine``'s
``Simulator``), with ``tool_rounds`` so that its model calls a tool, reads the
result, calls again, and answers only on the last turn: ``--rounds 2`` is a
three-turn tool loop. This process (pinned to the other core) opens one engine
and one swarm of ``--agents`` agents, each with its own tool, asks every agent
one question at once, and waits for every reply. Printed: wall time, this
process's CPU (user + system, ``getrusage``) for the swarm run, CPU per model
turn and per agent, the simulator's CPU, and the counts (replies, turns, tool
calls, errors) so a run that did not complete shows it.

    python bench/bench_swarm.py                 # 1,000 agents x three turns
    python bench/bench_swarm.py --agents 5000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import Simulator, _pin, _raise_fd_limit

from swarm import EngineConfig, ProviderConfig, RetryPolicy, open_engine
from swarm.agents import Agent, open_swarm
from swarm.execution import ToolBox


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_tool(i: int) -> Any:
    async def lookup(key: str) -> str:
        """Look a key up in this agent's store.

        Args:
            key: What to look up.
        """
        return f"agent {i}: {key} = {i * 7}"

    return lookup


async def run(args: argparse.Namespace, sim: Simulator) -> dict[str, Any]:
    config = EngineConfig(
        providers={
            "sim": ProviderConfig(
                family="openai",
                base_url=sim.base_url,
                api_key="sk-bench",
                max_concurrency=args.concurrency,
            )
        },
        default_provider="sim",
        retry=RetryPolicy(max_attempts=1),
    )
    agents = [
        Agent(
            f"agent-{i}",
            "You answer with your lookup tool.",
            tools=ToolBox([make_tool(i)]),
            model="m",
            max_tokens=40,
            max_turns=args.rounds + 2,
        )
        for i in range(args.agents)
    ]
    errors: list[str] = []
    turns = tool_calls = replies = 0
    async with open_engine(config, env={}) as engine, open_swarm(engine, agents) as crew:
        cpu0, t0 = _cpu(), time.perf_counter()

        async def one(name: str) -> None:
            nonlocal turns, tool_calls, replies
            try:
                reply = await crew.ask(name, "Look up the answer.", timeout=args.timeout)
            except Exception as exc:  # counted and shown, the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            replies += 1
            turns += reply.turns
            tool_calls += reply.tool_calls

        async with anyio.create_task_group() as tg:
            for agent in agents:
                tg.start_soon(one, agent.name)
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    return {
        "agents": args.agents,
        "turns_per_agent": args.rounds + 1,
        "replies": replies,
        "turns": turns,
        "tool_calls": tool_calls,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 3),
        "engine_cpu_s": round(cpu, 3),
        "cpu_us_per_turn": round(cpu / turns * 1e6, 1) if turns else None,
        "cpu_ms_per_agent": round(cpu / args.agents * 1e3, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="tool rounds (2: three turns)")
    parser.add_argument("--output-tokens", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=1000, help="the provider's calls")
    parser.add_argument("--timeout", type=float, default=300.0, help="each reply's deadline")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    _pin(0)
    profile = {"output_tokens": args.output_tokens, "tool_rounds": args.rounds}
    sim = Simulator({"m": profile}, core=1)
    try:
        sim_cpu0 = sim.cpu()
        out = anyio.run(run, args, sim, backend="trio")
        out["sim_cpu_s"] = round(sim.cpu() - sim_cpu0, 3)
    finally:
        sim.close()
    print(f"swarm: {out['agents']} agents x {out['turns_per_agent']}-turn tool loops")
    print(
        f"  replies {out['replies']}/{out['agents']}, {out['turns']} model turns, "
        f"{out['tool_calls']} tool calls, {out['errors']} errors"
        + (f" (first: {out['first_error']})" if out["first_error"] else "")
    )
    print(
        f"  wall {out['wall_s']:.2f} s, engine CPU {out['engine_cpu_s']:.2f} s "
        f"({out['cpu_us_per_turn']} us per model turn, {out['cpu_ms_per_agent']} ms per agent), "
        f"simulator CPU {out['sim_cpu_s']:.2f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if out["replies"] == out["agents"] else 1


if __name__ == "__main__":
    sys.exit(main())
