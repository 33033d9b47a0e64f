"""Reading agent logs: discovery under the adapters' roots, and tailing one file from its cursor.

Shared by every adapter (adapters only parse). For a JSONL file, :meth:`Reader.scan` reads from
the stored byte cursor, feeds each *complete* line to the file's parser (an unfinished last line
waits for its newline), and commits the events and the new cursor and parser state in one SQLite
transaction, chunk by chunk. A file whose inode changed (rotation, replaced) or that shrank below
its cursor (truncation) is read again from the start: deterministic ids make that harmless. A
whole-JSON file is re-read when its size or mtime changes. A vanished file is forgotten.

Bad input is counted, never fatal: a malformed line, binary garbage or a line over
``MAX_LINE_BYTES`` is skipped (and counted per file); an adapter bug on one line is logged with the
file and offset and the line is skipped.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from collector.adapters.base import Adapter, Context, DocumentParser, LineParser, SkipLine, Tally
from collector.config import CollectorSettings
from collector.outbox import FileRow, Outbox
from collector.redact import prepare
from collector.wire import Event

log = logging.getLogger("devlog.collector")

CHUNK = 4 * 1024 * 1024  # bytes read (and committed) at a time
MAX_LINE_BYTES = 16 * 1024 * 1024  # longer lines are skipped and counted
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MAX_CACHED_PARSERS = 64

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
class Reader:
    settings: CollectorSettings
    outbox: Outbox
    ctx: Context
    adapters: dict[str, Adapter]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    home: Path = field(default_factory=Path.home)
    on_commit: Callable[[int], None] | None = None  # called with the number of new events
    on_progress: Callable[[int, int], None] | None = None  # (bytes, events) as they are read
    tally: dict[str, Tally] = field(default_factory=dict)
    dry_run: bool = False
    # Parsers of recently read files (the rest are rebuilt from their stored state on demand):
    # bounded, so memory does not grow with the number of files ever read.
    _parsers: OrderedDict[str, tuple[int, LineParser]] = field(default_factory=OrderedDict)
    buffer_full: bool = False

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
        try:
            if adapter.shape == "document":
                return self._scan_document(adapter, path, row, st)
            if st.st_size < row.offset:
                log.info("%s shrank below its cursor: reading it from the start", path)
                row.offset, row.state = 0, None
                self._parsers.pop(key, None)
            return self._scan_lines(adapter, path, row, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            self.forget(key)
            return ScanResult(gone=True)

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
        parser = self._parser(adapter, path, row)
        with path.open("rb") as fh:
            fh.seek(row.offset)
            carry = b""
            while True:
                if row.offset + len(carry) < size and self._full():
                    result.full = True
                    break
                data = fh.read(CHUNK)
                if not data:
                    break
                data = carry + data
                events: list[Event] = []
                start = 0
                while True:
                    end = data.find(b"\n", start)
                    if end < 0:
                        break
                    line = data[start:end]
                    if line.strip() and not self._feed(parser, line, row.offset + start, events, path):
                        result.skipped += 1
                        row.skipped += 1
                    start = end + 1
                carry = data[start:]
                consumed = start
                if len(carry) > MAX_LINE_BYTES:
                    consumed += self._skip_long_line(fh, path, row.offset + start)
                    result.skipped += 1
                    row.skipped += 1
                    carry = b""
                    fh.seek(row.offset + consumed)
                row.offset += consumed
                row.size, row.mtime_ns = size, mtime_ns
                row.state = parser.snapshot()
                result.bytes += consumed
                self._commit(row, adapter, events, result)
                self._remember(row.path, row.offset, parser)
                if self.on_progress:
                    self.on_progress(consumed, len(events))
        return result

    def _skip_long_line(self, fh, path: Path, line_start: int) -> int:
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

    def _feed(self, parser: LineParser, line: bytes, offset: int, events: list[Event],
              path: Path) -> bool:
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

    def _scan_document(self, adapter: Adapter, path: Path, row: FileRow, st: os.stat_result) -> ScanResult:
        result = ScanResult()
        if row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
            return result
        if st.st_size > MAX_DOCUMENT_BYTES:
            result.skipped += 1
            row.last_error = f"file of {st.st_size:,} bytes is over the {MAX_DOCUMENT_BYTES:,} limit"
            row.size, row.mtime_ns = st.st_size, st.st_mtime_ns
            return self._commit(row, adapter, [], result)
        data = path.read_bytes()
        parser = adapter.parser(path, self.ctx, row.state)
        assert isinstance(parser, DocumentParser)
        try:
            events = parser.parse(data)
        except SkipLine as exc:
            # Often a file caught mid-rewrite: it is read again on its next change.
            result.skipped += 1
            row.skipped += 1
            row.last_error = str(exc)
            events = []
        except Exception:
            result.skipped += 1
            row.skipped += 1
            log.exception("%s: the %s parser failed; skipped", path, type(parser).__name__)
            row.last_error = "parser failed (see the collector log)"
            events = []
        else:
            row.last_error = None
            row.state = parser.snapshot()
        row.size, row.mtime_ns = st.st_size, st.st_mtime_ns
        result.bytes = len(data)
        if self.on_progress:
            self.on_progress(len(data), len(events))
        return self._commit(row, adapter, events, result)

    def _commit(self, row: FileRow, adapter: Adapter, events: list[Event],
                result: ScanResult) -> ScanResult:
        tally = self.tally.setdefault(adapter.name, Tally())
        tally.add(events)
        result.parsed += len(events)
        row.events += len(events)
        if self.dry_run:
            return result
        s = self.settings
        bodies = [(e.id.bytes, e.agent, _encoder.encode(
            prepare(e, redact=s.redact, metadata_only=s.metadata_only))) for e in events]
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
