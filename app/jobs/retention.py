"""Retention: raw events older than ``DEVLOG_RETENTION_DAYS`` and hourly rollups older than
``DEVLOG_ROLLUP_RETENTION_DAYS`` are deleted (0: kept forever, the default). Daily rollups are
kept. On TimescaleDB whole chunks are dropped; on plain PostgreSQL rows go in batches, so the
job never holds long locks (on TimescaleDB, the ``event_key`` rows of the dropped events go in
the same transaction). Sessions stay (with their rollups) when their events go. On
TimescaleDB the job also compresses rollup chunks older than ``DEVLOG_TIMESCALE_COMPRESS_AFTER``
(a cagg's compression policy would require a TimescaleDB refresh policy; refreshes are ours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db import rollups
from app.db.engine import DB
from app.db.timescale import events_keyed, storage_info
from app.jobs import ranges
from app.settings import Settings, get_settings

BATCH = 50_000

# TimescaleDB: the event_key rows of the events whose chunks are dropped (read from those chunks:
# no index on event_key.ts is needed, and the work is proportional to what goes).
_FORGET_KEYS = """DELETE FROM event_key k USING agent_event e
                  WHERE e.ts < $1 AND k.id = e.id AND k.ts = e.ts"""


async def apply(settings: Settings | None = None, now: datetime | None = None) -> str:
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    hypertable = (await storage_info()).hypertable
    done: list[str] = []
    if settings.retention_days > 0:
        horizon = ranges.floor(now - timedelta(days=settings.retention_days), ranges.DAY)
        n = await _delete("agent_event", "ts", horizon, hypertable)
        done.append(f"events before {horizon:%Y-%m-%d}: {n}")
    if settings.rollup_retention_days > 0:
        horizon = ranges.floor(now - timedelta(days=settings.rollup_retention_days), ranges.DAY)
        n = 0
        for r in rollups.ROLLUPS:
            n += await _delete(r.name, "bucket", horizon, hypertable)
        done.append(f"hourly rollup rows before {horizon:%Y-%m-%d}: {n}")
    if hypertable and settings.timescale_compress_after:
        async with DB.pool.acquire() as conn:
            n = 0
            for r in rollups.ROLLUPS:
                for statement in rollups.timescale_compress_sql(r, settings.timescale_compress_after):
                    n += await conn.fetchval(statement) or 0
        done.append(f"rollup chunks compressed: {n}")
    return "; ".join(done) if done else "nothing to do (retention is off)"


async def _delete(table: str, column: str, before: datetime, hypertable: bool) -> int:
    async with DB.pool.acquire() as conn:
        if hypertable:
            async with conn.transaction():
                if table == "agent_event" and await events_keyed(conn):  # their ids go too
                    await conn.execute(_FORGET_KEYS, before)
                dropped = await conn.fetch("SELECT drop_chunks($1, older_than => $2)", table, before)
            return len(dropped)  # chunks
        total = 0
        while True:
            status = await conn.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {table} WHERE {column} < $1 LIMIT {BATCH}))", before)
            n = int(status.split()[-1])
            total += n
            if n < BATCH:
                return total
