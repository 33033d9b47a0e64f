"""Rollups for analytics: hourly and daily usage, latency histograms and files per tool.

With TimescaleDB (``agent_event`` is a hypertable) they are continuous aggregates, which cannot
be created inside a transaction: this migration runs outside one, and every statement is
idempotent (``IF NOT EXISTS``), so a migration interrupted half-way is simply run again. On
plain PostgreSQL they are tables that the rollup job fills (``app/jobs/rollups.py``).

Also: ``job_state`` (what each scheduled job did last, shared by all server processes), an
index on ``agent_session.started_at`` covering what usage groups sessions by, and a BRIN index on ``agent_event.ingested_at`` (the rollup job's watermark and the query-time tail:
append order follows ingest order, so a BRIN index is tiny and costs ingest almost nothing).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db import rollups
from app.db.ddl import execute_script
from app.db.timescale import storage_info

ID = "2026-11-25T13:00:00:000004"
VERSION = "1.38.0"
DESCRIPTION = "rollups, job state"

DDL = """
CREATE TABLE IF NOT EXISTS job_state (
    name text PRIMARY KEY,
    watermark timestamptz,
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_duration_ms bigint,
    last_ok_at timestamptz,
    last_error text,
    last_result text,
    runs bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS agent_event_ingested_brin ON agent_event USING brin (ingested_at)
    WITH (pages_per_range = 64);
-- sessions started per bucket and group (usage): an index-only scan
CREATE INDEX IF NOT EXISTS agent_session_started_idx ON agent_session (started_at)
    INCLUDE (agent, project, machine);
"""


async def _create() -> None:
    await execute_script(DDL)
    if (await storage_info()).hypertable:
        for rollup in rollups.ROLLUPS:
            for statement in rollups.timescale_ddl(rollup):
                await execute_script(statement)  # one by one: each outside a transaction
    else:
        await execute_script("".join(rollups.plain_ddl(r) for r in rollups.ROLLUPS))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION,
                               wrap_in_transaction=False)
    manager.add_raw(_create)
    return manager
