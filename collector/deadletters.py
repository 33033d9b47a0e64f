"""Dead letters: events the server would not take, kept aside in the buffer's database.

One table, ``dead_letter``, two kinds of row:

- ``rejected``: the server answered the batch and refused this event by its index, with a
  reason (too large, invalid field, …);
- ``failed``: the server failed a whole batch (a GraphQL error, an HTTP 500) and the sender's
  bisection isolated the failure to this event, sent alone (see ``collector.sender``).

A row keeps the event's body exactly as it would be sent, the server's last reason, when it was
first and last tried, how many times, and the collector and server versions of the last try. A
row is *due* when it is to be sent again: the sender sends due rows before the outbox. Rows
become due after an upgrade (the collector's or the server's version differs from the one that
last tried them), when asked (``devlog collect dead-letters retry``), and — for a row kept
*unconfirmed*, while the server had never been seen taking any event — once the server takes
one. A due row delivered leaves the table; one failing again is kept with one attempt more and
is no longer due.

Every method runs on the :class:`~collector.outbox.Outbox` connection it is given (one per
thread); the ``*_in`` helpers take the cursor of a transaction the outbox already opened, so an
event moves between the outbox and this table atomically.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable

import msgspec

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letter (
    id BLOB PRIMARY KEY,
    agent TEXT NOT NULL,
    body BLOB NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    collector_version TEXT NOT NULL DEFAULT '',
    server_version TEXT,
    due INTEGER NOT NULL DEFAULT 0,
    confirmed INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS dead_letter_due ON dead_letter (id) WHERE due = 1;
CREATE INDEX IF NOT EXISTS dead_letter_last ON dead_letter (last_at);
"""

# Before dead letters, refused events lived in ``rejected`` (never retried): they become
# dead letters of kind ``rejected`` tried by no known version, so the first run after the
# upgrade sends them once more.
_FROM_REJECTED = (
    "INSERT OR IGNORE INTO dead_letter (id, agent, body, kind, reason, attempts, first_at, "
    "last_at) SELECT id, agent, body, 'rejected', reason, 1, at, at FROM rejected"
)
_HAS_REJECTED = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rejected'"

_UPSERT = (
    "INSERT INTO dead_letter (id, agent, body, kind, reason, attempts, first_at, last_at, "
    "collector_version, server_version, due, confirmed) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, 0, ?) "
    "ON CONFLICT (id) DO UPDATE SET agent=excluded.agent, body=excluded.body, kind=excluded.kind, "
    "reason=excluded.reason, attempts=attempts + 1, last_at=excluded.last_at, "
    "collector_version=excluded.collector_version, server_version=excluded.server_version, due=0, "
    "confirmed=excluded.confirmed"
)

KINDS = ("rejected", "failed")


