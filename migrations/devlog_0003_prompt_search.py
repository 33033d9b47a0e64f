"""Text search over every prompt of a session (not only its title): a trigram index on the
content of ``user_prompt`` events only (a few percent of all events)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db.ddl import execute_script

ID = "2026-11-25T12:00:00:000003"
VERSION = "1.38.0"
DESCRIPTION = "trigram index on prompt text"

DDL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS agent_event_prompt_trgm_idx
    ON agent_event USING gin (content gin_trgm_ops) WHERE kind = 'user_prompt';
"""


async def _create() -> None:
    await execute_script(DDL)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
