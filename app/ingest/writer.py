"""Write one validated batch in one transaction.

Order inside the transaction (every step in a fixed key order, so concurrent batches never
deadlock, and every id deterministic, so they never create duplicates):

1. machines, projects, workspaces: ``INSERT … ON CONFLICT DO NOTHING``, then an ``UPDATE`` only
   where facts changed or ``last_seen_at`` is more than a minute old (no row lock otherwise, so
   concurrent batches from one machine do not queue on its row);
2. sessions (parents first): upsert, which locks every session of the batch in id order;
3. events: the (id, ts) pairs already stored are looked up; the others are COPied straight
   into ``agent_event`` in a savepoint. Should a concurrent batch have stored one meanwhile, the
   savepoint rolls back and the events go through a temp table and
   ``INSERT … ORDER BY id ON CONFLICT DO NOTHING RETURNING``. Either way exactly the new events
   are counted, so duplicates (same batch, earlier batch, replay) change nothing;
4. session rollups and ``session_file`` from the new rows only;
5. ``pg_notify`` (delivered at commit) with small payloads: session ids, the ingest timestamp
   and the time range, from which listeners load the new rows.

The caller answers the client only after COMMIT: an acknowledgement means durable.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from app.ingest import identity
from collector.wire import Event, MachineInfo

NOTIFY_CHANNEL = "devlog_events"
_NOTIFY_MAX_SESSIONS = 150  # keeps a payload well under PostgreSQL's 8000-byte limit
_TITLE_MAX = 120

EVENT_COLUMNS = (
    "id", "ts", "session_id", "seq", "kind", "agent", "model", "provider",
    "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
    "tokens_cache_write_5m", "tokens_cache_write_1h", "tokens_reasoning", "tokens_estimated",
    "cost_usd", "cost_source", "duration_ms", "stop_reason", "tool_name", "tool_category",
    "tool_call_id", "status", "file_path", "lines_added", "lines_removed", "command", "content",
    "error", "payload", "ingested_at",
)

_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging "
    "(LIKE agent_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)

_INSERT_EVENTS = f"""
INSERT INTO agent_event ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(EVENT_COLUMNS)} FROM ingest_staging ORDER BY id
ON CONFLICT DO NOTHING
RETURNING session_id, kind, ts, model, tokens_input, tokens_output, tokens_cache_read,
          tokens_cache_write, tokens_reasoning, cost_usd, status, file_path,
          lines_added, lines_removed,
          CASE WHEN kind = 'user_prompt' THEN left(content, 500) END AS prompt
"""


@dataclass(slots=True)
class PreparedEvent:
    """A validated event with its derived ids and its payload already encoded as JSON text."""

    event: Event
    session_id: uuid.UUID
    payload_json: str | None


@dataclass(slots=True)
class WriteResult:
    accepted: int
    duplicates: int
    session_ids: list[uuid.UUID] = field(default_factory=list)
    ingested_at: datetime | None = None


@dataclass(slots=True)
class _SessionRow:
    id: uuid.UUID
    agent: str
    native_id: str
    parent: uuid.UUID | None = None
    parent_native: str | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None
    agent_version: str | None = None
    git_branch: str | None = None
    git_commit: str | None = None
    last_ts: datetime | None = None


@dataclass(slots=True)
class _Rollup:
    events: int = 0
    prompts: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    tokens_cache_read: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0
    cost: float | None = None
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    ended_at: datetime | None = None
    title: str | None = None
    title_ts: datetime | None = None
    models: set[str] = field(default_factory=set)
    new_files: int = 0


def _clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


def _strip_nuls(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_strip_nuls(v) for v in value]
    if isinstance(value, dict):
        return {_strip_nuls(k): _strip_nuls(v) for k, v in value.items()}
    return value


def encode_payload(payload: Any) -> str | None:
    """JSON text for a jsonb column (which rejects \\u0000 escapes)."""
    if payload is None:
        return None
    text = msgspec.json.encode(payload).decode()
    if "\\u0000" in text:  # rare: clean the object, not the text (escapes make text edits unsafe)
        text = msgspec.json.encode(_strip_nuls(payload)).decode()
    return text


def event_size(event: Event, payload_json: str | None) -> int:
    """Characters of the event's big fields (a cheap, close stand-in for bytes)."""
    size = len(payload_json) if payload_json else 0
    if event.content:
        size += len(event.content)
    if event.command:
        size += len(event.command)
    if event.error:
        size += len(event.error)
    return size


