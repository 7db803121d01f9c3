"""swarm: a runtime for multi-agent LLM swarms on trio (and asyncio through anyio).

::

    import swarm
    from providers import Message, Request

    async with swarm.open_engine() as engine:   # no key: the built-in simulator
        async with engine.stream(Request(model="gpt-4o-mini",
                                         messages=[Message.user("hi")])) as call:
            async for event in call:
                ...

The provider layer (requests, events, errors, families) is the ``providers``
package; this package is the runtime on top of it.
"""

from __future__ import annotations

from .call import CallFailed as CallFailed
from .call import CallOptions as CallOptions
from .call import CallStream as CallStream
from .config import ConfigError as ConfigError
from .config import EngineConfig as EngineConfig
from .config import ProviderConfig as ProviderConfig
from .config import RouteConfig as RouteConfig
from .config import SchedulerConfig as SchedulerConfig
from .config import load_config as load_config
from .engine import Engine as Engine
from .engine import EngineStatistics as EngineStatistics
from .engine import MapResult as MapResult
from .engine import open_engine as open_engine
from .errors import CircuitOpen as CircuitOpen
from .errors import EngineClosed as EngineClosed
from .errors import EngineOverloaded as EngineOverloaded
from .errors import SwarmError as SwarmError
from .events import Cancelled as Cancelled
from .events import Completed as Completed
from .events import ErrorInfo as ErrorInfo
from .events import Failed as Failed
from .events import Restart as Restart
from .gcpolicy import throughput_gc as throughput_gc
from .ledger import CallRecord as CallRecord
from .ledger import Ledger as Ledger
from .pricing import Price as Price
from .pricing import PriceTable as PriceTable
from .ratelimit import RateLimitConfig as RateLimitConfig
from .resilience import CircuitBreakerPolicy as CircuitBreakerPolicy
from .resilience import RetryBudgetPolicy as RetryBudgetPolicy
from .resilience import RetryPolicy as RetryPolicy
from .resilience import Timeouts as Timeouts
from .routing import UnknownRoute as UnknownRoute

__all__ = [
    "CallFailed",
    "CallOptions",
    "CallRecord",
    "CallStream",
    "Cancelled",
    "CircuitBreakerPolicy",
    "CircuitOpen",
    "Completed",
    "ConfigError",
    "Engine",
    "EngineClosed",
    "EngineConfig",
    "EngineOverloaded",
    "EngineStatistics",
    "ErrorInfo",
    "Failed",
    "Ledger",
    "MapResult",
    "Price",
    "PriceTable",
    "ProviderConfig",
    "RateLimitConfig",
    "Restart",
    "RetryBudgetPolicy",
    "RetryPolicy",
    "RouteConfig",
    "SchedulerConfig",
    "SwarmError",
    "Timeouts",
    "UnknownRoute",
    "__version__",
    "load_config",
    "open_engine",
    "throughput_gc",
]

__version__ = "0.1.0"
