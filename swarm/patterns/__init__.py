"""Swarm patterns, each a small API over a running :class:`~swarm.agents.Swarm`.

* map: :func:`open_map` / :func:`map_agent`, one task over many inputs.
* pipeline: :func:`open_pipeline` / :func:`run_pipeline`, stages with bounded queues.
* consensus: :func:`consensus`, several agents asked, then a vote or a judge.
* handoff and supervisor-worker are settings of an agent, since they are tools it
  is given: ``Agent(handoffs=[...])`` (``transfer_to_<name>``, the conversation passes
  on) and ``Agent(can_ask=[...])`` (``ask_<name>``, a worker's answer comes back).
"""

from __future__ import annotations

from .consensus import ConsensusResult as ConsensusResult
from .consensus import NoConsensus as NoConsensus
from .consensus import consensus as consensus
from .consensus import normalize_answer as normalize_answer
from .fanout import MapItem as MapItem
from .fanout import map_agent as map_agent
from .fanout import open_map as open_map
from .pipeline import PipelineItem as PipelineItem
from .pipeline import Stage as Stage
from .pipeline import open_pipeline as open_pipeline
from .pipeline import run_pipeline as run_pipeline

__all__ = [
    "ConsensusResult",
    "MapItem",
    "NoConsensus",
    "PipelineItem",
    "Stage",
    "consensus",
    "map_agent",
    "normalize_answer",
    "open_map",
    "open_pipeline",
    "run_pipeline",
]
