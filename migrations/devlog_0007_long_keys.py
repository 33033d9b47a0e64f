"""Long identifying keys are stored whole and indexed by their md5.

A btree index entry holds at most about 2,700 bytes, so a workspace or project path of a few
thousand characters (or fewer, non-ASCII) failed the whole ingest batch that brought it:
``project.key`` (``path:<machine>:<folder>``, also too long for its varchar(1024)), the unique
``workspace (machine, path)``, ``session_file``'s primary key ``(session_id, path)``, and on
TimescaleDB the continuous aggregates' group index on ``tool_file_*.file_path`` (every refresh
of that hour failed). Those keys are now unique on ``md5(…)`` (ingest's ``ON CONFLICT`` names
the session_file one; the plain ``tool_file_*`` tables already were), and the caggs lose their
``file_path`` group index (no read looks a path up).

Also widened to hold the sums built from bounded event values: ``session_file.lines_added``/
``lines_removed`` (sums of per-event counts up to 2^31) become bigint, ``agent_session.cost_usd``
(a sum of per-event costs below 10^10) numeric(24, 8); ``project.name`` (a folder's last path
component, which may be longer than 255 characters) becomes text.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db import rollups
from app.db.ddl import execute_script
from app.db.timescale import storage_info

ID = "2026-11-25T16:00:00:000007"
VERSION = "1.38.0"
DESCRIPTION = "long keys indexed by md5; wider sums"

DDL = """
ALTER TABLE project DROP CONSTRAINT IF EXISTS project_key_key;
ALTER TABLE project ALTER COLUMN key TYPE text, ALTER COLUMN name TYPE text;
CREATE UNIQUE INDEX IF NOT EXISTS project_key_md5 ON project (md5(key));

ALTER TABLE workspace DROP CONSTRAINT IF EXISTS workspace_machine_path_key;
CREATE UNIQUE INDEX IF NOT EXISTS workspace_machine_path_md5 ON workspace (machine, md5(path));

ALTER TABLE session_file DROP CONSTRAINT IF EXISTS session_file_pkey;
CREATE UNIQUE INDEX IF NOT EXISTS session_file_key ON session_file (session_id, md5(path));
ALTER TABLE session_file ALTER COLUMN lines_added TYPE bigint,
                         ALTER COLUMN lines_removed TYPE bigint;

ALTER TABLE agent_session ALTER COLUMN cost_usd TYPE numeric(24, 8);
"""


async def _apply() -> None:
    await execute_script(DDL)
    if (await storage_info()).hypertable:
        for rollup in rollups.ROLLUPS:
            for statement in rollups.timescale_drop_long_key_indexes_sql(rollup):
                await execute_script(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
