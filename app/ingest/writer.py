"""Write one validated batch in one transaction.

The Python work is done before the transaction opens: the COPY records (sorted by id), the
context rows (machines, projects, workspaces, sessions) and each session's rollups, counted
from its records as if every event were new. Then, in the usual case (every event new):

1. ``_OPEN``, one statement: the machines, projects, workspaces and placeholder parents not
   stored yet (a plain ``NOT EXISTS`` first, so a stored row is neither written nor waited for;
   then ``INSERT … ON CONFLICT DO NOTHING`` in key order), then the sessions' upsert, which
   locks them in id order. A session new to the database is inserted with its rollups and its
   ``session_file`` rows, so it is written once; ``now()`` and the created ids come back;
2. COPY (binary) straight into ``agent_event``;
3. ``_ROLLUP``, only if some sessions existed already: their ``session_file`` upsert and
   rollup UPDATE (``files_touched`` counts the paths the upsert inserted);
4. ``_CLOSE``: the machines, projects and workspaces get an ``UPDATE`` only where facts changed
   or ``last_seen_at`` is more than a minute old — last, so those row locks are held only until
   COMMIT and concurrent batches of one machine (or project) do not queue on its row for a
   whole transaction — and ``pg_notify`` (delivered at commit) announces the session ids, the
   ingest timestamp and the time range, from which listeners load the new rows.

Should one event be stored already (a replay, or a concurrent batch that committed it first),
the COPY hits the primary key: the transaction rolls back and the batch is written again in a
new one, where the events go through a temp table and ``INSERT … ORDER BY id ON CONFLICT DO
NOTHING RETURNING id``, and the rollups (``_ROLLUP``, for every session) come from exactly the
rows it returned. Either way duplicates (same batch, earlier batch, replay) change nothing.

Locks are taken in one order in both ways (new context keys; sessions by id; events by id;
session files, whose sessions are locked already; context rows by id), and every id is
deterministic, so concurrent batches neither deadlock nor create duplicates.

``ingested_at`` is left to its column default, ``now()``: the transaction's start time, the
same for every row of the batch and the one announced by ``pg_notify``.

Cost: an LLM call's reported ``costUsd`` is kept (``cost_source = 'reported'``); otherwise it is
priced in Python while the COPY records are built, from the in-memory ``PriceBook`` (model name
resolutions cached per (model, provider); nothing per event in SQL): ``computed``, or ``unpriced``
with a NULL cost when the model has no price at the call's time. Session rollups sum them.

The caller answers the client only after COMMIT: an acknowledgement means durable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import asyncpg
import msgspec

from app.ingest import identity
from app.ingest.statements import CLOSE as _CLOSE
from app.ingest.statements import EVENT_COLUMNS
from app.ingest.statements import INSERT_EVENTS as _INSERT_EVENTS
from app.ingest.statements import OPEN as _OPEN
from app.ingest.statements import ROLLUP as _ROLLUP
from app.ingest.statements import STAGING_DDL as _STAGING_DDL
from app.pricing.book import EMPTY as _NO_PRICES
from app.pricing.book import PriceBook
from app.pricing.cost import call_cost
from collector.wire import Event, MachineInfo

NOTIFY_CHANNEL = "devlog_events"
_NOTIFY_MAX_SESSIONS = 150  # keeps a payload well under PostgreSQL's 8000-byte limit
_TITLE_MAX = 120

(_ID, _TS, _SESSION, _KIND, _MODEL, _T_IN, _T_OUT, _T_CR, _T_CW, _T_RE, _COST, _STATUS, _FILE,
 _ADDED, _REMOVED, _CONTENT) = (EVENT_COLUMNS.index(c) for c in (
    "id", "ts", "session_id", "kind", "model", "tokens_input", "tokens_output",
    "tokens_cache_read", "tokens_cache_write", "tokens_reasoning", "cost_usd", "status",
    "file_path", "lines_added", "lines_removed", "content"))



class PreparedEvent(msgspec.Struct, gc=False):
    """A validated event with its id as 32 lowercase hex digits, its session id (text,
    ``identity.session_key``) and its payload already encoded as JSON text.

    Like the event structs it is untracked by the garbage collector (a tuple holding a struct
    stays tracked): a batch's thousands of them would otherwise survive into the oldest
    generation and bring on full collections.
    """

    event: Event
    id: str
    session_id: str
    payload_json: str | None


@dataclass(slots=True)
class WriteResult:
    accepted: int
    duplicates: int
    session_ids: list[str] = field(default_factory=list)
    ingested_at: datetime | None = None


@dataclass(slots=True)
class _SessionRow:
    id: str
    agent: str
    native_id: str
    parent: str | None = None
    parent_native: str | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None
    agent_version: str | None = None
    git_branch: str | None = None
    git_commit: str | None = None
    last_ts: datetime | None = None


@dataclass(slots=True)
class _Context:
    """The context rows a batch touches, derived from its events."""

    machine_seen: dict[str, datetime] = field(default_factory=dict)
    projects: dict[uuid.UUID, tuple[str, str, str | None, datetime]] = field(default_factory=dict)
    workspaces: dict[uuid.UUID, list] = field(default_factory=dict)
    sessions: dict[str, _SessionRow] = field(default_factory=dict)


def _clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


_encode = msgspec.json.encode


_by_id = itemgetter(_ID)


def event_records(events: list[PreparedEvent], book: PriceBook = _NO_PRICES,
                  ) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """The COPY records (``EVENT_COLUMNS`` order) sorted by id, and the same records grouped
    by session (each group in id order). LLM calls without a reported cost are priced with
    ``book``.

    UUIDs are given as text (asyncpg parses it in C; a ``uuid.UUID`` costs it a Python-level
    ``.bytes`` call): 32 hex digits for the id, whose order is the id's order.
    """
    records = []
    append = records.append
    resolve = book.resolve
    for p in events:
        e, payload_json = p.event, p.payload_json
        t = e.tokens
        fp, cmd, content, err = e.file_path, e.command, e.content, e.error
        cost = e.cost_usd
        if cost is not None:
            source: str | None = "reported"
        elif e.kind == "llm_call":
            m = resolve(e.model, e.provider)
            price = m.price_at(e.ts) if m is not None else None
            if price is None:
                source = "unpriced"
            else:
                source = "computed"
                cost = (call_cost(price, t.input, t.output, t.cache_read, t.cache_write,
                                  t.cache_write_1h, t.reasoning) if t is not None else 0.0)
        else:
            source = None
        append((
            p.id, e.ts, p.session_id, e.seq, e.kind, e.agent, e.model, e.provider,
            *((t.input, t.output, t.cache_read, t.cache_write, t.cache_write_5m, t.cache_write_1h,
               t.reasoning, t.estimated) if t is not None else _NO_TOKENS),
            cost, source, e.duration_ms,
            e.stop_reason, e.tool_name, e.tool_category, e.tool_call_id, e.status,
            fp if fp is None or "\x00" not in fp else _clean(fp),
            e.lines_added, e.lines_removed,
            cmd if cmd is None or "\x00" not in cmd else _clean(cmd),
            content if content is None or "\x00" not in content else _clean(content),
            err if err is None or "\x00" not in err else _clean(err),
            payload_json,
        ))
    records.sort(key=_by_id)
    return records, _group(records)


_NO_TOKENS = (None, None, None, None, None, None, None, False)


def _group(records: list[tuple]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for r in records:
        key = r[_SESSION]
        g = groups.get(key)
        if g is None:
            groups[key] = [r]
        else:
            g.append(r)
    return groups


class _Replay(Exception):
    """The optimistic COPY met an event stored already."""


async def write_batch(conn: asyncpg.Connection, events: list[PreparedEvent],
                      machines: list[MachineInfo], book: PriceBook = _NO_PRICES) -> WriteResult:
    """Write a batch of valid, de-duplicated (by id) events, LLM calls priced with ``book``.
    Runs its own transaction."""
    if not events:
        return WriteResult(accepted=0, duplicates=0)
    ctx = _derive_context(events)
    records, groups = event_records(events, book)
    context = _context_args(ctx, machines)
    try:
        return await _write_new(conn, ctx, context, records, groups)
    except _Replay:
        return await _write_some(conn, ctx, context, records)


async def _write_new(conn: asyncpg.Connection, ctx: _Context, context: _ContextArgs,
                     records: list[tuple], groups: dict[str, list[tuple]]) -> WriteResult:
    """The usual case, every event new: sessions new to the database are inserted with their
    rollups, the events are COPied straight into agent_event, and only the sessions that
    existed get a rollup UPDATE. Raises _Replay (after ROLLBACK) if an event exists already."""
    files: dict[tuple[str, str], list] = {}
    rollups = {sid: _rollup(group, files) for sid, group in groups.items()}
    for sid, _ in files:
        rollups[sid].new_files += 1  # what a session new to the database gets
    async with conn.transaction():
        opened = await conn.fetchrow(_OPEN, *context.inserts, *_session_args(ctx, rollups),
                                     *_file_columns(files))
        try:
            await conn.copy_records_to_table("agent_event", records=records, columns=EVENT_COLUMNS)
        except asyncpg.UniqueViolationError:
            raise _Replay from None
        created = {str(i) for i in opened["created"]}
        if len(created) < len(rollups):
            existing = {sid: r for sid, r in rollups.items() if sid not in created}
            await conn.execute(_ROLLUP, *_file_columns(
                {k: f for k, f in files.items() if k[0] in existing}), *_rollup_args(existing))
        session_ids = sorted(groups)
        await _close(conn, context, opened["at"], session_ids, rollups.values())
    return WriteResult(accepted=len(records), duplicates=0, session_ids=session_ids,
                       ingested_at=opened["at"])


async def _write_some(conn: asyncpg.Connection, ctx: _Context, context: _ContextArgs,
                      records: list[tuple]) -> WriteResult:
    """Some events may be stored already: they go through a temp table and
    INSERT … ON CONFLICT DO NOTHING RETURNING id; rollups come from exactly the new ones."""
    async with conn.transaction():
        opened = await conn.fetchrow(_OPEN, *context.inserts, *_session_args(ctx, None),
                                     *_file_columns({}))
        await conn.execute(_STAGING_DDL)
        await conn.copy_records_to_table("ingest_staging", records=records, columns=EVENT_COLUMNS)
        stored = {row[0].hex for row in await conn.fetch(_INSERT_EVENTS)}
        new = [r for r in records if r[_ID] in stored]
        groups = _group(new)
        files: dict[tuple[str, str], list] = {}
        rollups = {sid: _rollup(group, files) for sid, group in groups.items()}
        if rollups:
            await conn.execute(_ROLLUP, *_file_columns(files), *_rollup_args(rollups))
        session_ids = sorted(groups)
        await _close(conn, context, opened["at"], session_ids, rollups.values())
    return WriteResult(accepted=len(new), duplicates=len(records) - len(new),
                       session_ids=session_ids, ingested_at=opened["at"])


async def _close(conn: asyncpg.Connection, context: _ContextArgs, at: datetime,
                 session_ids: list[str], rollups: Iterable[_Rollup]) -> None:
    """The context UPDATEs and the notifications (the first one in the same statement)."""
    payloads = []
    rollups = list(rollups)
    if rollups:
        first = min(r.first_ts for r in rollups)  # type: ignore[type-var]
        last = max(r.last_ts for r in rollups)  # type: ignore[type-var]
        for start in range(0, len(session_ids), _NOTIFY_MAX_SESSIONS):
            payloads.append(_encode({
                "at": at, "from": first, "to": last + timedelta(microseconds=1),
                "sessions": session_ids[start:start + _NOTIFY_MAX_SESSIONS],
            }).decode())
    await conn.execute(_CLOSE, *context.updates, NOTIFY_CHANNEL,
                       payloads[0] if payloads else None)
    for payload in payloads[1:]:
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)


# --------------------------------------------------------------------------- context


def _derive_context(events: list[PreparedEvent]) -> _Context:
    """The machine, project, workspace and session rows of the batch.

    Every event folds into them in batch order (later facts win; a session's facts come from
    its latest event, per field the latest one that has it). Consecutive events of one session
    with the same context (the usual case) fold as one run: all their facts are equal, so only
    the run's latest time matters.
    """
    ctx = _Context()
    run: Event | None = None
    run_sid: str | None = None
    run_ts: datetime | None = None
    for p in events:
        e = p.event
        if (run is not None and e.session == run.session and e.agent == run.agent
                and e.machine == run.machine and e.workspace == run.workspace
                and e.project == run.project and e.agent_version == run.agent_version
                and e.parent_session == run.parent_session):
            if e.ts > run_ts:  # type: ignore[operator]  # noqa: PLR1730 (no call per event)
                run_ts = e.ts
            continue
        if run is not None:
            _fold(ctx, run, run_sid, run_ts)  # type: ignore[arg-type]
        run, run_sid, run_ts = e, p.session_id, e.ts
    if run is not None:
        _fold(ctx, run, run_sid, run_ts)  # type: ignore[arg-type]
    return ctx


def _fold(ctx: _Context, e: Event, sid: str, ts: datetime) -> None:
    """Fold one run of events (the facts of ``e``, latest time ``ts``) into the context."""
    mkey = e.machine
    seen = ctx.machine_seen.get(mkey)
    ctx.machine_seen[mkey] = ts if seen is None else max(seen, ts)
    projects = ctx.projects
    pid = None
    if e.project is not None:
        found = identity.project_key(e.project.remote, e.project.path or e.workspace, mkey)
        if found:
            key, name = found
            pid = identity.project_id(key)
            prev = projects.get(pid)
            projects[pid] = (key, e.project.name or name, e.project.remote,
                             max(prev[3], ts) if prev else ts)
    elif e.workspace:
        key, name = identity.project_key(None, e.workspace, mkey)  # type: ignore[misc]
        pid = identity.project_id(key)
        prev = projects.get(pid)
        projects[pid] = (key, name, None, max(prev[3], ts) if prev else ts)
    wid = None
    if e.workspace:
        wid = identity.workspace_id(mkey, e.workspace)
        prev_ws = ctx.workspaces.get(wid)
        if prev_ws is None or ts >= prev_ws[6]:
            ctx.workspaces[wid] = [wid, identity.machine_id(mkey), pid, e.workspace,
                                   e.project.branch if e.project else None,
                                   e.project.commit if e.project else None, ts]
    row = ctx.sessions.get(sid)
    if row is None:
        row = ctx.sessions[sid] = _SessionRow(id=sid, agent=e.agent, native_id=e.session)
    if row.last_ts is None or ts >= row.last_ts:
        row.last_ts = ts
        row.machine = identity.machine_id(mkey)
        row.project = pid or row.project
        row.workspace = wid or row.workspace
        row.agent_version = e.agent_version or row.agent_version
        if e.project is not None:
            row.git_branch = e.project.branch or row.git_branch
            row.git_commit = e.project.commit or row.git_commit
    if e.parent_session:
        row.parent = identity.session_key(e.agent, e.parent_session)
        row.parent_native = e.parent_session


# --------------------------------------------------------------------------- rollups


@dataclass(slots=True)
class _Rollup:
    """What one batch adds to one session."""

    events: int
    prompts: int
    llm_calls: int
    tool_calls: int
    tool_errors: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_reasoning: int
    cost: float | None
    first_ts: datetime | None
    last_ts: datetime | None
    ended_at: datetime | None
    title: str | None
    title_ts: datetime | None
    models: str  # JSON array, sorted
    new_files: int = 0  # paths new to session_file (set for sessions new to the database)


_EMPTY = _Rollup(events=0, prompts=0, llm_calls=0, tool_calls=0, tool_errors=0, tokens_input=0,
                 tokens_output=0, tokens_cache_read=0, tokens_cache_write=0, tokens_reasoning=0,
                 cost=None, first_ts=None, last_ts=None, ended_at=None, title=None,
                 title_ts=None, models="[]")


def _rollup(records: list[tuple], files: dict[tuple[str, str], list]) -> _Rollup:
    """One session's new records (in id order) → its rollup; adds its files to ``files``."""
    cols = list(zip(*records))
    ts, kinds, status = cols[_TS], cols[_KIND], cols[_STATUS]
    ended = None
    if "session_end" in kinds:
        ended = max(t for t, k in zip(ts, kinds) if k == "session_end")
    title = title_ts = None
    if "user_prompt" in kinds:
        for t, k, content in zip(ts, kinds, cols[_CONTENT]):
            if k == "user_prompt" and content:
                prompt = content[:500].strip()
                if prompt and (title_ts is None or t < title_ts):
                    title, title_ts = prompt, t
    models: set[str] = set()
    if "llm_call" in kinds:
        models = {m for m, k in zip(cols[_MODEL], kinds) if m and k == "llm_call"}
    tool_errors = 0
    if "error" in status:
        tool_errors = sum(1 for s, k in zip(status, kinds)
                          if s == "error" and (k == "tool_call" or k == "tool_result"))
    cost = None
    for c in cols[_COST]:
        if c is not None:
            cost = (cost or 0.0) + float(c)
    paths = cols[_FILE]
    if paths.count(None) != len(paths):
        sid = records[0][_SESSION]
        for path, t, added, removed in zip(paths, ts, cols[_ADDED], cols[_REMOVED]):
            if path:
                key = (sid, path)
                f = files.get(key)
                if f is None:
                    files[key] = [t, t, 1, added or 0, removed or 0]
                else:
                    f[0] = min(f[0], t)
                    f[1] = max(f[1], t)
                    f[2] += 1
                    f[3] += added or 0
                    f[4] += removed or 0
    return _Rollup(
        events=len(records), prompts=kinds.count("user_prompt"),
        llm_calls=kinds.count("llm_call"), tool_calls=kinds.count("tool_call"),
        tool_errors=tool_errors,
        tokens_input=sum(filter(None, cols[_T_IN])), tokens_output=sum(filter(None, cols[_T_OUT])),
        tokens_cache_read=sum(filter(None, cols[_T_CR])),
        tokens_cache_write=sum(filter(None, cols[_T_CW])),
        tokens_reasoning=sum(filter(None, cols[_T_RE])),
        cost=cost, first_ts=min(ts), last_ts=max(ts), ended_at=ended,
        title=_shorten(title) if title else None, title_ts=title_ts,
        models=_encode(sorted(models)).decode(),
    )


