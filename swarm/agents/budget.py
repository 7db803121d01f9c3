"""A swarm run's budget: tokens, estimated cost and wall time (sans-IO accounting).

The meter is charged with each model turn's usage as the turn ends, and with what
discarded attempts of the swarm's calls cost (a stream cut short and retried is
billed: the ledger's ``discarded_usage``) as each call ends; once a limit is
reached it stays exhausted, and the swarm stops its agents. Calls already in flight
when the limit is crossed are cancelled, so a run overshoots its token and cost
limits by at most what those calls had streamed (their usage is still charged when
the provider reported it).
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from providers.events import Usage

from ..errors import SwarmError

__all__ = ["Budget", "BudgetExhausted", "BudgetMeter", "BudgetReason", "Spent"]

BudgetReason = Literal["tokens", "cost", "time"]


class Budget(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Limits for a swarm run; ``None`` is no limit.

    Attributes:
        tokens: Input plus output tokens over every model call.
        cost_usd: Estimated cost in USD (from the engine's price table; calls to a
            model without a price count as free, and the report says so).
        seconds: Wall time from the start of the run.
    """

    tokens: int | None = None
    cost_usd: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and (isinstance(self.tokens, bool) or self.tokens < 1):
            raise ValueError(f"Budget.tokens must be at least 1 or None, got {self.tokens!r}")
        for name in ("cost_usd", "seconds"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ValueError(f"Budget.{name} must be a positive number or None, got {value!r}")


class Spent(msgspec.Struct, kw_only=True, frozen=True):
    """What a run has used so far."""

    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_turns: int = 0  # turns whose model has no price (counted as free)
    turns: int = 0
    # Input plus output tokens of attempts whose output was thrown away (a stream
    # cut short and retried...): billed, so in ``tokens`` and ``cost_usd`` too.
    discarded_tokens: int = 0


class BudgetExhausted(SwarmError):
    """The swarm's budget is spent: it stopped its agents and takes no new work."""

    def __init__(self, reason: BudgetReason, budget: Budget, spent: Spent) -> None:
        limit = {"tokens": budget.tokens, "cost": budget.cost_usd, "time": budget.seconds}[reason]
        used = {"tokens": spent.tokens, "cost": round(spent.cost_usd, 6), "time": None}[reason]
        what = f"{used} of {limit}" if used is not None else f"{limit} s"
        super().__init__(
            f"the swarm's {reason} budget is spent ({what}); raise Budget.{_FIELD[reason]} "
            "to go further"
        )
        self.reason: BudgetReason = reason
        self.budget = budget
        self.spent = spent


_FIELD = {"tokens": "tokens", "cost": "cost_usd", "time": "seconds"}


class BudgetMeter:
    """Charges usage against a budget; ``exhausted`` is the first limit reached."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.exhausted: BudgetReason | None = None
        self._input = self._output = self._cache_read = 0
        self._cost = 0.0
        self._unpriced = 0
        self._turns = 0
        self._discarded = 0

    def charge(self, usage: Usage, cost: float | None) -> BudgetReason | None:
        """Add one turn's usage (and its estimated cost, None if unpriced); return
        the limit this charge reached, if it is the first."""
        self._turns += 1
        self._input += usage.input_tokens
        self._output += usage.output_tokens
        self._cache_read += usage.cache_read_tokens
        if cost is None:
            self._unpriced += 1
        else:
            self._cost += cost
        return self._check()

    def charge_discarded(self, usage: Usage, cost: float | None) -> BudgetReason | None:
        """Add what attempts whose output was thrown away cost (the ledger's
        ``discarded_usage`` of a call); return the limit reached, if it is the first."""
        self._discarded += usage.input_tokens + usage.output_tokens
        if cost is not None:
            self._cost += cost
        return self._check()

    def _check(self) -> BudgetReason | None:
        if self.exhausted is not None:
            return None
        b = self.budget
        if b.tokens is not None and self._input + self._output + self._discarded >= b.tokens:
            self.exhausted = "tokens"
        elif b.cost_usd is not None and self._cost >= b.cost_usd:
            self.exhausted = "cost"
        return self.exhausted

    def time_is_up(self) -> BudgetReason | None:
        """Mark the wall-time limit reached (the swarm's clock decides when)."""
        if self.exhausted is None:
            self.exhausted = "time"
            return "time"
        return None

    def error(self) -> BudgetExhausted:
        assert self.exhausted is not None
        return BudgetExhausted(self.exhausted, self.budget, self.spent())

    def spent(self) -> Spent:
        return Spent(
            tokens=self._input + self._output + self._discarded,
            input_tokens=self._input,
            output_tokens=self._output,
            cache_read_tokens=self._cache_read,
            cost_usd=self._cost,
            unpriced_turns=self._unpriced,
            turns=self._turns,
            discarded_tokens=self._discarded,
        )
