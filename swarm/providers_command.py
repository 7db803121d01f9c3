"""``swarm providers``: the vendor presets, which of their key variables are set,
what the engine would use here, and (``--check``) a health check of each.

Key values are never printed, written or logged: only variable names, and
whether they are set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import msgspec

from providers.families import Endpoint
from providers.health import Health, check_endpoint
from providers.presets import PRESETS, Preset

from .config import EngineConfig, load_config

__all__ = ["add_arguments", "providers_command"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="an engine config (TOML): its providers, in place of the environment's",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="list each configured provider's models (free; needs a valid key)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per check (default 10)")
    p.add_argument("--json", default=None, metavar="FILE", help="write what was found here")


def _key_state(preset: Preset, env: Mapping[str, str]) -> str:
    if preset.key_env is None:
        return "no key needed"
    state = "set" if env.get(preset.key_env) else "not set"
    if not preset.key_required and state == "not set":
        state = "not set (optional)"
    return f"{preset.key_env} {state}"


def _base(preset: Preset, env: Mapping[str, str]) -> str:
    if preset.base_url_env and env.get(preset.base_url_env):
        return env[preset.base_url_env]
    return preset.base_url or f"from {preset.base_url_env}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


class _Configured(msgspec.Struct, kw_only=True, frozen=True):
    source: str  # "simulator", "environment" or "config FILE"
    providers: dict[str, str]  # name -> family


def _configured(config: EngineConfig, source: str) -> _Configured:
    if config.uses_simulator:
        from .engine import SIM_PROVIDERS

        return _Configured(source="simulator", providers=dict(SIM_PROVIDERS))
    return _Configured(
        source=source,
        providers={n: p.resolved_family() for n, p in sorted(config.providers.items())},
    )


async def _check_all(config: EngineConfig, env: Mapping[str, str], limit: float) -> list[Health]:
    async with httpx.AsyncClient() as http:
        if config.uses_simulator:
            from providers.sim import open_simulator

            from .engine import SIM_KEY, SIM_PROVIDERS

            async with open_simulator() as sim:
                from providers.secrets import Secret

                return [
                    await check_endpoint(
                        http,
                        Endpoint(
                            provider=name,
                            base_url=sim.base_url_for(family),
                            api_key=Secret(SIM_KEY),
                        ),
                        family,
                        limit=limit,
                    )
                    for name, family in SIM_PROVIDERS.items()
                ]
        out: list[Health] = []
        for name, provider in sorted(config.providers.items()):
            family = provider.resolved_family()
            try:
                endpoint = provider.endpoint(name, env)
            except (ValueError, KeyError) as exc:  # a key variable not set, a bad preset
                out.append(
                    Health(
                        provider=name,
                        family=family,
                        base_url=provider.base_url or "",
                        ok=False,
                        status=None,
                        seconds=0.0,
                        models=None,
                        detail=str(exc),
                    )
                )
                continue
            out.append(await check_endpoint(http, endpoint, family, limit=limit))
        return out


def providers_command(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Run ``swarm providers``; 0 all good, 1 a check failed (ConfigError: exit 3)."""
    env = os.environ if env is None else env
    rows = [[p.name, p.family, _base(p, env), _key_state(p, env)] for p in PRESETS.values()]
    print("presets (a provider config names one; keys come from these variables):")
    print(_table(["preset", "family", "base URL", "key"], rows))
    if args.config:
        config = load_config(args.config).with_environment(env)
        source = f"config {args.config}"
    else:
        config = EngineConfig().with_environment(env)
        source = "environment"
    configured = _configured(config, source)
    print()
    if configured.source == "simulator":
        print("configured: none, and no key set: swarm.open_engine() uses the built-in simulator")
    else:
        names = ", ".join(f"{n} ({f})" for n, f in configured.providers.items())
        print(f"configured from the {configured.source}: {names}")
    found: dict[str, Any] = {
        "presets": [{"name": r[0], "family": r[1], "base_url": r[2], "key": r[3]} for r in rows],
        "configured": msgspec.to_builtins(configured),
    }
    code = 0
    if args.check:
        results = anyio.run(lambda: _check_all(config, env, args.timeout), backend="trio")
        print()
        print(
            _table(
                ["provider", "family", "health", "status", "ms", "detail"],
                [
                    [
                        h.provider,
                        h.family,
                        "ok" if h.ok else "FAILED",
                        "-" if h.status is None else str(h.status),
                        f"{h.seconds * 1000:.0f}",
                        h.detail,
                    ]
                    for h in results
                ],
            )
        )
        found["checks"] = msgspec.to_builtins(results)
        code = 0 if all(h.ok for h in results) else 1
    if args.json:
        with open(args.json, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(found)))
        print(f"written to {args.json}", file=sys.stderr)
    return code