def _event_record(p: PreparedEvent, at: datetime) -> tuple:
    e = p.event
    t = e.tokens
    return (
        e.id, e.ts, p.session_id, e.seq, e.kind, e.agent, e.model, e.provider,
        t.input if t else None, t.output if t else None, t.cache_read if t else None,
        t.cache_write if t else None, t.cache_write_5m if t else None,
        t.cache_write_1h if t else None, t.reasoning if t else None,
        t.estimated if t else False,
        e.cost_usd, "reported" if e.cost_usd is not None else None, e.duration_ms,
        e.stop_reason, e.tool_name, e.tool_category, e.tool_call_id, e.status,
        _clean(e.file_path), e.lines_added, e.lines_removed, _clean(e.command),
        _clean(e.content), _clean(e.error), p.payload_json, at,
    )


async def write_batch(conn: asyncpg.Connection, events: list[PreparedEvent],
                      machines: list[MachineInfo]) -> WriteResult:
    """Write a batch of valid, de-duplicated (by id) events. Runs its own transaction."""
    if not events:
        return WriteResult(accepted=0, duplicates=0)
    async with conn.transaction():
        at: datetime = await conn.fetchval("SELECT now()")
        touches = await _upsert_context(conn, events, machines)
        inserted = await _insert_events(conn, events, at)
        session_ids = await _apply_rollups(conn, inserted)
        for touch in touches:
            await conn.execute(*touch)
        if inserted:
            await _notify(conn, session_ids, at, min(r["ts"] for r in inserted),
                          max(r["ts"] for r in inserted))
    return WriteResult(accepted=len(inserted), duplicates=len(events) - len(inserted),
                       session_ids=session_ids, ingested_at=at)


async def _insert_events(conn: asyncpg.Connection, events: list[PreparedEvent],
                         at: datetime) -> list:
    """Insert the events not stored yet; returns rollup rows for exactly those.

    Fast path (the usual case, new events): look up which (id, ts) already exist, COPY the
    rest straight into agent_event inside a savepoint. If a concurrent batch stored one of them
    in between, the COPY hits the primary key; the savepoint rolls back and the slow path runs:
    COPY into a temp table, then INSERT … ON CONFLICT DO NOTHING RETURNING.
    """
    existing = await conn.fetch(
        """SELECT e.id FROM agent_event e
           JOIN unnest($1::uuid[], $2::timestamptz[]) AS k(id, ts) ON e.id = k.id AND e.ts = k.ts""",
        [p.event.id for p in events], [p.event.ts for p in events])
    seen = {r["id"] for r in existing}
    fresh = sorted((p for p in events if p.event.id not in seen), key=lambda p: p.event.id)
    if not fresh:
        return []
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "agent_event", records=[_event_record(p, at) for p in fresh], columns=EVENT_COLUMNS)
    except asyncpg.UniqueViolationError:
        await conn.execute(_STAGING_DDL)
        await conn.copy_records_to_table(
            "ingest_staging", records=[_event_record(p, at) for p in fresh], columns=EVENT_COLUMNS)
        return await conn.fetch(_INSERT_EVENTS)
    return [_rollup_row(p) for p in fresh]


def _rollup_row(p: PreparedEvent) -> dict:
    """The same keys as _INSERT_EVENTS' RETURNING, from the event itself."""
    e, t = p.event, p.event.tokens
    return {
        "session_id": p.session_id, "kind": e.kind, "ts": e.ts, "model": e.model,
        "tokens_input": t.input if t else None, "tokens_output": t.output if t else None,
        "tokens_cache_read": t.cache_read if t else None,
        "tokens_cache_write": t.cache_write if t else None,
        "tokens_reasoning": t.reasoning if t else None, "cost_usd": e.cost_usd,
        "status": e.status, "file_path": _clean(e.file_path), "lines_added": e.lines_added,
        "lines_removed": e.lines_removed,
        "prompt": _clean(e.content)[:500] if e.kind == "user_prompt" and e.content else None,
    }


