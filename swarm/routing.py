"""Routes: what ``Request.model`` names, resolved to deployments.

* ``provider/model``, where ``provider`` is configured: that deployment.
* an alias from ``routes``: its targets, with its strategy.
* anything else: the model on the default provider (model names may contain
  ``/``, such as ``meta-llama/Llama-3-8b``; only a configured provider name before
  the first ``/`` makes it a deployment).

Choosing among a route's targets (sans-IO; the engine passes the live figures):
``fallback`` takes the first target not yet tried; ``least_outstanding`` the one
with the fewest calls in flight; ``lowest_latency`` the one with the lowest
smoothed time to first token (untried targets first, so each gets measured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from .config import ConfigError, EngineConfig

__all__ = ["Deployment", "Route", "Router", "UnknownRoute"]

Strategy = Literal["fallback", "least_outstanding", "lowest_latency"]


class UnknownRoute(ConfigError):
    """A request names a route that resolves to nothing."""


class Deployment(msgspec.Struct, frozen=True, order=True):
    provider: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


class Route(msgspec.Struct, frozen=True):
    name: str
    targets: tuple[Deployment, ...]
    strategy: Strategy = "fallback"

    def choose(
        self,
        *,
        exclude: Sequence[Deployment] = (),
        has_room: Callable[[Deployment], bool],
        outstanding: Callable[[Deployment], int],
        latency: Callable[[Deployment], float | None],
    ) -> Deployment | None:
        """The target to use now, or None when every untried target is full.

        ``exclude`` holds targets this call already failed on (fallback moves on).
        """
        if not exclude and self.strategy == "fallback":  # the usual case, per dispatch
            head = self.targets[0] if self.targets else None
            return head if head is not None and has_room(head) else None
        candidates = [t for t in self.targets if t not in exclude]
        if self.strategy == "fallback":
            # Only the first untried target: a later one is a fallback for failures,
            # not overflow capacity.
            first = candidates[:1]
            return first[0] if first and has_room(first[0]) else None
        open_targets = [t for t in candidates if has_room(t)]
        if not open_targets:
            return None
        if self.strategy == "least_outstanding":
            return min(open_targets, key=lambda t: (outstanding(t), self.targets.index(t)))

        def by_latency(t: Deployment) -> tuple[int, float, int]:
            measured = latency(t)
            if measured is None:
                return (0, 0.0, self.targets.index(t))
            return (1, measured, self.targets.index(t))

        return min(open_targets, key=by_latency)


class Router:
    """Resolves route names with the engine's config. Caches resolved routes."""

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._cache: dict[str, Route] = {}

    def resolve(self, name: str) -> Route:
        """The route ``name`` refers to.

        Raises:
            UnknownRoute: nothing matches; the message lists what would.
        """
        route = self._cache.get(name)
        if route is None:
            route = self._cache[name] = self._resolve(name)
        return route

    def _resolve(self, name: str) -> Route:
        config = self._config
        alias = config.routes.get(name)
        if alias is not None:
            targets = tuple(Deployment(*t.split("/", 1)) for t in alias.targets)
            return Route(name, targets, alias.strategy)
        provider, sep, model = name.partition("/")
        if sep and provider in config.providers and model:
            return Route(name, (Deployment(provider, model),))
        default = config.default_provider
        if default is None and len(config.providers) == 1:
            default = next(iter(config.providers))
        if default is None:
            known = sorted(config.providers) + sorted(config.routes)
            raise UnknownRoute(
                f"route {name!r} names no configured provider or alias, and there is no "
                f"default_provider; use provider/model with one of: {', '.join(known)}"
            )
        return Route(name, (Deployment(default, name),))
