"""Claude Code: every message counted with its final usage, and sub-agent calls seen only in
progress records (issue 11, part 8).

Fixtures of our own making (``tests/fixtures/agent-logs/claude-code/devlog``, see its
``generate.py``): expected numbers are read from the scripted usage of each line, not from the
parser. The server keeps, for one event id, the version with the highest ``revision``; ``final()``
below does the same to the parser's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.adapters.base import Context, SkipLine, Tally, event_id, parse_file
from collector.adapters.claude_code import (
    MAX_REMEMBERED,
    MAX_REVISABLE,
    ClaudeCode,
    ClaudeParser,
    State,
)
from collector.wire import Event

SHOP = Path(__file__).parent.parent / "fixtures" / "agent-logs" / "claude-code" / "devlog" / "-work-shop"
SPLIT = SHOP / "7d1c2a90-5b6e-4f3a-9c8d-1e2f3a4b5c6d.jsonl"
OLD_SUB = SHOP / "agent-0f9e8d7c.jsonl"
PARENT = SHOP / "3e9b7c1d-2a4f-4e6b-8c0d-9f1e2d3c4b5a.jsonl"
SUB = SHOP / "3e9b7c1d-2a4f-4e6b-8c0d-9f1e2d3c4b5a" / "subagents" / "agent-a1b2c3d4e5f6a7b8c.jsonl"
ORPHAN = SHOP / "c5a80f3e-6d7b-4c9a-b1e2-f3a4b5c6d7e8.jsonl"  # its sub-agent's file is gone
CTX = Context(machine="m1")
ADAPTER = ClaudeCode()


def calls(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "llm_call"]


def final(events: list[Event]) -> dict[str, Event]:
    """What the server keeps: per id, the version with the highest revision (the first of equals)."""
    kept: dict[str, Event] = {}
    for e in calls(events):
        if str(e.id) not in kept or e.revision > kept[str(e.id)].revision:
            kept[str(e.id)] = e
    return kept


def outputs(events: list[Event]) -> dict[str, int]:
    return {i: e.tokens.output for i, e in final(events).items() if e.tokens}


def call_id(message: str, request: str) -> str:
    return str(event_id("claude-code", "llm", f"{message}:{request}"))


def lines(path: Path) -> list[tuple[int, bytes]]:
    data = path.read_bytes()
    out, offset = [], 0
    for line in data.split(b"\n")[:-1]:
        out.append((offset, line))
        offset += len(line) + 1
    return out


# -- a message split by the records of other types ------------------------------------------------


def test_backfill_counts_a_split_message_once_with_its_final_usage() -> None:
    events = parse_file(ADAPTER, SPLIT, CTX)
    got = calls(events)
    a = call_id("msg_01A7fVq2interleave", "req_01A7fVq2interleave")
    b = call_id("msg_01B9kLm3quirk", "req_01B9kLm3quirk")
    assert [str(e.id) for e in got] == [a, b]  # each emitted once: read in one go
    # A: 12 and 64 before its tool results, 212 on the line after them
    assert got[0].tokens.output == 212 and got[0].stop_reason == "tool_use"
    # B: no stop reason on any line; a progress, an attachment and a system record in between
    assert got[1].tokens.output == 187 and got[1].stop_reason is None
    assert (got[0].tokens.input, got[0].tokens.cache_read, got[0].tokens.cache_write) == (3, 14210, 2048)
    assert got[0].revision == 3 + 212 + 14210 + 2048  # the call's total tokens
    # the rest of the session is read as before
    t = Tally.of(events)
    assert t.kinds == {"session_start": 1, "user_prompt": 1, "assistant_message": 2, "reasoning": 1,
                       "tool_call": 2, "tool_result": 2, "llm_call": 2, "system": 2}
    assert t.tokens["output"] == 212 + 187


def test_split_message_in_an_old_layout_subagent_file() -> None:
    events = parse_file(ADAPTER, OLD_SUB, CTX)
    got = calls(events)
    assert [e.tokens.output for e in got] == [95, 9]  # not the 40 before the Grep result
    assert {e.session for e in got} == {"7d1c2a90-5b6e-4f3a-9c8d-1e2f3a4b5c6d/0f9e8d7c"}


def test_the_quiet_period_passing_before_the_later_line_revises_the_call() -> None:
    """Live: the file goes quiet after the first tool result (the collector closes the call),
    then the message's last line arrives — after a restart of the collector, too."""
    rows = lines(SPLIT)
    cut = next(i for i, (_o, line) in enumerate(rows) if b"toolu_01ReadA" in line and b'"tool_result"' in line)
    for restart in (False, True):
        parser = ClaudeParser(SPLIT, CTX)
        out: list[Event] = []
        for offset, line in rows[:cut + 1]:
            out += parser.feed(line, offset)
        quiet = parser.idle()
        assert [(e.kind, e.tokens.output, e.revision) for e in quiet] == [
            ("llm_call", 64, 3 + 64 + 14210 + 2048)]
        if restart:
            parser = ClaudeParser(SPLIT, CTX, parser.snapshot())
        rest: list[Event] = []
        for offset, line in rows[cut + 1:]:
            rest += parser.feed(line, offset)
        rest += parser.idle()
        again = [e for e in calls(rest) if e.id == quiet[0].id]
        assert len(again) == 1  # sent again, once: same id, higher revision, final usage
        assert again[0].tokens.output == 212 and again[0].revision > quiet[0].revision
        assert (again[0].ts, again[0].seq, again[0].session) == (quiet[0].ts, quiet[0].seq, quiet[0].session)
        assert outputs(out + quiet + rest) == {
            str(quiet[0].id): 212, call_id("msg_01B9kLm3quirk", "req_01B9kLm3quirk"): 187}


