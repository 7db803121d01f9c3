"""What ``swarm bench`` measures: an endpoint (any OpenAI-compatible, Anthropic or
Gemini server, or a vendor preset), or the simulator started for the run.

The simulator runs in a child process (``python -m providers.sim``): in the same
process it would share the event loop and the CPU with the client, and the
figures would measure both together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from providers.families import FAMILY_NAMES, Endpoint, get_family
from providers.secrets import Secret

__all__ = ["Target", "TargetError", "simulator_process"]


class TargetError(ValueError):
    """The target cannot be reached or configured as given (names the fix)."""


class Target(msgspec.Struct, kw_only=True, frozen=True):
    """Where the requests go (no key in it: the report is safe to share)."""

    kind: str  # "simulator", "url" or "preset:NAME"
    base_url: str
    family: str
    model: str
    api_key_env: str | None = None

    def endpoint(self, env: dict[str, str] | os._Environ[str]) -> Endpoint:
        key: Secret | None = None
        if self.api_key_env:
            value = env.get(self.api_key_env)
            if not value:
                raise TargetError(
                    f"--api-key-env {self.api_key_env} is not set; export it or drop the flag"
                )
            key = Secret(value)
        elif self.kind == "simulator":
            key = Secret("sk-sim")
        return Endpoint(provider=self.kind, base_url=self.base_url, api_key=key)


def base_url_for(root: str, family: str) -> str:
    """The simulator's base URL for ``family`` (its ``default_base_url``'s path)."""
    path = urllib.parse.urlsplit(get_family(family).default_base_url).path.rstrip("/")
    return root + path


def check_family(family: str) -> str:
    if family not in FAMILY_NAMES:
        raise TargetError(f"unknown --family {family!r}; choose one of {', '.join(FAMILY_NAMES)}")
    return family


@contextmanager
def simulator_process(config: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """Start the simulator in a child process (``python -m providers.sim``) with
    ``config`` (SimConfig fields; any free port unless it names one); yield (its
    root URL, its pid); stop it at the end."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"port": 0, "log_size": 0, **config}, f)
    proc = subprocess.Popen(
        [sys.executable, "-m", "providers.sim", "--config", f.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise TargetError(f"the simulator did not start: {(line + err).strip()}")
        yield line.split("listening on", 1)[1].strip(), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        os.unlink(f.name)


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
