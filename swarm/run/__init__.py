"""``swarm run``: run a swarm (a spec file, or the built-in demo) or plain calls
through the engine, with a live display, a summary and a JSON report.

- :mod:`.spec`: the spec file format (TOML) and its checks.
- :mod:`.demo`: the demonstration swarm run without a spec.
- :mod:`.runner`: runs a spec (engine, agents, pattern, display).
- :mod:`.calls`: ``--calls N``, plain streaming calls without agents.
- :mod:`.display`, :mod:`.report`: what is shown and what is written.
- :mod:`.tools`: the built-in tools a spec can name.
"""

from .calls import run_calls
from .demo import demo_spec
from .report import InputOutcome, RunReport, RunSummary, SwarmRunReport
from .runner import run_spec
from .spec import SpecError, SwarmSpec, load_spec, parse_spec

__all__ = [
    "InputOutcome",
    "RunReport",
    "RunSummary",
    "SpecError",
    "SwarmRunReport",
    "SwarmSpec",
    "demo_spec",
    "load_spec",
    "parse_spec",
    "run_calls",
    "run_spec",
]