class DeadLetter(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    agent: str
    kind: str
    reason: str
    attempts: int
    first_at: float
    last_at: float
    collector_version: str
    server_version: str | None
    due: bool


class Attempt(msgspec.Struct, kw_only=True, frozen=True):
    """Who tried: the versions recorded with a dead letter."""

    collector: str
    server: str | None = None


_COLUMNS = ("SELECT id, agent, kind, reason, attempts, first_at, last_at, collector_version, "
            "server_version, due FROM dead_letter")


def _row(r: tuple) -> DeadLetter:
    return DeadLetter(id=uuid.UUID(bytes=bytes(r[0])), agent=r[1], kind=r[2], reason=r[3],
                      attempts=r[4], first_at=r[5], last_at=r[6], collector_version=r[7],
                      server_version=r[8], due=bool(r[9]))


def create(db: sqlite3.Connection) -> None:
    """Create the table, and take over an older buffer's ``rejected`` rows."""
    db.executescript(SCHEMA)
    if db.execute(_HAS_REJECTED).fetchone() is None:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute(_HAS_REJECTED).fetchone() is not None:  # another process may have won
            db.execute(_FROM_REJECTED)
            db.execute("DROP TABLE rejected")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def upsert_in(cur: sqlite3.Cursor, items: Iterable[tuple[bytes, str, bytes, str, str]],
              attempt: Attempt, *, confirmed: bool = True) -> None:
    """Keep (id, agent, body, kind, reason) as dead letters, in the caller's transaction; an id
    already kept counts one attempt more. ``confirmed``: the server was seen taking another
    event right after this one failed (see ``collector.sender``)."""
    now = time.time()
    cur.executemany(_UPSERT, [(i, a, b, k, r, now, now, attempt.collector, attempt.server,
                               int(confirmed)) for i, a, b, k, r in items])


def delete_in(cur: sqlite3.Cursor, ids: Iterable[bytes]) -> None:
    cur.executemany("DELETE FROM dead_letter WHERE id = ?", [(i,) for i in ids])


class DeadLetters:
    """Reading and managing the dead letters (status, the ``dead-letters`` commands, the sender)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM dead_letter").fetchone()[0]

    def count_by_kind(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT kind, count(*) FROM dead_letter GROUP BY kind").fetchall())

    def latest(self, limit: int = 20, *, kind: str | None = None) -> list[DeadLetter]:
        """The most recently tried first."""
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        return [_row(r) for r in self.db.execute(
            f"{_COLUMNS} {where} ORDER BY last_at DESC, id LIMIT ?", (*args, limit))]

    def get(self, event_id: uuid.UUID) -> tuple[DeadLetter, bytes] | None:
        row = self.db.execute(f"{_COLUMNS.replace(' FROM', ', body FROM')} WHERE id = ?",
                              (event_id.bytes,)).fetchone()
        return None if row is None else (_row(row), bytes(row[10]))

    def resolve(self, prefixes: Iterable[str]) -> tuple[list[bytes], list[str]]:
        """Ids of the dead letters whose UUID starts with each prefix (dashes optional):
        (ids found, prefixes that matched none or more than one)."""
        known = [bytes(r[0]) for r in self.db.execute("SELECT id FROM dead_letter")]
        found, bad = [], []
        for prefix in prefixes:
            want = prefix.strip().lower().replace("-", "")
            hits = [i for i in known if i.hex().startswith(want)] if want else []
            if len(hits) == 1:
                found.append(hits[0])
            else:
                bad.append(prefix)
        return found, bad

    def _where(self, ids: list[bytes] | None, kind: str | None) -> tuple[str, list]:
        clauses, args = [], []
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            args.extend(ids)
        if kind:
            clauses.append("kind = ?")
            args.append(kind)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def mark_due(self, ids: list[bytes] | None = None, *, kind: str | None = None) -> int:
        """Mark these (default: all) to be sent again; returns how many."""
        where, args = self._where(ids, kind)
        return self.db.execute(f"UPDATE dead_letter SET due = 1{where}", args).rowcount

    def mark_due_after_upgrade(self, collector: str, server: str | None) -> int:
        """Mark the rows last tried by another collector version, or by another server version
        (when ``server`` is known), to be sent again."""
        sql = "UPDATE dead_letter SET due = 1 WHERE due = 0 AND (collector_version != ?"
        args: list = [collector]
        if server is not None:
            sql += " OR (server_version IS NOT NULL AND server_version != ?)"
            args.append(server)
        return self.db.execute(sql + ")", args).rowcount

    def mark_due_unconfirmed(self) -> int:
        """Mark the rows kept while the server had never been seen taking an event (so it may
        have failed everything) to be sent again, now that it has."""
        return self.db.execute("UPDATE dead_letter SET due = 1 WHERE confirmed = 0 AND due = 0").rowcount

    def drop(self, ids: list[bytes] | None = None, *, kind: str | None = None) -> int:
        """Remove these (default: all) for good; returns how many."""
        where, args = self._where(ids, kind)
        return self.db.execute(f"DELETE FROM dead_letter{where}", args).rowcount

    def any_due(self) -> bool:
        return self.db.execute("SELECT 1 FROM dead_letter WHERE due = 1 LIMIT 1").fetchone() is not None

    def due(self, limit: int) -> list[tuple[int, bytes, str, bytes]]:
        """Up to ``limit`` due rows as the sender takes them: (0, id, agent, body)."""
        return [(0, bytes(i), a, bytes(b)) for i, a, b in self.db.execute(
            "SELECT id, agent, body FROM dead_letter WHERE due = 1 ORDER BY first_at, id LIMIT ?",
            (limit,))]
