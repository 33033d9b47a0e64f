"""A session's id is UUIDv5(agent, native id), so the unique key on (agent, native_id) repeats
the primary key. It was worse than redundant: ingest upserts sessions with ``ON CONFLICT (id)``,
and PostgreSQL handles conflicts only on that arbiter index — two batches inserting the same new
session at once could fail on the other unique index ("duplicate key … agent_native_id_key")
instead of one of them updating. Replaced by a plain index for lookups by native id."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db.ddl import execute_script

ID = "2026-11-25T15:00:00:000006"
VERSION = "1.38.0"
DESCRIPTION = "session key: drop the redundant unique (agent, native_id)"

DDL = """
ALTER TABLE agent_session DROP CONSTRAINT IF EXISTS agent_session_agent_native_id_key;
CREATE INDEX IF NOT EXISTS agent_session_native_idx ON agent_session (agent, native_id);
"""


async def _apply() -> None:
    await execute_script(DDL)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
