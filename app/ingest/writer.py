"""Write one validated batch in one transaction.

The Python work is done before the transaction opens: the COPY records (sorted by id,
``records``), the context rows (machines, projects, workspaces, sessions: ``context``) and each
session's rollups, counted from its records as if every event were new (``session_rollups``).
Then, in the usual case (every event new):

1. ``OPEN``, one statement: the machines, projects, workspaces and placeholder parents not
   stored yet (a plain ``NOT EXISTS`` first, so a stored row is neither written nor waited for;
   then ``INSERT … ON CONFLICT DO NOTHING`` in key order), then the sessions' upsert, which
   locks them in id order. A session new to the database is inserted with its rollups and its
   ``session_file`` rows, so it is written once; ``now()`` and the created ids come back;
2. COPY (binary) straight into ``agent_event`` — on TimescaleDB into ``event_key`` first (the
   ids: see below);
3. ``ROLLUP``, only if some sessions existed already: their ``session_file`` upsert and
   rollup UPDATE (``files_touched`` counts the paths the upsert inserted);
4. ``CLOSE``: the machines, projects and workspaces get an ``UPDATE`` only where facts changed
   or ``last_seen_at`` is more than a minute old — last, so those row locks are held only until
   COMMIT and concurrent batches of one machine (or project) do not queue on its row for a
   whole transaction — and ``pg_notify`` (delivered at commit) announces the session ids, the
   ingest timestamp and the time range, from which listeners load the new rows.

An event id is stored once, whatever its ``ts``: on plain PostgreSQL ``agent_event``'s primary
key is ``id``; on TimescaleDB (a hypertable's unique keys must include its time column) the
``event_key`` table, keyed by id, holds each event's ``ts`` and revision, and ingest inserts
there first.

Should one event be stored already (a replay, a revision, or a concurrent batch that committed
it first), the COPY hits the key: the transaction rolls back and the batch is written again in
a new one, where the events go through a temp table and ``INSERT … ORDER BY id ON CONFLICT DO
NOTHING RETURNING id``. Of the events not inserted, those with a higher revision than the stored
version replace it (``revisions``: the old rows are taken out of every rollup, the new versions
added); the others are duplicates and change nothing. The rollups (``ROLLUP``, for every
session) come from exactly the rows written.

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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import msgspec

from app.db.timescale import events_keyed
from app.ingest import revisions
from app.ingest.context import Context, ContextArgs, context_args, derive_context, session_args
from app.ingest.records import I_ID, I_REVISION, I_TS, PreparedEvent, event_records, group
from app.ingest.session_rollups import SessionRollup, file_columns, rollup, rollup_args
from app.ingest.statements import CLOSE, EVENT_COLUMNS, EVENT_KEY_COLUMNS, INSERT_EVENTS
from app.ingest.statements import INSERT_KEYED_EVENTS, OPEN, ROLLUP, STAGING_DDL
from app.pricing.book import EMPTY as _NO_PRICES
from app.pricing.book import PriceBook
from collector.wire import MachineInfo

__all__ = ["EVENT_COLUMNS", "NOTIFY_CHANNEL", "PreparedEvent", "WriteResult",
           "event_records", "write_batch"]

NOTIFY_CHANNEL = "devlog_events"
_NOTIFY_MAX_SESSIONS = 150  # keeps a payload well under PostgreSQL's 8000-byte limit
_encode = msgspec.json.encode


@dataclass(slots=True)
class WriteResult:
    accepted: int  # new events
    duplicates: int  # stored already with the same or a higher revision
    revised: int = 0  # stored events replaced by a higher revision
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (id hex, reason)
    session_ids: list[str] = field(default_factory=list)
    ingested_at: datetime | None = None


class _Replay(Exception):
    """The optimistic COPY met an event stored already."""


async def write_batch(conn: asyncpg.Connection, events: list[PreparedEvent],
                      machines: list[MachineInfo], book: PriceBook = _NO_PRICES) -> WriteResult:
    """Write a batch of valid, de-duplicated (by id) events, LLM calls priced with ``book``.
    Runs its own transaction."""
    if not events:
        return WriteResult(accepted=0, duplicates=0)
    ctx = derive_context(events)
    records, groups = event_records(events, book)
    context = context_args(ctx, machines)
    keyed = await events_keyed(conn)
    try:
        return await _write_new(conn, ctx, context, records, groups, keyed)
    except _Replay:
        return await _write_some(conn, ctx, context, records, keyed)


async def _write_new(conn: asyncpg.Connection, ctx: Context, context: ContextArgs,
                     records: list[tuple], groups: dict[str, list[tuple]],
                     keyed: bool) -> WriteResult:
    """The usual case, every event new: sessions new to the database are inserted with their
    rollups, the events are COPied straight into agent_event, and only the sessions that
    existed get a rollup UPDATE. Raises _Replay (after ROLLBACK) if an event exists already."""
    files: dict[tuple[str, str], list] = {}
    rollups = {sid: rollup(g, files) for sid, g in groups.items()}
    for sid, _ in files:
        rollups[sid].new_files += 1  # what a session new to the database gets
    async with conn.transaction():
        opened = await conn.fetchrow(OPEN, *context.inserts, *session_args(ctx, rollups),
                                     *file_columns(files))
        try:
            if keyed:
                await conn.copy_records_to_table(
                    "event_key", records=[(r[I_ID], r[I_TS], r[I_REVISION]) for r in records],
                    columns=EVENT_KEY_COLUMNS)
            await conn.copy_records_to_table("agent_event", records=records, columns=EVENT_COLUMNS)
        except asyncpg.UniqueViolationError:
            raise _Replay from None
        created = {str(i) for i in opened["created"]}
        if len(created) < len(rollups):
            existing = {sid: r for sid, r in rollups.items() if sid not in created}
            await conn.execute(ROLLUP, *file_columns(
                {k: f for k, f in files.items() if k[0] in existing}), *rollup_args(existing))
        session_ids = sorted(groups)
        await _close(conn, context, opened["at"], session_ids, rollups.values())
    return WriteResult(accepted=len(records), duplicates=0, session_ids=session_ids,
                       ingested_at=opened["at"])


async def _write_some(conn: asyncpg.Connection, ctx: Context, context: ContextArgs,
                      records: list[tuple], keyed: bool) -> WriteResult:
    """Some events may be stored already: they go through a temp table and
    INSERT … ON CONFLICT DO NOTHING RETURNING id; of the others, higher revisions replace the
    stored versions; rollups come from exactly the events written."""
    async with conn.transaction():
        opened = await conn.fetchrow(OPEN, *context.inserts, *session_args(ctx, None),
                                     *file_columns({}))
        await conn.execute(STAGING_DDL)
        await conn.copy_records_to_table("ingest_staging", records=records, columns=EVENT_COLUMNS)
        stored = {row[0].hex for row in await conn.fetch(
            INSERT_KEYED_EVENTS if keyed else INSERT_EVENTS)}
        new = [r for r in records if r[I_ID] in stored]
        found = await revisions.find(conn, [r for r in records if r[I_ID] not in stored], keyed)
        await revisions.apply(conn, found, keyed)
        written = new + found.records
        groups = group(sorted(written, key=_by_id) if found.revisions else written)
        files: dict[tuple[str, str], list] = {}
        rollups = {sid: rollup(g, files) for sid, g in groups.items()}
        if rollups:
            await conn.execute(ROLLUP, *file_columns(files), *rollup_args(rollups))
        await revisions.retitle(conn, found)
        session_ids = sorted(groups)
        await _close(conn, context, opened["at"], session_ids, rollups.values())
    revised, rejected = len(found.revisions), len(found.rejected)
    return WriteResult(accepted=len(new), duplicates=len(records) - len(new) - revised - rejected,
                       revised=revised, rejected=found.rejected, session_ids=session_ids,
                       ingested_at=opened["at"])


def _by_id(record: tuple) -> str:
    return record[I_ID]


async def _close(conn: asyncpg.Connection, context: ContextArgs, at: datetime,
                 session_ids: list[str], rollups: Iterable[SessionRollup]) -> None:
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
    await conn.execute(CLOSE, *context.updates, NOTIFY_CHANNEL,
                       payloads[0] if payloads else None)
    for payload in payloads[1:]:
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
