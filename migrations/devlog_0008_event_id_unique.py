"""An event id is stored once, whatever its ``ts``; events carry a revision.

The primary key was ``(id, ts)`` (a hypertable's unique keys must contain its time column), so
the same id sent with another ``ts`` was a second row, counted twice everywhere. Now:

- ``agent_event.revision`` (0 for every stored event): ingest keeps the highest per id;
- duplicates already stored are merged: per id the row ingested last is kept (ties: the later
  ``ts``), the others are deleted and taken out of their sessions' rollups and ``session_file``
  rows (``UNROLL``, as a revision does), and a session whose earliest prompt was a deleted
  copy takes its title from the earliest one left;
- plain PostgreSQL: the primary key becomes ``id``; the analytics rollup tables get their
  plain-only counts (``rollups.plain_counts_ddl``) and the hours that have raw events are
  re-aggregated (exact counts, and no duplicate left in them); hours whose raw events are gone
  (retention) keep their rows;
- TimescaleDB: the primary key stays ``(id, ts)``; the ``event_key`` table (id primary key, ts,
  revision) is created and filled — ingest inserts into it first; the continuous aggregates
  re-materialise the deleted duplicates' hours at their next refresh.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db import rollups
from app.db.ddl import execute_script, fetch
from app.db.engine import DB
from app.db.timescale import storage_info
from app.ingest.revision_statements import REMOVED_DDL, UNROLL
from app.ingest.revisions import retitle_sessions
from app.jobs import ranges
from app.jobs import rollups as rollup_job
from app.settings import get_settings

ID = "2026-11-26T00:00:00:000008"
VERSION = "1.38.0"
DESCRIPTION = "event ids unique whatever their ts; revisions"

COLUMNS_DDL = "ALTER TABLE agent_event ADD COLUMN IF NOT EXISTS revision integer NOT NULL DEFAULT 0"

# Every row of a duplicated id but the one ingested last, out of agent_event into ingest_removed.
DUPLICATES_SQL = """
WITH dup AS (
    SELECT id FROM agent_event GROUP BY id HAVING count(*) > 1
), ranked AS (
    SELECT e.id, e.ts,
           row_number() OVER (PARTITION BY e.id ORDER BY e.ingested_at DESC, e.ts DESC) AS n
    FROM agent_event e JOIN dup ON dup.id = e.id
), gone AS (
    DELETE FROM agent_event e USING ranked r WHERE e.id = r.id AND e.ts = r.ts AND r.n > 1
    RETURNING e.*
)
INSERT INTO ingest_removed SELECT * FROM gone
"""

PLAIN_KEY_DDL = """
DO $$
DECLARE name text;
BEGIN
    SELECT c.conname INTO name FROM pg_constraint c
    WHERE c.conrelid = 'agent_event'::regclass AND c.contype = 'p'
      AND array_length(c.conkey, 1) <> 1;
    IF name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE agent_event DROP CONSTRAINT %I', name);
        ALTER TABLE agent_event ADD CONSTRAINT agent_event_pkey PRIMARY KEY (id);
    END IF;
END $$
"""

EVENT_KEY_DDL = """
CREATE TABLE IF NOT EXISTS event_key (
    id        uuid PRIMARY KEY,
    ts        timestamptz NOT NULL,
    revision  integer NOT NULL DEFAULT 0
);
INSERT INTO event_key (id, ts, revision)
SELECT id, ts, revision FROM agent_event ORDER BY id
ON CONFLICT (id) DO NOTHING;
"""


def merge_duplicates_sql() -> list[str]:
    """The statements that merge stored duplicates (both storage modes), in order."""
    return [COLUMNS_DDL, REMOVED_DDL, DUPLICATES_SQL, UNROLL]


async def _reaggregate_plain() -> None:
    """Re-aggregate every hour that has raw events (from the retention horizon), with the
    plain-only counts; the others get the counts ``plain_counts_ddl`` gives them."""
    await execute_script("".join(rollups.plain_counts_ddl(r) for r in rollups.ROLLUPS))
    bounds = (await fetch("SELECT min(ts) AS a, max(ts) AS b FROM agent_event"))[0]
    if bounds["a"] is None:
        return
    lo = ranges.floor(bounds["a"], ranges.DAY)
    horizon = rollup_job.retention_horizon(get_settings())
    if horizon is not None:
        lo = max(lo, horizon)
    hi = ranges.floor(bounds["b"], ranges.HOUR) + ranges.HOUR
    if hi <= lo:
        return
    conn = DB.current_transaction.get().connection
    await conn.execute(rollup_job.HASH_AGGREGATION)
    await rollup_job.replace_hours(conn, [lo], [hi])


async def _apply() -> None:
    for statement in merge_duplicates_sql():
        await execute_script(statement)
    # a session whose earliest prompt was a deleted copy: the title from the earliest left
    retitle = await fetch("SELECT DISTINCT session_id::text FROM ingest_removed"
                          " WHERE kind = 'user_prompt'")
    await retitle_sessions(DB.current_transaction.get().connection, [r[0] for r in retitle])
    if (await storage_info()).hypertable:
        await execute_script(EVENT_KEY_DDL)
    else:
        await execute_script(PLAIN_KEY_DDL)
        await _reaggregate_plain()


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
