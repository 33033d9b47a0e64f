"""Model prices: list, show (with the name resolution ingest uses), load a price file; users'
aliases (a model name priced as another)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from app.db import engine, reads
from app.pricing import book as price_book
from app.pricing import price_file, store
from app.pricing.book import PriceBook
from app.pricing.match import describe
from app.pricing.price_file import PriceFileError
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
    priced_as: str | None = None  # the alias target, when a user's alias names ``query``


class AliasRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A model name priced as another (``devlog prices alias NAME MODEL``)."""

    name: str  # as agents report it (lower-cased)
    model: str  # the name it is priced as
    resolves_to: str | None  # ``provider/model`` of the price used today; None: none any more
    source: str
    loaded_at: datetime


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
        known = await price_book.current(conn)
        found: PricedModel | None = known.resolve(model, provider)
        if found is None:
            return None
        rows = await conn.fetch(f"""SELECT * FROM ({_SELECT}) p
                                    WHERE provider = $1 AND model = $2
                                    ORDER BY valid_from NULLS FIRST""", found.provider, found.model)
    return Resolution(query=model, provider=found.provider, model=found.model,
                      prices=[_record(r) for r in rows], priced_as=known.priced_as(model))


async def load(path: Path | str, data: bytes | None = None) -> store.LoadResult:
    """Validate and load a price file (PriceFileError: one line naming the problem)."""
    parsed = price_file.read(path, data=data)
    async with engine.pool().acquire() as conn:
        result = await store.load_file(conn, parsed)
    price_book.invalidate()
    return result


# -- aliases -----------------------------------------------------------------------------------

ALIAS_SOURCE = "devlog prices alias"


async def list_aliases() -> list[AliasRecord]:
    async with engine.pool().acquire() as conn:
        rows = await store.aliases(conn)
        known = await store.read_book(conn)
    out = []
    for r in rows:
        found = known.resolve_plain(r["model"])
        out.append(AliasRecord(name=r["name"], model=r["model"], source=r["source"],
                               loaded_at=r["loaded_at"],
                               resolves_to=f"{found.provider}/{found.model}" if found else None))
    return out


async def set_alias(name: str, model: str) -> AliasRecord:
    """Price calls of model ``name`` as ``model`` from now on (PriceFileError: one line saying
    why not — an empty or over-long name, an alias of itself, a target without a price, or a
    target that is an alias itself)."""
    error = price_file.alias_error(name, model)
    if error is not None:
        raise PriceFileError(f"devlog prices alias: {error}")
    name, model = name.strip().lower(), model.strip().lower()
    async with engine.pool().acquire() as conn:
        await store.set_alias(conn, name, model, ALIAS_SOURCE)
    price_book.invalidate()
    return next(a for a in await list_aliases() if a.name == name)


async def remove_alias(name: str) -> bool:
    """Forget the alias ``name`` (False when there was none)."""
    async with engine.pool().acquire() as conn:
        removed = await store.remove_alias(conn, name.strip().lower())
    price_book.invalidate()
    return removed


async def book() -> PriceBook:
    """This process's price book, re-checked at most every few seconds (no query otherwise)."""
    if price_book.fresh():
        return price_book.cached()
    async with engine.pool().acquire() as conn:
        return await price_book.current(conn)


def priced_as(model: str | None) -> str | None:
    """The name a user's alias prices ``model`` as (from the book this process holds: call
    :func:`book` first in a request that shows it)."""
    return price_book.cached().priced_as(model)