# --------------------------------------------------------------------------- context


async def _upsert_context(conn: asyncpg.Connection, events: list[PreparedEvent],
                          machines: list[MachineInfo]) -> list[tuple]:
    facts = {m.key: m for m in machines}
    machine_seen: dict[str, datetime] = {}
    projects: dict[uuid.UUID, tuple[str, str, str | None, datetime]] = {}
    workspaces: dict[uuid.UUID, list] = {}
    sessions: dict[uuid.UUID, _SessionRow] = {}

    for p in events:
        e = p.event
        mkey = e.machine
        machine_seen[mkey] = max(machine_seen.get(mkey, e.ts), e.ts)
        pid = None
        if e.project is not None:
            found = identity.project_key(e.project.remote, e.project.path or e.workspace, mkey)
            if found:
                key, name = found
                pid = identity.project_id(key)
                prev = projects.get(pid)
                projects[pid] = (key, e.project.name or name, e.project.remote,
                                 max(prev[3], e.ts) if prev else e.ts)
        elif e.workspace:
            key, name = identity.project_key(None, e.workspace, mkey)  # type: ignore[misc]
            pid = identity.project_id(key)
            prev = projects.get(pid)
            projects[pid] = (key, name, None, max(prev[3], e.ts) if prev else e.ts)
        wid = None
        if e.workspace:
            wid = identity.workspace_id(mkey, e.workspace)
            prev_ws = workspaces.get(wid)
            if prev_ws is None or e.ts >= prev_ws[6]:
                workspaces[wid] = [wid, identity.machine_id(mkey), pid, e.workspace,
                                   e.project.branch if e.project else None,
                                   e.project.commit if e.project else None, e.ts]
        row = sessions.get(p.session_id)
        if row is None:
            row = sessions[p.session_id] = _SessionRow(id=p.session_id, agent=e.agent,
                                                       native_id=e.session)
        if row.last_ts is None or e.ts >= row.last_ts:
            row.last_ts = e.ts
            row.machine = identity.machine_id(mkey)
            row.project = pid or row.project
            row.workspace = wid or row.workspace
            row.agent_version = e.agent_version or row.agent_version
            if e.project is not None:
                row.git_branch = e.project.branch or row.git_branch
                row.git_commit = e.project.commit or row.git_commit
        if e.parent_session:
            row.parent = identity.session_id(e.agent, e.parent_session)
            row.parent_native = e.parent_session

    touches = await _upsert_machines(conn, machine_seen, facts)
    if projects:
        ordered = sorted(projects.items())
        await conn.execute(
            """INSERT INTO project (id, key, name, remote_url, last_seen_at)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                    AS d(id, key, name, remote, seen)
               WHERE NOT EXISTS (SELECT 1 FROM project p WHERE p.id = d.id)
               ORDER BY 1 ON CONFLICT DO NOTHING""",
            [k for k, _ in ordered], [v[0] for _, v in ordered], [v[1] for _, v in ordered],
            [v[2] for _, v in ordered], [v[3] for _, v in ordered])
        touches.append((
            """UPDATE project p SET last_seen_at = greatest(p.last_seen_at, d.seen),
                      remote_url = coalesce(d.remote, p.remote_url)
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS d(id, remote, seen)
               WHERE p.id = d.id AND (p.last_seen_at < d.seen - interval '1 minute'
                                      OR (d.remote IS NOT NULL AND p.remote_url IS DISTINCT FROM d.remote))""",
            [k for k, _ in ordered], [v[2] for _, v in ordered], [v[3] for _, v in ordered]))
    if workspaces:
        rows = [workspaces[k] for k in sorted(workspaces)]
        cols = list(zip(*rows))
        await conn.execute(
            """INSERT INTO workspace (id, machine, project, path, branch, commit, last_seen_at)
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                                    $6::text[], $7::timestamptz[])
                    AS d(id, machine, project, path, branch, commit, seen)
               WHERE NOT EXISTS (SELECT 1 FROM workspace w WHERE w.id = d.id)
               ORDER BY 1 ON CONFLICT DO NOTHING""", *map(list, cols))
        touches.append((
            """UPDATE workspace w SET last_seen_at = greatest(w.last_seen_at, d.seen),
                      project = coalesce(d.project, w.project),
                      branch = coalesce(d.branch, w.branch), commit = coalesce(d.commit, w.commit)
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
                    AS d(id, project, branch, commit, seen)
               WHERE w.id = d.id AND (w.last_seen_at < d.seen - interval '1 minute'
                  OR (d.project IS NOT NULL AND w.project IS DISTINCT FROM d.project)
                  OR (d.branch IS NOT NULL AND w.branch IS DISTINCT FROM d.branch)
                  OR (d.commit IS NOT NULL AND w.commit IS DISTINCT FROM d.commit))""",
            list(cols[0]), list(cols[2]), list(cols[4]), list(cols[5]), list(cols[6])))
    await _upsert_sessions(conn, sessions)
    return touches


