"""Agents as actors, and swarms of them (see :mod:`swarm.agents.runtime`)."""

from .agent import Agent, Handler, OnError
from .budget import Budget, BudgetExhausted, Spent
from .runtime import (
    AgentContext,
    AgentError,
    AgentStatistics,
    AgentStopped,
    MessageEvent,
    Reply,
    ReplyTimeout,
    Swarm,
    SwarmReport,
    UnknownAgent,
    current_agent,
    open_swarm,
)

__all__ = [
    "Agent",
    "AgentContext",
    "AgentError",
    "AgentStatistics",
    "AgentStopped",
    "Budget",
    "BudgetExhausted",
    "Handler",
    "MessageEvent",
    "OnError",
    "Reply",
    "ReplyTimeout",
    "Spent",
    "Swarm",
    "SwarmReport",
    "UnknownAgent",
    "current_agent",
    "open_swarm",
]
