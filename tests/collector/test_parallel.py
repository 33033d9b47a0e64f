"""Backfill in worker processes (``Reader.scan_many``): the same buffer, cursors and counts as
reading file by file, including when the buffer fills and when a worker dies (real processes,
real files, real SQLite; no server)."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collector.source as source
from collector.adapters import enabled_adapters
from collector.adapters.base import EVENT_NAMESPACE, Context, event_id, parse_file
from collector.adapters.claude_code import ClaudeCode
from collector.config import CollectorSettings
from collector.outbox import Outbox
from collector.source import Reader, read_slice
from tests.agent_logs import claude_session, make_home

AGENTS = ["claude-code", "codex", "copilot"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The three agents' fixtures plus eight generated Claude Code sessions of ~150 KB."""
    home = make_home(tmp_path)
    folder = home / ".claude" / "projects" / "-work-big"
    folder.mkdir(parents=True)
    for n in range(8):
        sid = f"big-{n}"
        (folder / f"{sid}.jsonl").write_bytes(claude_session(
            sid, 40, start=datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=n), text_bytes=600))
    return home


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for any amount of data, and slices small enough that big files take several."""
    monkeypatch.setattr(source, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(source, "SLICE_BYTES", 48 * 1024)
    monkeypatch.setattr(source, "CHUNK", 16 * 1024)


def make_reader(home: Path, state: str, **settings: object) -> Reader:
    s = CollectorSettings(state_dir=str(home / state), agents=AGENTS, **settings)
    return Reader(settings=s, outbox=Outbox(home / state / "buffer.sqlite3"),
                  ctx=Context(machine="m1"), adapters=enabled_adapters(AGENTS), env={}, home=home)


def buffered(reader: Reader) -> dict[bytes, bytes]:
    return {i: body for _s, i, _a, body in reader.outbox.next_batch(1_000_000)}


def cursors(reader: Reader) -> dict[str, tuple]:
    return {r.path: (r.offset, r.state, r.events, r.skipped, r.size, r.last_error)
            for r in reader.outbox.files()}


def read_all(reader: Reader) -> source.ManyResult:
    return reader.scan_many(list(reader.discover()), close_before=datetime.now().timestamp() + 60)


def test_workers_fill_the_buffer_as_reading_file_by_file(home: Path, small_slices: None) -> None:
    one = make_reader(home, "one", workers=1)
    r1 = read_all(one)
    assert r1.workers == 0 and r1.new_events > 1000

    many = make_reader(home, "many", workers=3)
    slices: list[int] = []
    many.on_progress = lambda b, e: slices.append(b)
    files: list[None] = []
    many.on_file = lambda: files.append(None)
    r3 = read_all(many)
    assert r3.workers == 3
    assert len(files) == len(list(many.discover()))
    assert len(slices) > len(files)  # big files came back in several slices
    assert buffered(many) == buffered(one)  # same ids, same bodies (redacted, encoded)
    assert cursors(many) == cursors(one)  # same cursors and parser states
    assert many.tally == one.tally
    assert (r3.new_events, r3.parsed, r3.skipped) == (r1.new_events, r1.parsed, r1.skipped)
    # Nothing new: a second pass reads nothing.
    assert read_all(many).new_events == 0


def test_a_full_buffer_stops_the_workers_and_loses_nothing(home: Path, small_slices: None) -> None:
    expected = buffered((lambda r: (read_all(r), r)[1])(make_reader(home, "one", workers=1)))
    reader = make_reader(home, "many", workers=2, max_buffer_events=300, batch_size=1)
    delivered: list[bytes] = []
    todo = list(reader.discover())
    rounds = 0
    while True:
        result = reader.scan_many(todo, close_before=datetime.now().timestamp() + 60)
        sent = reader.outbox.next_batch(1_000_000)
        reader.outbox.acknowledge([s for s, *_ in sent], [])
        delivered += [i for _s, i, _a, _b in sent]
        rounds += 1
        if not result.full:
            break
        assert result.remaining
        todo = result.remaining
    assert rounds > 3
    assert set(delivered) == set(expected)  # none missing
    # None twice, except an event two files both hold (Codex copies a resumed session's history
    # into the new rollout): the buffer holds it once at a time, the server keeps it once.
    files_with: Counter[bytes] = Counter()
    for adapter, path in reader.discover():
        files_with.update({e.id.bytes for e in parse_file(adapter, path, Context(machine="m1"))})
    assert all(n <= files_with[i] for i, n in Counter(delivered).items())


def _dying_read_slice(job: source.Job) -> source.Slice:
    if "big-3" in job.path:
        os._exit(3)  # as if the kernel killed the worker (out of memory)
    return read_slice(job)


def test_a_dead_worker_is_replaced_by_reading_here(home: Path, small_slices: None,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    one = make_reader(home, "one", workers=1)
    read_all(one)
    monkeypatch.setattr(source, "read_slice", _dying_read_slice)
    many = make_reader(home, "many", workers=2)
    result = read_all(many)
    assert "worker process" in caplog.text
    assert buffered(many) == buffered(one)
    assert cursors(many) == cursors(one)
    assert result.new_events == len(buffered(one))


def test_dry_run_workers_count_what_file_by_file_counts(home: Path, small_slices: None) -> None:
    one = make_reader(home, "one", workers=1)
    one.dry_run = True
    read_all(one)
    many = make_reader(home, "many", workers=2)
    many.dry_run = True
    assert many.start_workers() == 2
    try:
        assert many._pool is not None  # workers yield to the developer's own work
        assert many._pool.submit(os.nice, 0).result() == min(19, os.nice(0) + 10)
        assert read_all(many).workers == 2
    finally:
        many.stop_workers()
    assert many.tally == one.tally and sum(one.tally["claude-code"].kinds.values()) > 1000
    assert many.outbox.pending() == 0 and many.outbox.files() == []


@settings(max_examples=300, deadline=None)
@given(agent=st.sampled_from(AGENTS), parts=st.lists(
    st.one_of(st.text(), st.integers(), st.none()), max_size=4))
def test_event_ids_are_uuid5(agent: str, parts: list) -> None:
    expected = uuid.uuid5(EVENT_NAMESPACE, "\x1f".join((agent, *map(str, parts))))
    got = event_id(agent, *parts)
    assert got == expected and str(got) == str(expected) and hash(got) == hash(expected)
    assert got.version == 5 and got.variant == uuid.RFC_4122


def test_workers_are_spawned_when_threads_run(home: Path, small_slices: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The live collector reads in a thread of a multi-threaded process: forking it is unsafe,
    so its workers are spawned and get a pickled copy of the reader."""
    methods: list[str] = []
    make_pool = source.worker_pool

    def spy(n: int, reader: source.SliceReader):
        pool = make_pool(n, reader)
        methods.append(pool._mp_context.get_start_method())
        return pool

    monkeypatch.setattr(source, "worker_pool", spy)
    one = make_reader(home, "one", workers=1)
    read_all(one)

    def in_thread() -> tuple[source.ManyResult, dict, dict]:
        many = make_reader(home, "many", workers=2)  # SQLite connections are per thread
        return read_all(many), buffered(many), cursors(many)

    with ThreadPoolExecutor(1) as thread:
        result, stored, files = thread.submit(in_thread).result()
    assert methods == ["spawn"] and result.workers == 2
    assert stored == buffered(one)
    assert files == cursors(one)


