"""Keeping the rollups (``app/db/rollups.py``) current.

Plain PostgreSQL — incremental, exact, idempotent. The rollup tables hold exactly the events
ingested before the watermark ``W`` (``job_state``); readers add the raw events ingested at or
after ``W`` (the tail). A refresh, under a session-level advisory lock (:data:`LOCK_KEY`; a
second process waits or skips):

1. Picks the new watermark ``W'`` *before* opening its transaction: the earlier of the clock
   and the start of the oldest transaction open in this database. An ingest transaction stamps
   its events with its start time (``ingested_at = now()``), so every event with
   ``ingested_at < W'`` belongs to a transaction that had ended by then: the refresh's snapshot,
   taken afterwards, sees all of them, and none can still appear later.
2. In one transaction: aggregates the events with ``W ≤ ingested_at < W'`` — whatever their
   event time, so a backfill of last month lands in last month's hours — and adds them to the
   hourly and daily rows (``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``), then stores
   ``W'``. A crash before COMMIT leaves nothing half-done; a second run finds nothing new.

So the cost of a refresh is proportional to what was ingested since the last one, and a row is
never counted twice or missed. A long open transaction holds ``W'`` back (the tail grows; the
answers stay exact). Events older than the raw-event retention horizon are not added (they are
being deleted). :func:`reaggregate` recomputes whole hours from raw events (after costs change).

TimescaleDB — the rollups are continuous aggregates with real-time aggregation (the database
adds the tail itself); a refresh is ``refresh_continuous_aggregate`` from the retention horizon
up to the current hour (TimescaleDB re-materialises only what its invalidation log names).
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


# Few groups, but the planner guesses many: without this it sorts millions of rows on disk
# instead of hashing them (a hash aggregate spills to disk if it must). For the job's transaction.
HASH_AGGREGATION = "SET LOCAL work_mem = '128MB'; SET LOCAL enable_sort = off"

NEVER = datetime(1, 1, 1, tzinfo=UTC)  # no lower bound (a watermark before any event)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    events: int            # events added to the rollups (-1: TimescaleDB refresh)
    watermark: datetime | None
    skipped: bool = False  # another process held the lock

    def describe(self) -> str:
        if self.skipped:
            return "skipped: another process is refreshing"
        return "refreshed" if self.events < 0 else f"{self.events} event(s) rolled up"


def retention_horizon(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Hours before this are never re-aggregated (raw events there are being deleted)."""
    if settings.retention_days <= 0:
        return None
    now = now or datetime.now(UTC)
    return ranges.floor(now - timedelta(days=settings.retention_days), ranges.DAY) + ranges.DAY


async def refresh(settings: Settings | None = None, *, wait: bool = False) -> RefreshResult:
    """Bring the rollups up to date. ``wait``: wait for another refresh instead of skipping."""
    settings = settings or get_settings()
    if (await storage_info()).hypertable:
        return await _refresh_continuous(settings)
    async with DB.pool.acquire() as conn, _locked(conn, wait) as locked:
        if not locked:
            return RefreshResult(events=0, watermark=None, skipped=True)
        # Before the transaction (and its snapshot): see the module's docstring, step 1.
        mark = await conn.fetchval(
            """SELECT least(clock_timestamp(), min(xact_start)) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()""")
        async with conn.transaction():
            previous = await conn.fetchval(
                "SELECT watermark FROM job_state WHERE name = $1 FOR UPDATE", STATE)
            since = previous or NEVER
            if mark <= since:
                return RefreshResult(events=0, watermark=previous)
            horizon = retention_horizon(settings) or NEVER
            events = await conn.fetchval(
                "SELECT count(*) FROM agent_event WHERE ingested_at >= $1 AND ingested_at < $2",
                since, mark)
            if events:
                await conn.execute(HASH_AGGREGATION)
                for r in rollups.ROLLUPS:
                    create, *upserts = rollups.plain_delta_sql(r)
                    await conn.execute(create.replace("$1", literal(since))
                                       .replace("$2", literal(mark)).replace("$3", literal(horizon)))
                    for statement in upserts:
                        await conn.execute(statement)
            await conn.execute(
                "INSERT INTO job_state (name, watermark) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET watermark = excluded.watermark", STATE, mark)
            return RefreshResult(events=events, watermark=mark)


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
        await conn.execute(HASH_AGGREGATION)
        await replace_hours(conn, [lo], [hi])
        return int((hi - lo) / ranges.HOUR)


def literal(t: datetime) -> str:
    # CREATE TABLE AS takes no bind parameters: a timestamp literal from our own datetime
    return f"TIMESTAMPTZ '{t.isoformat()}'"


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


async def replace_hours(conn: asyncpg.Connection, starts: list[datetime], ends: list[datetime]) -> None:
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
    return RefreshResult(events=-1, watermark=end)
