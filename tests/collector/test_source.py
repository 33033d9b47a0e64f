"""Tailing one file into the SQLite outbox: cursors, partial lines, truncation, rotation,
bad input and back-pressure (real files, real SQLite; no server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from collector.adapters.base import Context
from collector.adapters.claude_code import ClaudeCode
from collector.config import CollectorSettings
from collector.outbox import FileRow, Outbox
from collector.source import MAX_LINE_BYTES, Reader

ADAPTER = ClaudeCode()


def prompt(n: int, text: str | None = None) -> bytes:
    return json.dumps({
        "type": "user", "sessionId": "sess-1", "uuid": f"prompt-{n}", "cwd": "/nonexistent/app",
        "timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        "message": {"role": "user", "content": text or f"prompt number {n}"},
    }).encode() + b"\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".claude" / "projects" / "-app").mkdir(parents=True)
    return tmp_path


def make_reader(home: Path, **settings) -> Reader:
    s = CollectorSettings(state_dir=str(home / "state"), agents=["claude-code"], **settings)
    return Reader(settings=s, outbox=Outbox(home / "state" / "buffer.sqlite3"),
                  ctx=Context(machine="m1"), adapters={"claude-code": ADAPTER}, env={}, home=home)


def bodies(reader: Reader) -> list[dict]:
    return [msgspec.json.decode(body) for _s, _i, _a, body in reader.outbox.next_batch(10_000)]


def prompts(reader: Reader) -> list[str]:
    return [b["content"] for b in bodies(reader) if b["kind"] == "user_prompt"]


def log_file(home: Path) -> Path:
    return home / ".claude" / "projects" / "-app" / "sess-1.jsonl"


def test_discovery_finds_the_agents_files(home: Path) -> None:
    log_file(home).write_bytes(prompt(1))
    (home / ".claude" / "projects" / "-app" / "notes.txt").write_text("not a log")
    reader = make_reader(home)
    assert [p for _a, p in reader.discover()] == [log_file(home)]
    assert reader.adapter_for(log_file(home)) is ADAPTER
    assert reader.adapter_for(home / "elsewhere.jsonl") is None


def test_unfinished_last_line_waits_for_its_newline(home: Path) -> None:
    path = log_file(home)
    third = prompt(3)
    path.write_bytes(prompt(1) + prompt(2) + third[:20])
    reader = make_reader(home)
    result = reader.scan(ADAPTER, path)
    assert result.skipped == 0
    assert prompts(reader) == ["prompt number 1", "prompt number 2"]
    assert reader.outbox.file(str(path)).offset == len(prompt(1) + prompt(2))
    with path.open("ab") as fh:
        fh.write(third[20:])
    reader.scan(ADAPTER, path)
    assert prompts(reader) == ["prompt number 1", "prompt number 2", "prompt number 3"]


def test_cursor_survives_a_new_reader(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1))
    make_reader(home).scan(ADAPTER, path)
    with path.open("ab") as fh:
        fh.write(prompt(2))
    reader = make_reader(home)  # a restarted collector
    assert reader.scan(ADAPTER, path).new_events == 1
    assert prompts(reader) == ["prompt number 1", "prompt number 2"]


def test_truncated_file_is_read_again_without_duplicates(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1) + prompt(2) + prompt(3))
    reader = make_reader(home)
    reader.scan(ADAPTER, path)
    path.write_bytes(prompt(1) + prompt(4))  # shorter than the cursor: rewritten
    result = reader.scan(ADAPTER, path)
    assert result.new_events == 1  # prompt 1 has the same id as before
    assert prompts(reader) == [f"prompt number {n}" for n in (1, 2, 3, 4)]


def test_replaced_file_is_read_from_the_start(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1) + prompt(2))
    reader = make_reader(home)
    reader.scan(ADAPTER, path)
    rotated = path.with_name("rotated.tmp")
    rotated.write_bytes(prompt(5) + prompt(6) + prompt(7))
    os.replace(rotated, path)  # new inode, longer than the cursor
    reader.scan(ADAPTER, path)
    assert prompts(reader) == [f"prompt number {n}" for n in (1, 2, 5, 6, 7)]


def test_bad_lines_and_a_50_mb_line_are_skipped_and_counted(home: Path) -> None:
    path = log_file(home)
    huge = b'{"type":"user","junk":"' + b"x" * (50 * 1024 * 1024) + b'"}\n'
    assert len(huge) > MAX_LINE_BYTES
    path.write_bytes(prompt(1) + b"{broken json\n" + os.urandom(300).replace(b"\n", b"") + b"\n"
                     + huge + prompt(2) + b"\n\n" + prompt(3))
    reader = make_reader(home)
    result = reader.scan(ADAPTER, path)
    assert result.skipped == 3
    assert prompts(reader) == ["prompt number 1", "prompt number 2", "prompt number 3"]
    row = reader.outbox.file(str(path))
    assert row.skipped == 3 and row.offset == path.stat().st_size


def test_deleted_file_is_forgotten(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1))
    reader = make_reader(home)
    reader.scan(ADAPTER, path)
    path.unlink()
    assert reader.scan(ADAPTER, path).gone
    assert reader.outbox.file(str(path)) is None
    assert prompts(reader) == ["prompt number 1"]  # what was read stays buffered


def test_full_buffer_pauses_reading_and_loses_nothing(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(b"".join(prompt(n) for n in range(1, 6)))
    reader = make_reader(home, max_buffer_events=2, batch_size=1)
    result = reader.scan(ADAPTER, path)  # one chunk fits everything: stored, then full
    assert not result.full
    with path.open("ab") as fh:
        fh.write(prompt(6))
    assert reader.scan(ADAPTER, path).full
    assert reader.outbox.meta().get("buffer_full") == "1"
    sent = reader.outbox.next_batch(100)
    reader.outbox.acknowledge([s for s, *_ in sent], [])
    reader.scan(ADAPTER, path)
    assert prompts(reader) == ["prompt number 6"]
    assert reader.outbox.meta().get("buffer_full") == "0"


def test_secrets_are_redacted_before_the_buffer(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1, "deploy with OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx1234 please"))
    reader = make_reader(home)
    reader.scan(ADAPTER, path)
    raw = b"".join(body for *_x, body in reader.outbox.next_batch(100))
    assert b"sk-proj-abcdefghijkl" not in raw
    assert prompts(reader) == ["deploy with OPENAI_API_KEY=[REDACTED:openai-key] please"]


def test_metadata_only_sends_no_content(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(prompt(1, "my secret plan"))
    reader = make_reader(home, metadata_only=True)
    reader.scan(ADAPTER, path)
    kinds = [b["kind"] for b in bodies(reader)]
    assert kinds == ["session_start", "user_prompt"]
    assert b"secret plan" not in b"".join(body for *_x, body in reader.outbox.next_batch(100))
    assert all("content" not in b and "payload" not in b for b in bodies(reader))


def test_delivered_events_give_their_space_back(home: Path) -> None:
    path = log_file(home)
    path.write_bytes(b"".join(prompt(n, "x" * 4000) for n in range(400)))
    reader = make_reader(home)
    reader.scan(ADAPTER, path)
    db_file = home / "state" / "buffer.sqlite3"
    reader.outbox.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = db_file.stat().st_size
    sent = reader.outbox.next_batch(10_000)
    reader.outbox.acknowledge([s for s, *_ in sent], [])
    reader.outbox.reclaim()
    reader.outbox.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert reader.outbox.pending() == 0
    assert db_file.stat().st_size < full / 4, (full, db_file.stat().st_size)


def test_acknowledge_deletes_exactly_the_batch(home: Path) -> None:
    """Acknowledged rows go (as ranges of consecutive seqs); rows between them stay."""
    outbox = Outbox(home / "state" / "buffer.sqlite3")
    outbox.commit(FileRow(path="f", agent="codex"),
                  [(bytes([n]) * 16, "codex", b"{}") for n in range(1, 11)])
    seqs = [s for s, *_ in outbox.next_batch(100)]
    keep = {seqs[3], seqs[5], seqs[9]}
    outbox.acknowledge([s for s in reversed(seqs) if s not in keep], [])
    assert {s for s, *_ in outbox.next_batch(100)} == keep
    assert outbox.pending() == 3 and outbox.pending_at_most() == seqs[9] - seqs[3] + 1