async def _upsert_machines(conn: asyncpg.Connection, seen: dict[str, datetime],
                           facts: dict[str, MachineInfo]) -> list[tuple]:
    keys = sorted(seen, key=identity.machine_id)
    if not keys:
        return []
    f = [facts.get(k) for k in keys]
    args = (
        [identity.machine_id(k) for k in keys], keys,
        [(m.hostname or k) if m else k for k, m in zip(keys, f)],
        [m.username if m else None for m in f], [m.os if m else None for m in f],
        [m.os_version if m else None for m in f], [m.arch if m else None for m in f],
        [m.kind if m else "local" for m in f], [seen[k] for k in keys],
        [m is not None for m in f],
    )
    await conn.execute(
        """INSERT INTO machine (id, key, hostname, username, os, os_version, arch, kind, last_seen_at)
           SELECT id, key, hostname, username, os, os_version, arch, kind, seen
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::timestamptz[], $10::bool[])
                AS d(id, key, hostname, username, os, os_version, arch, kind, seen, has_facts)
           WHERE NOT EXISTS (SELECT 1 FROM machine m WHERE m.id = d.id)
           ORDER BY 1 ON CONFLICT DO NOTHING""", *args)
    return [(
        """UPDATE machine m SET last_seen_at = greatest(m.last_seen_at, d.seen),
                  hostname = CASE WHEN d.has_facts THEN d.hostname ELSE m.hostname END,
                  username = CASE WHEN d.has_facts THEN d.username ELSE m.username END,
                  os = CASE WHEN d.has_facts THEN d.os ELSE m.os END,
                  os_version = CASE WHEN d.has_facts THEN d.os_version ELSE m.os_version END,
                  arch = CASE WHEN d.has_facts THEN d.arch ELSE m.arch END,
                  kind = CASE WHEN d.has_facts THEN d.kind ELSE m.kind END
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::timestamptz[], $10::bool[])
                AS d(id, key, hostname, username, os, os_version, arch, kind, seen, has_facts)
           WHERE m.id = d.id AND (m.last_seen_at < d.seen - interval '1 minute'
              OR (d.has_facts AND (m.hostname, m.username, m.os, m.os_version, m.arch, m.kind)
                  IS DISTINCT FROM (d.hostname, d.username, d.os, d.os_version, d.arch, d.kind)))""",
        *args)]


