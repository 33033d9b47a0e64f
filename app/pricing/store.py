"""The price tables (``model_price``, ``model_price_provider``, ``model_price_alias``): loading a
price file into them, users' aliases, and reading them back as a ``PriceBook``.

Loading a file is an upsert keyed by (provider, model, valid_from): a file can add a new dated
price of a model without repeating the old ones, replace a price (same date), or add models and
providers. Rows of the file's models get the file's ``match`` (a model has one match whatever
the date). The shipped snapshot is loaded the same way (at migration, and at start when this
version ships a newer one) but never overwrites rows loaded from a user's file, and user
files' models are tried before the snapshot's when names are matched. A file's ``aliases`` are
upserted by name (the snapshot's never replace a user's). One ``pg_notify`` on ``devlog_prices``
tells servers to reload (they also re-check every few seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from app.pricing.book import PriceBook, ProviderInfo
from app.pricing.match import compile_clause
from app.pricing.price_file import (
    SNAPSHOT,
    PriceFile,
    PriceFileError,
    parse_valid_from,
    price_fields,
    read,
    tier_dicts,
)
from app.pricing.record import Price, PricedModel

PRICE_COLUMNS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
                 "cache_write_5m_mtok", "cache_write_1h_mtok", "reasoning_mtok")
_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_5m", "cache_write_1h",
           "reasoning")
_LOCK_KEY = 0x6465766C7072  # "devlpr": one price load at a time

_UPSERT_PROVIDERS = """
INSERT INTO model_price_provider AS p (id, name, model_match, provider_match, fallback, rank,
                                       shipped, source, loaded_at)
SELECT d.id, d.name, d.mm, d.pm, d.fb, d.rank, $7, $8, now()
FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::int[])
     AS d(id, name, mm, pm, fb, rank)
ON CONFLICT (id) DO UPDATE SET name = coalesce(EXCLUDED.name, p.name),
    model_match = EXCLUDED.model_match, provider_match = EXCLUDED.provider_match,
    fallback = EXCLUDED.fallback, rank = EXCLUDED.rank, shipped = EXCLUDED.shipped,
    source = EXCLUDED.source, loaded_at = now()
WHERE NOT $7 OR p.shipped  -- the snapshot leaves providers from a user's file alone
"""

# Providers that only models name (not listed in the file's providers): known by id only.
_ADD_PROVIDERS = """
INSERT INTO model_price_provider (id, rank, shipped, source)
SELECT DISTINCT provider, 1000000, $1::bool, $2::text FROM price_load
ON CONFLICT (id) DO NOTHING
"""

_STAGE = f"""
CREATE TEMP TABLE price_load ON COMMIT DROP AS
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[],
                     $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[],
                     $10::numeric[], $11::numeric[], $12::numeric[], $13::jsonb[], $14::int[])
     AS d(provider, model, name, match, valid_from, {", ".join(PRICE_COLUMNS)}, tiers, rank)
"""

# The snapshot never replaces a model that a user's file set.
_KEEP_USERS = """
DELETE FROM price_load d WHERE EXISTS (
    SELECT 1 FROM model_price m WHERE m.provider = d.provider AND m.model = d.model
       AND NOT m.shipped)
"""

_REPLACE = """
DELETE FROM model_price m USING price_load d
WHERE m.provider = d.provider AND m.model = d.model
  AND m.valid_from IS NOT DISTINCT FROM d.valid_from
"""

_INSERT = f"""
INSERT INTO model_price (provider, model, name, match, valid_from, {", ".join(PRICE_COLUMNS)},
                         tiers, rank, shipped, source, loaded_at)
SELECT provider, model, name, match, valid_from, {", ".join(PRICE_COLUMNS)}, tiers, rank,
       $1, $2, now()
FROM price_load
"""

# One match (and name) per model: its older dated rows follow the file's.
_REMATCH = """
UPDATE model_price m SET match = d.match, name = coalesce(d.name, m.name)
FROM (SELECT DISTINCT ON (provider, model) provider, model, name, match FROM price_load) d
WHERE m.provider = d.provider AND m.model = d.model
  AND (m.match IS DISTINCT FROM d.match OR m.name IS DISTINCT FROM coalesce(d.name, m.name))
"""


_UPSERT_ALIASES = """
INSERT INTO model_price_alias AS a (name, model, shipped, source, loaded_at)
SELECT d.name, d.model, $3, $4, now() FROM unnest($1::text[], $2::text[]) AS d(name, model)
ON CONFLICT (name) DO UPDATE SET model = EXCLUDED.model, shipped = EXCLUDED.shipped,
    source = EXCLUDED.source, loaded_at = now()