def _shorten(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1].rstrip() + "…"




@dataclass(slots=True)
class _ContextArgs:
    inserts: tuple  # _OPEN's $1–$24
    updates: tuple  # _CLOSE's $1–$17


def _context_args(ctx: _Context, machines: list[MachineInfo]) -> _ContextArgs:
    facts = {m.key: m for m in machines}
    keys = sorted(ctx.machine_seen, key=identity.machine_id)
    f = [facts.get(k) for k in keys]
    mids = [identity.machine_id(k) for k in keys]
    hostnames = [(m.hostname or k) if m else k for k, m in zip(keys, f)]
    usernames = [m.username if m else None for m in f]
    oss = [m.os if m else None for m in f]
    versions = [m.os_version if m else None for m in f]
    arches = [m.arch if m else None for m in f]
    kinds = [m.kind if m else "local" for m in f]
    seen = [ctx.machine_seen[k] for k in keys]
    projects = sorted(ctx.projects.items())
    pids = [k for k, _ in projects]
    remotes = [v[2] for _, v in projects]
    p_seen = [v[3] for _, v in projects]
    ws = [ctx.workspaces[k] for k in sorted(ctx.workspaces)]
    wcols = [list(c) for c in zip(*ws)] if ws else [[] for _ in range(7)]
    sessions = ctx.sessions
    parents = {row.parent: (row.agent, row.parent_native) for row in sessions.values()
               if row.parent and row.parent not in sessions}
    todo = sorted(parents)
    return _ContextArgs(
        inserts=(mids, keys, hostnames, usernames, oss, versions, arches, kinds, seen,
                 pids, [v[0] for _, v in projects], [v[1] for _, v in projects], remotes, p_seen,
                 *wcols,
                 todo, [parents[p][0] for p in todo], [parents[p][1] for p in todo]),
        updates=(mids, hostnames, usernames, oss, versions, arches, kinds, seen,
                 [m is not None for m in f],
                 pids, remotes, p_seen,
                 wcols[0], wcols[2], wcols[4], wcols[5], wcols[6]),
    )