async def _upsert_sessions(conn: asyncpg.Connection, sessions: dict[uuid.UUID, _SessionRow]) -> None:
    # A parent referenced before its own events arrive gets a placeholder row (same id, so
    # its events fill it in later).
    parents = {row.parent: (row.agent, row.parent_native) for row in sessions.values()
               if row.parent and row.parent not in sessions}
    if parents:
        todo = sorted(parents)
        await conn.execute(
            """INSERT INTO agent_session (id, agent, native_id)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) ORDER BY 1
               ON CONFLICT DO NOTHING""",
            todo, [parents[p][0] for p in todo], [parents[p][1] for p in todo])
    rows = [sessions[k] for k in sorted(sessions)]
    await conn.execute(
        """INSERT INTO agent_session (id, agent, native_id, parent, project, machine, workspace,
                                      agent_version, git_branch, git_commit)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[],
                                $6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::text[])
           ORDER BY 1
           ON CONFLICT (id) DO UPDATE SET
               parent = coalesce(agent_session.parent, EXCLUDED.parent),
               project = coalesce(EXCLUDED.project, agent_session.project),
               machine = coalesce(EXCLUDED.machine, agent_session.machine),
               workspace = coalesce(EXCLUDED.workspace, agent_session.workspace),
               agent_version = coalesce(EXCLUDED.agent_version, agent_session.agent_version),
               git_branch = coalesce(EXCLUDED.git_branch, agent_session.git_branch),
               git_commit = coalesce(EXCLUDED.git_commit, agent_session.git_commit)
           WHERE (agent_session.parent IS NULL AND EXCLUDED.parent IS NOT NULL)
              OR (EXCLUDED.project IS NOT NULL AND EXCLUDED.project IS DISTINCT FROM agent_session.project)
              OR (EXCLUDED.machine IS NOT NULL AND EXCLUDED.machine IS DISTINCT FROM agent_session.machine)
              OR (EXCLUDED.workspace IS NOT NULL AND EXCLUDED.workspace IS DISTINCT FROM agent_session.workspace)
              OR (EXCLUDED.agent_version IS NOT NULL AND EXCLUDED.agent_version IS DISTINCT FROM agent_session.agent_version)
              OR (EXCLUDED.git_branch IS NOT NULL AND EXCLUDED.git_branch IS DISTINCT FROM agent_session.git_branch)
              OR (EXCLUDED.git_commit IS NOT NULL AND EXCLUDED.git_commit IS DISTINCT FROM agent_session.git_commit)""",
        [r.id for r in rows], [r.agent for r in rows], [r.native_id for r in rows],
        [r.parent for r in rows], [r.project for r in rows], [r.machine for r in rows],
        [r.workspace for r in rows], [r.agent_version for r in rows],
        [r.git_branch for r in rows], [r.git_commit for r in rows])


# --------------------------------------------------------------------------- rollups


