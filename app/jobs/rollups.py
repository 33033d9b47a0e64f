"""Keeping the rollups (``app/db/rollups.py``) current.

Plain PostgreSQL — incremental from a watermark, exact, idempotent:

1. In one REPEATABLE READ transaction holding the advisory lock :data:`LOCK_KEY` (a second
   process, or a second run, waits or skips), read the watermark ``W`` (``job_state``).
2. The new watermark ``W'`` is the greatest ``ingested_at`` visible in this snapshot. Every event
   ingested after ``W − late`` (``DEVLOG_ROLLUP_LATE_SECONDS``: an ingest transaction stamps its
   rows with its *start* time and may commit after a run has read past it) names an hour to redo.
3. Each such hour is replaced whole: its rollup rows deleted, re-aggregated from all its raw
   events (so a backfill of last month's logs lands in last month's hours). Then the UTC days of
   those hours are re-aggregated from the hourly rows. ``W'`` is stored in the same transaction.

Because a whole hour is recomputed from raw events, running a refresh twice, or two processes
racing, changes nothing. Hours older than the raw-event retention horizon are never redone
(their raw events are gone; the rollup is all that is left). Readers add the raw events ingested
after ``W'`` (the tail) to the rollup rows, so answers are current to the last ingested event.

TimescaleDB — the rollups are continuous aggregates with real-time aggregation (the database
adds the tail itself); a refresh is ``refresh_continuous_aggregate`` over everything up to the
current hour (TimescaleDB only re-materialises the buckets its invalidation log names).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from app.db import rollups
from app.db.engine import DB
from app.db.timescale import storage_info
from app.jobs import ranges
from app.settings import Settings, get_settings

log = logging.getLogger("devlog.jobs")

LOCK_KEY = 0x6465766C6F6701  # "devlog" + 1: the rollup job
STATE = "rollups"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    hours: int            # hours re-aggregated
    watermark: datetime | None
    skipped: bool = False  # another process held the lock

    def describe(self) -> str:
        if self.skipped:
            return "skipped: another process is refreshing"
        return f"{self.hours} hour(s) re-aggregated"


def retention_horizon(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Hours before this are never re-aggregated (raw events there are being deleted)."""
    if settings.retention_days <= 0:
        return None
    now = now or datetime.now(UTC)
    return ranges.floor(now - timedelta(days=settings.retention_days), ranges.DAY) + ranges.DAY


async def watermark() -> datetime | None:
    """Events ingested after this are not in the rollup tables yet (plain PostgreSQL)."""
    async with DB.pool.acquire() as conn:
        return await conn.fetchval("SELECT watermark FROM job_state WHERE name = $1", STATE)


async def refresh(settings: Settings | None = None, *, wait: bool = False) -> RefreshResult:
    """Bring the rollups up to date. ``wait``: wait for another refresh instead of skipping."""
    settings = settings or get_settings()
    if (await storage_info()).hypertable:
        return await _refresh_continuous(settings)
    async with DB.pool.acquire() as conn, _locked(conn, wait) as locked:
        if not locked:
            return RefreshResult(hours=0, watermark=None, skipped=True)
        async with conn.transaction(isolation="repeatable_read"):
            return await _refresh(conn, settings)


async def _refresh(conn: asyncpg.Connection, settings: Settings) -> RefreshResult:
    previous = await conn.fetchval("SELECT watermark FROM job_state WHERE name = $1", STATE)
    since = previous - timedelta(seconds=settings.rollup_late_seconds) if previous else None
    newest = await conn.fetchval(
        "SELECT max(ingested_at) FROM agent_event WHERE $1::timestamptz IS NULL OR ingested_at > $1",
        since)
    if newest is None:  # nothing new
        return RefreshResult(hours=0, watermark=previous)
    rows = await conn.fetch(
        "SELECT DISTINCT date_trunc('hour', ts, 'UTC') AS h FROM agent_event"
        " WHERE $1::timestamptz IS NULL OR ingested_at > $1", since)
    horizon = retention_horizon(settings)
    hours = [r["h"] for r in rows if horizon is None or r["h"] >= horizon]
    await _replace(conn, *ranges.merge(hours, ranges.HOUR))
    mark = max(newest, previous) if previous else newest
    await _store_watermark(conn, mark)
    return RefreshResult(hours=len(hours), watermark=mark)


