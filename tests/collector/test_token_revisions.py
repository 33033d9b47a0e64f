"""A Claude Code message's final usage wins through the collector's real reading paths: live
tailing with the quiet period passing and collector restarts between a message's lines, and
backfill in worker processes with slices cut inside a message (real files, real SQLite; the
server's side of revisions is tested in ``tests/e2e/test_token_revisions.py``)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

import collector.source as source
from collector.adapters.base import Context, event_id
from collector.adapters.claude_code import ClaudeCode
from collector.config import CollectorSettings
from collector.outbox import Outbox
from collector.source import Reader

SHOP = Path(__file__).parent.parent / "fixtures" / "agent-logs" / "claude-code" / "devlog" / "-work-shop"
SPLIT = "7d1c2a90-5b6e-4f3a-9c8d-1e2f3a4b5c6d.jsonl"
ADAPTER = ClaudeCode()
A = str(event_id("claude-code", "llm", "msg_01A7fVq2interleave:req_01A7fVq2interleave"))
B = str(event_id("claude-code", "llm", "msg_01B9kLm3quirk:req_01B9kLm3quirk"))
SUB_FIRST = str(event_id("claude-code", "llm", "msg_02S13e9b7c:req_02S13e9b7c"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".claude" / "projects").mkdir(parents=True)
    return tmp_path


def make_reader(home: Path, state: str = "state", **settings: object) -> Reader:
    s = CollectorSettings(state_dir=str(home / state), agents=["claude-code"], **settings)
    return Reader(settings=s, outbox=Outbox(home / state / "buffer.sqlite3"), ctx=Context(machine="m1"),
                  adapters={"claude-code": ADAPTER}, env={}, home=home)


def llm_rows(reader: Reader) -> list[dict]:
    """The LLM calls waiting in the outbox, oldest first."""
    rows = [msgspec.json.decode(body) for _s, _i, _a, body in reader.outbox.next_batch(1_000_000)]
    return [r for r in rows if r["kind"] == "llm_call"]


def kept(rows: list[dict]) -> dict[str, int]:
    """Output tokens per call as the server keeps them: the highest revision of each id."""
    best: dict[str, dict] = {}
    for r in rows:
        if r["id"] not in best or r.get("revision", 0) > best[r["id"]].get("revision", 0):
            best[r["id"]] = r
    return {i: r["tokens"]["output"] for i, r in best.items()}


def split_lines() -> list[bytes]:
    return (SHOP / SPLIT).read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("deliver_first", [False, True], ids=["still-buffered", "delivered"])
def test_live_tail_quiet_period_and_restarts_between_a_messages_lines(
        home: Path, deliver_first: bool) -> None:
    path = home / ".claude" / "projects" / "-work-shop" / SPLIT
    path.parent.mkdir()
    rows = split_lines()
    first_result = next(i for i, line in enumerate(rows)
                        if b'"tool_result"' in line and b"toolu_01ReadA" in line)
    reader = make_reader(home)
    delivered: list[dict] = []
    with path.open("ab") as fh:
        for i, line in enumerate(rows):
            fh.write(line)
            fh.flush()
            reader.scan(ADAPTER, path)
            if i == first_result:
                # the agent pauses: the file goes quiet and the collector closes the call …
                reader.idle(ADAPTER, path)
                assert kept(llm_rows(reader)) == {A: 64}
                if deliver_first:  # … and sends it before the message's last line is written
                    sent = reader.outbox.next_batch(1_000)
                    delivered += [r for _s, _i, _a, b in sent
                                  if (r := msgspec.json.decode(b))["kind"] == "llm_call"]
                    reader.outbox.acknowledge([s for s, *_ in sent], [])
            if i in (first_result, first_result + 1, len(rows) - 3):
                reader.outbox.close()  # the collector restarts
                reader = make_reader(home)
    reader.idle(ADAPTER, path)
    waiting = llm_rows(reader)
    assert kept(delivered + waiting) == {A: 212, B: 187}
    # the revision is not dropped as a repeat of the first version: it replaces it while that
    # waits in the buffer, or is sent after it
    sent = [r["tokens"]["output"] for r in delivered + waiting if r["id"] == A]
    assert sent == ([64, 212] if deliver_first else [212])


def test_backfill_in_workers_with_slices_cut_inside_messages(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(SHOP, home / ".claude" / "projects" / "-work-shop")
    one = make_reader(home, "one")
    one.scan_many(list(one.discover()), close_before=datetime.now().timestamp() + 60)
    monkeypatch.setattr(source, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(source, "SLICE_BYTES", 512)  # a slice ends every few lines
    monkeypatch.setattr(source, "CHUNK", 512)
    many = make_reader(home, "many", workers=2)
    result = many.scan_many(list(many.discover()), close_before=datetime.now().timestamp() + 60)
    assert result.workers == 2
    got, want = llm_rows(many), llm_rows(one)

    def calls(rows: list[dict]) -> list[tuple]:  # copies of equal usage may differ in seq
        return sorted((r["id"], r.get("revision", 0), str(r["tokens"])) for r in rows)

    assert calls(got) == calls(want)
    # every message of one file emitted once, with its final usage
    split = [r for r in got if r["session"] == SPLIT.removesuffix(".jsonl")]
    assert [(r["id"], r["tokens"]["output"]) for r in split] == [(A, 212), (B, 187)]
    # the sub-agent call in both its file (output 1) and the parent's echo (21): whichever file
    # was read first, the buffer holds the echo's version, with the higher revision
    copies = [r for r in got if r["id"] == SUB_FIRST]
    assert [r["tokens"]["output"] for r in copies] == [21]
    # 2 + 2 (old-layout sub-agent) + 2 + 2 (sub-agent) + 2 + 2 (parent without its sub-agent's
    # file) distinct calls; the summary counts each once
    assert len(kept(got)) == 12
    assert many.tally["claude-code"].llm_calls == one.tally["claude-code"].llm_calls == 12


def test_the_buffer_keeps_only_the_highest_version_waiting(home: Path) -> None:
    from collector.outbox import FileRow

    outbox = Outbox(home / "state" / "buffer.sqlite3")
    eid = event_id("claude-code", "llm", "m:r").bytes

    def put(*revisions: int) -> int:
        return outbox.commit(FileRow(path="f", agent="claude-code"),
                             [(eid, "claude-code", b"%d" % r, r) for r in revisions])

    def waiting() -> list[bytes]:
        return [body for _s, _i, _a, body in outbox.next_batch(100)]

    assert put(0) == 1 and put(7) == 0 and waiting() == [b"7"]  # replaced: the buffer holds one
    assert put(5) == 0 and put(7) == 0 and waiting() == [b"7"]  # not above it: not stored
    sent = outbox.next_batch(100)  # in flight when a higher one arrives
    assert put(9) == 0 and waiting() == [b"9"]
    outbox.acknowledge([s for s, *_ in sent], [])  # the acknowledgement of 7 deletes nothing more
    assert waiting() == [b"9"]
    assert put(11, 13, 12) == 0 and waiting() == [b"13"]  # several in one commit: the highest
    other = event_id("claude-code", "llm", "m2:r").bytes
    assert outbox.commit(FileRow(path="f", agent="claude-code"), [(other, "claude-code", b"o")]) == 1
    assert waiting() == [b"13", b"o"]  # other events are not touched
    assert {i for _s, i, _a, _b in outbox.next_batch(100)} == {eid, other}  # keyed by event id


def test_a_buffer_of_an_older_collector_gets_the_revision_column(home: Path) -> None:
    import sqlite3

    path = home / "state" / "buffer.sqlite3"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, "
                "agent TEXT NOT NULL, body BLOB NOT NULL)")
    old.execute("INSERT INTO outbox (id, agent, body) VALUES (?, 'claude-code', 'old')", (b"k" * 16,))
    old.commit()
    old.close()
    from collector.outbox import FileRow

    outbox = Outbox(path)
    assert outbox.commit(FileRow(path="f", agent="claude-code"), [(b"k" * 16, "claude-code", b"new", 3)]) == 0
    assert [b for _s, _i, _a, b in outbox.next_batch(10)] == [b"new"]
