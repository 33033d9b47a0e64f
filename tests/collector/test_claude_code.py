"""Claude Code adapter against real and synthetic transcripts.

Expected numbers were counted by hand from the fixture files (line by line: distinct
``message.id`` values and the usage on each message's *last* line, tool_use / tool_result
blocks, prompts), not produced by the parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.adapters.base import Context, SkipLine, Tally, parse_file
from collector.adapters.claude_code import ClaudeCode, ClaudeParser
from collector.wire import Event

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agent-logs" / "claude-code"
CTX = Context(machine="test-machine")
ADAPTER = ClaudeCode()


def parse(rel: str) -> list[Event]:
    return parse_file(ADAPTER, FIXTURES / rel, CTX)


def tally(events: list[Event]) -> Tally:
    return Tally.of(events)


# (file, sessions, events by kind, tokens {input, output, cache_read, cache_write})
EXPECTED = [
    (
        # real 2.0.64 session: 3 prompts; 7 messages (one streamed over 4 lines: text + 3 Write);
        # Write x3, Read, Edit, Bash with their results; 4 text blocks
        "codemie-code/-tmp-private/4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl",
        {"4c2ddfdc-b619-4525-8d03-1950fb1b0257"},
        {"session_start": 1, "user_prompt": 3, "assistant_message": 4, "tool_call": 6,
         "tool_result": 6, "llm_call": 7},
        # output: 395 (last of 4,4,4,395) + 82 + 87 + 153 + 1 + 76 + 12
        {"input": 33, "output": 806, "cache_read": 214627, "cache_write": 37172},
    ),
    (
        # 16 summaries (session titles) split one message's two lines (6 and 19); a rejected
        # Write then "[Request interrupted by user for tool use]"; two Task sub-agent calls;
        # thinking blocks; two turn_duration records
        "codemie-code/session-9eda1058.jsonl",
        {"9eda1058-9706-484a-b992-d03f9cfa2546"},
        {"session_start": 1, "user_prompt": 3, "system": 18, "assistant_message": 5,
         "reasoning": 4, "tool_call": 3, "tool_result": 3, "decision": 2, "llm_call": 5},
        # output: 1662 (line 19, not line 6's 3) + 406 + 520 + 785 + 1136
        {"input": 47, "output": 4509, "cache_read": 22912, "cache_write": 147267},
    ),
    (
        "codemie-code/-tmp-private/agent-36541525.jsonl",
        {"4c2ddfdc-b619-4525-8d03-1950fb1b0257/36541525"},
        {"subagent_start": 1, "user_prompt": 1, "assistant_message": 1, "llm_call": 1},
        {"input": 3, "output": 3, "cache_read": 0, "cache_write": 16976},
    ),
    (
        # a summary before any record; the last Bash call has no result yet
        "codemie-code/incremental-subagents/turn-1.jsonl",
        {"e9fb405b-169f-40eb-9396-7e75076f045d"},
        {"session_start": 1, "system": 1, "user_prompt": 1, "reasoning": 7,
         "assistant_message": 2, "tool_call": 7, "tool_result": 6, "llm_call": 7},
        {"input": 82, "output": 1244, "cache_read": 154285, "cache_write": 61416},
    ),
    (
        # new layout <session>/subagents/agent-<id>.jsonl; parallel tool calls (4-5 per message)
        "codemie-code/incremental-subagents/turn-1/subagents/agent-a485154.jsonl",
        {"e9fb405b-169f-40eb-9396-7e75076f045d/a485154"},
        {"subagent_start": 1, "user_prompt": 1, "assistant_message": 3, "tool_call": 20,
         "tool_result": 20, "llm_call": 6},
        {"input": 5233, "output": 1845, "cache_read": 91980, "cache_write": 115531},
    ),
    (
        # usage-only lines without "type" (ccusage's fixture), each with costUSD
        "ccusage/projects/project-alpha/session-alpha/chat.jsonl",
        {"session-alpha"},
        {"session_start": 1, "llm_call": 3},
        {"input": 600, "output": 250, "cache_read": 70, "cache_write": 75},
    ),
]


@pytest.mark.parametrize("rel, sessions, kinds, tokens", EXPECTED, ids=[e[0].split("/")[-1] for e in EXPECTED])
def test_fixture_counts(rel: str, sessions: set[str], kinds: dict[str, int], tokens: dict[str, int]) -> None:
    events = parse(rel)
    t = tally(events)
    assert t.sessions == sessions
    assert t.kinds == kinds
    assert {k: t.tokens[k] for k in tokens} == tokens
    assert t.tokens["reasoning"] == 0  # Anthropic reports no separate reasoning tokens
    assert len({e.id for e in events}) == len(events), "event ids must be unique"


def test_parse_is_deterministic() -> None:
    rel = EXPECTED[1][0]
    assert [msgspec.json.encode(e) for e in parse(rel)] == [msgspec.json.encode(e) for e in parse(rel)]


@pytest.mark.parametrize("rel", [e[0] for e in EXPECTED], ids=[e[0].split("/")[-1] for e in EXPECTED])
def test_resume_from_any_line_gives_the_same_events(rel: str) -> None:
    """A restart may happen after any line: the state stored with the cursor must resume it
    exactly (including a message whose lines are split by the restart)."""
    path = FIXTURES / rel
    data = path.read_bytes()
    whole = [msgspec.json.encode(e) for e in parse(rel)]
    offsets = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    for cut in offsets[1:-1]:
        out: list[Event] = []
        parser = ClaudeParser(path, CTX)
        state = None
        for start, end in zip(offsets, offsets[1:]):
            if start == cut:
                state = parser.snapshot()
                parser = ClaudeParser(path, CTX, state)
            line = data[start:end - 1]
            if line.strip():
                try:
                    out.extend(parser.feed(line, start))
                except SkipLine:
                    pass
        out.extend(parser.idle())
        assert [msgspec.json.encode(e) for e in out] == whole, f"resumed at byte {cut}"


def test_llm_call_details() -> None:
    events = parse(EXPECTED[0][0])
    calls = [e for e in events if e.kind == "llm_call"]
    first = calls[0]
    assert first.model == "claude-sonnet-4-5-20250929"
    assert first.provider == "anthropic"
    assert first.agent_version == "2.0.64"
    assert first.ts.isoformat().startswith("2025-12-10T19:37:48.019")  # the first line's time
    assert first.duration_ms == 51_413 - 45_343  # prompt at :45.343 to the last line at :51.413
    assert first.workspace == "/tmp/private"
    assert first.project is not None and first.project.branch == "analytics-v2"


def test_tool_calls_and_results() -> None:
    events = parse(EXPECTED[0][0])
    calls = {e.tool_call_id: e for e in events if e.kind == "tool_call"}
    results = {e.tool_call_id: e for e in events if e.kind == "tool_result"}
    assert set(calls) == set(results)
    names = sorted(e.tool_name for e in calls.values())
    assert names == ["Bash", "Edit", "Read", "Write", "Write", "Write"]
    writes = [e for e in results.values() if e.tool_name == "Write"]
    assert {e.file_path for e in writes} == {"/tmp/private/hello.py", "/tmp/private/hello.md",
                                             "/tmp/private/hello.js"}
    # hello.py and hello.js are 7 lines, hello.md 13 (counted in the Write inputs)
    assert sorted(e.lines_added for e in writes) == [7, 7, 13]
    bash = next(e for e in calls.values() if e.tool_name == "Bash")
    assert bash.tool_category == "shell" and bash.command and "hello.js" in bash.command
    edit = next(e for e in results.values() if e.tool_name == "Edit")
    assert edit.tool_category == "file_edit" and edit.status == "ok"
    assert (edit.lines_added, edit.lines_removed) == (1, 0)
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in results.values())


def test_rejection_and_interruption() -> None:
    events = parse(EXPECTED[1][0])
    rejected = [e for e in events if e.kind == "tool_result" and e.status == "rejected"]
    assert len(rejected) == 1 and rejected[0].tool_name == "Write"
    decisions = sorted((e.status or "") for e in events if e.kind == "decision")
    assert decisions == ["cancelled", "rejected"]


def test_subagent_file_is_a_child_session() -> None:
    events = parse(EXPECTED[4][0])
    assert {e.parent_session for e in events} == {"e9fb405b-169f-40eb-9396-7e75076f045d"}
    start = events[0]
    assert start.kind == "subagent_start"
    errors = [e for e in events if e.kind == "tool_result" and e.status == "error"]
    assert len(errors) == 1


def _line(**rec) -> bytes:
    return json.dumps(rec).encode()


def _assistant(msg_id: str, block: dict, output: int, ts: str, stop: str | None = None) -> bytes:
    return _line(type="assistant", sessionId="s1", uuid=f"u-{msg_id}-{ts}", timestamp=ts,
                 requestId="r-" + msg_id,
                 message={"id": msg_id, "model": "claude-x", "role": "assistant", "content": [block],
                          "stop_reason": stop, "usage": {"input_tokens": 5, "output_tokens": output}})


def test_streamed_message_counts_once_with_final_usage_and_waits_until_complete() -> None:
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    out = parser.feed(_line(type="user", sessionId="s1", uuid="p1", timestamp="2026-01-01T00:00:00Z",
                            message={"role": "user", "content": "hi"}), 0)
    assert [e.kind for e in out] == ["session_start", "user_prompt"]
    out = parser.feed(_assistant("m1", {"type": "text", "text": "a"}, 3, "2026-01-01T00:00:01Z"), 100)
    assert [e.kind for e in out] == ["assistant_message"]  # the call is still open
    out = parser.feed(_assistant("m1", {"type": "text", "text": "b"}, 40, "2026-01-01T00:00:02Z"), 200)
    assert [e.kind for e in out] == ["assistant_message"]
    # restart here: the open call survives in the state
    parser = ClaudeParser(Path("s1.jsonl"), CTX, parser.snapshot())
    out = parser.feed(_line(type="user", sessionId="s1", uuid="p2", timestamp="2026-01-01T00:00:03Z",
                            message={"role": "user", "content": "more"}), 300)
    assert [e.kind for e in out] == ["user_prompt"]  # a user record does not close the message
    # a later line of the message (after the user record) still counts: its usage is the final one
    out = parser.feed(_assistant("m1", {"type": "text", "text": "c"}, 50, "2026-01-01T00:00:04Z"), 400)
    assert [e.kind for e in out] == ["assistant_message"]
    closed = parser.idle()
    assert [e.kind for e in closed] == ["llm_call"]
    assert closed[0].tokens is not None and closed[0].tokens.output == 50
    assert parser.idle() == []


def test_stop_reason_and_idle_close_the_call() -> None:
    parser = ClaudeParser(Path("s1.jsonl"), CTX)
    out = parser.feed(_assistant("m1", {"type": "text", "text": "a"}, 7, "2026-01-01T00:00:01Z",
                                 stop="end_turn"), 0)
    assert [e.kind for e in out] == ["session_start", "assistant_message", "llm_call"]
    out = parser.feed(_assistant("m2", {"type": "text", "text": "a"}, 9, "2026-01-01T00:00:05Z"), 100)
    assert "llm_call" not in [e.kind for e in out]
    closed = parser.idle()
    assert [e.kind for e in closed] == ["llm_call"] and closed[0].tokens.output == 9


def test_bad_lines_are_skipped() -> None:
    parser = ClaudeParser(Path("x.jsonl"), CTX)
    for bad in (b"{not json", b"[1, 2]", b"\x00\xff\xfe garbage", b'"text"', b'{"type": "\x80"}',
                _line(type="user", message={"content": "no timestamp"})):
        with pytest.raises(SkipLine):
            parser.feed(bad, 0)
    assert parser.feed(_line(type="some-future-type", timestamp="2026-01-01T00:00:00Z"), 0) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
record = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "assistant", "system", "summary", "progress", None])},
    optional={
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "bad", 5, None]),
        "sessionId": json_values, "uuid": json_values, "message": json_values,
        "toolUseResult": json_values, "agentId": json_values, "cwd": json_values,
        "summary": json_values, "requestId": json_values, "isSidechain": json_values,
        "data": json_values | st.fixed_dictionaries(
            {"type": st.just("agent_progress"), "agentId": json_values,
             "message": json_values | st.fixed_dictionaries(
                 {"type": st.sampled_from(["assistant", "user", None]), "message": json_values,
                  "requestId": json_values, "timestamp": json_values})}),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(record | json_values, max_size=6), st.binary(max_size=64))
def test_fuzzed_records_never_break_the_parser(records: list, garbage: bytes) -> None:
    parser = ClaudeParser(Path("fuzz.jsonl"), CTX)
    lines = [json.dumps(r).encode() for r in records] + [garbage]
    for i, line in enumerate(lines):
        try:
            events = parser.feed(line, i * 100)
        except SkipLine:
            continue
        assert all(isinstance(e, Event) for e in events)
        parser = ClaudeParser(Path("fuzz.jsonl"), CTX, parser.snapshot())
    for e in parser.idle():
        msgspec.json.decode(msgspec.json.encode(e), type=Event)  # valid on the wire
