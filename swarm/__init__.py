"""swarm: a runtime for multi-agent LLM swarms on trio (and asyncio through anyio).

The runtime (engine, actors, scheduler) is being built; today this package holds
the ``swarm`` command. The provider layer lives in the ``providers`` package.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
