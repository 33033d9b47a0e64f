"""collector.adapters.copilot: VS Code Copilot chat sessions (``.json`` and ``.jsonl``).

Expected numbers are written by hand from reading the fixtures under
``tests/fixtures/agent-logs/copilot/`` (see ``tests/fixtures/agent-logs/SOURCES.md``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.adapters.base import Context, SkipLine, Tally, parse_file
from collector.adapters.copilot import (
    Copilot,
    CopilotParser,
    config_bases,
    edit_line_counts,
    replay_change_log,
    tool_category,
    uri_to_path,
    workspace_folder,
)
from collector.wire import Event, ProjectRef, event_from_obj

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agent-logs" / "copilot"
SYNTH_ID = "bef5721e-62ab-4792-9138-52601b13f430"
SYNTH_DIR = FIXTURES / "synthetic" / "workspaceStorage" / "ws-synth"
SYNTH_JSON = SYNTH_DIR / "chatSessions" / f"{SYNTH_ID}.json"
SYNTH_JSONL = SYNTH_DIR / "chatSessions" / f"{SYNTH_ID}.jsonl"
DEVLOG = FIXTURES / "devlog" / "copilot-array-value.json"
RAJBOS = FIXTURES / "github-copilot-token-usage" / "chatSessions" / "session-03-twelve-days-ago.json"
APP_PY = "/home/dev/my project/src/app.py"

ADAPTER = Copilot()
CTX = Context(machine="test-machine")


def parse(path: Path, ctx: Context = CTX) -> list[Event]:
    return parse_file(ADAPTER, path, ctx)


def tally(events: list[Event]) -> Tally:
    return Tally.of(events)


def of(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind]


def assert_valid_on_the_wire(events: list[Event]) -> None:
    for e in events:
        event_from_obj(msgspec.json.decode(msgspec.json.encode(e)))


def parse_doc(path: Path, doc: Any, state: bytes | None = None) -> tuple[list[Event], bytes]:
    parser = CopilotParser(path, CTX, state)
    events = parser.parse(json.dumps(doc).encode())
    return events, parser.snapshot()


# -- fixtures ----------------------------------------------------------------------------------


def test_synthetic_session_counts() -> None:
    events = parse(SYNTH_JSON)
    t = tally(events)
    assert t.sessions == {SYNTH_ID}
    assert t.kinds == {
        "session_start": 1,
        "user_prompt": 3,
        # attachment, readFile, pytest | replaceString, textEdit, rm -rf build
        "tool_call": 6,
        "tool_result": 4,
        "reasoning": 1,
        "assistant_message": 3,
        "llm_call": 3,
        "decision": 2,  # the rejected rm -rf build, the cancelled third request
    }
    assert t.llm_calls == 3
    # 12873 + 15210 reported, 9 estimated ("Now also add type hints everywhere": 34 chars)
    assert t.tokens["input"] == 28092
    # 412 + 268 reported, 5 estimated ("Adding type hints to": 20 chars)
    assert t.tokens["output"] == 685
    calls = of(events, "llm_call")
    assert [c.tokens.estimated for c in calls] == [False, False, True]
    assert [c.model for c in calls] == ["gpt-4.1-2025-04-14", "claude-sonnet-4.5", "claude-sonnet-4.5"]
    assert [c.duration_ms for c in calls] == [8400, 15300, 2100]
    assert [c.status for c in calls] == ["ok", "ok", "cancelled"]
    assert [c.stop_reason for c in calls] == [None, None, "cancelled"]
    assert {c.provider for c in calls} == {"github-copilot"}
    assert_valid_on_the_wire(events)


def test_synthetic_session_fields() -> None:
    events = parse(SYNTH_JSON)
    start = events[0]
    assert start.kind == "session_start"
    assert start.ts == datetime(2026, 1, 1, 9, 59, 50, tzinfo=UTC)  # creationDate
    assert start.content == "Rename main and run the tests"
    assert {e.workspace for e in events} == {"/home/dev/my project"}
    assert all(e.project == ProjectRef(path="/home/dev/my project") for e in events)
    assert {e.session for e in events} == {SYNTH_ID}
    assert {e.agent for e in events} == {"copilot"}

    prompts = of(events, "user_prompt")
    assert [p.content for p in prompts] == [
        "Read src/app.py and run the tests",
        "Rename main to run and delete the build directory",
        "Now also add type hints everywhere",
    ]
    assert [p.ts for p in prompts] == [datetime(2026, 1, 1, 10, m, tzinfo=UTC) for m in (0, 1, 2)]

    calls = {(e.tool_name, e.tool_call_id): e for e in of(events, "tool_call")}
    attachment = calls[("attachment", None)]
    assert (attachment.tool_category, attachment.status, attachment.file_path) == (
        "file_read", "ok", APP_PY)
    read = calls[("copilot_readFile", "toolu_01_read")]
    assert (read.tool_category, read.file_path) == ("file_read", APP_PY)
    assert read.status is None  # the outcome is on the tool_result
    assert calls[("run_in_terminal", "toolu_02_pytest")].command == "pytest -q"
    assert calls[("run_in_terminal", "toolu_04_rm")].command == "rm -rf build"
    assert calls[("copilot_replaceString", "toolu_03_edit")].tool_category == "file_edit"
    edit = calls[("textEdit", None)]
    assert (edit.tool_category, edit.status, edit.file_path) == ("file_edit", "ok", APP_PY)
    # +1 -0 (insert at 1:1), +1 -1 (3:1-4:1), +1 -1 (7:5-7:9), +2 -2 (10:1-12:1), [] nothing
    assert (edit.lines_added, edit.lines_removed) == (5, 4)

    results = {e.tool_call_id: e for e in of(events, "tool_result")}
    assert {k: r.status for k, r in results.items()} == {
        "toolu_01_read": "ok", "toolu_02_pytest": "ok", "toolu_03_edit": "ok",
        "toolu_04_rm": "rejected"}
    assert results["toolu_02_pytest"].duration_ms == 1520
    assert results["toolu_02_pytest"].content.endswith("12 passed in 1.31s")

    decisions = of(events, "decision")
    assert [(d.status, d.tool_call_id) for d in decisions] == [
        ("rejected", "toolu_04_rm"), ("cancelled", None)]

    texts = [m.content for m in of(events, "assistant_message")]
    assert texts == [
        "The file defines `main()`. Running the tests now.\n\nAll 12 tests pass.",
        "I renamed `main` to `run`. I did not delete `build/` because you declined.",
        "Adding type hints to",
    ]
    assert [r.content for r in of(events, "reasoning")] == [
        "I should read the file before running anything."]
    assert len({e.id for e in events}) == len(events)
    assert events == parse(SYNTH_JSON)  # deterministic: same ids, same everything


def test_devlog_fixture_request_in_progress() -> None:
    # One request, no `result`, not cancelled, no later request: still in progress.
    events = parse(DEVLOG)
    t = tally(events)
    assert t.sessions == {"copilot-array-value"}  # no sessionId: the file stem
    assert t.kinds == {"session_start": 1, "user_prompt": 1}
    assert t.llm_calls == 0
    assert events[1].content == "Test request with array value"
    assert events[1].ts == datetime(2024, 10, 28, 16, 13, tzinfo=UTC)  # 1730131980000 ms
    assert events[1].workspace is None
    assert_valid_on_the_wire(events)


def test_devlog_fixture_completed_later_emits_only_the_response() -> None:
    doc = json.loads(DEVLOG.read_bytes())
    first, state = parse_doc(DEVLOG, doc)
    doc["requests"][0]["result"] = {}
    events, _ = parse_doc(DEVLOG, doc, state)
    t = tally(events)
    # the `[]` thinking item is empty; progressTaskSerialized is not mapped
    assert t.kinds == {"reasoning": 1, "assistant_message": 1, "llm_call": 1}
    (call,) = of(events, "llm_call")
    assert call.model == "claude-sonnet-4.5"  # modelId without "copilot/"
    # estimates, chars / 4 rounded up: prompt 29 -> 8; text 25 -> 7; thinking 22 -> 6
    assert call.tokens.estimated is True
    assert (call.tokens.input, call.tokens.output, call.tokens.reasoning) == (8, 13, 6)
    assert of(events, "assistant_message")[0].content == "Here's the response text."
    assert of(events, "reasoning")[0].content == "Normal string thinking"
    assert not {e.id for e in first} & {e.id for e in events}


def test_rajbos_fixture() -> None:
    events = parse(RAJBOS)
    t = tally(events)
    assert t.sessions == {"session-03-twelve-days-ago"}
    assert t.kinds == {"session_start": 1, "user_prompt": 3, "assistant_message": 3,
                       "reasoning": 1, "llm_call": 3}
    assert t.llm_calls == 3
    assert t.tokens["input"] == 52 + 38 + 28 == 118  # result.promptTokens
    assert t.tokens["output"] == 462 + 478 + 348 == 1288  # result.outputTokens
    calls = of(events, "llm_call")
    assert [c.model for c in calls] == ["claude-sonnet-4.5", "o3", "gpt-4o"]
    assert not any(c.tokens.estimated for c in calls)
    assert {e.workspace for e in events} == {None}  # not under workspaceStorage/<id>
    assert_valid_on_the_wire(events)


# -- where -------------------------------------------------------------------------------------


def test_config_bases_per_platform(tmp_path: Path) -> None:
    home = tmp_path
    assert config_bases({}, home, "linux") == [home / ".config"]
    assert config_bases({"XDG_CONFIG_HOME": "/x/cfg"}, home, "linux") == [Path("/x/cfg"), home / ".config"]
    assert config_bases({}, home, "darwin") == [home / "Library" / "Application Support"]
    assert config_bases({"APPDATA": "/w/Roaming"}, home, "win32") == [Path("/w/Roaming")]
    assert config_bases({}, home, "win32") == [home / "AppData" / "Roaming"]


def test_roots(tmp_path: Path) -> None:
    roots = ADAPTER.roots({}, tmp_path)
    assert tmp_path / ".vscode-server" / "data" / "User" / "workspaceStorage" in roots
    assert (tmp_path / ".vscode-server-insiders" / "data" / "User" / "globalStorage"
            / "emptyWindowChatSessions") in roots
    for base in config_bases({}, tmp_path, __import__("sys").platform):
        for app in ("Code", "Code - Insiders", "VSCodium"):
            assert base / app / "User" / "workspaceStorage" in roots
            assert base / app / "User" / "globalStorage" / "emptyWindowChatSessions" in roots
    assert len(roots) == len(set(roots))


@pytest.mark.parametrize(("path", "expected"), [
    ("Code/User/workspaceStorage/abc/chatSessions/s.json", True),
    ("Code/User/workspaceStorage/abc/chatSessions/s.jsonl", True),
    ("Code/User/globalStorage/emptyWindowChatSessions/s.json", True),
    ("Code/User/globalStorage/emptyWindowChatSessions/s.jsonl", True),
    ("Code/User/workspaceStorage/abc/workspace.json", False),
    ("Code/User/workspaceStorage/abc/chatSessions/s.txt", False),
    ("Code/User/workspaceStorage/abc/chatEditingSessions/x/state.json", False),
    ("elsewhere/chatSessions/s.json", False),
])
def test_matches(path: str, expected: bool) -> None:
    assert ADAPTER.matches(Path("/home/me/.config") / path) is expected


@pytest.mark.parametrize(("uri", "expected"), [
    ("file:///home/me/my%20project", "/home/me/my project"),
    ("file:///home/me/proj/", "/home/me/proj"),
    ("file:///c%3A/Users/me/proj", "c:/Users/me/proj"),
    ("file:///C:/Users/me/proj", "C:/Users/me/proj"),
    ("vscode-remote://ssh-remote+box/home/me/proj", "/home/me/proj"),
    ("vscode-remote://ssh-remote%2Bbox/srv/a%23b", "/srv/a#b"),
    ("vscode-remote://wsl%2Bubuntu/home/me/x", "/home/me/x"),
    ("file://server/share/proj", "//server/share/proj"),
    ("/already/a/path", "/already/a/path"),
    ("", None),
    (None, None),
])
def test_uri_to_path(uri: str | None, expected: str | None) -> None:
    assert uri_to_path(uri) == expected


def test_workspace_folder_fixtures() -> None:
    assert workspace_folder(FIXTURES / "devlog" / "workspaceStorage" / "test-workspace-1") == (
        "/Users/testuser/projects/test-project")
    assert workspace_folder(SYNTH_DIR) == "/home/dev/my project"


def _storage(tmp_path: Path, meta: Any) -> Path:
    d = tmp_path / "workspaceStorage" / "abc"
    d.mkdir(parents=True)
    (d / "workspace.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return d


def test_workspace_folder_multi_root(tmp_path: Path) -> None:
    ws_dir = tmp_path / "My Work"
    ws_dir.mkdir()
    ws_file = ws_dir / "team.code-workspace"
    ws_file.write_text('{\n  // JSON with comments\n  "folders": [\n    {"path": "../app"},\n'
                       '    {"path": "/abs/other"},\n  ],\n  /* settings */ "settings": {},\n}\n')
    uri = "file://" + str(ws_file).replace(" ", "%20")
    assert workspace_folder(_storage(tmp_path, {"workspace": uri})) == str(tmp_path / "app")


def test_workspace_folder_multi_root_absolute_and_uri(tmp_path: Path) -> None:
    ws_file = tmp_path / "x.code-workspace"
    ws_file.write_text(json.dumps({"folders": [{"uri": "vscode-remote://ssh-remote+h/srv/app"}]}))
    meta = {"workspace": "file://" + str(ws_file)}
    assert workspace_folder(_storage(tmp_path, meta)) == "/srv/app"


def test_workspace_folder_multi_root_unreadable(tmp_path: Path) -> None:
    meta = {"workspace": "file:///nowhere/at%20all/x.code-workspace"}
    assert workspace_folder(_storage(tmp_path, meta)) == "/nowhere/at all/x.code-workspace"


@pytest.mark.parametrize("meta", ["{not json", "[]", {"configuration": {}}, {"folder": 3}])
def test_workspace_folder_missing_or_malformed(tmp_path: Path, meta: Any) -> None:
    assert workspace_folder(_storage(tmp_path, meta)) is None


def test_workspace_folder_without_workspace_json(tmp_path: Path) -> None:
    assert workspace_folder(tmp_path) is None


def test_project_comes_from_the_context(tmp_path: Path) -> None:
    storage = _storage(tmp_path, {"folder": "file:///c%3A/Users/me/app"})
    (storage / "chatSessions").mkdir()
    path = storage / "chatSessions" / f"{SYNTH_ID}.json"
    path.write_bytes(SYNTH_JSON.read_bytes())
    asked: list[str] = []

    def project_of(folder: str) -> ProjectRef:
        asked.append(folder)
        return ProjectRef(remote="git@github.com:acme/app.git", path=folder)

    events = parse(path, Context(machine="m", project_of=project_of))
    assert asked == ["c:/Users/me/app"]  # once per parser
    assert {e.project.remote for e in events} == {"git@github.com:acme/app.git"}
    assert {e.workspace for e in events} == {"c:/Users/me/app"}


def test_empty_window_session_has_no_workspace(tmp_path: Path) -> None:
    d = tmp_path / "globalStorage" / "emptyWindowChatSessions"
    d.mkdir(parents=True)
    path = d / f"{SYNTH_ID}.json"
    path.write_bytes(SYNTH_JSON.read_bytes())
    assert ADAPTER.matches(path)
    events = parse(path)
    assert {(e.workspace, e.project) for e in events} == {(None, None)}


# -- change logs -------------------------------------------------------------------------------


def log(*entries: Any) -> bytes:
    return b"".join(
        (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in entries)


def test_replay_set_push_delete() -> None:
    data = log(
        {"kind": 0, "v": {"requests": [{"id": 1}], "title": "a", "tmp": 1}},
        {"kind": 1, "k": ["title"], "v": "b"},
        {"kind": 2, "k": ["requests"], "v": [{"id": 2}, {"id": 3}]},
        {"kind": 2, "k": ["requests", 0, "response"], "v": {"value": "one item"}},
        {"kind": 1, "k": ["requests", 1, "result"], "v": {"ok": True}},
        {"kind": 3, "k": ["tmp"]},
        {"kind": 2, "k": ["requests"], "v": [{"id": 4}], "i": 2},
        {"kind": 2, "k": ["requests", 0, "response"]},  # no v: nothing appended
    )
    assert replay_change_log(data) == {
        "requests": [{"id": 1, "response": [{"value": "one item"}]},
                     {"id": 2, "result": {"ok": True}}, {"id": 4}],
        "title": "b",
    }


def test_replay_creates_missing_paths() -> None:
    data = log(
        {"kind": 0, "v": {}},
        {"kind": 1, "k": ["a", "b"], "v": 1},
        {"kind": 2, "k": ["list"], "v": [1]},
        {"kind": 1, "k": ["requests", 0, "result"], "v": {}},  # index 0 of a new list
    )
    assert replay_change_log(data) == {"a": {"b": 1}, "list": [1], "requests": [{"result": {}}]}


def test_replay_is_lenient() -> None:
    data = log(
        {"kind": 0, "v": {"requests": [], "n": 1}},
        b"{not json",
        b"[1, 2]",
        {"kind": 9, "k": ["n"], "v": 5},  # unknown kind
        {"kind": True, "k": ["n"], "v": 6},  # a boolean is not kind 1
        {"kind": 1, "k": ["requests", 5, "x"], "v": 1},  # beyond the end of the list
        {"kind": 1, "k": ["n", "deeper"], "v": 1},  # through a number
        {"kind": 1, "k": "n", "v": 7},  # k is not a list
        {"kind": 1, "k": ["n"], "v": 2},
    ) + b'{"kind":1,"k":["n"],"v":'  # unfinished last line
    assert replay_change_log(data) == {"requests": [], "n": 2}


def test_replay_without_an_initial_line() -> None:
    assert replay_change_log(b"") is None
    assert replay_change_log(b'{"kind":0,"v":{"a"') is None
    assert replay_change_log(log({"kind": 1, "k": ["a"], "v": 1})) == {"a": 1}


def test_jsonl_fixture_replays_to_the_json_fixture() -> None:
    assert replay_change_log(SYNTH_JSONL.read_bytes()) == json.loads(SYNTH_JSON.read_bytes())


def test_jsonl_fixture_yields_the_same_events() -> None:
    assert ADAPTER.matches(SYNTH_JSONL)
    assert parse(SYNTH_JSONL) == parse(SYNTH_JSON)


def test_jsonl_growing_line_by_line_emits_each_event_once() -> None:
    lines = SYNTH_JSONL.read_bytes().splitlines(keepends=True)
    state: bytes | None = None
    seen: list[Event] = []
    for n in range(1, len(lines) + 1):
        parser = CopilotParser(SYNTH_JSONL, CTX, state)
        seen += parser.parse(b"".join(lines[:n]))
        state = parser.snapshot()
    whole = parse(SYNTH_JSON)
    assert len(seen) == len({e.id for e in seen})
    assert {e.id for e in seen} == {e.id for e in whole}
    # the first line holds request 1 in progress: its prompt (and attachment) come out first
    assert [e.kind for e in seen[:3]] == ["session_start", "user_prompt", "tool_call"]


USAGE_JSONL = (FIXTURES / "devlog-usage" / "workspaceStorage" / "ws-usage" / "chatSessions"
               / "6a1f2e3d-4c5b-4a69-8f7e-0d1c2b3a4f5e.jsonl")


def test_counts_recorded_at_result_usage_or_result_are_read_not_estimated(tmp_path: Path) -> None:
    """Request 1 keeps its counts at ``result.usage`` (promptTokens / completionTokens), request
    2 at ``result`` (promptTokens / outputTokens); request 3 records none and is estimated."""
    as_json = tmp_path / "workspaceStorage" / "ws" / "chatSessions" / "s.json"
    as_json.parent.mkdir(parents=True)
    as_json.write_text(json.dumps(replay_change_log(USAGE_JSONL.read_bytes())))
    for path in (USAGE_JSONL, as_json):  # the change log and the whole-document form
        calls = of(parse(path), "llm_call")
        assert [(c.tokens.input, c.tokens.output, c.tokens.estimated) for c in calls] == [
            (9421, 388, False), (11020, 254, False),
            # "Thanks" (6 characters) and "You're welcome." (15): about four a token
            (2, 4, True)]
        assert [c.model for c in calls] == ["claude-sonnet-4.5", "gpt-5", "gpt-5"]
        assert [c.duration_ms for c in calls] == [5200, 3100, 900]


# -- state -------------------------------------------------------------------------------------


def test_reparse_with_restored_state_emits_nothing() -> None:
    data = SYNTH_JSON.read_bytes()
    parser = CopilotParser(SYNTH_JSON, CTX)
    assert parser.parse(data)
    assert parser.parse(data) == []
    assert CopilotParser(SYNTH_JSON, CTX, parser.snapshot()).parse(data) == []


def test_rewritten_document_emits_only_what_is_new() -> None:
    doc = json.loads(SYNTH_JSON.read_bytes())
    early = json.loads(SYNTH_JSON.read_bytes())
    del early["requests"][2]
    del early["requests"][1]["result"]  # request 2 still running, and the last one
    first, state = parse_doc(SYNTH_JSON, early)
    assert tally(first).kinds == {"session_start": 1, "user_prompt": 2, "tool_call": 3,
                                  "tool_result": 2, "reasoning": 1, "assistant_message": 1,
                                  "llm_call": 1}
    second, state = parse_doc(SYNTH_JSON, doc, state)
    # request 2's response (its prompt was sent) and all of request 3
    assert tally(second).kinds == {"user_prompt": 1, "tool_call": 3, "tool_result": 2,
                                   "assistant_message": 2, "llm_call": 2, "decision": 2}
    assert {e.id for e in first + second} == {e.id for e in parse(SYNTH_JSON)}

    doc["requests"].append({"requestId": "request_new", "timestamp": "2026-01-01T10:05:00Z",
                            "message": {"text": "One more"}, "response": [{"value": "Done."}],
                            "result": {"metadata": {"promptTokens": 10, "outputTokens": 2}}})
    third, state = parse_doc(SYNTH_JSON, doc, state)
    assert [(e.kind, e.content) for e in third] == [
        ("user_prompt", "One more"), ("assistant_message", "Done."), ("llm_call", None)]
    assert third[0].ts == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert third[2].tokens.input == 10
    assert parse_doc(SYNTH_JSON, doc, state)[0] == []


def test_a_later_request_completes_an_unfinished_one() -> None:
    doc = {"sessionId": "s", "creationDate": 1767261600000, "requests": [
        {"requestId": "r1", "message": {"text": "first"}, "response": [{"value": "partial"}]}]}
    first, state = parse_doc(SYNTH_JSON, doc)
    assert [e.kind for e in first] == ["session_start", "user_prompt"]
    doc["requests"].append({"requestId": "r2", "message": {"text": "second"}})
    second, _ = parse_doc(SYNTH_JSON, doc, state)
    assert [e.kind for e in second] == ["assistant_message", "llm_call", "user_prompt"]


def test_explicit_pending_model_state_waits() -> None:
    doc = {"sessionId": "s", "requests": [
        {"requestId": "r1", "message": "old string message", "modelState": {"value": 0},
         "result": {"metadata": {"promptTokens": 1}}}]}
    events, _ = parse_doc(SYNTH_JSON, doc)
    assert [(e.kind, e.content) for e in events] == [
        ("session_start", None), ("user_prompt", "old string message")]


def test_corrupt_state_starts_afresh() -> None:
    parser = CopilotParser(SYNTH_JSON, CTX, b"\xff not a state")
    assert len(parser.parse(SYNTH_JSON.read_bytes())) == 23


def test_session_without_requests_emits_nothing() -> None:
    assert parse_doc(SYNTH_JSON, {"sessionId": "s", "requests": []})[0] == []


# -- mapping details ---------------------------------------------------------------------------


def test_error_request() -> None:
    doc = {"sessionId": "s", "requests": [
        {"requestId": "r1", "timestamp": 1767261600000, "modelId": "copilot/gpt-4o",
         "message": {"text": "abcd"},
         "result": {"errorDetails": {"message": "Sorry, the response was filtered.",
                                     "responseIsFiltered": True}}}]}
    events, _ = parse_doc(SYNTH_JSON, doc)
    (call,) = of(events, "llm_call")
    assert (call.status, call.stop_reason) == ("error", "content_filter")
    assert (call.tokens.input, call.tokens.output, call.tokens.estimated) == (1, 0, True)
    (error,) = of(events, "error")
    assert error.error == "Sorry, the response was filtered."
    assert_valid_on_the_wire(events)


def _tool_doc(item: dict, **request: Any) -> dict:
    return {"sessionId": "s", "requests": [
        {"requestId": "r1", "message": {"text": "go"}, "response": [item], "result": {},
         **request}]}


@pytest.mark.parametrize(("item", "request_fields", "status"), [
    ({"isConfirmed": True, "isComplete": True}, {}, "ok"),
    ({"isConfirmed": False}, {}, "rejected"),
    ({"isConfirmed": {"type": 0}}, {}, "rejected"),
    ({"isConfirmed": {"type": 5}}, {}, "cancelled"),
    ({"isComplete": False}, {}, "error"),
    ({"isComplete": False}, {"isCanceled": True}, "cancelled"),
    ({"resultDetails": {"input": "{}", "output": [], "isError": True}}, {}, "error"),
    ({"toolSpecificData": {"kind": "terminal", "commandLine": {"original": "false"},
                           "terminalCommandState": {"exitCode": 1}}}, {}, "error"),
])
def test_tool_status(item: dict, request_fields: dict, status: str) -> None:
    item = {"kind": "toolInvocationSerialized", "toolId": "run_in_terminal",
            "toolCallId": "c1", **item}
    events, _ = parse_doc(SYNTH_JSON, _tool_doc(item, **request_fields))
    (result,) = of(events, "tool_result")
    assert result.status == status
    assert len(of(events, "decision")) == (status == "rejected") + ("isCanceled" in request_fields)


def test_tool_file_path_and_command_variants() -> None:
    item = {"kind": "toolInvocationSerialized", "toolId": "run_in_terminal", "toolCallId": "c1",
            "invocationMessage": {"value": "x", "uris": {"file:///c%3A/w/a.py": {
                "$mid": 1, "path": "/c:/w/a.py", "scheme": "file"}}},
            "toolSpecificData": {"kind": "terminal", "commandLine": {
                "original": "ls", "toolEdited": "ls -a", "userEdited": "ls -la"}}}
    events, _ = parse_doc(SYNTH_JSON, _tool_doc(item))
    (call,) = of(events, "tool_call")
    assert (call.file_path, call.command) == ("c:/w/a.py", "ls -la")
    legacy = {"kind": "toolInvocationSerialized", "toolId": "runInTerminal",
              "toolSpecificData": {"kind": "terminal", "command": "make", "language": "sh"}}
    events, _ = parse_doc(SYNTH_JSON, _tool_doc(legacy))
    (call,) = of(events, "tool_call")
    assert (call.command, call.tool_category, call.tool_call_id) == ("make", "shell", None)


@pytest.mark.parametrize(("tool", "source", "kind", "category"), [
    ("copilot_readFile", None, None, "file_read"),
    ("copilot_createFile", None, None, "file_write"),
    ("copilot_replaceString", None, None, "file_edit"),
    ("copilot_applyPatch", None, None, "file_edit"),
    ("copilot_insertEdit", None, None, "file_edit"),
    ("run_in_terminal", None, None, "shell"),
    ("copilot_findTextInFiles", None, None, "search"),
    ("copilot_findFiles", None, None, "search"),
    ("runSubagent", None, None, "subagent"),
    ("fetch_webpage", None, None, "web"),
    ("mcp_github_get_issue", None, None, "mcp"),
    ("get_issue", "mcp", None, "mcp"),
    ("myExtension_tool", None, "terminal", "shell"),
    ("someNewEditTool", None, None, "file_edit"),
    ("frobnicate", None, None, "other"),
])
def test_tool_category(tool: str, source: str | None, kind: str | None, category: str) -> None:
    assert tool_category(tool, source, kind) == category


@pytest.mark.parametrize(("edits", "counts"), [
    ([{"text": "a\nb\n", "range": {"startLineNumber": 1, "startColumn": 1,
                                   "endLineNumber": 1, "endColumn": 1}}], (2, 0)),
    ([[{"text": "", "range": {"startLineNumber": 2, "startColumn": 1,
                              "endLineNumber": 5, "endColumn": 1}}]], (0, 3)),
    ([[{"text": "x", "range": {"startLineNumber": 2, "startColumn": 1,
                               "endLineNumber": 4, "endColumn": 7}}]], (1, 3)),
    ([{"text": "no range"}, "junk", [None]], (1, 0)),
    (None, (0, 0)),
])
def test_edit_line_counts(edits: Any, counts: tuple[int, int]) -> None:
    assert edit_line_counts(edits) == counts


def test_markdown_variants_and_inline_references() -> None:
    doc = {"sessionId": "s", "requests": [{"requestId": "r1", "message": {"text": "q"}, "result": {},
        "response": [
            {"kind": None, "value": ["See ", {"value": "the file "}]},
            {"kind": "inlineReference", "inlineReference": {"fsPath": "/w/src/main.py"}},
            {"kind": "inlineReference", "name": "Foo", "inlineReference": {"uri": "file:///w/x"}},
            {"kind": "markdownContent", "content": {"value": "."}},
            {"kind": "thinking", "value": ["", " "]},
            {"kind": "somethingNew", "value": "ignored"},
            "not an object",
        ]}]}
    events, _ = parse_doc(SYNTH_JSON, doc)
    assert [m.content for m in of(events, "assistant_message")] == [
        "See the file `main.py``Foo`."]
    assert of(events, "reasoning") == []


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"null", b'"text"', b"42"])
def test_malformed_documents_raise_skipline(data: bytes) -> None:
    with pytest.raises(SkipLine):
        CopilotParser(SYNTH_JSON, CTX).parse(data)
    with pytest.raises(SkipLine):
        CopilotParser(SYNTH_JSONL, CTX).parse(data)


# -- fuzzing -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATHS = [SYNTH_JSON, SYNTH_JSONL]


def _parse_or_skip(path: Path, data: bytes) -> list[Event]:
    try:
        events = CopilotParser(path, CTX).parse(data)
    except SkipLine:
        return []
    assert isinstance(events, list)
    assert all(isinstance(e, Event) for e in events)
    return events


@FUZZ
@given(data=st.binary(max_size=300), jsonl=st.booleans())
def test_fuzz_arbitrary_bytes(data: bytes, jsonl: bool) -> None:
    _parse_or_skip(PATHS[jsonl], data)


@FUZZ
@given(value=JSON_VALUES, jsonl=st.booleans())
def test_fuzz_arbitrary_json(value: Any, jsonl: bool) -> None:
    _parse_or_skip(PATHS[jsonl], json.dumps(value).encode())


SMALL = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-5, max_value=2**45) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=2)
    | st.dictionaries(st.sampled_from(["value", "type", "path", "fsPath", "text", "range",
                                       "startLineNumber", "endLineNumber", "uris", "kind"]),
                      children, max_size=3),
    max_leaves=4,
)
ITEM = st.fixed_dictionaries(
    {"kind": st.sampled_from([None, "markdownContent", "thinking", "toolInvocationSerialized",
                              "textEditGroup", "inlineReference", "other"])},
    optional={k: SMALL for k in ["value", "content", "toolId", "isConfirmed", "isComplete",
                                  "invocationMessage", "toolSpecificData", "uri", "edits"]})
REQUEST = st.fixed_dictionaries(
    {"response": st.lists(ITEM, max_size=3)},
    optional={k: SMALL for k in ["requestId", "timestamp", "modelId", "message", "result",
                                  "isCanceled", "modelState", "variableData"]})


@FUZZ
@given(requests=st.lists(REQUEST, max_size=2),
       top=st.dictionaries(st.sampled_from(["sessionId", "creationDate", "customTitle"]), SMALL))
def test_fuzz_session_shaped_documents_stay_valid_on_the_wire(
        requests: list[dict], top: dict) -> None:
    data = json.dumps({**top, "requests": requests}).encode()
    events = _parse_or_skip(SYNTH_JSON, data)
    assert_valid_on_the_wire(events)
    assert len({e.id for e in events}) == len(events)
