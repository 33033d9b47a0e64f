"""The collector's local buffer and cursors: one SQLite database in WAL mode.

- ``file``: per log file, its identity (device, inode), the size and mtime last seen, the byte
  cursor (lines) and the parser's state. A file's cursor and state advance **in the same
  transaction** that stores the events parsed from it, so a crash at any point either keeps both
  or neither; the file is then re-read from the old cursor and the same deterministic ids come
  out again.
- ``outbox``: events waiting for the server, in order, encoded as the JSON the mutation takes.
  A row is deleted only after the server acknowledged it (the server acknowledges only what it
  committed), or when a higher ``revision`` of its event replaces it before it was sent.
- ``dead_letter``: events the server refused, or that a batch-level error was isolated to, with
  its reason; kept aside (not blocking the rest), shown by ``status``, sent again after an
  upgrade or when asked (``collector.deadletters``).
- ``meta``: last delivery, last error, counters, and the *canary*: the body of one event the
  server took, sent again (a duplicate: it changes nothing) to tell a bad event from a server
  that fails whatever it is sent.

Each thread opens its own :class:`Outbox` (SQLite connections are per thread).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from collector import deadletters, version
from collector.deadletters import Attempt, DeadLetters

if TYPE_CHECKING:
    from collector.config import CollectorSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS file (
    path TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    dev INTEGER NOT NULL DEFAULT 0,
    ino INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    offset INTEGER NOT NULL DEFAULT 0,
    state BLOB,
    events INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    body BLOB NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def outbox_path(settings: CollectorSettings) -> Path:
    """The buffer's SQLite file."""
    return settings.resolved_state_dir() / "buffer.sqlite3"