WHERE NOT $3 OR a.shipped  -- the snapshot leaves users' aliases alone
"""


@dataclass(slots=True)
class LoadResult:
    source: str
    models: int
    prices: int
    replaced: int
    skipped: int  # snapshot rows left alone because a user's file set that model
    aliases: int = 0


async def load_file(conn: asyncpg.Connection, data: PriceFile, *, shipped: bool = False) -> LoadResult:
    """Upsert a validated price file (one transaction; see the module docstring)."""
    source = data.source or "file"
    cols: list[list] = [[] for _ in range(14)]
    for rank, m in enumerate(data.models):
        for p in m.prices:
            fields = price_fields(p)
            row = [m.provider.lower(), m.model.lower(), m.name, _json(m.match),
                   parse_valid_from(p.valid_from), *(fields.get(f) for f in _FIELDS),
                   _json(tier_dicts(p)), rank]
            for col, value in zip(cols, row):
                col.append(value)
    provider_ids = [p.id.lower() for p in data.providers]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if data.providers:
            await conn.execute(
                _UPSERT_PROVIDERS, provider_ids, [p.name for p in data.providers],
                [_json(p.model_match) for p in data.providers],
                [_json(p.provider_match) for p in data.providers],
                [_json(p.fallback) for p in data.providers], list(range(len(data.providers))),
                shipped, source)
        await conn.execute(_STAGE, *cols)
        skipped = 0
        if shipped:
            skipped = _count(await conn.execute(_KEEP_USERS))
        await conn.execute(_ADD_PROVIDERS, shipped, source)
        replaced = _count(await conn.execute(_REPLACE))
        inserted = _count(await conn.execute(_INSERT, shipped, source))
        await conn.execute(_REMATCH)
        models = await conn.fetchval("SELECT count(DISTINCT (provider, model)) FROM price_load")
        if data.aliases:
            names, targets = list(data.aliases), list(data.aliases.values())
            await conn.execute(_UPSERT_ALIASES, names, targets, shipped, source)
            await check_aliases(conn, names, f"price file ({source})")
        await conn.execute("SELECT pg_notify('devlog_prices', $1)", source)
    return LoadResult(source=source, models=models, prices=inserted, replaced=replaced,
                      skipped=skipped, aliases=len(data.aliases))


async def check_aliases(conn: asyncpg.Connection, names: list[str], where: str) -> None:
    """Every alias in ``names`` prices its name as a model that has a price, and none names
    another alias (PriceFileError otherwise: the caller's transaction rolls back)."""
    book = await read_book(conn)
    for name in names:
        target = book.aliases.get(name)
        if target is None:
            continue
        if target in book.aliases:
            raise PriceFileError(f"{where}: alias {name!r}: {target!r} is itself an alias (of "
                                 f"{book.aliases[target]!r}): alias {name!r} to that")
        if book.resolve_plain(target) is None:
            raise PriceFileError(f"{where}: alias {name!r}: no price for model {target!r} "
                                 "(load one first, or alias it to a model 'devlog prices list' shows)")


async def set_alias(conn: asyncpg.Connection, name: str, model: str, source: str) -> None:
    """Price ``name`` as ``model`` (replacing an alias of that name)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_UPSERT_ALIASES, [name], [model], False, source)
        await check_aliases(conn, [name], "devlog prices alias")
        await conn.execute("SELECT pg_notify('devlog_prices', $1)", source)


async def remove_alias(conn: asyncpg.Connection, name: str) -> bool:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        removed = _count(await conn.execute("DELETE FROM model_price_alias WHERE name = $1", name))
        if removed:
            await conn.execute("SELECT pg_notify('devlog_prices', 'alias removed')")
    return bool(removed)


async def aliases(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT name, model, source, loaded_at FROM model_price_alias ORDER BY name")


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def ensure_snapshot(conn: asyncpg.Connection) -> LoadResult | None:
    """Load the shipped snapshot unless this very snapshot was loaded already."""
    data = read(SNAPSHOT)
    loaded = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM model_price_provider WHERE source = $1)", data.source)
    if loaded:
        return None
    return await load_file(conn, data, shipped=True)


async def version(conn: asyncpg.Connection) -> tuple:
    """Changes whenever a load changed the tables."""
    aliases = ("(SELECT count(*) FROM model_price_alias), (SELECT max(loaded_at) FROM model_price_alias)"
               if await _has_aliases(conn) else "0, NULL")
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM model_price), (SELECT max(loaded_at) FROM model_price), "
        f"(SELECT max(loaded_at) FROM model_price_provider), {aliases}")
    return tuple(row)


async def _has_aliases(conn: asyncpg.Connection) -> bool:
    """Whether the database has the aliases table (migration 0009; a server started with
    ``--no-migrate`` on an older database still prices by name)."""
    return await conn.fetchval("SELECT to_regclass('model_price_alias') IS NOT NULL")


async def read_book(conn: asyncpg.Connection) -> PriceBook:
    """Every price as a PriceBook."""
    providers = [
        ProviderInfo(id=r["id"], name=r["name"], rank=r["rank"],
                     model_match=_clause(r["model_match"]), provider_match=_clause(r["provider_match"]),
                     fallback=msgspec.json.decode(r["fallback"]) if r["fallback"] else [])
        for r in await conn.fetch("SELECT * FROM model_price_provider ORDER BY rank, id")]
    models: dict[tuple[str, str], PricedModel] = {}
    for r in await conn.fetch(f"""
            SELECT provider, model, name, match, valid_from,
                   {", ".join(f"{c}::float8 AS {c}" for c in PRICE_COLUMNS)}, tiers, shipped, rank
            FROM model_price ORDER BY provider, model, valid_from NULLS FIRST"""):
        key = (r["provider"], r["model"])
        prices = {f: v for f, c in zip(_FIELDS, PRICE_COLUMNS) if (v := r[c]) is not None}
        price = Price(valid_from=r["valid_from"], prices=prices,
                      tiers=tuple(msgspec.json.decode(r["tiers"])))
        m = models.get(key)
        if m is not None and not r["shipped"]:
            m.shipped = False  # a user's file set a price of it: tried before the snapshot's
        if m is None:
            match = msgspec.json.decode(r["match"])
            models[key] = PricedModel(provider=r["provider"], model=r["model"], name=r["name"],
                                      match=match, matcher=compile_clause(match), prices=[price],
                                      shipped=r["shipped"], rank=r["rank"])
        else:
            m.prices.append(price)
    for m in models.values():
        m.__post_init__()  # sort by date
    named = {r["name"]: r["model"] for r in await conn.fetch("SELECT name, model FROM model_price_alias")
             } if await _has_aliases(conn) else {}
    return PriceBook(providers, list(models.values()), named)


def _clause(text: str | None):
    return compile_clause(msgspec.json.decode(text)) if text else None


def _json(value: object) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def loaded_at_text(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M}" if when else ""
