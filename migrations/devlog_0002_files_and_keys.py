"""Files touched per session (rollup kept by ingest) and API keys."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db.ddl import execute_script

ID = "2026-11-25T06:00:00:000002"
VERSION = "1.38.0"
DESCRIPTION = "session_file and api_key"

DDL = """
CREATE TABLE IF NOT EXISTS session_file (
    session_id    uuid NOT NULL REFERENCES agent_session (id) ON DELETE CASCADE,
    path          text NOT NULL,
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    touches       integer NOT NULL DEFAULT 0,
    lines_added   integer NOT NULL DEFAULT 0,
    lines_removed integer NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, path)
);

CREATE TABLE IF NOT EXISTS api_key (
    id            uuid PRIMARY KEY,
    name          varchar(255) NOT NULL,
    prefix        varchar(16) NOT NULL,
    secret_hash   varchar(64) NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- Text search over session titles (first prompt) for the sessions filter.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS agent_session_title_trgm_idx
    ON agent_session USING gin (title gin_trgm_ops);
CREATE INDEX IF NOT EXISTS agent_session_agent_idx ON agent_session (agent, last_event_at DESC);
"""


async def _create() -> None:
    await execute_script(DDL)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
