"""Codex CLI adapter against the rollout fixtures.

Expected numbers were counted by hand from the fixture files, line by line (which records are
prompts, which ``token_count`` records carry a new total, the buckets of each ``last_token_usage``,
which rate-limit snapshots differ from the previous one), not produced by the parser.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.adapters.base import Context, SkipLine, Tally, event_id, parse_file
from collector.adapters.codex import Codex, CodexParser, command_of, patch_stats, read_output
from collector.wire import Event, ProjectRef

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agent-logs" / "codex"
ADAPTER = Codex()


def project_of(path: str) -> ProjectRef:
    return ProjectRef(path=path, name=path.rsplit("/", 1)[-1])


CTX = Context(machine="test-machine", project_of=project_of)


def parse(rel: str) -> list[Event]:
    return parse_file(ADAPTER, FIXTURES / rel, CTX)


def tally(events: list[Event]) -> Tally:
    return Tally.of(events)


def of_kind(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind]


# (file, sessions, events by kind, tokens {input, output, cache_read, cache_write, reasoning})
EXPECTED = [
    (
        # no session_meta: the session is the file stem. Two token_count records with different
        # totals: last_token_usage 1000 (250 cached) / 125 (75 reasoning), then 2500 (500 cached)
        # / 300 (200 reasoning). input = 750 + 2000.
        "ccusage/sessions/project-alpha/session-alpha.jsonl",
        {"session-alpha"},
        {"llm_call": 2},
        {"input": 2750, "output": 425, "cache_read": 750, "cache_write": 0, "reasoning": 275},
    ),
    (
        # session_meta; one prompt (line 7; the role=user items of lines 4 and 6 are context and
        # its duplicate); answer on line 11 (line 10 repeats it); token_count line 8 has no info
        # but the first rate limits (system), line 12 usage 1024 (512 cached) / 12 (8 reasoning)
        # with unchanged rate limits; task_complete (system).
        "codemie-code/turn-1.jsonl",
        {"a1b2c3d4-e5f6-7890-abcd-ef1234567890"},
        {"session_start": 1, "user_prompt": 1, "assistant_message": 1, "llm_call": 1,
         "system": 2},
        {"input": 512, "output": 12, "cache_read": 512, "cache_write": 0, "reasoning": 8},
    ),
    (
        # turn-1 plus a second turn: prompt (line 19), rate limits changed to 12% (line 20),
        # answer (line 23), usage 1100 (512 cached) / 20 (10 reasoning) (line 24, rate limits
        # as on line 20), task_complete. input = 512 + 588.
        "codemie-code/turn-2.jsonl",
        {"a1b2c3d4-e5f6-7890-abcd-ef1234567890"},
        {"session_start": 1, "user_prompt": 2, "assistant_message": 2, "llm_call": 2,
         "system": 4},
        {"input": 1100, "output": 32, "cache_read": 1024, "cache_write": 0, "reasoning": 18},
    ),
    (
        # exec_command + its output, spawn_agent, wait_agent (no output), the spawn's
        # collab_agent_spawn_end (a subagent_start of the child thread), one token_count
        # 5000 (1000 cached) / 200 without reasoning, task_complete.
        "codemie-code/turn-spawn-skill.jsonl",
        {"spawn-test-uuid", "child-thread-uuid"},
        {"session_start": 1, "user_prompt": 1, "tool_call": 3, "tool_result": 1,
         "subagent_start": 1, "llm_call": 1, "system": 1},
        {"input": 4000, "output": 200, "cache_read": 1000, "cache_write": 0, "reasoning": 0},
    ),
]
FILES = [row[0] for row in EXPECTED]


@pytest.mark.parametrize(("rel", "sessions", "kinds", "tokens"), EXPECTED)
def test_fixture_counts(rel: str, sessions: set[str], kinds: dict[str, int],
                        tokens: dict[str, int]) -> None:
    t = tally(parse(rel))
    assert t.sessions == sessions
    assert t.kinds == kinds
    assert t.llm_calls == kinds.get("llm_call", 0)
    assert t.tokens == tokens


@pytest.mark.parametrize("rel", FILES)
def test_events_are_valid_wire_events_with_unique_deterministic_ids(rel: str) -> None:
    events = parse(rel)
    assert events == parse(rel)
    assert len({e.id for e in events}) == len(events)
    for e in events:
        assert msgspec.json.decode(msgspec.json.encode(e), type=Event) == e
        assert e.agent == "codex" and e.machine == "test-machine"
    assert [e.seq for e in events] == sorted(e.seq for e in events)


@pytest.mark.parametrize("rel", FILES)
def test_resume_from_any_line_gives_the_same_events(rel: str) -> None:
    path = FIXTURES / rel
    data = path.read_bytes()
    whole = parse(rel)
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == ord("\n")][:-1]
    for split in range(len(starts) + 1):
        parser = ADAPTER.parser(path, CTX, None)
        events: list[Event] = []
        for n, start in enumerate(starts):
            if n == split:
                parser = ADAPTER.parser(path, CTX, parser.snapshot())
            line = data[start:data.index(b"\n", start)]
            events.extend(parser.feed(line, start))
        if split == len(starts):
            parser = ADAPTER.parser(path, CTX, parser.snapshot())
        events.extend(parser.idle())
        assert events == whole, f"split before line {split + 1}"


def test_session_start_facts() -> None:
    events = parse("codemie-code/turn-1.jsonl")
    start = events[0]
    assert start.kind == "session_start"
    assert start.ts == datetime(2026, 5, 12, 10, 0, tzinfo=UTC)
    assert start.seq == 0
    assert start.id == event_id("codex", "a1b2c3d4-e5f6-7890-abcd-ef1234567890", 0,
                                "session_start")
    assert start.agent_version == "0.129.0"
    assert start.provider == "openai"
    assert start.workspace == "/home/user/project"
    assert start.project == ProjectRef(
        path="/home/user/project", name="project", remote="https://github.com/user/project",
        branch="main", commit="abc123def456abc123def456abc123def456abc1")
    assert "base_instructions" not in start.payload
    assert start.payload["originator"] == "codex_exec"
    # every later event knows the model from turn_context and the same project
    for e in events[1:]:
        assert e.model == "o4-mini"
        assert e.project == start.project
        assert e.agent_version == "0.129.0"


def test_prompts_answers_and_turn_bookkeeping() -> None:
    events = parse("codemie-code/turn-2.jsonl")
    assert [e.content for e in of_kind(events, "user_prompt")] == [
        "Hello, Codex! Please explain what you do.", "What languages can you work with?"]
    answers = of_kind(events, "assistant_message")
    assert [e.content for e in answers] == [
        "I am Codex, an AI coding assistant by OpenAI.",
        ("I can work with many programming languages including Python, JavaScript, TypeScript, "
         "Go, and Rust.")]
    assert answers[0].payload == {"phase": "final_answer"}
    system = of_kind(events, "system")
    assert [e.content for e in system] == [
        "rate limits: primary 10% used (5h window), secondary 5% used (7d window)",
        "turn complete",
        "rate limits: primary 12% used (5h window), secondary 5% used (7d window)",
        "turn complete"]
    assert system[0].payload["plan_type"] == "plus"
    assert [e.duration_ms for e in system] == [None, 3200, None, 2200]
    # the encrypted reasoning items (no summary text) are no events
    assert not of_kind(events, "reasoning")


def test_llm_call_details() -> None:
    calls = of_kind(parse("ccusage/sessions/project-alpha/session-alpha.jsonl"), "llm_call")
    assert [c.model for c in calls] == ["gpt-5.2-codex", "gpt-5.3-codex"]
    assert [(c.tokens.input, c.tokens.cache_read, c.tokens.output, c.tokens.reasoning)
            for c in calls if c.tokens] == [(750, 250, 125, 75), (2000, 500, 300, 200)]
    assert calls[0].project is None and calls[0].workspace is None
    spawn = of_kind(parse("codemie-code/turn-spawn-skill.jsonl"), "llm_call")
    assert spawn[0].model == "gpt-5.4"  # from turn_context: token_count has no model
    assert spawn[0].provider == "openai"


def test_tools_and_subagent() -> None:
    events = parse("codemie-code/turn-spawn-skill.jsonl")
    calls = of_kind(events, "tool_call")
    assert [(c.tool_name, c.tool_category, c.tool_call_id) for c in calls] == [
        ("exec_command", "shell", "call_skill1"), ("spawn_agent", "subagent", "call_spawn1"),
        ("wait_agent", "other", "call_wait1")]
    assert calls[0].command == (
        "sed -n '1,50p' /home/user/.codex/plugins/cache/superpowers/skills/brainstorming/SKILL.md")
    assert calls[1].payload == {"agent_type": "explorer", "message": "review code"}
    (result,) = of_kind(events, "tool_result")
    assert (result.tool_call_id, result.tool_name, result.status, result.duration_ms,
            result.content) == ("call_skill1", "exec_command", "ok", 100, "ok")
    (sub,) = of_kind(events, "subagent_start")
    assert (sub.session, sub.parent_session, sub.content, sub.tool_call_id) == (
        "child-thread-uuid", "spawn-test-uuid", "explorer", "call_spawn1")
    start = events[0]
    assert start.project == ProjectRef(path="/home/user/project", name="project", branch="main")
    (done,) = of_kind(events, "system")
    assert done.duration_ms == 20_099  # task_complete without duration_ms: since task_started


# --- synthetic records -------------------------------------------------------------------------


def line(ts: str, kind: str, payload: Any) -> bytes:
    return json.dumps({"timestamp": ts, "type": kind, "payload": payload}).encode()


def feed_all(lines: list[bytes], name: str = "rollout-2026-05-12T10-00-00-"
             "0199a213-81c0-7800-8aa1-bbab2a035a53.jsonl") -> list[Event]:
    parser = ADAPTER.parser(Path("/home/me/.codex/sessions/2026/05/12") / name, CTX, None)
    out: list[Event] = []
    offset = 0
    for raw in lines:
        out.extend(parser.feed(raw, offset))
        offset += len(raw) + 1
    return out


def usage(inp: int, cached: int, out: int, reasoning: int = 0) -> dict[str, int]:
    return {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out,
            "reasoning_output_tokens": reasoning, "total_tokens": inp + out}


def test_repeated_token_count_with_unchanged_total_is_not_counted() -> None:
    first = {"total_token_usage": usage(100, 40, 10), "last_token_usage": usage(100, 40, 10)}
    second = {"total_token_usage": usage(300, 140, 30, 5),
              "last_token_usage": usage(200, 100, 20, 5)}
    limits = {"primary": {"used_percent": 1.0, "window_minutes": 300}}
    limits2 = {"primary": {"used_percent": 2.0, "window_minutes": 300}}
    events = feed_all([
        line("2026-05-12T10:00:00Z", "event_msg", {"type": "token_count", "info": first,
                                                   "rate_limits": limits}),
        # the same total again, only the rate limits moved: no second call
        line("2026-05-12T10:00:01Z", "event_msg", {"type": "token_count", "info": first,
                                                   "rate_limits": limits2}),
        # the same total and the same rate limits: nothing at all
        line("2026-05-12T10:00:02Z", "event_msg", {"type": "token_count", "info": first,
                                                   "rate_limits": limits2}),
        line("2026-05-12T10:00:03Z", "event_msg", {"type": "token_count", "info": second}),
        # no last_token_usage: the growth of the total (400-300, 150-140, 45-30, 7-5)
        line("2026-05-12T10:00:04Z", "event_msg", {"type": "token_count", "info": {
            "total_token_usage": usage(400, 150, 45, 7)}}),
    ])
    assert [e.kind for e in events] == ["llm_call", "system", "system", "llm_call", "llm_call"]
    calls = of_kind(events, "llm_call")
    assert [(c.tokens.input, c.tokens.cache_read, c.tokens.output, c.tokens.reasoning)
            for c in calls if c.tokens] == [(60, 40, 10, 0), (100, 100, 20, 5), (90, 10, 15, 2)]
    # no session_meta: the session is the rollout's uuid
    assert {e.session for e in events} == {"0199a213-81c0-7800-8aa1-bbab2a035a53"}


def test_apply_patch_shell_failures_and_interruptions() -> None:
    patch = ("*** Begin Patch\n*** Update File: src/app.py\n@@ def f():\n-    return 1\n"
             "+    return 2\n+    # two\n*** Add File: docs/new.md\n+hello\n*** End Patch\n")
    ok = json.dumps({"output": "Success. Updated the following files:\nM src/app.py\n",
                     "metadata": {"exit_code": 0, "duration_seconds": 0.1}})
    events = feed_all([
        line("2026-05-12T10:00:00Z", "response_item", {
            "type": "custom_tool_call", "name": "apply_patch", "call_id": "p1", "input": patch}),
        line("2026-05-12T10:00:00.250Z", "response_item", {
            "type": "custom_tool_call_output", "call_id": "p1", "output": ok}),
        line("2026-05-12T10:00:01Z", "response_item", {
            "type": "function_call", "name": "shell", "call_id": "s1",
            "arguments": json.dumps({"command": ["bash", "-lc", "pytest -q"]})}),
        line("2026-05-12T10:00:03Z", "response_item", {
            "type": "function_call_output", "call_id": "s1",
            "output": "Exit code: 1\nWall time: 2 seconds\nOutput:\n1 failed\n"}),
        line("2026-05-12T10:00:04Z", "response_item", {
            "type": "function_call", "name": "github__create_issue", "call_id": "m1",
            "arguments": "{\"title\": \"x\"}"}),
        line("2026-05-12T10:00:05Z", "response_item", {
            "type": "function_call_output", "call_id": "m1", "output": "aborted"}),
        line("2026-05-12T10:00:06Z", "event_msg",
             {"type": "turn_aborted", "reason": "interrupted"}),
        line("2026-05-12T10:00:07Z", "event_msg",
             {"type": "error", "message": "stream disconnected"}),
        line("2026-05-12T10:00:08Z", "compacted", {"message": "summary of the work so far"}),
    ])
    calls = of_kind(events, "tool_call")
    assert [(c.tool_name, c.tool_category, c.file_path, c.command) for c in calls] == [
        ("apply_patch", "file_edit", "src/app.py", None),
        ("shell", "shell", None, "pytest -q"),
        ("github__create_issue", "mcp", None, None)]
    assert calls[0].payload["files"] == ["src/app.py", "docs/new.md"]
    results = of_kind(events, "tool_result")
    assert [(r.status, r.duration_ms, r.lines_added, r.lines_removed, r.error)
            for r in results] == [("ok", 250, 3, 1, None),
                                  ("error", 2000, None, None, "exit code 1"),
                                  ("cancelled", 1000, None, None, None)]
    assert results[0].content == "Success. Updated the following files:\nM src/app.py\n"
    assert results[0].file_path == "src/app.py"
    (decision,) = of_kind(events, "decision")
    assert (decision.status, decision.content) == ("cancelled", "interrupted")
    (error,) = of_kind(events, "error")
    assert error.error == "stream disconnected"
    (compaction,) = of_kind(events, "compaction")
    assert compaction.content == "summary of the work so far"


def test_child_rollout_names_its_parent_and_reasoning_summary_is_kept() -> None:
    events = feed_all([
        line("2026-05-12T10:00:00Z", "session_meta", {
            "id": "child", "cwd": "/w", "source": {"subagent": {"thread_spawn": {
                "parent_thread_id": "parent", "depth": 1}}}}),
        line("2026-05-12T10:00:01Z", "response_item", {
            "type": "reasoning", "summary": [{"type": "summary_text", "text": "**Plan**"}],
            "encrypted_content": "x"}),
        line("2026-05-12T10:00:02Z", "event_msg", {"type": "agent_reasoning", "text": "**Plan**"}),
        # a second session_meta (copied history) does not start another session
        line("2026-05-12T10:00:03Z", "session_meta", {"id": "other"}),
    ])
    assert [e.kind for e in events] == ["session_start", "reasoning"]
    assert all(e.session == "child" and e.parent_session == "parent" for e in events)
    assert events[1].content == "**Plan**"


def test_bad_lines_are_skipped_and_unknown_ones_ignored() -> None:
    parser = ADAPTER.parser(Path("s/rollout-x.jsonl"), CTX, None)
    for bad in (b"{", b"[1, 2]", b"\"text\"", b"\xff\xfe", b'{"type": "event_msg"}',
                b'{"timestamp": "yesterday", "type": "event_msg", "payload": {}}'):
        with pytest.raises(SkipLine):
            parser.feed(bad, 0)
    assert parser.feed(line("2026-05-12T10:00:00Z", "brand_new_kind", {"a": 1}), 0) == []
    assert parser.feed(line("2026-05-12T10:00:00Z", "event_msg", None), 0) == []
    assert parser.feed(line("2026-05-12T10:00:00Z", "response_item", {"type": "ghost"}), 0) == []


def test_adapter_roots_and_matches(tmp_path: Path) -> None:
    assert ADAPTER.roots({}, tmp_path) == [tmp_path / ".codex" / "sessions"]
    assert ADAPTER.roots({"CODEX_HOME": "/opt/codex"}, tmp_path) == [Path("/opt/codex/sessions")]
    assert ADAPTER.matches(
        Path("/h/.codex/sessions/2026/05/12/rollout-2026-05-12T10-00-00-a.jsonl"))
    assert ADAPTER.matches(Path("/h/.codex/sessions/project-alpha/session-alpha.jsonl"))
    assert not ADAPTER.matches(Path("/h/.codex/sessions/2026/rollout-x.json"))
    assert not ADAPTER.matches(Path("/h/.codex/history.jsonl"))
    assert isinstance(ADAPTER.parser(Path("a.jsonl"), CTX, None), CodexParser)


def test_helpers() -> None:
    assert command_of(["bash", "-lc", "ls -la"]) == "ls -la"
    assert command_of(["git", "commit", "-m", "a b"]) == "git commit -m 'a b'"
    assert command_of("make test") == "make test"
    assert command_of(["ls", 3]) is None
    assert patch_stats("no patch here") == ([], None, None)
    assert patch_stats("*** Begin Patch\n*** Delete File: a\n*** End Patch") == (["a"], 0, 0)
    assert read_output("Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 2\n"
                       "Output:\nboom")[1] == 2
    assert read_output([{"type": "input_text", "text": "hi"}])[:2] == ("hi", None)
    assert read_output({"content": "nope", "success": False}) == ("nope", None, None, True)
    assert read_output(None) == (None, None, None, False)


# --- fuzzing -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
FIELDS = ["id", "cwd", "git", "cli_version", "model_provider", "model", "source", "message",
          "info", "rate_limits", "total_token_usage", "last_token_usage", "input_tokens",
          "cached_input_tokens", "output_tokens", "call_id", "name", "arguments", "input",
          "output", "role", "content", "summary", "new_thread_id", "new_agent_role", "exit_code",
          "success", "duration_ms", "primary", "used_percent", "window_minutes", "command", "cmd"]
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).flatmap(
    lambda d: st.sampled_from([
        "session_meta", "message", "reasoning", "function_call", "custom_tool_call",
        "function_call_output", "custom_tool_call_output", "local_shell_call", "web_search_call",
        "user_message", "agent_message", "token_count", "task_started", "task_complete",
        "turn_aborted", "error", "stream_error", "collab_agent_spawn_end", "exec_command_end",
        "patch_apply_end", "other"]).map(lambda t: {**d, "type": t}))
timestamps = (st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
              | st.integers() | st.text(max_size=10) | st.none())
records = st.fixed_dictionaries({
    "timestamp": timestamps,
    "type": st.sampled_from(["session_meta", "turn_context", "response_item", "event_msg",
                             "compacted", "x"]),
    "payload": payloads | json_values,
})


def check_feed(parser: CodexParser, raw: bytes, offset: int) -> list[Event]:
    try:
        events = parser.feed(raw, offset)
    except SkipLine:
        return []
    assert isinstance(events, list)
    for e in events:
        # every event survives the wire's own validation
        assert msgspec.json.decode(msgspec.json.encode(e), type=Event).id == e.id
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(records | json_values, max_size=5), st.binary(max_size=64))
def test_fuzzed_records_never_break_the_parser(recs: list, garbage: bytes) -> None:
    path = Path("/h/.codex/sessions/rollout-fuzz.jsonl")
    parser = ADAPTER.parser(path, CTX, None)
    check_feed(parser, garbage, 0)
    offset = len(garbage) + 1
    for rec in recs:
        raw = json.dumps(rec).encode()
        check_feed(parser, raw, offset)
        # and the state always survives a restart
        parser = ADAPTER.parser(path, CTX, parser.snapshot())
        offset += len(raw) + 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_are_events_or_skipped(raw: bytes) -> None:
    check_feed(ADAPTER.parser(Path("rollout-b.jsonl"), CTX, None), raw, 0)
