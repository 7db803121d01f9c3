"""Estimated cost of a call from its normalized usage and a price table.

Prices are USD per million tokens, as the providers publish them, checked against
their pricing pages in November 2026. They change: treat the figures as estimates,
and override or extend the table with your contract's rates through
``PriceTable.with_prices`` or ``EngineConfig.prices``.

Billing rules encoded here (see ``providers.events.Usage``: ``input_tokens``
counts every prompt token, cached or not):

* uncached input = input - cache reads - cache writes, at the input rate;
* cache reads at the cached-input rate (OpenAI "cached input", Anthropic "cache
  hits", Gemini "context caching");
* cache writes at the cache-write rate (Anthropic's 5-minute writes, 1.25x input;
  providers without write charges bill them as input);
* output (reasoning included) at the output rate;
* a long-prompt tier (Gemini 2.5 Pro above 200k prompt tokens) bills the whole
  request at its own rates.
"""

from __future__ import annotations

import msgspec

from providers.events import Usage

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable"]


class Price(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Rates in USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    """Cache-hit rate; None bills cache hits as input."""
    cache_write: float | None = None
    """Cache-write rate; None bills cache writes as input."""
    long_prompt_threshold: int | None = None
    """Above this many prompt tokens the request is billed at ``long_prompt``."""
    long_prompt: Price | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Price.{name} must not be negative, got {value}")
        if (self.long_prompt_threshold is None) != (self.long_prompt is None):
            raise ValueError("Price: give long_prompt_threshold and long_prompt together")

    def cost(self, usage: Usage) -> float:
        """USD for one call's usage."""
        if self.long_prompt is not None and self.long_prompt_threshold is not None:
            if usage.input_tokens > self.long_prompt_threshold:
                return self.long_prompt.cost(usage)
        reads = usage.cache_read_tokens
        writes = usage.cache_write_tokens
        fresh = max(0, usage.input_tokens - reads - writes)
        total = fresh * self.input + usage.output_tokens * self.output
        total += reads * (self.cached_input if self.cached_input is not None else self.input)
        total += writes * (self.cache_write if self.cache_write is not None else self.input)
        return total / 1_000_000


def _anthropic(inp: float, out: float) -> Price:
    # Anthropic: 5-minute cache writes at 1.25x input, cache hits at 0.1x input.
    return Price(input=inp, output=out, cached_input=inp * 0.1, cache_write=inp * 1.25)


DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI (cached input: 0.1x on the GPT-5 family, 0.25x on GPT-4.1, 0.5x on GPT-4o).
    "gpt-5.4-mini": Price(input=0.75, output=4.50, cached_input=0.075),
    "gpt-5.4": Price(input=2.50, output=15.00, cached_input=0.25),
    "gpt-5.2": Price(input=1.75, output=14.00, cached_input=0.175),
    "gpt-5-nano": Price(input=0.05, output=0.40, cached_input=0.005),
    "gpt-5-mini": Price(input=0.25, output=2.00, cached_input=0.025),
    "gpt-5": Price(input=1.25, output=10.00, cached_input=0.125),
    "gpt-4.1-nano": Price(input=0.10, output=0.40, cached_input=0.025),
    "gpt-4.1-mini": Price(input=0.40, output=1.60, cached_input=0.10),
    "gpt-4.1": Price(input=2.00, output=8.00, cached_input=0.50),
    "gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075),
    "gpt-4o": Price(input=2.50, output=10.00, cached_input=1.25),
    "o4-mini": Price(input=1.10, output=4.40, cached_input=0.275),
    "o3": Price(input=2.00, output=8.00, cached_input=0.50),
    # Anthropic.
    "claude-opus-4-1": _anthropic(15.00, 75.00),
    "claude-opus-4-0": _anthropic(15.00, 75.00),
    "claude-opus-4-2025": _anthropic(15.00, 75.00),
    "claude-opus-4": _anthropic(5.00, 25.00),  # 4.5 and later
    "claude-opus-5": _anthropic(5.00, 25.00),
    "claude-sonnet-5-5": Price(input=2.00, output=10.00, cached_input=0.10, cache_write=2.50),
    "claude-sonnet-5": _anthropic(2.00, 10.00),
    "claude-sonnet-4": _anthropic(3.00, 15.00),
    "claude-3-7-sonnet": _anthropic(3.00, 15.00),
    "claude-haiku-4": _anthropic(1.00, 5.00),
    "claude-3-5-haiku": _anthropic(0.80, 4.00),
    # Google Gemini.
    "gemini-2.5-pro": Price(
        input=1.25,
        output=10.00,
        cached_input=0.125,
        long_prompt_threshold=200_000,
        long_prompt=Price(input=2.50, output=15.00, cached_input=0.25),
    ),
    "gemini-2.5-flash-lite": Price(input=0.10, output=0.40, cached_input=0.01),
    "gemini-2.5-flash": Price(input=0.30, output=2.50, cached_input=0.03),
}


class PriceTable:
    """Looks up the price of a model by the longest matching name prefix, so dated
    snapshots (``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-5-20250929``) find
    their family's price."""

    def __init__(self, prices: dict[str, Price] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES if prices is None else prices)
        # Longest first, so "gpt-4o-mini" wins over "gpt-4o".
        self._keys = sorted(self._prices, key=len, reverse=True)

    def with_prices(self, prices: dict[str, Price]) -> PriceTable:
        """A copy with ``prices`` added or replacing entries of the same name."""
        return PriceTable({**self._prices, **prices})

    def price(self, model: str) -> Price | None:
        name = model.rsplit("/", 1)[-1].lower()  # "openai/gpt-4o" -> "gpt-4o"
        for key in self._keys:
            if name.startswith(key):
                return self._prices[key]
        return None

    def cost(self, model: str, usage: Usage) -> float | None:
        """Estimated USD for ``usage`` on ``model``, or None when the model is unpriced."""
        price = self.price(model)
        return None if price is None else price.cost(usage)
