"""Reading agent logs: discovery under the adapters' roots, and tailing one file from its cursor.

Shared by every adapter (adapters only parse). For a JSONL file, :meth:`Reader.scan` reads from
the stored byte cursor, feeds each *complete* line to the file's parser (an unfinished last line
waits for its newline), and commits the events and the new cursor and parser state in one SQLite
transaction, chunk by chunk. A file whose inode changed (rotation, replaced) or that shrank below
its cursor (truncation) is read again from the start: deterministic ids make that harmless. A
whole-JSON file is re-read when its size or mtime changes. A vanished file is forgotten.

A backfill (many files, much to read) goes through :meth:`Reader.scan_many`, which hands files to
worker processes when there is enough to read: a worker parses a slice of one file from its
cursor and parser state (the same resumable state the cursor keeps), redacts and encodes the
events, and returns them; this process alone writes the outbox, committing each slice with its
cursor exactly as :meth:`Reader.scan` commits a chunk. A file's slices are read in order, one at a
time; different files are read side by side.

Bad input is counted, never fatal: a malformed line, binary garbage or a line over
``MAX_LINE_BYTES`` is skipped (and counted per file); an adapter bug on one line is logged with the
file and offset and the line is skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from collector.adapters.base import Adapter, Context, DocumentParser, LineParser, SkipLine, Tally
from collector.config import CollectorSettings
from collector.outbox import FileRow, Outbox
from collector.redact import prepare
from collector.wire import Event

if TYPE_CHECKING:  # multiprocessing is imported when workers start (idle collectors stay small)
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger("devlog.collector")

CHUNK = 4 * 1024 * 1024  # bytes read (and committed) at a time
MAX_LINE_BYTES = 16 * 1024 * 1024  # longer lines are skipped and counted
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MAX_CACHED_PARSERS = 64
PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # less than this to read: no worker processes
SLICE_BYTES = 32 * 1024 * 1024  # most bytes of one file a worker reads before handing back

_encoder = msgspec.json.Encoder()


@dataclass
class ScanResult:
    new_events: int = 0  # events new to the buffer
    parsed: int = 0  # events parsed (new or already known)
    skipped: int = 0  # lines skipped
    bytes: int = 0
    full: bool = False  # stopped because the buffer is full
    gone: bool = False  # the file disappeared


@dataclass
class ManyResult:
    """What :meth:`Reader.scan_many` did."""

    new_events: int = 0
    parsed: int = 0
    skipped: int = 0
    full: bool = False  # stopped because the buffer is full: ``remaining`` were not finished
    stopped: bool = False  # ``stopping()`` said so: ``remaining`` were not finished
    remaining: list[tuple[Adapter, Path]] = field(default_factory=list)
    touched: list[tuple[Adapter, Path]] = field(default_factory=list)  # line files that advanced
    workers: int = 0  # worker processes used (0: read in this process)


@dataclass
class Reader:
    settings: CollectorSettings
    outbox: Outbox
    ctx: Context
    adapters: dict[str, Adapter]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    home: Path = field(default_factory=Path.home)
    on_commit: Callable[[int], None] | None = None  # called with the number of new events
    on_progress: Callable[[int, int], None] | None = None  # (bytes, events) as they are read
    on_file: Callable[[], None] | None = None  # scan_many: a file was read to its end
    stopping: Callable[[], bool] | None = None  # scan_many stops handing out files when true
    tally: dict[str, Tally] = field(default_factory=dict)
    dry_run: bool = False
    # Parsers of recently read files (the rest are rebuilt from their stored state on demand):
    # bounded, so memory does not grow with the number of files ever read.
    _parsers: OrderedDict[str, tuple[int, LineParser]] = field(default_factory=OrderedDict)
    buffer_full: bool = False
    _pool: ProcessPoolExecutor | None = None  # started by start_workers(), else per scan_many
    _pool_size: int = 0
    _bytes: int = 0  # read by workers so far, and the events they made of it
    _events: int = 0

    # -- discovery ----------------------------------------------------------------------------

    def roots(self) -> list[tuple[Adapter, Path]]:
        out = []
        for name, adapter in self.adapters.items():
            for root in [*adapter.roots(self.env, self.home), *self.settings.paths_for(name)]:
                out.append((adapter, root))
        return out

    def discover(self) -> Iterator[tuple[Adapter, Path]]:
        for adapter, root in self.roots():
            if not root.is_dir():
                continue
            for folder, _dirs, files in os.walk(root, onerror=lambda e: None):
                for name in files:
                    path = Path(folder, name)
                    if adapter.matches(path):
                        yield adapter, path

    def adapter_for(self, path: Path) -> Adapter | None:
        for adapter, root in self.roots():
            if path.is_relative_to(root) and adapter.matches(path):
                return adapter
        return None

    # -- reading ------------------------------------------------------------------------------

    def scan(self, adapter: Adapter, path: Path) -> ScanResult:
        prepared = self._prepare(adapter, path)
        if isinstance(prepared, ScanResult):
            return prepared
        return self._scan_prepared(adapter, path, *prepared)

    def _scan_prepared(self, adapter: Adapter, path: Path, row: FileRow,
                       st: os.stat_result) -> ScanResult:
        try:
            if adapter.shape == "document":
                return self._scan_document(adapter, path, row, st)
            return self._scan_lines(adapter, path, row, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            self.forget(row.path)
            return ScanResult(gone=True)

    def _prepare(self, adapter: Adapter, path: Path) -> tuple[FileRow, os.stat_result] | ScanResult:
        """The file's cursor row, reset when the file was replaced or truncated."""
        key = str(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            self.forget(key)
            return ScanResult(gone=True)
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return ScanResult()
        row = self.outbox.file(key) or FileRow(path=key, agent=adapter.name)
        if row.ino and (row.dev, row.ino) != (st.st_dev, st.st_ino):
            log.info("%s was replaced: reading it from the start", path)
            row = FileRow(path=key, agent=adapter.name, events=row.events, skipped=row.skipped)
            self._parsers.pop(key, None)
        row.dev, row.ino = st.st_dev, st.st_ino
        if adapter.shape == "lines" and st.st_size < row.offset:
            log.info("%s shrank below its cursor: reading it from the start", path)
            row.offset, row.state = 0, None
            self._parsers.pop(key, None)
        return row, st

    def idle(self, adapter: Adapter, path: Path) -> ScanResult:
        """The file went quiet: let its parser close what is open (an LLM call's last line)."""
        key = str(path)
        if adapter.shape != "lines":
            return ScanResult()
        row = self.outbox.file(key)
        if row is None and key in self._parsers:  # a dry run stores no rows
            row = FileRow(path=key, agent=adapter.name, offset=self._parsers[key][0])
        if row is None:
            return ScanResult()
        parser = self._parser(adapter, path, row)
        events = parser.idle()
        if not events:
            return ScanResult()
        row.state = parser.snapshot()
        return self._commit(row, adapter, events, ScanResult())

    def forget(self, key: str) -> None:
        self._parsers.pop(key, None)
        if not self.dry_run:
            self.outbox.forget(key)

    def _parser(self, adapter: Adapter, path: Path, row: FileRow) -> LineParser:
        cached = self._parsers.get(row.path)
        if cached is not None and cached[0] == row.offset:
            self._parsers.move_to_end(row.path)
            return cached[1]
        parser = adapter.parser(path, self.ctx, row.state)
        assert isinstance(parser, LineParser)
        self._remember(row.path, row.offset, parser)
        return parser

    def _remember(self, key: str, offset: int, parser: LineParser) -> None:
        self._parsers[key] = (offset, parser)
        self._parsers.move_to_end(key)
        while len(self._parsers) > MAX_CACHED_PARSERS:
            self._parsers.popitem(last=False)

    def _scan_lines(self, adapter: Adapter, path: Path, row: FileRow, size: int,
                    mtime_ns: int) -> ScanResult:
        result = ScanResult()
        if size == row.offset:
            return result
        if self._full():
            result.full = True
            return result
        parser = self._parser(adapter, path, row)
        for chunk in read_lines(parser, path, row.offset, size):
            row.offset += chunk.consumed
            row.size, row.mtime_ns = size, mtime_ns
            row.state = parser.snapshot()
            row.skipped += chunk.skipped
            result.skipped += chunk.skipped
            result.bytes += chunk.consumed
            self._commit(row, adapter, chunk.events, result)
            self._remember(row.path, row.offset, parser)
            if self.on_progress:
                self.on_progress(chunk.consumed, len(chunk.events))
            if chunk.more and self._full():
                result.full = True
                break
        return result

    def _scan_document(self, adapter: Adapter, path: Path, row: FileRow, st: os.stat_result) -> ScanResult:
        result = ScanResult()
        if row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
            return result
        row.size, row.mtime_ns = st.st_size, st.st_mtime_ns
        if st.st_size > MAX_DOCUMENT_BYTES:
            result.skipped += 1
            row.last_error = f"file of {st.st_size:,} bytes is over the {MAX_DOCUMENT_BYTES:,} limit"
            return self._commit(row, adapter, [], result)
        data = path.read_bytes()
        parser = adapter.parser(path, self.ctx, row.state)
        assert isinstance(parser, DocumentParser)
        events, row.last_error = read_document(parser, data, path)
        if row.last_error is None:
            row.state = parser.snapshot()
        else:
            result.skipped += 1
            row.skipped += 1
        result.bytes = len(data)
        if self.on_progress:
            self.on_progress(len(data), len(events))
        return self._commit(row, adapter, events, result)

    def _commit(self, row: FileRow, adapter: Adapter, events: list[Event],
                result: ScanResult) -> ScanResult:
        self.tally.setdefault(adapter.name, Tally()).add(events)
        bodies = [] if self.dry_run else encode_bodies(events, self.settings)
        return self._store(row, bodies, len(events), result)

    def _store(self, row: FileRow, bodies: list[tuple[bytes, str, bytes, int]], parsed: int,
               result: ScanResult) -> ScanResult:
        result.parsed += parsed
        row.events += parsed
        if self.dry_run:
            return result
        added = self.outbox.commit(row, bodies)
        result.new_events += added
        if added and self.on_commit:
            self.on_commit(added)
        return result

    def _full(self) -> bool:
        if self.dry_run:
            return False
        limit = self.settings.max_buffer_events
        # The cheap bound first (this runs per chunk read); count only when it says full.
        full = self.outbox.pending_at_most() >= limit and self.outbox.pending() >= limit
        if full and not self.buffer_full:
            log.warning("the buffer holds %s events (max_buffer_events): reading paused until "
                        "the server takes some", f"{self.settings.max_buffer_events:,}")
            self.outbox.set_meta(buffer_full=1)
        elif not full and self.buffer_full:
            log.info("buffer below its limit again: reading resumes")
            self.outbox.set_meta(buffer_full=0)
        self.buffer_full = full
        return full

    # -- many files at once (backfill, catch-up at start) ---------------------------------------

    def workers(self) -> int:
        """Worker processes a large backfill may use (the ``workers`` setting; 0 = CPUs)."""
        if self.settings.workers:
            return self.settings.workers
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            return os.cpu_count() or 1

    def start_workers(self, n: int | None = None) -> int:
        """Start the worker processes now (forked while this process has no other thread) and
        keep them for every :meth:`scan_many` until :meth:`stop_workers`. Returns how many."""
        n = n or self.workers()
        if self._pool is None and n > 1:
            self._pool = worker_pool(n, self._slice_reader())
            self._pool.submit(os.getpid).result()  # the processes exist from here on
            self._pool_size = n
        return self._pool_size

    def stop_workers(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_size = None, 0

    def _slice_reader(self) -> SliceReader:
        return SliceReader(self.settings, self.ctx, self.adapters, self.dry_run)

    def scan_many(self, items: Iterable[tuple[Adapter, Path]], *,
                  close_before: float | None = None) -> ManyResult:
        """Read every file from its cursor; files last written before ``close_before`` (epoch
        seconds) are finished: their open LLM calls are closed too. With enough to read, files
        are parsed by worker processes (see the module doc); the outcome is the same as
        :meth:`scan` file by file. Stops early when the buffer fills (``full``, ``remaining``)."""
        out = ManyResult()
        plan: list[tuple[Adapter, Path, FileRow, os.stat_result]] = []
        unchanged: list[tuple[Adapter, Path, FileRow, os.stat_result]] = []
        todo = 0
        seen: set[str] = set()
        for adapter, path in items:
            if str(path) in seen:  # under two roots (extra_paths overlapping a default)
                continue
            seen.add(str(path))
            prepared = self._prepare(adapter, path)
            if isinstance(prepared, ScanResult):
                if self.on_file:
                    self.on_file()
                continue
            row, st = prepared
            if adapter.shape == "lines":
                new = st.st_size - row.offset
            else:
                new = st.st_size if (row.size, row.mtime_ns) != (st.st_size, st.st_mtime_ns) else 0
            todo += new
            (plan if new else unchanged).append((adapter, path, row, st))
        n = self._pool_size or min(self.workers(), len(plan))
        if n < 2 or todo < PARALLEL_MIN_BYTES:
            self._scan_each(unchanged + plan, close_before, out)
        else:
            self._scan_each(unchanged, close_before, out)  # at most an open LLM call to close
            if not (out.full or out.stopped):
                self._scan_parallel(plan, close_before, n, out)
            else:
                out.remaining += [(a, p) for a, p, _r, _s in plan]
        return out

    def _scan_each(self, plan: list[tuple[Adapter, Path, FileRow, os.stat_result]],
                   close_before: float | None, out: ManyResult, *, fresh: bool = True) -> None:
        """Read the files here, one by one: from the rows ``_prepare`` gave (``fresh``), or
        from their stored cursors (files workers gave up on, which may have moved since)."""
        for i, (adapter, path, row, st) in enumerate(plan):
            if self._stopping():
                out.stopped = True
                out.remaining = [(a, p) for a, p, _r, _s in plan[i:]]
                return
            result = self._scan_prepared(adapter, path, row, st) if fresh else self.scan(adapter, path)
            self._count(out, adapter, path, result)
            if result.full:
                out.full = True
                out.remaining = [(a, p) for a, p, _r, _s in plan[i:]]
                return
            if close_before is not None and st.st_mtime < close_before:
                self._count(out, adapter, path, self.idle(adapter, path))
            if self.on_file:
                self.on_file()

    def _count(self, out: ManyResult, adapter: Adapter, path: Path, result: ScanResult) -> None:
        out.new_events += result.new_events
        out.parsed += result.parsed
        out.skipped += result.skipped
        if result.bytes and adapter.shape == "lines":
            out.touched.append((adapter, path))

    def _scan_parallel(self, plan: list[tuple[Adapter, Path, FileRow, os.stat_result]],
                       close_before: float | None, n: int, out: ManyResult) -> None:
        out.workers = n
        queue = deque(
            Job(agent=adapter.name, path=str(path), offset=row.offset, state=row.state,
                size=st.st_size, mtime_ns=st.st_mtime_ns,
                close=close_before is not None and st.st_mtime < close_before,
                max_bytes=SLICE_BYTES, chunk=CHUNK, identity=(st.st_dev, st.st_ino))
            for adapter, path, row, st in plan)
        rows = {str(path): (adapter, path, row, st) for adapter, path, row, st in plan}
        inflight: dict[Future[Slice], tuple[Job, float]] = {}  # job, events it may bring
        retry: list[tuple[Adapter, Path, FileRow, os.stat_result]] = []
        pool = self._pool or worker_pool(n, self._slice_reader())
        broken = hold = False
        try:
            while inflight or (queue and not hold):
                while queue and len(inflight) < 2 * n and not hold:
                    job = queue[0]
                    expected = self._expected_events(job)
                    if self._stopping() or not self._room_for(
                            expected + sum(e for _j, e in inflight.values())):
                        # Stopping, or the buffer is (nearly) full: what is out comes back,
                        # the rest is read here chunk by chunk up to the exact limit.
                        hold = True
                        break
                    queue.popleft()
                    self._parsers.pop(job.path, None)
                    try:
                        inflight[pool.submit(read_slice, job)] = (job, expected)
                    except Exception as exc:  # BrokenProcessPool: a worker was killed
                        log.warning("worker processes unavailable (%s): reading on in this "
                                    "process", exc)
                        queue.appendleft(job)
                        broken = hold = True
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    job, _expected = inflight.pop(future)
                    adapter, path, row, st = rows[job.path]
                    try:
                        piece = future.result()
                    except Exception as exc:  # a worker died or failed: read it here instead
                        log.warning("%s: a worker process failed (%s): reading it in this process",
                                    path, exc)
                        retry.append((adapter, path, row, st))
                        if isinstance(exc, BrokenExecutor):
                            broken = hold = True
                        continue
                    if piece.replaced:  # rotated or replaced since it was looked at
                        retry.append((adapter, path, row, st))
                        continue
                    result = self._apply(adapter, row, job, piece)
                    self._count(out, adapter, path, result)
                    if not result.gone and not piece.done:
                        queue.appendleft(msgspec.structs.replace(job, offset=row.offset, state=row.state))
                        continue
                    row.state = None  # stored; memory stays flat however many files are read
                    if self.on_file:
                        self.on_file()
        finally:
            if pool is not self._pool:
                pool.shutdown(wait=True, cancel_futures=True)
            elif broken:
                self.stop_workers()
        retry += [rows[job.path] for job in queue]
        if retry:
            self._scan_each(retry, close_before, out, fresh=False)

    def _expected_events(self, job: Job) -> float:
        """About how many events a job may bring (from the bytes per event seen so far)."""
        size = min(job.size - job.offset, job.max_bytes + job.chunk)
        per_event = self._bytes / self._events if self._bytes >= 1 << 20 and self._events else 300
        return size / max(per_event, 1.0)

    def _room_for(self, events: float) -> bool:
        if self.dry_run:
            return True
        if self._full():
            return False
        return self.outbox.pending_at_most() + events <= self.settings.max_buffer_events

    def _stopping(self) -> bool:
        return self.stopping is not None and self.stopping()

    def _apply(self, adapter: Adapter, row: FileRow, job: Job, piece: Slice) -> ScanResult:
        """Commit what a worker read, as :meth:`_scan_lines` commits a chunk."""
        result = ScanResult(skipped=piece.skipped, bytes=piece.bytes)
        if piece.gone:
            self.forget(row.path)
            result.gone = True
            return result
        if adapter.shape == "lines":
            row.offset = piece.offset
        row.size, row.mtime_ns = job.size, job.mtime_ns
        row.skipped += piece.skipped
        if piece.state is not None or adapter.shape == "lines":
            row.state = piece.state
        if adapter.shape == "document":
            row.last_error = piece.error
        self.tally.setdefault(adapter.name, Tally()).merge(piece.tally)
        self._bytes += piece.bytes
        self._events += piece.parsed
        self._store(row, piece.bodies, piece.parsed, result)
        if self.on_progress:
            self.on_progress(piece.bytes, piece.parsed)
        return result


# -- reading a file (in this process or a worker) ---------------------------------------------


class Chunk(NamedTuple):
    events: list[Event]
    consumed: int  # bytes of complete lines (the cursor moves by this much)
    skipped: int  # lines that could not be parsed
    more: bool  # the file holds more than was read so far


class FileReplaced(Exception):
    """The path now names another file than the cursor was for (rotated, replaced)."""


def read_lines(parser: LineParser, path: Path, offset: int, size: int,
               chunk: int | None = None, identity: tuple[int, int] | None = None) -> Iterator[Chunk]:
    """Events of the complete lines from byte ``offset`` on, ``chunk`` bytes (``CHUNK``) at a
    time; ``size`` is the file's size when it was looked at. An unfinished last line is left for
    later; a line over ``MAX_LINE_BYTES`` is skipped. With ``identity`` (device, inode), a path
    that names another file by now raises :class:`FileReplaced` before anything is read."""
    chunk = chunk or CHUNK
    with path.open("rb") as fh:
        if identity is not None:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != identity:
                raise FileReplaced(str(path))
        fh.seek(offset)
        carry = b""
        while True:
            data = fh.read(chunk)
            if not data:
                return
            data = carry + data
            events: list[Event] = []
            skipped = start = 0
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    break
                line = data[start:end]
                if line.strip() and not _feed(parser, line, offset + start, events, path):
                    skipped += 1
                start = end + 1
            carry = data[start:]
            consumed = start
            if len(carry) > MAX_LINE_BYTES:
                consumed += _skip_long_line(fh, path, offset + start)
                skipped += 1
                carry = b""
                fh.seek(offset + consumed)
            offset += consumed
            yield Chunk(events, consumed, skipped, offset + len(carry) < size)


def _skip_long_line(fh, path: Path, line_start: int) -> int:
    """Bytes from ``line_start`` to just past the next newline (or to the end of what exists:
    a huge unfinished line is skipped as far as it goes)."""
    fh.seek(line_start)
    skipped = 0
    while True:
        block = fh.read(CHUNK)
        if not block:
            break
        cut = block.find(b"\n")
        if cut >= 0:
            skipped += cut + 1
            break
        skipped += len(block)
    log.warning("%s: skipped a line of %s bytes at offset %d (limit %d)", path,
                f"{skipped:,}", line_start, MAX_LINE_BYTES)
    return skipped


def _feed(parser: LineParser, line: bytes, offset: int, events: list[Event], path: Path) -> bool:
    try:
        events.extend(parser.feed(line, offset))
    except SkipLine as exc:
        log.debug("%s:%d skipped: %s", path, offset, exc)
        return False
    except Exception:  # an adapter bug must not stop the collector
        log.exception("%s:%d: the %s parser failed on this line; skipped", path, offset,
                      type(parser).__name__)
        return False
    return True


def read_document(parser: DocumentParser, data: bytes, path: Path) -> tuple[list[Event], str | None]:
    """The document's new events, or none and why it could not be parsed."""
    try:
        return parser.parse(data), None
    except SkipLine as exc:  # often a file caught mid-rewrite: read again on its next change
        return [], str(exc)
    except Exception:
        log.exception("%s: the %s parser failed; skipped", path, type(parser).__name__)
        return [], "parser failed (see the collector log)"


def encode_bodies(events: list[Event], settings: CollectorSettings) -> list[tuple[bytes, str, bytes, int]]:
    """(id, agent, JSON body, revision) of each event as it may leave the machine (redacted, or
    metadata only, as the settings say)."""
    redact, metadata_only = settings.redact, settings.metadata_only
    return [(e.id.bytes, e.agent, _encoder.encode(prepare(e, redact=redact, metadata_only=metadata_only)),
             e.revision) for e in events]


# -- worker processes ---------------------------------------------------------------------------


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """Read one file from ``offset`` (with the parser's ``state``) towards ``size``."""

    agent: str
    path: str
    offset: int
    state: bytes | None
    size: int
    mtime_ns: int
    close: bool  # the file is finished: close its open LLM call at the end
    max_bytes: int  # hand back after about this much (whole chunks) when there is more
    chunk: int  # bytes read at a time
    identity: tuple[int, int] | None = None  # (device, inode) the cursor is for


class Slice(msgspec.Struct, kw_only=True):
    """What a worker read of one file: ready to commit with the file's new cursor."""

    offset: int = 0
    state: bytes | None = None
    bodies: list[tuple[bytes, str, bytes, int]] = []  # none in a dry run
    tally: Tally = msgspec.field(default_factory=Tally)
    parsed: int = 0
    skipped: int = 0
    bytes: int = 0
    done: bool = True  # read to the end (else: read on from ``offset``)
    error: str | None = None  # a document that could not be parsed
    gone: bool = False
    replaced: bool = False  # the path names another file now: nothing was read


@dataclass
class SliceReader:
    """A worker's reader: parses, redacts and encodes; stores nothing."""

    settings: CollectorSettings
    ctx: Context
    adapters: dict[str, Adapter]
    dry_run: bool

    def read(self, job: Job) -> Slice:
        adapter = self.adapters[job.agent]
        path = Path(job.path)
        try:
            if adapter.shape == "document":
                return self._document(adapter, path, job)
            return self._lines(adapter, path, job)
        except FileNotFoundError:
            return Slice(gone=True)
        except FileReplaced:
            return Slice(replaced=True)

    def _lines(self, adapter: Adapter, path: Path, job: Job) -> Slice:
        parser = adapter.parser(path, self.ctx, job.state)
        assert isinstance(parser, LineParser)
        piece = Slice(offset=job.offset, done=True)
        events: list[Event] = []
        for chunk in read_lines(parser, path, job.offset, job.size, job.chunk, job.identity):
            events.extend(chunk.events)
            piece.offset += chunk.consumed
            piece.bytes += chunk.consumed
            piece.skipped += chunk.skipped
            if chunk.more and piece.bytes >= job.max_bytes:
                piece.done = False
                break
        if piece.done and job.close:
            events.extend(parser.idle())
        piece.state = parser.snapshot()
        return self._finish(piece, events)

    def _document(self, adapter: Adapter, path: Path, job: Job) -> Slice:
        if job.size > MAX_DOCUMENT_BYTES:
            return Slice(skipped=1, error=f"file of {job.size:,} bytes is over the "
                                          f"{MAX_DOCUMENT_BYTES:,} limit")
        data = path.read_bytes()
        parser = adapter.parser(path, self.ctx, job.state)
        assert isinstance(parser, DocumentParser)
        events, error = read_document(parser, data, path)
        piece = Slice(bytes=len(data), error=error, skipped=1 if error else 0,
                      state=None if error else parser.snapshot())
        return self._finish(piece, events)

    def _finish(self, piece: Slice, events: list[Event]) -> Slice:
        piece.tally = Tally.of(events)
        piece.parsed = len(events)
        if not self.dry_run:
            piece.bodies = encode_bodies(events, self.settings)
        return piece


_worker: SliceReader | None = None


def _init_worker(reader: SliceReader, parent: int) -> None:
    global _worker
    _worker = reader
    # Ctrl-C reaches a terminal's whole process group: it is the collector's to handle (it stops
    # handing out work and shuts its workers down). SIGTERM still ends a worker: the pool uses it
    # to clear up after a broken worker, and a stopping collector no longer reads in their stead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A backfill may keep every core busy for minutes (often from a user service, at login):
    # the workers yield to whatever else runs, and take all the idle time there is.
    try:
        os.nice(10)
    except (AttributeError, OSError):  # Windows; or a limit on priorities
        pass
    # A worker outlives a collector killed with SIGKILL unless it notices by itself. ``parent``
    # is the collector's pid as the collector saw it: killed while this worker was still
    # starting (a spawned one imports for a while), the worker already has another parent, and
    # watching os.getppid() from here would watch that one, forever.
    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="devlog-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def read_slice(job: Job) -> Slice:
    assert _worker is not None, "not in a worker process"
    return _worker.read(job)


def worker_pool(n: int, reader: SliceReader) -> ProcessPoolExecutor:
    """``n`` worker processes, each with a copy of ``reader``. Forked when that is safe (Linux, no
    other thread running: cheapest, nothing re-imported); otherwise spawned. Not from a fork
    server: its workers are the server's children, and it outlives a collector killed with
    SIGKILL, so they would not notice that the collector is gone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(reader, os.getpid()))
