"""Model prices: list, show (with the name resolution ingest uses), load a price file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from app.db import engine, reads
from app.pricing import book as price_book
from app.pricing import price_file, store
from app.pricing.match import describe
from app.pricing.record import PricedModel


class PriceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One dated price of one model (USD per million tokens)."""

    provider: str
    model: str
    name: str | None
    match: str  # readable: "claude-sonnet-4-5* | claude-sonnet-4.5*"
    valid_from: datetime | None  # None: since always
    valid_to: datetime | None  # None: still valid
    input: float | None
    output: float | None
    cache_read: float | None
    cache_write: float | None
    cache_write_5m: float | None
    cache_write_1h: float | None
    reasoning: float | None
    tiers: list[dict[str, Any]]
    source: str
    loaded_at: datetime


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """What a model name (and provider) resolves to, and that model's prices over time."""

    query: str
    provider: str
    model: str
    prices: list[PriceRecord]


_COLUMNS = ", ".join(store.PRICE_COLUMNS)
_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_5m", "cache_write_1h",
           "reasoning")

_SELECT = f"""
SELECT provider, model, name, match, valid_from,
       lead(valid_from) OVER (PARTITION BY provider, model
                              ORDER BY valid_from NULLS FIRST) AS valid_to,
       {_COLUMNS}, tiers, source, loaded_at
FROM model_price
"""


def _record(r: Any) -> PriceRecord:
    return PriceRecord(
        provider=r["provider"], model=r["model"], name=r["name"],
        match=describe(msgspec.json.decode(r["match"])), valid_from=r["valid_from"],
        valid_to=r["valid_to"],
        **{f: None if r[c] is None else float(r[c]) for f, c in zip(_FIELDS, store.PRICE_COLUMNS)},
        tiers=msgspec.json.decode(r["tiers"]), source=r["source"], loaded_at=r["loaded_at"])


async def list_prices(*, provider: str | None = None, search: str | None = None,
                      at: datetime | None = None) -> list[PriceRecord]:
    """The price of each model valid at ``at`` (default now), by provider and model; filtered
    by provider id and by a substring of the model id or name."""
    at = at or datetime.now(UTC)
    async with reads.connection() as conn:
        rows = await conn.fetch(f"""
            SELECT * FROM ({_SELECT}) p
            WHERE (valid_from IS NULL OR valid_from <= $1) AND (valid_to IS NULL OR valid_to > $1)
              AND ($2::text IS NULL OR provider = lower($2))
              AND ($3::text IS NULL OR model ILIKE '%' || $3 || '%' OR name ILIKE '%' || $3 || '%')
            ORDER BY provider, model""", at, provider, search)
    return [_record(r) for r in rows]


async def resolve(model: str, provider: str | None = None) -> Resolution | None:
    """The priced model ingest would use for ``model`` (and ``provider``), with its history."""
    async with reads.connection() as conn:
        found: PricedModel | None = (await price_book.current(conn)).resolve(model, provider)
        if found is None:
            return None
        rows = await conn.fetch(f"""SELECT * FROM ({_SELECT}) p
                                    WHERE provider = $1 AND model = $2
                                    ORDER BY valid_from NULLS FIRST""", found.provider, found.model)
    return Resolution(query=model, provider=found.provider, model=found.model,
                      prices=[_record(r) for r in rows])


async def load(path: Path | str, data: bytes | None = None) -> store.LoadResult:
    """Validate and load a price file (PriceFileError: one line naming the problem)."""
    parsed = price_file.read(path, data=data)
    async with engine.pool().acquire() as conn:
        result = await store.load_file(conn, parsed)
    price_book.invalidate()
    return result
