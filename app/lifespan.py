"""Everything long-lived, entered in order into one AsyncExitStack and left in reverse.

Order: database (embedded cluster when no URL is given) → prepare (wait, migrate, policies)
→ pool. Later issues add the event bus and the scheduler after the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.db import engine
from app.db.embedded import EmbeddedPostgres
from app.db.migrate import migrate
from app.db.timescale import apply_policies, storage_info
from app.settings import Settings

log = logging.getLogger("devlog.server")


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    embedded: bool
    cluster: EmbeddedPostgres | None = None  # the embedded cluster, supervised while in use


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, or the embedded cluster (started now, stopped on exit when
    this process is its last user)."""
    if settings.database_url:
        yield Database(url=settings.database_url, embedded=False)
        return
    cluster = EmbeddedPostgres(settings.resolved_data_dir(), settings.embedded_port)
    in_use = cluster.in_use()
    url = await asyncio.to_thread(in_use.__enter__)
    try:
        yield Database(url=url, embedded=True, cluster=cluster)
    finally:
        await asyncio.to_thread(in_use.__exit__, None, None, None)


async def prepare(db: Database, settings: Settings) -> None:
    """Wait for the database, apply pending migrations (if configured) and storage policies."""
    await engine.wait_for_database(db.url, settings.db_connect_timeout)
    engine.configure(db.url)
    if settings.migrate_on_start:
        applied = await migrate()
        log.info("migrations: %s", f"applied {len(applied)}" if applied else "up to date")
    await apply_policies(settings)
    await _load_shipped_prices()
    info = await storage_info()
    log.info("database: PostgreSQL %s%s; events in %s", info.server_version,
             " (embedded)" if db.embedded else "",
             f"a TimescaleDB {info.timescale_version} hypertable" if info.hypertable
             else "a plain PostgreSQL table (TimescaleDB not available)")


async def _load_shipped_prices() -> None:
    """Load the price snapshot shipped with this version when the database has not seen it
    (migration 0005 seeds the first one; an upgrade brings newer ones)."""
    import asyncpg

    from app.pricing import store

    conn = await engine.DB.get_new_connection()
    try:
        loaded = await store.ensure_snapshot(conn)
    except asyncpg.UndefinedTableError:  # not migrated (--no-migrate): nothing to price with
        return
    finally:
        await conn.close()
    if loaded is not None:
        log.info("prices: loaded %s (%d models)", loaded.source, loaded.models)


@contextlib.asynccontextmanager
async def pool(db: Database, settings: Settings) -> AsyncIterator[None]:
    engine.configure(db.url)
    await engine.open_pool(settings.db_pool_min, settings.db_pool_max)
    try:
        from app.pricing import book

        async with engine.pool().acquire() as conn:  # the first batch need not wait for it
            await book.current(conn)
        yield
    finally:
        await engine.close_pool()
