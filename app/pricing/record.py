"""A dated price of one model, and one model's prices over time."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.pricing.match import Matcher

# The token prices of a price record / tier, USD per million tokens.
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_5m",
                "cache_write_1h", "reasoning")


@dataclass(frozen=True, slots=True)
class Rates:
    """Resolved per-token rates of one price (or one of its tiers), USD per million tokens:
    the fallbacks are applied (cache read/write without a price of their own cost the input
    price; ``cache_write_1h`` and ``reasoning`` stay None when the model has no such price)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float | None
    reasoning: float | None

    @classmethod
    def of(cls, prices: dict[str, Any]) -> Rates:
        def num(key: str) -> float | None:
            v = prices.get(key)
            return None if v is None else float(v)

        p_in = num("input") or 0.0
        cw = num("cache_write_5m")
        if cw is None:
            cw = num("cache_write")
        cr = num("cache_read")
        return cls(input=p_in, output=num("output") or 0.0,
                   cache_read=p_in if cr is None else cr, cache_write=p_in if cw is None else cw,
                   cache_write_1h=num("cache_write_1h"), reasoning=num("reasoning"))


@dataclass(frozen=True, slots=True)
class Price:
    """One price of a model, valid from ``valid_from`` (None: since always) until the model's
    next price. ``prices`` holds the stated prices (``PRICE_FIELDS``); ``tiers`` lists
    ``{"above": N, <field>: price, …}``: a tier's prices replace the base ones for a call whose
    total prompt tokens are above N."""

    valid_from: datetime | None
    prices: dict[str, float]
    tiers: tuple[dict[str, Any], ...] = ()
    base: Rates = field(init=False)
    bands: tuple[tuple[int, Rates], ...] = field(init=False)  # (above, rates), ascending

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", Rates.of(self.prices))
        bands = []
        for tier in sorted(self.tiers, key=lambda t: t["above"]):
            merged = {**self.prices, **{k: v for k, v in tier.items() if k != "above"}}
            bands.append((int(tier["above"]), Rates.of(merged)))
        object.__setattr__(self, "bands", tuple(bands))

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates for a call with this many prompt tokens (input + cache read + write)."""
        rates = self.base
        for above, tier_rates in self.bands:
            if prompt_tokens > above:
                rates = tier_rates
            else:
                break
        return rates


@dataclass(slots=True)
class PricedModel:
    """A model of one provider: its match, and its prices in ``valid_from`` order."""

    provider: str
    model: str
    name: str | None
    match: dict
    matcher: Matcher
    prices: list[Price]
    shipped: bool = True  # from the shipped snapshot (files loaded by hand are tried first)
    rank: int = 0
    _starts: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prices.sort(key=lambda p: p.valid_from.timestamp() if p.valid_from else float("-inf"))
        self._starts = [p.valid_from.timestamp() if p.valid_from else float("-inf")
                        for p in self.prices]

    def price_at(self, ts: datetime) -> Price | None:
        """The price valid at ``ts``: the latest whose ``valid_from`` is not after it."""
        i = bisect_right(self._starts, ts.timestamp())
        return self.prices[i - 1] if i else None