def _assistant(msg: str, output: int, ts: str, stop: str | None = None, session: str = "s1") -> bytes:
    return json.dumps({"type": "assistant", "sessionId": session, "uuid": f"u-{msg}-{ts}",
                       "timestamp": ts, "requestId": f"r-{msg}",
                       "message": {"id": msg, "model": "claude-x", "role": "assistant",
                                   "content": [{"type": "text", "text": "x"}], "stop_reason": stop,
                                   "usage": {"input_tokens": 5, "output_tokens": output}}}).encode()


def _result(n: int, ts: str) -> bytes:
    return json.dumps({"type": "user", "sessionId": "s1", "uuid": f"r{n}", "timestamp": ts,
                       "message": {"role": "user", "content": [
                           {"type": "tool_result", "tool_use_id": f"t{n}", "content": "ok"}]}}).encode()


def test_a_later_line_without_more_usage_sends_nothing_again() -> None:
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    first = calls(parser.feed(_assistant("m1", 40, "2026-01-01T00:00:01Z", stop="tool_use"), 0))
    assert [e.tokens.output for e in first] == [40]
    parser.feed(_result(1, "2026-01-01T00:00:02Z"), 100)
    assert calls(parser.feed(_assistant("m1", 40, "2026-01-01T00:00:03Z", stop="tool_use"), 200)) == []
    assert calls(parser.feed(_assistant("m1", 39, "2026-01-01T00:00:04Z"), 300)) == []  # never less
    assert parser.idle() == []


