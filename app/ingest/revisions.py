"""Revisions: the same event sent again with a higher ``revision`` (a call whose usage grew).

Per event id the server keeps the version with the highest revision. A version with an equal
or lower revision is a duplicate and changes nothing; one with a higher revision replaces the
stored row whole (all its fields: tokens, cost re-priced, duration, stop reason, model, content,
payload, status, ts…), except that its identity — kind, agent, session — must be the stored
one's, or it is rejected with a reason.

In the ingest transaction, after the new events are in (``writer._write_some``; the sessions of
the batch are locked already, so no other batch of theirs writes in between):

1. :func:`find` reads (and locks) the stored versions of the events whose id was stored already
   and whose revision is above 0 (a revision 0 can only be a duplicate: no lookup), and sorts
   them into revisions, duplicates and rejections.
2. :func:`apply`: the stored rows move to ``ingest_removed``, the new versions are inserted
   (``ingested_at`` = this transaction's, so the bus announces them and the rollup job sees them
   as new), and ``UNROLL`` takes the old rows out of their sessions' rollups and ``session_file``
   rows; the caller then adds the new versions like new events, so every session moves by the
   difference. On plain PostgreSQL the analytics rollups hold the old rows that were ingested
   before the rollup watermark: they are subtracted (``rollups.plain_undo_sql``), under the
   rollup job's advisory lock (exclusive, transaction-level) — so no refresh runs between
   reading the watermark and committing (a refresh running concurrently would otherwise add an
   old row this transaction removes, or miss it), and revisions touching the same rollup rows
   never deadlock (they take turns). On TimescaleDB the continuous aggregates re-materialise the
   deleted and inserted rows at their next refresh.
3. :func:`retitle`, after the rollups: a session whose prompt was revised takes its title from
   its earliest prompt again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from app.db import rollups as analytics
from app.db.timescale import events_in_hypertable
from app.ingest import revision_statements as sql
from app.ingest.records import I_AGENT, I_ID, I_KIND, I_REVISION, I_SESSION
from app.ingest.session_rollups import earliest_title
from app.jobs import rollups as rollup_job
from app.settings import get_settings


@dataclass(slots=True)
class Found:
    """What :func:`find` made of the events whose id was stored already."""

    revisions: list[tuple[tuple, datetime]] = field(default_factory=list)  # (record, stored ts)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (id as 32 hex digits, reason)

    @property
    def records(self) -> list[tuple]:
        return [r for r, _ in self.revisions]


async def find(conn: asyncpg.Connection, records: list[tuple], keyed: bool) -> Found:
    """Of ``records`` (not inserted: their id is stored), the revisions to apply and the ones
    to reject; the others are duplicates."""
    found = Found()
    candidates = [r for r in records if r[I_REVISION] > 0]
    if not candidates:
        return found
    rows = await conn.fetch(sql.STORED_KEYED if keyed else sql.STORED,
                            [r[I_ID] for r in candidates])
    stored = {row["id"].hex: row for row in rows}
    for r in candidates:
        s = stored.get(r[I_ID])
        if s is None or r[I_REVISION] <= s["revision"]:
            continue  # a duplicate (or deleted since: retention)
        changed = [f"{name} {old!r} → {new!r}" for name, old, new in (
            ("kind", s["kind"], r[I_KIND]), ("agent", s["agent"], r[I_AGENT]),
            ("session", str(s["session_id"]), r[I_SESSION])) if old != new]
        if changed:
            found.rejected.append((r[I_ID], (
                f"revision {r[I_REVISION]} changes the stored event's {', '.join(changed)}: a "
                "revision may change anything but an event's kind, agent and session")))
        else:
            found.revisions.append((r, s["ts"]))
    return found


async def apply(conn: asyncpg.Connection, found: Found, keyed: bool) -> None:
    """Replace the stored versions by the revisions and take the old rows out of every rollup
    (the caller adds the new versions to the sessions' rollups)."""
    if not found.revisions:
        return
    hypertable = await events_in_hypertable()
    mark = None
    if not hypertable:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", rollup_job.LOCK_KEY)
        mark = await conn.fetchval("SELECT watermark FROM job_state WHERE name = $1",
                                   rollup_job.STATE)
    ids = [r[I_ID] for r, _ in found.revisions]
    await conn.execute(sql.REMOVED_DDL)
    await conn.execute(sql.REMOVE, ids, [ts for _, ts in found.revisions])
    await conn.execute(sql.REPLACE, ids)
    if keyed:
        await conn.execute(sql.REPLACE_KEYS, ids)
    await conn.execute(sql.UNROLL)
    if mark is not None:  # else nothing was ever rolled up
        horizon = rollup_job.retention_horizon(get_settings()) or rollup_job.NEVER
        await conn.execute("".join(
            analytics.plain_undo_sql(r, "ingest_removed", rollup_job.literal(mark),
                                     rollup_job.literal(horizon))
            for r in analytics.ROLLUPS))


async def retitle(conn: asyncpg.Connection, found: Found) -> None:
    """Sessions whose prompts were revised: the title from their earliest prompt again."""
    await retitle_sessions(conn, sorted({r[I_SESSION] for r, _ in found.revisions
                                         if r[I_KIND] == "user_prompt"}))


async def retitle_sessions(conn: asyncpg.Connection, sessions: list[str]) -> None:
    """These sessions take their title from their earliest prompt again."""
    if not sessions:
        return
    prompts: dict[str, list] = {s: [] for s in sessions}
    for row in await conn.fetch(sql.TITLE_PROMPTS, sessions):
        prompts[row["session_id"]].append((row["ts"], row["content"]))
    await conn.execute(sql.SET_TITLES, sessions, [earliest_title(prompts[s]) for s in sessions])