async def reaggregate(since: datetime | None = None, until: datetime | None = None) -> int:
    """Re-aggregate every hour in [since, until) (default: all), e.g. after costs were
    recomputed. Waits for a running refresh. Returns the hours replaced."""
    settings = get_settings()
    if (await storage_info()).hypertable:
        horizon = retention_horizon(settings)
        start = max(since, horizon) if since and horizon else since or horizon
        async with DB.pool.acquire() as conn:
            for r in rollups.ROLLUPS:
                for name in (r.name, r.daily):
                    await conn.execute("CALL refresh_continuous_aggregate($1, $2, $3)",
                                       name, start, until)
        return -1
    async with DB.pool.acquire() as conn, _locked(conn, wait=True), conn.transaction():
        bounds = await conn.fetchrow(
            "SELECT least(min(ts), (SELECT min(bucket) FROM usage_hourly)) AS a,"
            " greatest(max(ts), (SELECT max(bucket) FROM usage_hourly)) AS b FROM agent_event")
        lo = since or bounds["a"]
        hi = until or (bounds["b"] + ranges.HOUR if bounds["b"] else None)
        horizon = retention_horizon(settings)
        if lo is None or hi is None:
            return 0
        lo = ranges.floor(max(lo, horizon) if horizon else lo, ranges.HOUR)
        hi = ranges.ceil(hi, ranges.HOUR)
        if hi <= lo:
            return 0
        await _replace(conn, [lo], [hi])
        return int((hi - lo) / ranges.HOUR)


@contextlib.asynccontextmanager
async def _locked(conn: asyncpg.Connection, wait: bool) -> AsyncIterator[bool]:
    """The job's advisory lock, held by the connection around (not inside) the transaction: a
    REPEATABLE READ snapshot must be taken after the lock is granted, not while waiting."""
    if wait:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        yield False
        return
    try:
        yield True
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _replace(conn: asyncpg.Connection, starts: list[datetime], ends: list[datetime]) -> None:
    """Replace the hourly rows of these hour ranges, then the daily rows of their days."""
    if not starts:
        return
    day_starts, day_ends = ranges.days_of(starts, ends)
    for r in rollups.ROLLUPS:
        delete_hours, insert_hours, delete_days, insert_days = rollups.plain_refresh_sql(r)
        await conn.execute(delete_hours, starts, ends)
        await conn.execute(insert_hours, starts, ends)
        await conn.execute(delete_days, day_starts, day_ends)
        await conn.execute(insert_days, day_starts, day_ends)


async def _store_watermark(conn: asyncpg.Connection, value: datetime) -> None:
    await conn.execute(
        "INSERT INTO job_state (name, watermark) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET watermark = excluded.watermark", STATE, value)


async def _refresh_continuous(settings: Settings) -> RefreshResult:
    """Refresh up to the current hour, from the retention horizon: a refresh over a range
    whose raw chunks were dropped would empty the aggregate there."""
    end = ranges.floor(datetime.now(UTC), ranges.HOUR)
    start = retention_horizon(settings)
    async with DB.pool.acquire() as conn:
        for r in rollups.ROLLUPS:
            await conn.execute("CALL refresh_continuous_aggregate($1, $2, $3)", r.name, start, end)
            await conn.execute("CALL refresh_continuous_aggregate($1, $2, $3)", r.daily,
                               start, ranges.floor(end, ranges.DAY))
    return RefreshResult(hours=-1, watermark=end)