def _replacing_read_slice(job: source.Job) -> source.Slice:
    """Before the second slice of big-5 is read, the agent rotates the file away and starts a
    new transcript at the same path."""
    path = Path(job.path)
    if path.name == "big-5.jsonl" and job.offset > 0 and not path.with_suffix(".old").exists():
        path.rename(path.with_suffix(".old"))
        path.write_bytes(claude_session("big-5-new", 30, start=datetime(2026, 3, 1, tzinfo=UTC)))
    return read_slice(job)


def test_a_file_replaced_between_slices_is_read_again_from_its_start(
        home: Path, small_slices: None, monkeypatch: pytest.MonkeyPatch) -> None:
    path = home / ".claude" / "projects" / "-work-big" / "big-5.jsonl"
    old = [e.id.bytes for e in parse_file(ClaudeCode(), path, Context(machine="m1"))]
    monkeypatch.setattr(source, "read_slice", _replacing_read_slice)
    many = make_reader(home, "many", workers=2)
    read_all(many)
    assert path.with_suffix(".old").exists()  # the rotation happened mid-read
    one = make_reader(home, "one", workers=1)  # the files as they are now, file by file
    read_all(one)
    got, want = buffered(many), buffered(one)
    assert all(got.get(i) == body for i, body in want.items())  # nothing parsed with old state
    assert set(got) - set(want) <= set(old)  # the extra: the old file's first slice
    offset, state, _events, _skipped, size, _error = cursors(many)[str(path)]
    assert (offset, state, size) == cursors(one)[str(path)][:2] + cursors(one)[str(path)][4:5]


def test_the_buffer_limit_holds_with_workers(home: Path, small_slices: None) -> None:
    """Workers are handed no more than the buffer has room for; near the limit the reading
    goes on here, chunk by chunk, as without workers."""
    reader = make_reader(home, "many", workers=2, max_buffer_events=300, batch_size=1)
    todo = list(reader.discover())
    peaks = []
    while True:
        result = reader.scan_many(todo, close_before=datetime.now().timestamp() + 60)
        peaks.append(reader.outbox.pending())
        sent = reader.outbox.next_batch(1_000_000)
        reader.outbox.acknowledge([s for s, *_ in sent], [])
        if not result.full:
            break
        todo = result.remaining
    # A 16 KB chunk is at most ~40 events of these logs past the limit (as without workers).
    assert max(peaks) <= 300 + 60, peaks


def test_a_path_listed_twice_is_read_once(home: Path, small_slices: None) -> None:
    one = make_reader(home, "one", workers=2)
    files = list(one.discover())
    one.scan_many(files + files)
    two = make_reader(home, "two", workers=2)
    two.scan_many(files)
    assert one.tally == two.tally
    assert cursors(one) == cursors(two)  # events counted once per file
