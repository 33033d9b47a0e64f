"""Agent sessions: the list with filters and keyset pagination, lookups by id, children, and the
batched lookups the GraphQL loaders use."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from app.db.reads import fetch
from app.services.pagination import Page, clamp, cursor_time, decode_keys, encode_cursor

STATUSES = ("active", "idle", "ended")


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    agent: str
    native_id: str
    parent_id: uuid.UUID | None
    project_id: uuid.UUID | None
    machine_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    agent_version: str | None
    title: str | None
    status: str  # active | idle | ended (idle computed from last_event_at)
    git_branch: str | None
    git_commit: str | None
    started_at: datetime | None
    last_event_at: datetime | None
    ended_at: datetime | None
    event_count: int
    prompt_count: int
    llm_call_count: int
    tool_call_count: int
    tool_error_count: int
    files_touched: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_reasoning: int
    cost_usd: float | None
    models: list[str]


class SessionFilter(msgspec.Struct, frozen=True, kw_only=True):
    agent: list[str] | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None
    status: str | None = None
    since: datetime | None = None  # sessions with activity at or after
    until: datetime | None = None  # sessions started before
    text: str | None = None  # in the title or any prompt of the session
    parent: uuid.UUID | None = None
    top_level: bool = False  # only sessions without a parent


_COLUMNS = """
    s.id, s.agent, s.native_id, s.parent AS parent_id, s.project AS project_id,
    s.machine AS machine_id, s.workspace AS workspace_id, s.agent_version, s.title,
    CASE WHEN s.ended_at IS NOT NULL THEN 'ended'
         WHEN s.last_event_at < now() - make_interval(mins => {idle}) THEN 'idle'
         ELSE 'active' END AS status,
    s.git_branch, s.git_commit, s.started_at, s.last_event_at, s.ended_at, s.event_count,
    s.prompt_count, s.llm_call_count, s.tool_call_count, s.tool_error_count, s.files_touched,
    s.tokens_input, s.tokens_output, s.tokens_cache_read, s.tokens_cache_write,
    s.tokens_reasoning, s.cost_usd::float8 AS cost_usd, s.models
