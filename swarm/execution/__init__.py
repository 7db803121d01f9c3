"""The execution layer on top of the engine: tools, the tool loop, sessions."""

from __future__ import annotations

from .loop import LoopEvent as LoopEvent
from .loop import LoopFinished as LoopFinished
from .loop import LoopResult as LoopResult
from .loop import ToolFinished as ToolFinished
from .loop import ToolLoop as ToolLoop
from .loop import ToolStarted as ToolStarted
from .loop import TurnEnded as TurnEnded
from .loop import TurnStarted as TurnStarted
from .loop import run_tool_loop as run_tool_loop
from .loop import tool_loop as tool_loop
from .session import Session as Session
from .session import SessionError as SessionError
from .tools import ToolBox as ToolBox
from .tools import ToolOutcome as ToolOutcome

__all__ = [
    "LoopEvent",
    "LoopFinished",
    "LoopResult",
    "Session",
    "SessionError",
    "ToolBox",
    "ToolFinished",
    "ToolLoop",
    "ToolOutcome",
    "ToolStarted",
    "TurnEnded",
    "TurnStarted",
    "run_tool_loop",
    "tool_loop",
]
