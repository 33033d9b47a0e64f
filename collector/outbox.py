"""The collector's local buffer and cursors: one SQLite database in WAL mode.

- ``file``: per log file, its identity (device, inode), the size and mtime last seen, the byte
  cursor (lines) and the parser's state. A file's cursor and state advance **in the same
  transaction** that stores the events parsed from it, so a crash at any point either keeps both
  or neither; the file is then re-read from the old cursor and the same deterministic ids come
  out again.
- ``outbox``: events waiting for the server, in order, encoded as the JSON the mutation takes.
  A row is deleted only after the server acknowledged it (the server acknowledges only what it
  committed), or when a higher ``revision`` of its event replaces it before it was sent.
- ``rejected``: events the server refused, with its reason; kept for ``status`` and not retried.
- ``meta``: last delivery, last error, counters.

Each thread opens its own :class:`Outbox` (SQLite connections are per thread).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

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
CREATE TABLE IF NOT EXISTS rejected (
    id BLOB PRIMARY KEY,
    agent TEXT NOT NULL,
    reason TEXT NOT NULL,
    body BLOB NOT NULL,
    at REAL NOT NULL
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
        counting: delivery removes the oldest rows, so the two are equal but for rejections."""
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

    def acknowledge(self, seqs: list[int], rejected: list[tuple[bytes, str, str, bytes]]) -> None:
        """The server committed a batch: drop it; keep what it refused (id, agent, reason, body)."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany("INSERT OR REPLACE INTO rejected (id, agent, reason, body, at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            [(i, a, r, b, time.time()) for i, a, r, b in rejected])
            cur.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", _runs(seqs))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def reclaim(self) -> None:
        """Return free pages to the file system (after the outbox drained)."""
        # executescript steps the pragma to completion (execute frees one page per step)
        self.db.executescript("PRAGMA incremental_vacuum;")

    def rejected(self, limit: int = 20) -> list[tuple[str, str, float]]:
        return self.db.execute("SELECT agent, reason, at FROM rejected ORDER BY at DESC LIMIT ?",
                               (limit,)).fetchall()

    def rejected_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM rejected").fetchone()[0]

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