def _session_args(ctx: _Context, rollups: dict[str, _Rollup] | None) -> tuple:
    """_OPEN's $25–$51: every session of the batch in id order, with the rollups it gets if it
    is new to the database (none: zeros, as the column defaults)."""
    rows = [ctx.sessions[k] for k in sorted(ctx.sessions)]
    rs = [rollups[r.id] for r in rows] if rollups is not None else [_EMPTY] * len(rows)
    return (
        [r.id for r in rows], [r.agent for r in rows], [r.native_id for r in rows],
        [r.parent for r in rows], [r.project for r in rows], [r.machine for r in rows],
        [r.workspace for r in rows], [r.agent_version for r in rows],
        [r.git_branch for r in rows], [r.git_commit for r in rows],
        *_rollup_columns(rs, with_files=True, with_title_ts=False),
    )


def _file_columns(files: dict[tuple[str, str], list]) -> tuple:
    """session_file rows (session, path, first_ts, last_ts, touches, lines added, removed), in
    key order."""
    keys = sorted(files)
    return ([k[0] for k in keys], [k[1] for k in keys],
            *([files[k][i] for k in keys] for i in range(5)))


def _rollup_args(rollups: dict[str, _Rollup]) -> tuple:
    """_ROLLUP's $8–$25: the sessions' rollups, in id order."""
    ids = sorted(rollups)
    rs = [rollups[i] for i in ids]
    return (ids, *_rollup_columns(rs, with_files=False, with_title_ts=True))


def _rollup_columns(rs: list[_Rollup], *, with_files: bool, with_title_ts: bool) -> list[list]:
    return [
        [r.events for r in rs], [r.prompts for r in rs], [r.llm_calls for r in rs],
        [r.tool_calls for r in rs], [r.tool_errors for r in rs],
        *([[r.new_files for r in rs]] if with_files else []),
        [r.tokens_input for r in rs], [r.tokens_output for r in rs],
        [r.tokens_cache_read for r in rs], [r.tokens_cache_write for r in rs],
        [r.tokens_reasoning for r in rs], [r.cost for r in rs], [r.title for r in rs],
        *([[r.title_ts for r in rs]] if with_title_ts else []),
        [r.first_ts for r in rs], [r.last_ts for r in rs], [r.ended_at for r in rs],
        [r.models for r in rs],
    ]
