"""Errors of the runtime (``swarm``).

::

    SwarmError
    ├── EngineOverloaded    the engine's queue is full and it is set to refuse (retry later)
    ├── EngineClosed        the engine is shutting down or closed; no new calls (misuse)
    ├── CircuitOpen         a deployment's breaker is open; a fallback may serve, or wait
    ├── CallFailed          swarm.call: a call was cancelled (CallStream.response, complete)
    ├── ProviderActorCrashed  a call was streaming when its provider actor crashed
    └── SupervisorError     swarm.supervisor: escalation and misuse (see that module)

Provider errors (``providers.ProviderError`` and its tree) pass through the
engine unchanged: a failed call re-raises the provider's own typed error.
Configuration errors are ``swarm.config.ConfigError`` (a ``ValueError``).
"""

from __future__ import annotations

__all__ = ["CircuitOpen", "EngineClosed", "EngineOverloaded", "ProviderActorCrashed", "SwarmError"]


class SwarmError(Exception):
    """Root of the runtime's own errors."""


class EngineOverloaded(SwarmError):
    """The engine refused a call: its queue is full (``scheduler.when_full = "refuse"``).

    A retry later may succeed; so may raising ``scheduler.max_queued``.
    """

    retryable = True


class EngineClosed(SwarmError, RuntimeError):
    """The engine is closing or closed and takes no new calls."""


class CircuitOpen(SwarmError):
    """The deployment's circuit breaker is open: it failed too often recently.

    Attributes:
        deployment: ``provider/model``.
        retry_after: Seconds until the breaker lets a probe call through.
    """

    retryable = False

    def __init__(self, deployment: str, retry_after: float, reason: str) -> None:
        super().__init__(reason or f"circuit breaker of {deployment} is open")
        self.deployment = deployment
        self.provider = deployment  # where it failed, for the ledger
        self.retry_after = retry_after


class ProviderActorCrashed(SwarmError):
    """The provider actor running this call crashed after the call had committed
    (its text had begun to reach the caller), so it could not be moved elsewhere
    without splicing. Calls that had not committed were requeued instead.
    """

    retryable = True