def test_emitted_calls_kept_for_revision_are_bounded() -> None:
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    n = MAX_REVISABLE + MAX_REMEMBERED // 2
    for i in range(n):
        parser.feed(_assistant(f"m{i}", 10, f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", stop="end_turn"), i * 100)
    state = msgspec.msgpack.decode(parser.snapshot(), type=State)
    assert len(state.emitted) == MAX_REVISABLE and len(state.done) <= MAX_REMEMBERED
    assert len(parser.snapshot()) < 64 * 1024
    # a line of a recent message revises it; one of a message forgotten long ago is ignored
    recent = calls(parser.feed(_assistant(f"m{n - 1}", 99, "2026-01-02T00:00:00Z"), n * 100) + parser.idle())
    assert [(e.tokens.output, e.revision) for e in recent] == [(99, 104)]
    old = parser.feed(_assistant("m0", 99, "2026-01-02T00:00:01Z"), (n + 1) * 100) + parser.idle()
    assert calls(old) == []
    for i in range(n, n + MAX_REMEMBERED + MAX_REVISABLE):  # the state stays this size
        parser.feed(_assistant(f"m{i}", 10, f"2026-01-03T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                               stop="end_turn"), i * 100)
    state = msgspec.msgpack.decode(parser.snapshot(), type=State)
    assert (len(state.emitted), len(state.done)) == (MAX_REVISABLE, MAX_REMEMBERED)


# -- every interleaving ------------------------------------------------------------------------------

OTHERS = [
    {"type": "attachment", "attachment": {"type": "skill_listing"}},
    {"type": "system", "subtype": "informational", "content": "note", "level": "info"},
    {"type": "progress", "data": {"type": "bash_progress", "output": "…"}},
    {"type": "queue-operation", "operation": "enqueue"},
    {"type": "file-history-snapshot", "messageId": "x", "snapshot": {}},
    {"type": "last-prompt", "lastPrompt": "p"},
]


@st.composite
def sessions(draw) -> tuple[list[bytes], dict[str, int], list[str]]:
    """Messages of 1-4 lines with growing usage, in order; between any two lines anything else:
    tool results, other record types. Returns the lines, each message's final output, and what
    happens after each line (nothing, the quiet period passes, the collector restarts)."""
    out: list[bytes] = []
    want: dict[str, int] = {}
    clock = [0]

    def ts() -> str:
        clock[0] += 1
        return f"2026-01-01T{clock[0] // 3600:02d}:{clock[0] // 60 % 60:02d}:{clock[0] % 60:02d}Z"

    for m in range(draw(st.integers(1, 5))):
        msg = f"m{m}"
        k = draw(st.integers(1, 4))
        output = 0
        stop_last = draw(st.booleans())
        for i in range(k):
            output += draw(st.integers(1, 300))
            out.append(_assistant(msg, output, ts(), stop="tool_use" if stop_last and i == k - 1 else None))
            for _ in range(draw(st.integers(0, 2))):
                if draw(st.booleans()):
                    out.append(_result(len(out), ts()))
                else:
                    other = {**draw(st.sampled_from(OTHERS)), "sessionId": "s1", "timestamp": ts()}
                    out.append(json.dumps(other).encode())
        want[str(event_id("claude-code", "llm", f"{msg}:r-{msg}"))] = output
    after = draw(st.lists(st.sampled_from(["", "", "quiet", "restart", "quiet+restart"]),
                          min_size=len(out), max_size=len(out)))
    return out, want, after


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_every_interleaving_keeps_each_messages_final_usage(case) -> None:
    rows, want, after = case
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    events: list[Event] = []
    for i, (line, then) in enumerate(zip(rows, after)):
        events += parser.feed(line, i * 1000)
        if "quiet" in then:
            events += parser.idle()
        if "restart" in then:
            parser = ClaudeParser(Path("s1.jsonl"), CTX, parser.snapshot())
    events += parser.idle()
    assert outputs(events) == want
    by_id: dict[str, list[int]] = {}
    for e in calls(events):
        by_id.setdefault(str(e.id), []).append(e.revision)
    for revisions in by_id.values():  # each version sent supersedes the one before
        assert revisions == sorted(set(revisions))
    # read in one go (a backfill, or a live chunk holding the whole message): each call once
    whole = parse_file_lines(rows)
    assert outputs(whole) == want and len(calls(whole)) == len(want)


def parse_file_lines(rows: list[bytes]) -> list[Event]:
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    events: list[Event] = []
    for i, line in enumerate(rows):
        try:
            events += parser.feed(line, i * 1000)
        except SkipLine:
            pass
    return events + parser.idle()


@pytest.mark.parametrize("path", [SPLIT, OLD_SUB, PARENT, SUB, ORPHAN], ids=lambda p: p.name[:12])
def test_resume_from_any_line_gives_the_same_events(path: Path) -> None:
    whole = [msgspec.json.encode(e) for e in parse_file(ADAPTER, path, CTX)]
    rows = lines(path)
    for cut in range(1, len(rows)):
        parser = ClaudeParser(path, CTX)
        out: list[Event] = []
        for i, (offset, line) in enumerate(rows):
            if i == cut:
                parser = ClaudeParser(path, CTX, parser.snapshot())
            out += parser.feed(line, offset)
        out += parser.idle()
        assert [msgspec.json.encode(e) for e in out] == whole, f"resumed at line {cut}"


# -- sub-agent calls echoed in progress records --------------------------------------------------------

PARENT_SID = "3e9b7c1d-2a4f-4e6b-8c0d-9f1e2d3c4b5a"
CHILD_SID = f"{PARENT_SID}/a1b2c3d4e5f6a7b8c"


def test_progress_echoes_count_the_calls_of_a_subagent_whose_file_is_gone() -> None:
    events = parse_file(ADAPTER, ORPHAN, CTX)
    sid = "c5a80f3e-6d7b-4c9a-b1e2-f3a4b5c6d7e8"
    child = [e for e in calls(events) if e.session != sid]
    assert {(e.session, e.parent_session) for e in child} == {(f"{sid}/a9f8e7d6c5b4a3928", sid)}
    assert [(e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write)
            for e in child] == [("claude-haiku-4-5-20251001", 2001, 21, 20004, 2003),
                                ("claude-haiku-4-5-20251001", 2101, 31, 21004, 2103)]
    assert [str(e.id) for e in child] == [call_id(f"msg_02S1{sid[:6]}", f"req_02S1{sid[:6]}"),
                                          call_id(f"msg_02S2{sid[:6]}", f"req_02S2{sid[:6]}")]
    # the echoed call's duration: from the sub-agent's prompt to its last line, as in its file
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in child)
    # only LLM calls come from the echoes (the sub-agent's text and tools are its file's)
    assert {e.kind for e in events if e.session != sid} == {"llm_call"}
    parent = [e for e in calls(events) if e.session == sid]
    assert [e.tokens.output for e in parent] == [222, 333]


def test_a_call_in_both_the_echo_and_the_subagent_file_is_counted_once() -> None:
    echoed = parse_file(ADAPTER, PARENT, CTX)
    own = parse_file(ADAPTER, SUB, CTX)
    mine = {str(e.id): e for e in calls(echoed) if e.session == CHILD_SID}
    theirs = {str(e.id): e for e in calls(own)}
    assert set(mine) == set(theirs) and len(mine) == 2  # same ids: one call each
    assert {e.session for e in theirs.values()} == {CHILD_SID}
    assert {e.parent_session for e in [*mine.values(), *theirs.values()]} == {PARENT_SID}
    first = call_id(f"msg_02S1{PARENT_SID[:6]}", f"req_02S1{PARENT_SID[:6]}")
    # the sub-agent's file holds output 1 for that turn, the echo the final 21: the echo's copy
    # has the higher revision, so it wins in whatever order the two files are read
    assert (theirs[first].tokens.output, mine[first].tokens.output) == (1, 21)
    assert mine[first].revision > theirs[first].revision
    assert mine[first].ts == theirs[first].ts  # the sub-agent's own time, not the echo's
    for order in ((own, echoed), (echoed, own)):
        both = order[0] + order[1]
        assert outputs(both)[first] == 21
        assert len(final(both)) == 4  # 2 parent calls + 2 sub-agent calls
    # the backfill summary counts them once too, whether one reader or two (workers) read them
    t = Tally.of(own + echoed)
    assert (t.llm_calls, t.tokens["output"]) == (4, 222 + 333 + 21 + 31)
    merged = Tally.of(echoed)
    merged.merge(Tally.of(own))
    assert (merged.llm_calls, merged.tokens["output"], merged.kinds["llm_call"]) == (4, 222 + 333 + 21 + 31, 4)


def test_progress_records_of_other_shapes_are_ignored() -> None:
    parser = ClaudeParser(Path("p.jsonl"), CTX)
    base = {"type": "progress", "sessionId": "p", "timestamp": "2026-01-01T00:00:00Z"}
    for data in ({"type": "agent_progress"}, {"type": "agent_progress", "agentId": "a1", "message": "text"},
                 {"type": "agent_progress", "agentId": 5, "message": {"type": "assistant"}},
                 {"type": "hook_progress", "hookName": "x"}, [1, 2], "x", None,
                 {"type": "agent_progress", "agentId": "a1",
                  "message": {"type": "assistant", "message": {"id": "m", "model": "<synthetic>",
                                                               "usage": {"output_tokens": 3}}}}):
        assert parser.feed(json.dumps({**base, "data": data}).encode(), 0) == []
    assert parser.idle() == []
