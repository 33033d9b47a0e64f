"""Core model: project, machine, workspace, agent_session, agent_event.

Raw DDL, because Piccolo's column API cannot express the composite primary key of agent_event
(``(id, ts)``: a hypertable's unique keys must contain its time column) or conditional
TimescaleDB conversion. The columns mirror ``app/db/tables.py`` (checked by a test).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from app.db.ddl import execute_script
from app.db.timescale import convert_agent_event_to_hypertable

ID = "2026-11-25T05:00:00:000001"
VERSION = "1.38.0"
DESCRIPTION = "core model: projects, machines, workspaces, sessions, events"

DDL = """
CREATE TABLE IF NOT EXISTS project (
    id            uuid PRIMARY KEY,
    key           varchar(1024) NOT NULL UNIQUE,
    name          varchar(255) NOT NULL,
    remote_url    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS machine (
    id            uuid PRIMARY KEY,
    key           varchar(255) NOT NULL UNIQUE,
    hostname      varchar(255) NOT NULL,
    username      varchar(255),
    os            varchar(64),
    os_version    varchar(255),
    arch          varchar(64),
    kind          varchar(32) NOT NULL DEFAULT 'local',
    facts         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspace (
    id            uuid PRIMARY KEY,
    machine       uuid NOT NULL REFERENCES machine (id) ON DELETE CASCADE,
    project       uuid REFERENCES project (id) ON DELETE SET NULL,
    path          text NOT NULL,
    branch        varchar(255),
    commit        varchar(64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (machine, path)
);
CREATE INDEX IF NOT EXISTS workspace_project_idx ON workspace (project);

CREATE TABLE IF NOT EXISTS agent_session (
    id                uuid PRIMARY KEY,
    agent             varchar(32) NOT NULL,
    native_id         varchar(255) NOT NULL,
    parent            uuid REFERENCES agent_session (id) ON DELETE SET NULL,
    project           uuid REFERENCES project (id) ON DELETE SET NULL,
    machine           uuid REFERENCES machine (id) ON DELETE SET NULL,
    workspace         uuid REFERENCES workspace (id) ON DELETE SET NULL,
    agent_version     varchar(64),
    title             text,
    status            varchar(16) NOT NULL DEFAULT 'active',
    git_branch        varchar(255),
    git_commit        varchar(64),
    started_at        timestamptz,
    last_event_at     timestamptz,
    ended_at          timestamptz,
    event_count       integer NOT NULL DEFAULT 0,
    prompt_count      integer NOT NULL DEFAULT 0,
    llm_call_count    integer NOT NULL DEFAULT 0,
    tool_call_count   integer NOT NULL DEFAULT 0,
    tool_error_count  integer NOT NULL DEFAULT 0,
    files_touched     integer NOT NULL DEFAULT 0,
    tokens_input      bigint NOT NULL DEFAULT 0,
    tokens_output     bigint NOT NULL DEFAULT 0,
    tokens_cache_read bigint NOT NULL DEFAULT 0,
    tokens_cache_write bigint NOT NULL DEFAULT 0,
    tokens_reasoning  bigint NOT NULL DEFAULT 0,
    cost_usd          numeric(18, 8),
    models            jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent, native_id)
);
CREATE INDEX IF NOT EXISTS agent_session_last_event_idx
    ON agent_session (last_event_at DESC NULLS LAST, id DESC);
CREATE INDEX IF NOT EXISTS agent_session_parent_idx ON agent_session (parent) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS agent_session_project_idx ON agent_session (project, last_event_at DESC);
CREATE INDEX IF NOT EXISTS agent_session_machine_idx ON agent_session (machine, last_event_at DESC);
CREATE INDEX IF NOT EXISTS agent_session_workspace_idx ON agent_session (workspace, last_event_at DESC);

CREATE TABLE IF NOT EXISTS agent_event (
    id                    uuid NOT NULL,
    ts                    timestamptz NOT NULL,
    session_id            uuid NOT NULL,
    seq                   bigint NOT NULL DEFAULT 0,
    kind                  varchar(32) NOT NULL,
    agent                 varchar(32) NOT NULL,
    model                 varchar(128),
    provider              varchar(64),
    tokens_input          bigint,
    tokens_output         bigint,
    tokens_cache_read     bigint,
    tokens_cache_write    bigint,
    tokens_cache_write_5m bigint,
    tokens_cache_write_1h bigint,
    tokens_reasoning      bigint,
    tokens_estimated      boolean NOT NULL DEFAULT false,
    cost_usd              numeric(18, 8),
    cost_source           varchar(16),
    duration_ms           bigint,
    stop_reason           varchar(64),
    tool_name             varchar(255),
    tool_category         varchar(32),
    tool_call_id          varchar(255),
    status                varchar(16),
    file_path             text,
    lines_added           integer,
    lines_removed         integer,
    command               text,
    content               text,
    error                 text,
    payload               jsonb,
    ingested_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, ts)
);
CREATE INDEX IF NOT EXISTS agent_event_ts_idx ON agent_event (ts DESC);
CREATE INDEX IF NOT EXISTS agent_event_session_idx ON agent_event (session_id, ts, seq);
CREATE INDEX IF NOT EXISTS agent_event_kind_idx ON agent_event (kind, ts DESC);
"""


async def _create() -> None:
    await execute_script(DDL)
    await convert_agent_event_to_hypertable()


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="devlog", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