class FileRow(msgspec.Struct, kw_only=True):
    path: str
    agent: str
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime_ns: int = 0
    offset: int = 0
    state: bytes | None = None
    events: int = 0
    skipped: int = 0
    last_error: str | None = None


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        # Before anything is written (a no-op on an existing buffer): lets reclaim() give the
        # space of delivered events back instead of keeping the file at its high-water mark.
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives the process being killed
        # (only a power cut can lose the last ones, and those are re-read from the logs).
        self.db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint (and fsync) every 64 MB of log instead of every 4 MB: a backfill writes and
        # deletes its events' bodies once each, at a third less time; the log file left behind
        # is cut back to 64 MB.
        self.db.execute("PRAGMA wal_autocheckpoint=16384")
        self.db.execute("PRAGMA journal_size_limit=67108864")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(SCHEMA)
        deadletters.create(self.db)
        self.dead = DeadLetters(self.db)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(outbox)")}
        if "revision" not in columns:  # a buffer of an older collector
            self.db.execute("ALTER TABLE outbox ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    # -- files and cursors --------------------------------------------------------------------

    _FILE_COLUMNS = ("SELECT path, agent, dev, ino, size, mtime_ns, offset, state, events, skipped, "
                     "last_error FROM file")

    @staticmethod
    def _file_row(row: tuple) -> FileRow:
        return FileRow(path=row[0], agent=row[1], dev=row[2], ino=row[3], size=row[4],
                       mtime_ns=row[5], offset=row[6], state=row[7], events=row[8],
                       skipped=row[9], last_error=row[10])

    def file(self, path: str) -> FileRow | None:
        row = self.db.execute(f"{self._FILE_COLUMNS} WHERE path = ?", (path,)).fetchone()
        return None if row is None else self._file_row(row)

    def commit(self, row: FileRow, events: Iterable[tuple]) -> int:
        """Store events (id, agent, JSON body[, revision]) and the file's new cursor atomically.
        Returns by how many events the buffer grew.

        Of one event's versions only the highest waits: a higher revision replaces a lower one
        still waiting (not sent yet, or in flight: its acknowledgement then deletes nothing; the
        server keeps the highest of what it gets), and a version not above the one waiting is
        not stored."""
        plain: list[tuple[bytes, str, bytes]] = []
        highest: dict[bytes, tuple[bytes, str, bytes, int]] = {}
        for event in events:
            if len(event) > 3 and event[3]:
                seen = highest.get(event[0])
                if seen is None or event[3] > seen[3]:
                    highest[event[0]] = event
            else:
                plain.append(event[:3])
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            before = self.db.total_changes
            cur.executemany("INSERT OR IGNORE INTO outbox (id, agent, body) VALUES (?, ?, ?)", plain)
            added = self.db.total_changes - before
            if highest:
                revised = list(highest.values())
                before = self.db.total_changes
                cur.executemany("DELETE FROM outbox WHERE id = ? AND revision < ?",
                                [(i, r) for i, _a, _b, r in revised])
                added -= self.db.total_changes - before
                before = self.db.total_changes
                cur.executemany("INSERT OR IGNORE INTO outbox (id, agent, body, revision) "
                                "VALUES (?, ?, ?, ?)", revised)
                added += self.db.total_changes - before
            cur.execute(
                "INSERT INTO file (path, agent, dev, ino, size, mtime_ns, offset, state, events, "
                "skipped, last_error, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (path) DO UPDATE SET agent=excluded.agent, dev=excluded.dev, "
                "ino=excluded.ino, size=excluded.size, mtime_ns=excluded.mtime_ns, "
                "offset=excluded.offset, state=excluded.state, events=excluded.events, "
                "skipped=excluded.skipped, last_error=excluded.last_error, updated=excluded.updated",
                (row.path, row.agent, row.dev, row.ino, row.size, row.mtime_ns, row.offset,
                 row.state, row.events, row.skipped, row.last_error, time.time()))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return added

    def forget(self, path: str) -> None:
        self.db.execute("DELETE FROM file WHERE path = ?", (path,))

    def files(self) -> list[FileRow]:
        return [self._file_row(r) for r in self.db.execute(f"{self._FILE_COLUMNS} ORDER BY path")]

    # -- delivery -----------------------------------------------------------------------------

    def pending(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def pending_at_most(self) -> int:
        """An upper bound of ``pending()`` read from the two ends of the rowid index, without
        counting: delivery removes the oldest rows, so the two are equal but for dead letters."""
        # Two subqueries: SQLite reads min() or max() from the index only when it is alone (both
        # in one SELECT scan the whole table: ~12 ms per check with 140 MB waiting).
        low, high = self.db.execute(
            "SELECT (SELECT min(seq) FROM outbox), (SELECT max(seq) FROM outbox)").fetchone()
        return 0 if low is None else high - low + 1

    def pending_by_agent(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT agent, count(*) FROM outbox GROUP BY agent").fetchall())

    def next_batch(self, limit: int, after: int = 0) -> list[tuple[int, bytes, str, bytes]]:
        """(seq, id, agent, body) of the oldest waiting events (past ``after``, a seq)."""
        return self.db.execute(
            "SELECT seq, id, agent, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit)).fetchall()

    def acknowledge(self, seqs: list[int], rejected: list[tuple[bytes, str, str, bytes]],
                    attempt: Attempt | None = None, canary: bytes | None = None) -> None:
        """The server committed a batch: drop it; keep what it refused (id, agent, reason, body)
        as dead letters; remember ``canary``, the body of one event it took."""
        with self._transaction() as cur:
            deadletters.upsert_in(cur, [(i, a, b, "rejected", r) for i, a, r, b in rejected],
                                  attempt or Attempt(collector=version()))
            cur.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", _runs(seqs))
            self._set_canary(cur, canary)

    def dead_letter(self, rows: list[tuple[int, bytes, str, bytes]], reason: str,
                    attempt: Attempt, *, confirmed: bool = True) -> None:
        """Move these outbox rows (seq, id, agent, body) to the dead letters (kind ``failed``)."""
        with self._transaction() as cur:
            deadletters.upsert_in(cur, [(i, a, b, "failed", reason) for _s, i, a, b in rows], attempt,
                                  confirmed=confirmed)
            cur.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?",
                            _runs([seq for seq, *_ in rows]))

    def acknowledge_dead(self, ids: list[bytes], rejected: list[tuple[bytes, str, str, bytes]],
                         attempt: Attempt, canary: bytes | None = None) -> None:
        """Dead letters sent again were committed: drop them, keep what was refused again."""
        with self._transaction() as cur:
            deadletters.delete_in(cur, ids)
            deadletters.upsert_in(cur, [(i, a, b, "rejected", r) for i, a, r, b in rejected], attempt)
            self._set_canary(cur, canary)

    def fail_dead(self, rows: list[tuple[int, bytes, str, bytes]], reason: str,
                  attempt: Attempt, *, confirmed: bool = True) -> None:
        """Dead letters sent again failed alone again: one attempt more, no longer due."""
        with self._transaction() as cur:
            deadletters.upsert_in(cur, [(i, a, b, "failed", reason) for _s, i, a, b in rows], attempt,
                                  confirmed=confirmed)

    def canary(self) -> bytes | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'canary'").fetchone()
        return None if row is None or row[0] is None else row[0].encode()

    @staticmethod
    def _set_canary(cur: sqlite3.Cursor, body: bytes | None) -> None:
        if body is not None:
            cur.execute("INSERT INTO meta (key, value) VALUES ('canary', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value=excluded.value", (body.decode(),))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def reclaim(self) -> None:
        """Return free pages to the file system (after the outbox drained)."""
        # executescript steps the pragma to completion (execute frees one page per step)
        self.db.executescript("PRAGMA incremental_vacuum;")

    # -- meta ---------------------------------------------------------------------------------

    def set_meta(self, **values: str | float | None) -> None:
        self.db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            [(k, None if v is None else str(v)) for k, v in values.items()])

    def count_meta(self, **increments: int) -> None:
        self.db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
            list(increments.items()))

    def meta(self) -> dict[str, str | None]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive numbers, as (first, last): a batch is usually one."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs
