"""Piccolo tables of the core model: project → machine → workspace → agent session → agent event.

Only definitions live here; the DDL that Piccolo cannot express (the composite primary key of
``agent_event``, the TimescaleDB hypertable, partial indexes) is in ``migrations/``. A test checks
that every column declared here exists in the migrated database with a compatible type.

Token buckets are kept separate everywhere. ``tokens_input`` never includes cache reads or cache
writes: total prompt tokens = input + cache_read + cache_write. Adapters whose agent reports an
input count that includes cached tokens (Codex's ``input_tokens``) subtract them.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.db.engine import DB


class Project(Table, tablename="project", db=DB):
    """A code base, identified by its normalised git remote URL, or by path when it has none."""

    id = UUID(primary_key=True)
    # unique on md5(key) (a path can outgrow a btree entry: migration 0007)
    key = Text(help_text="normalised remote URL, or path:<machine>:<dir>")
    name = Text()
    remote_url = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())


class Machine(Table, tablename="machine", db=DB):
    """A computer a collector runs on; ``key`` is stable across restarts."""

    id = UUID(primary_key=True)
    key = Varchar(length=255, unique=True)
    hostname = Varchar(length=255)
    username = Varchar(length=255, null=True, default=None)
    os = Varchar(length=64, null=True, default=None)
    os_version = Varchar(length=255, null=True, default=None)
    arch = Varchar(length=64, null=True, default=None)
    kind = Varchar(length=32, default="local", help_text="local, ssh, ci, codespaces, container")
    facts = JSONB(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())


class Workspace(Table, tablename="workspace", db=DB):
    """A folder on a machine where agents work; belongs to at most one project."""

    id = UUID(primary_key=True)
    machine = ForeignKey(Machine, null=False)
    project = ForeignKey(Project, null=True)
    path = Text()
    branch = Varchar(length=255, null=True, default=None)
    commit = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())


class AgentSession(Table, tablename="agent_session", db=DB):
    """One conversation of one agent; sub-agents are sessions with a parent.

    The counters and token buckets are rollups maintained by ingest.
    """

    id = UUID(primary_key=True, help_text="UUIDv5 of agent + native session id")
    agent = Varchar(length=32)
    native_id = Varchar(length=255)
    parent = ForeignKey("self", null=True)
    project = ForeignKey(Project, null=True)
    machine = ForeignKey(Machine, null=True)
    workspace = ForeignKey(Workspace, null=True)
    agent_version = Varchar(length=64, null=True, default=None)
    title = Text(null=True, default=None)
    status = Varchar(length=16, default="active", help_text="active, idle, ended")
    git_branch = Varchar(length=255, null=True, default=None)
    git_commit = Varchar(length=64, null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    last_event_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    event_count = Integer(default=0)
    prompt_count = Integer(default=0)
    llm_call_count = Integer(default=0)
    tool_call_count = Integer(default=0)
    tool_error_count = Integer(default=0)
    files_touched = Integer(default=0)
    tokens_input = BigInt(default=0)
    tokens_output = BigInt(default=0)
    tokens_cache_read = BigInt(default=0)
    tokens_cache_write = BigInt(default=0)
    tokens_reasoning = BigInt(default=0)
    cost_usd = Numeric(digits=(24, 8), null=True, default=None)  # a sum of events' costs
    models = JSONB(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AgentEvent(Table, tablename="agent_event", db=DB):
    """One normalised event. Append-mostly, time-keyed; one row per event id.

    Plain PostgreSQL: the primary key is ``id``. TimescaleDB: ``(id, ts)`` (a hypertable's unique
    keys must include its time column), and the ``event_key`` table (id primary key, ts,
    revision; migration 0008, not declared here: it exists only there) makes ids unique.
    """

    id = UUID(primary_key=True, help_text="deterministic: UUIDv5 of agent + native ids")
    ts = Timestamptz()
    session_id = UUID()
    seq = BigInt(default=0, help_text="order within the session's source (line, offset)")
    kind = Varchar(length=32)
    agent = Varchar(length=32)
    model = Varchar(length=128, null=True, default=None)
    provider = Varchar(length=64, null=True, default=None)
    tokens_input = BigInt(null=True, default=None)
    tokens_output = BigInt(null=True, default=None)
    tokens_cache_read = BigInt(null=True, default=None)
    tokens_cache_write = BigInt(null=True, default=None)
    tokens_cache_write_5m = BigInt(null=True, default=None)
    tokens_cache_write_1h = BigInt(null=True, default=None)
    tokens_reasoning = BigInt(null=True, default=None)
    tokens_estimated = Boolean(default=False)
    cost_usd = Numeric(digits=(18, 8), null=True, default=None)
    cost_source = Varchar(length=16, null=True, default=None,
                          help_text="reported, computed, or unpriced (no price for the model)")
    duration_ms = BigInt(null=True, default=None)
    stop_reason = Varchar(length=64, null=True, default=None)
    tool_name = Varchar(length=255, null=True, default=None)
    tool_category = Varchar(length=32, null=True, default=None)
    tool_call_id = Varchar(length=255, null=True, default=None)
    status = Varchar(length=16, null=True, default=None, help_text="ok, error, cancelled, rejected")
    file_path = Text(null=True, default=None)
    lines_added = Integer(null=True, default=None)
    lines_removed = Integer(null=True, default=None)
    command = Text(null=True, default=None)
    content = Text(null=True, default=None, help_text="prompt, message or tool output text")
    error = Text(null=True, default=None)
    payload = JSONB(null=True, default=None, help_text="the agent's raw record")
    ingested_at = Timestamptz(default=TimestamptzNow())
    revision = Integer(default=0, help_text="the highest revision received of this event")




class SessionFile(Table, tablename="session_file", db=DB):
    """A file an agent session touched (read, wrote, edited); unique (session_id, md5(path))."""

    session_id = UUID(primary_key=True)  # database key: unique (session_id, md5(path))
    path = Text()
    first_ts = Timestamptz()
    last_ts = Timestamptz()
    touches = Integer(default=0)
    lines_added = BigInt(default=0)  # sums of per-event counts
    lines_removed = BigInt(default=0)


class ApiKey(Table, tablename="api_key", db=DB):
    """An API key for ingest (and reads off loopback). Only a SHA-256 of the secret is stored."""

    id = UUID(primary_key=True)
    name = Varchar(length=255)
    prefix = Varchar(length=16, help_text="the first characters of the key, to recognise it")
    secret_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class ModelPriceProvider(Table, tablename="model_price_provider", db=DB):
    """A provider of priced models (``app/pricing``): how model and provider names find it."""

    id = Text(primary_key=True, help_text="anthropic, openai, google, github-copilot, …")
    name = Text(null=True, default=None)
    model_match = JSONB(null=True, default=None, help_text="match clause on model names")
    provider_match = JSONB(null=True, default=None, help_text="match clause on provider names")
    fallback = JSONB(default="[]", help_text="providers whose models it also serves")
    rank = Integer(default=0)
    shipped = Boolean(default=False, help_text="from the snapshot shipped with devlog")
    source = Text()
    loaded_at = Timestamptz(default=TimestamptzNow())


class ModelPrice(Table, tablename="model_price", db=DB):
    """A dated price of one model: valid from ``valid_from`` (NULL: since always) until the next
    ``valid_from`` of the same (provider, model). Prices in USD per million tokens; ``tiers``
    (long context) replace them for calls whose prompt tokens are above a threshold."""

    id = BigInt(primary_key=True)
    provider = Text()
    model = Text()
    name = Text(null=True, default=None)
    match = JSONB(help_text="match clause on model names (aliases, patterns, dated ids)")
    valid_from = Timestamptz(null=True, default=None)
    input_mtok = Numeric(digits=(14, 6), null=True, default=None)
    output_mtok = Numeric(digits=(14, 6), null=True, default=None)
    cache_read_mtok = Numeric(digits=(14, 6), null=True, default=None)
    cache_write_mtok = Numeric(digits=(14, 6), null=True, default=None)
    cache_write_5m_mtok = Numeric(digits=(14, 6), null=True, default=None)
    cache_write_1h_mtok = Numeric(digits=(14, 6), null=True, default=None)
    reasoning_mtok = Numeric(digits=(14, 6), null=True, default=None)
    tiers = JSONB(default="[]", help_text='[{"above": prompt tokens, "input": price, …}]')
    rank = Integer(default=0, help_text="order in its file")
    shipped = Boolean(default=False, help_text="from the snapshot shipped with devlog")
    source = Text(help_text="genai-prices <version>, or the file it was loaded from")
    loaded_at = Timestamptz(default=TimestamptzNow())


class ModelPriceAlias(Table, tablename="model_price_alias", db=DB):
    """A user's alias: calls of model ``name`` are priced as ``model`` (``devlog prices alias``)."""

    name = Text(primary_key=True, help_text="a model name as agents report it, lower-cased")
    model = Text(help_text="the model name it is priced as (resolved as agents' names are)")
    shipped = Boolean(default=False, help_text="from the snapshot shipped with devlog")
    source = Text(help_text="'devlog prices alias', or the price file it was loaded from")
    loaded_at = Timestamptz(default=TimestamptzNow())


TABLES: tuple[type[Table], ...] = (
    Project, Machine, Workspace, AgentSession, AgentEvent, SessionFile, ApiKey,
    ModelPriceProvider, ModelPrice, ModelPriceAlias,
)