"""

IDLE_MINUTES = 30


def configure(idle_minutes: int) -> None:
    global IDLE_MINUTES
    IDLE_MINUTES = max(1, int(idle_minutes))


def _columns() -> str:
    return _COLUMNS.format(idle=IDLE_MINUTES)


def _records(rows: list) -> list[SessionRecord]:
    out = []
    for r in rows:
        d = dict(r)
        d["models"] = msgspec.json.decode(d["models"]) if isinstance(d["models"], str) else d["models"]
        out.append(msgspec.convert(d, SessionRecord))
    return out


def _where(f: SessionFilter, args: list) -> list[str]:
    clauses = ["s.last_event_at IS NOT NULL"]  # placeholders (parents not seen yet) are hidden

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.agent:
        clauses.append(f"s.agent = ANY({arg(list(f.agent))}::text[])")
    for column, value in (("project", f.project), ("machine", f.machine),
                          ("workspace", f.workspace), ("parent", f.parent)):
        if value is not None:
            clauses.append(f"s.{column} = {arg(value)}")
    if f.top_level:
        clauses.append("s.parent IS NULL")
    if f.status == "ended":
        clauses.append("s.ended_at IS NOT NULL")
    elif f.status in ("active", "idle"):
        op = ">=" if f.status == "active" else "<"
        clauses.append(f"s.ended_at IS NULL AND s.last_event_at {op} "
                       f"now() - make_interval(mins => {IDLE_MINUTES})")
    elif f.status is not None:
        raise ValueError(f"unknown status {f.status!r}; use one of {', '.join(STATUSES)}")
    if f.since is not None:
        clauses.append(f"s.last_event_at >= {arg(f.since)}")
    if f.until is not None:
        clauses.append(f"s.started_at < {arg(f.until)}")
    if f.text:
        escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = arg('%' + escaped + '%')
        # the title (first prompt) or any later prompt of the session (trigram indexes on both)
        clauses.append(f"(s.title ILIKE {pattern} OR s.id IN (SELECT e.session_id FROM agent_event e "
                       f"WHERE e.kind = 'user_prompt' AND e.content ILIKE {pattern}))")
    return clauses


async def list_sessions(f: SessionFilter | None = None, first: int = 50,
                        after: str | None = None) -> Page[SessionRecord]:
    """Newest activity first; keyset on (last_event_at, id)."""
    f = f or SessionFilter()
    first = clamp(first)
    args: list = []
    clauses = _where(f, args)
    if after:
        args += decode_keys(after, cursor_time, uuid.UUID)
        clauses.append(f"(s.last_event_at, s.id) < (${len(args) - 1}, ${len(args)})")
    args.append(first + 1)
    rows = await fetch(
        f"SELECT {_columns()} FROM agent_session s WHERE {' AND '.join(clauses)} "
        f"ORDER BY s.last_event_at DESC NULLS LAST, s.id DESC LIMIT ${len(args)}", *args)
    records = _records(rows)
    page = records[:first]
    return Page(items=page, cursors=[encode_cursor(r.last_event_at, str(r.id)) for r in page],
                has_next=len(records) > first)


async def count_sessions(f: SessionFilter | None = None) -> int:
    args: list = []
    clauses = _where(f or SessionFilter(), args)
    rows = await fetch(f"SELECT count(*) AS n FROM agent_session s WHERE {' AND '.join(clauses)}",
                       *args)
    return rows[0]["n"]


async def sessions_by_ids(ids: list[uuid.UUID]) -> list[SessionRecord | None]:
    """In key order, None for misses (the loader contract)."""
    rows = await fetch(f"SELECT {_columns()} FROM agent_session s WHERE s.id = ANY($1::uuid[])",
                       list(set(ids)))
    found = {r.id: r for r in _records(rows)}
    return [found.get(i) for i in ids]


async def get_session(session_id: uuid.UUID) -> SessionRecord | None:
    return (await sessions_by_ids([session_id]))[0]


async def children_by_parent_ids(ids: list[uuid.UUID]) -> list[list[SessionRecord]]:
    rows = await fetch(
        f"SELECT {_columns()} FROM agent_session s WHERE s.parent = ANY($1::uuid[]) "
        "ORDER BY s.started_at NULLS LAST, s.id", list(set(ids)))
    grouped: dict[uuid.UUID, list[SessionRecord]] = {}
    for r in _records(rows):
        grouped.setdefault(r.parent_id, []).append(r)  # type: ignore[arg-type]
    return [grouped.get(i, []) for i in ids]


async def latest_by_workspace_ids(keys: list[tuple[uuid.UUID, int]]) -> list[list[SessionRecord]]:
    """For (workspace id, n) keys: the n most recently active sessions of each workspace."""
    limit = max((n for _, n in keys), default=0)
    ids = list({w for w, _ in keys})
    rows = await fetch(
        f"""SELECT * FROM (
              SELECT {_columns()}, row_number() OVER (
                  PARTITION BY s.workspace ORDER BY s.last_event_at DESC, s.id DESC) AS rn
              FROM agent_session s
              WHERE s.workspace = ANY($1::uuid[]) AND s.last_event_at IS NOT NULL) x
            WHERE rn <= $2 ORDER BY last_event_at DESC, id DESC""", ids, limit)
    grouped: dict[uuid.UUID, list[SessionRecord]] = {}
    for row in rows:
        d = dict(row)
        d.pop("rn")
        rec = _records([d])[0]
        grouped.setdefault(rec.workspace_id, []).append(rec)  # type: ignore[arg-type]
    return [grouped.get(w, [])[:n] for w, n in keys]


def active_since(now: datetime) -> datetime:
    return now - timedelta(minutes=IDLE_MINUTES)