async def _apply_rollups(conn: asyncpg.Connection, inserted: list[asyncpg.Record]) -> list[uuid.UUID]:
    if not inserted:
        return []
    rollups: dict[uuid.UUID, _Rollup] = defaultdict(_Rollup)
    files: dict[tuple[uuid.UUID, str], list] = {}
    for r in inserted:
        s = rollups[r["session_id"]]
        kind, ts = r["kind"], r["ts"]
        s.events += 1
        s.first_ts = ts if s.first_ts is None else min(s.first_ts, ts)
        s.last_ts = ts if s.last_ts is None else max(s.last_ts, ts)
        if kind == "user_prompt":
            s.prompts += 1
            prompt = (r["prompt"] or "").strip()
            if prompt and (s.title_ts is None or ts < s.title_ts):
                s.title, s.title_ts = _shorten(prompt), ts
        elif kind == "llm_call":
            s.llm_calls += 1
            if r["model"]:
                s.models.add(r["model"])
        elif kind == "tool_call":
            s.tool_calls += 1
        elif kind == "session_end":
            s.ended_at = ts if s.ended_at is None else max(s.ended_at, ts)
        if r["status"] == "error" and kind in ("tool_call", "tool_result"):
            s.tool_errors += 1
        s.tokens_input += r["tokens_input"] or 0
        s.tokens_output += r["tokens_output"] or 0
        s.tokens_cache_read += r["tokens_cache_read"] or 0
        s.tokens_cache_write += r["tokens_cache_write"] or 0
        s.tokens_reasoning += r["tokens_reasoning"] or 0
        if r["cost_usd"] is not None:
            s.cost = (s.cost or 0.0) + float(r["cost_usd"])
        if r["file_path"]:
            key = (r["session_id"], r["file_path"])
            f = files.get(key)
            if f is None:
                files[key] = [ts, ts, 1, r["lines_added"] or 0, r["lines_removed"] or 0]
            else:
                f[0], f[1] = min(f[0], ts), max(f[1], ts)
                f[2] += 1
                f[3] += r["lines_added"] or 0
                f[4] += r["lines_removed"] or 0

    if files:
        keys = sorted(files)
        new_files = await conn.fetch(
            """INSERT INTO session_file AS f (session_id, path, first_ts, last_ts, touches,
                                              lines_added, lines_removed)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                                    $5::int[], $6::int[], $7::int[]) ORDER BY 1, 2
               ON CONFLICT (session_id, path) DO UPDATE SET
                   first_ts = least(f.first_ts, EXCLUDED.first_ts),
                   last_ts = greatest(f.last_ts, EXCLUDED.last_ts),
                   touches = f.touches + EXCLUDED.touches,
                   lines_added = f.lines_added + EXCLUDED.lines_added,
                   lines_removed = f.lines_removed + EXCLUDED.lines_removed
               RETURNING session_id, (xmax = 0) AS inserted""",
            [k[0] for k in keys], [k[1] for k in keys], *(
                [files[k][i] for k in keys] for i in range(5)))
        for row in new_files:
            if row["inserted"]:
                rollups[row["session_id"]].new_files += 1

    ids = sorted(rollups)
    rs = [rollups[i] for i in ids]
    await conn.execute(
        """UPDATE agent_session s SET
               event_count = s.event_count + d.events,
               prompt_count = s.prompt_count + d.prompts,
               llm_call_count = s.llm_call_count + d.llm_calls,
               tool_call_count = s.tool_call_count + d.tool_calls,
               tool_error_count = s.tool_error_count + d.tool_errors,
               tokens_input = s.tokens_input + d.t_in,
               tokens_output = s.tokens_output + d.t_out,
               tokens_cache_read = s.tokens_cache_read + d.t_cr,
               tokens_cache_write = s.tokens_cache_write + d.t_cw,
               tokens_reasoning = s.tokens_reasoning + d.t_re,
               cost_usd = CASE WHEN d.cost IS NULL THEN s.cost_usd
                               ELSE coalesce(s.cost_usd, 0) + d.cost END,
               title = CASE WHEN d.title IS NOT NULL
                             AND (s.title IS NULL OR s.started_at IS NULL OR d.title_ts < s.started_at)
                            THEN d.title ELSE s.title END,
               started_at = least(s.started_at, d.first_ts),
               last_event_at = greatest(s.last_event_at, d.last_ts),
               ended_at = greatest(s.ended_at, d.ended_at),
               status = CASE WHEN d.ended_at IS NOT NULL OR s.ended_at IS NOT NULL THEN 'ended'
                             ELSE s.status END,
               models = CASE WHEN d.models = '[]'::jsonb THEN s.models ELSE (
                   SELECT coalesce(jsonb_agg(m ORDER BY m), '[]'::jsonb) FROM (
                       SELECT jsonb_array_elements_text(s.models)
                       UNION SELECT jsonb_array_elements_text(d.models)) AS u(m)) END,
               files_touched = s.files_touched + d.new_files,
               updated_at = now()
           FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[],
                       $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                       $12::float8[], $13::text[], $14::timestamptz[], $15::timestamptz[],
                       $16::timestamptz[], $17::timestamptz[], $18::int[], $19::jsonb[])
                AS d(id, events, prompts, llm_calls, tool_calls, tool_errors, t_in, t_out,
                     t_cr, t_cw, t_re, cost, title, title_ts, first_ts, last_ts, ended_at,
                     new_files, models)
           WHERE s.id = d.id""",
        ids, [r.events for r in rs], [r.prompts for r in rs], [r.llm_calls for r in rs],
        [r.tool_calls for r in rs], [r.tool_errors for r in rs], [r.tokens_input for r in rs],
        [r.tokens_output for r in rs], [r.tokens_cache_read for r in rs],
        [r.tokens_cache_write for r in rs], [r.tokens_reasoning for r in rs],
        [r.cost for r in rs], [r.title for r in rs], [r.title_ts for r in rs],
        [r.first_ts for r in rs], [r.last_ts for r in rs], [r.ended_at for r in rs],
        [r.new_files for r in rs], [msgspec.json.encode(sorted(r.models)).decode() for r in rs])
    return ids


def _shorten(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1].rstrip() + "…"


async def _notify(conn: asyncpg.Connection, session_ids: list[uuid.UUID], at: datetime,
                  first: datetime, last: datetime) -> None:
    for start in range(0, len(session_ids), _NOTIFY_MAX_SESSIONS):
        chunk = session_ids[start:start + _NOTIFY_MAX_SESSIONS]
        payload = msgspec.json.encode({
            "at": at, "from": first, "to": last + timedelta(microseconds=1),
            "sessions": [str(s) for s in chunk],
        }).decode()
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
