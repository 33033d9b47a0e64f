"""Agent events: a session's timeline (time order) and cross-session queries (newest first)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.db.reads import fetch
from app.services.pagination import (Page, clamp, cursor_int, cursor_time, decode_keys,
                                      encode_cursor)
from app.turns import map_in_turns


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    ts: datetime
    session_id: uuid.UUID
    seq: int
    kind: str
    agent: str
    model: str | None
    provider: str | None
    tokens_input: int | None
    tokens_output: int | None
    tokens_cache_read: int | None
    tokens_cache_write: int | None
    tokens_cache_write_5m: int | None
    tokens_cache_write_1h: int | None
    tokens_reasoning: int | None
    tokens_estimated: bool
    cost_usd: float | None
    cost_source: str | None
    duration_ms: int | None
    stop_reason: str | None
    tool_name: str | None
    tool_category: str | None
    tool_call_id: str | None
    status: str | None
    file_path: str | None
    lines_added: int | None
    lines_removed: int | None
    command: str | None
    content: str | None
    error: str | None
    payload: str | None  # JSON text, as stored
    ingested_at: datetime
    revision: int = 0  # the highest received (a revised event replaced the lower ones)


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    session: uuid.UUID | None = None
    agent: list[str] | None = None
    kinds: list[str] | None = None
    project: uuid.UUID | None = None
    machine: uuid.UUID | None = None
    workspace: uuid.UUID | None = None
    tool_name: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


COLUMNS = """e.id, e.ts, e.session_id, e.seq, e.kind, e.agent, e.model, e.provider,
    e.tokens_input, e.tokens_output, e.tokens_cache_read, e.tokens_cache_write,
    e.tokens_cache_write_5m, e.tokens_cache_write_1h, e.tokens_reasoning, e.tokens_estimated,
    e.cost_usd::float8 AS cost_usd, e.cost_source, e.duration_ms, e.stop_reason, e.tool_name,
    e.tool_category, e.tool_call_id, e.status, e.file_path, e.lines_added, e.lines_removed,
    e.command, e.content, e.error, e.payload::text AS payload, e.ingested_at, e.revision"""


def _record(row: Any) -> EventRecord:
    return msgspec.convert(dict(row), EventRecord)


def records(rows: list) -> list[EventRecord]:
    return [_record(r) for r in rows]


async def session_events(session_id: uuid.UUID, first: int = 100, after: str | None = None,
                         kinds: list[str] | None = None) -> Page[EventRecord]:
    """One session's events in time order; keyset on (ts, seq, id)."""
    first = clamp(first)
    args: list = [session_id]
    clauses = ["e.session_id = $1"]
    if kinds:
        args.append(list(kinds))
        clauses.append(f"e.kind = ANY(${len(args)}::text[])")
    if after:
        args += decode_keys(after, cursor_time, cursor_int, uuid.UUID)
        clauses.append(f"(e.ts, e.seq, e.id) > (${len(args) - 2}, ${len(args) - 1}, ${len(args)})")
    args.append(first + 1)
    rows = await fetch(
        f"SELECT {COLUMNS} FROM agent_event e WHERE {' AND '.join(clauses)} "
        f"ORDER BY e.ts, e.seq, e.id LIMIT ${len(args)}", *args)
    recs = await map_in_turns(_record, rows)  # a page of 500 is milliseconds of work
    page = recs[:first]
    return Page(items=page, cursors=[encode_cursor(r.ts, r.seq, str(r.id)) for r in page],
                has_next=len(recs) > first)


async def list_events(f: EventFilter | None = None, first: int = 100,
                      after: str | None = None) -> Page[EventRecord]:
    """Events across sessions, newest first; keyset on (ts, id)."""
    f = f or EventFilter()
    first = clamp(first)
    args: list = []
    clauses: list[str] = []
    join = ""

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.session is not None:
        clauses.append(f"e.session_id = {arg(f.session)}")
    if f.agent:
        clauses.append(f"e.agent = ANY({arg(list(f.agent))}::text[])")
    if f.kinds:
        clauses.append(f"e.kind = ANY({arg(list(f.kinds))}::text[])")
    if f.tool_name:
        clauses.append(f"e.tool_name = {arg(f.tool_name)}")
    if f.status:
        clauses.append(f"e.status = {arg(f.status)}")
    if f.since is not None:
        clauses.append(f"e.ts >= {arg(f.since)}")
    if f.until is not None:
        clauses.append(f"e.ts < {arg(f.until)}")
    for column, value in (("project", f.project), ("machine", f.machine), ("workspace", f.workspace)):
        if value is not None:
            join = " JOIN agent_session s ON s.id = e.session_id"
            clauses.append(f"s.{column} = {arg(value)}")
    if after:
        ts, eid = decode_keys(after, cursor_time, uuid.UUID)
        clauses.append(f"(e.ts, e.id) < ({arg(ts)}, {arg(eid)})")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await fetch(f"SELECT {COLUMNS} FROM agent_event e{join} {where} "
                       f"ORDER BY e.ts DESC, e.id DESC LIMIT {arg(first + 1)}", *args)
    recs = await map_in_turns(_record, rows)  # a page of 500 is milliseconds of work
    page = recs[:first]
    return Page(items=page, cursors=[encode_cursor(r.ts, str(r.id)) for r in page],
                has_next=len(recs) > first)


async def events_ingested(session_ids: list[uuid.UUID], at: datetime, since: datetime,
                          until: datetime) -> list[EventRecord]:
    """The events one ingest transaction committed (what a NOTIFY announced), in time order."""
    rows = await fetch(
        f"""SELECT {COLUMNS} FROM agent_event e
            WHERE e.session_id = ANY($1::uuid[]) AND e.ts >= $2 AND e.ts < $3
              AND e.ingested_at = $4
            ORDER BY e.ts, e.seq, e.id""", session_ids, since, until, at)
    return records(rows)


async def session_events_ingested_after(session_id: uuid.UUID, after: datetime,
                                        limit: int = 500) -> list[EventRecord]:
    """A session's events committed after ``after`` (a live page resuming), in time order."""
    rows = await fetch(
        f"""SELECT {COLUMNS} FROM agent_event e
            WHERE e.session_id = $1 AND e.ingested_at > $2
            ORDER BY e.ts, e.seq, e.id LIMIT $3""", session_id, after, limit)
    return records(rows)
