"""The APScheduler (3.x) of a server process, and what each job did last.

Every server process runs the same jobs; each job takes an advisory lock (or, for the rollups,
skips when another process holds it), so running in several replicas is safe. What a job did
is kept in ``job_state`` — shared by every process, and read by the ``jobs`` GraphQL query.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.db.engine import DB
from app.jobs import retention, rollups
from app.settings import Settings

log = logging.getLogger("devlog.jobs")


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    description: str
    every: timedelta
    run: Callable[[Settings], Awaitable[str]]
    first_after: timedelta = timedelta(seconds=2)


async def _rollups(settings: Settings) -> str:
    return (await rollups.refresh(settings)).describe()


async def _retention(settings: Settings) -> str:
    return await retention.apply(settings)


def job_specs(settings: Settings) -> list[JobSpec]:
    return [
        JobSpec("rollups", "refresh the analytics rollups",
                timedelta(seconds=max(1, settings.rollup_interval_seconds)), _rollups),
        JobSpec("retention", "delete raw events and hourly rollups past their retention",
                timedelta(hours=1), _retention, first_after=timedelta(seconds=30)),
    ]


async def run_job(spec: JobSpec, settings: Settings) -> None:
    """Run a job and record the outcome; a failing job logs one line and runs again later."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    error = result = None
    try:
        result = await spec.run(settings)
    except Exception as exc:  # noqa: BLE001 -- a job must never take the server down
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %s failed: %s", spec.name, error)
    else:
        log.debug("job %s: %s", spec.name, result)
    duration = int((time.perf_counter() - t0) * 1000)
    with contextlib.suppress(Exception):  # the database may be the thing that is down
        async with DB.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO job_state AS j (name, last_started_at, last_finished_at,
                       last_duration_ms, last_ok_at, last_error, last_result, runs)
                   VALUES ($1, $2, now(), $3, CASE WHEN $4::text IS NULL THEN now() END, $4, $5, 1)
                   ON CONFLICT (name) DO UPDATE SET
                       last_started_at = excluded.last_started_at,
                       last_finished_at = excluded.last_finished_at,
                       last_duration_ms = excluded.last_duration_ms,
                       last_ok_at = coalesce(excluded.last_ok_at, j.last_ok_at),
                       last_error = excluded.last_error,
                       last_result = coalesce(excluded.last_result, j.last_result),
                       runs = j.runs + 1""",
                spec.name, started, duration, error, result)


@contextlib.asynccontextmanager
async def scheduler(settings: Settings) -> AsyncIterator[AsyncIOScheduler | None]:
    """Start the jobs (unless ``DEVLOG_JOBS=false``) for the lifetime of the app."""
    if not settings.jobs:
        yield None
        return
    sched = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    for spec in job_specs(settings):
        sched.add_job(run_job, IntervalTrigger(seconds=spec.every.total_seconds(), timezone=UTC),
                      args=(spec, settings), id=spec.name, name=spec.description,
                      next_run_time=now + spec.first_after, coalesce=True, max_instances=1,
                      misfire_grace_time=None)
    sched.start()
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)
