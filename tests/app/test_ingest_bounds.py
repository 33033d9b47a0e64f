"""One event's odd value never fails its batch (issue 11, part 1): each example found — NUL in
any text field, numbers beyond their column, timestamps at the ends of the range, keys longer
than a btree entry, payloads nested a thousand deep, and what a JSON encoder other than ours
writes (NaN, lone surrogates, 1e400, invalid UTF-8) — sent over real HTTP beside a valid event:
the valid one is stored, the odd one stored cleaned or rejected alone with a reason naming its
field. Each test sends its batch both ways the server decodes a body: the typed fast path
(every event valid for msgspec, ids lowercase) and the general path (a neighbour that msgspec
rejects — an unknown kind — sends the body through plain JSON decoding)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from app.ingest.identity import session_id
from tests.factories import INGEST, MACHINE, event

PATHS = ("typed", "general")


def long_path(chars: int, component: int = 64) -> str:
    """An absolute path of ``chars`` characters that does not compress (btree entries are
    compressed before the size check), in components of ``component`` characters."""
    parts, n = [], 0
    while sum(len(p) + 1 for p in parts) < chars:
        piece = ""
        while len(piece) < component:
            piece += hashlib.sha256(f"{chars}/{n}".encode()).hexdigest()
            n += 1
        parts.append(piece[:component])
    return ("/" + "/".join(parts))[:chars]


async def post(client: httpx.AsyncClient, body: bytes) -> dict:
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:2000]
    data = response.json()
    assert "errors" not in data, data
    return data["data"]["ingestEvents"]


def body_of(events: list, machines: list | None = None) -> bytes:
    # the standard library's encoder: NaN and Infinity literals, lone surrogates as \ud800
    return json.dumps({"query": INGEST, "variables": {"batch": {
        "events": events, "machines": machines if machines is not None else [MACHINE]}}}).encode()


async def send(client: httpx.AsyncClient, path: str, events: list, machines: list | None = None,
               raw: bytes | None = None) -> tuple[dict, list]:
    """Send ``events`` after a valid neighbour (and, on the general path, an invalid one);
    returns (result, the events sent) with the neighbours' outcome checked."""
    native = f"nb-{uuid.uuid4()}"
    sent = [event(native, 0, "user_prompt", content="the neighbour"), *events]
    if path == "general":
        sent.append(event(native, 1, "telepathy"))
    result = await post(client, raw if raw is not None else body_of(sent, machines))
    rejected = {r["index"]: r for r in result["rejected"]}
    assert 0 not in rejected, result  # the valid neighbour is never rejected
    if path == "general":
        assert "telepathy" in rejected.pop(len(sent) - 1)["reason"]
    result["rejected"] = [rejected[i] for i in sorted(rejected)]
    return result, sent


async def stored(url: str, query: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- NUL


NUL_FIELDS = {
    "toolName": ("tool_name", "agent_event"), "model": ("model", "agent_event"),
    "stopReason": ("stop_reason", "agent_event"), "toolCallId": ("tool_call_id", "agent_event"),
    "agentVersion": ("agent_version", "agent_session"), "provider": ("provider", "agent_event"),
    "filePath": ("file_path", "agent_event"), "command": ("command", "agent_event"),
    "content": ("content", "agent_event"), "error": ("error", "agent_event"),
}


@pytest.mark.parametrize("path", PATHS)
async def test_nul_in_every_text_field_is_stored_as_replacement_character(client, database_url, path) -> None:
    native = f"nul-{uuid.uuid4()}\x00s"
    parent = f"nul-parent-{uuid.uuid4()}\x00"
    machine = f"nul-machine-{uuid.uuid4()}\x00"
    workspace = f"/home/dev/nul\x00-{uuid.uuid4()}"
    fields = {name: f"v\x00{name}" for name in NUL_FIELDS}
    e = event(native, 1, "llm_call", agent="claude\x00code", machine=machine, parentSession=parent,
              workspace=workspace, project={"path": workspace, "name": "app\x00name",
                                            "remote": "https://github.com/acme/nul\x00app",
                                            "branch": "b\x00", "commit": "c\x00"},
              payload={"k\x00ey": ["v\x00", {"\x00": "\x00"}]}, **fields)
    machines = [dict(MACHINE, key=machine, hostname="host\x00name", username="u\x00", os="linux\x00",
                     osVersion="6\x00", arch="x86\x00")]
    result, _ = await send(client, path, [e], machines)
    assert result["accepted"] == 2 and result["rejected"] == [], result

    clean = {k: v.replace("\x00", "\ufffd") for k, v in fields.items()}
    sid = session_id("claude\ufffdcode", native.replace("\x00", "\ufffd"))
    rows = await stored(database_url, "SELECT * FROM agent_event WHERE session_id = $1", sid)
    assert len(rows) == 1
    row = rows[0]
    for name, (column, table) in NUL_FIELDS.items():
        if table == "agent_event":
            assert row[column] == clean[name], column
    assert row["agent"] == "claude\ufffdcode"
    assert json.loads(row["payload"]) == {"k\ufffdey": ["v\ufffd", {"\ufffd": "\ufffd"}]}
    session = (await stored(database_url, """
        SELECT s.native_id, s.agent_version, s.git_branch, s.git_commit, p.native_id AS parent,
               m.key, m.hostname, m.username, m.os, m.os_version, m.arch, w.path,
               pr.key AS project_key, pr.name AS project_name, pr.remote_url
        FROM agent_session s JOIN agent_session p ON p.id = s.parent
        JOIN machine m ON m.id = s.machine JOIN workspace w ON w.id = s.workspace
        JOIN project pr ON pr.id = s.project WHERE s.id = $1""", sid))[0]
    assert dict(session) == {
        "native_id": native.replace("\x00", "\ufffd"), "agent_version": clean["agentVersion"],
        "git_branch": "b\ufffd", "git_commit": "c\ufffd", "parent": parent.replace("\x00", "\ufffd"),
        "key": machine.replace("\x00", "\ufffd"), "hostname": "host\ufffdname", "username": "u\ufffd",
        "os": "linux\ufffd", "os_version": "6\ufffd", "arch": "x86\ufffd",
        "path": workspace.replace("\x00", "\ufffd"), "project_key": "github.com/acme/nul\ufffdapp",
        "project_name": "app\ufffdname", "remote_url": "https://github.com/acme/nul\ufffdapp"}


@pytest.mark.parametrize("path", PATHS)
async def test_lone_surrogates_are_replacement_characters(client, database_url, path) -> None:
    native = f"sur-{uuid.uuid4()}"
    e = event(native, 1, "tool_result", content="a\ud800b\udc00c \U0001f600",
              toolName="T\udfff", payload={"\ud83d": "\ude00", "pair": "\U0001f600"})
    result, _ = await send(client, path, [e])
    assert result["accepted"] == 2 and result["rejected"] == [], result
    row = (await stored(database_url, "SELECT content, tool_name, payload FROM agent_event "
                        "WHERE session_id = $1", session_id("claude-code", native)))[0]
    assert row["content"] == "a\ufffdb\ufffdc \U0001f600" and row["tool_name"] == "T\ufffd"
    assert json.loads(row["payload"]) == {"\ufffd": "\ufffd", "pair": "\U0001f600"}


async def test_invalid_utf8_in_a_body_is_replaced_not_a_bad_request(client, database_url) -> None:
    native = f"utf-{uuid.uuid4()}"
    e = event(native, 1, "assistant_message", content="MARK")
    raw = body_of([event(f"nb-{uuid.uuid4()}", 0, "user_prompt", content="the neighbour"), e])
    result = await post(client, raw.replace(b"MARK", b"bad \xff\xfe bytes"))
    assert result["accepted"] == 2 and result["rejected"] == [], result
    row = (await stored(database_url, "SELECT content FROM agent_event WHERE session_id = $1",
                        session_id("claude-code", native)))[0]
    assert row["content"] == "bad \ufffd\ufffd bytes"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("field,value,named", [
    ("seq", 2**63, "seq"), ("durationMs", 2**63, "durationMs"), ("linesAdded", 2**31, "linesAdded"),
    ("linesRemoved", 2**31, "linesRemoved"), ("costUsd", 1e10, "costUsd"),
    ("costUsd", float("nan"), "costUsd"), ("costUsd", float("inf"), "costUsd"),
    ("durationMs", 10**13, "durationMs"), ("seq", -1, "seq"),
    ("tokens", {"input": 2**63}, "tokens.input"), ("tokens", {"output": 10**400}, "tokens.output"),
])
async def test_a_number_beyond_its_column_rejects_its_event_alone(client, database_url, path, field,
                                                                 value, named) -> None:
    native = f"num-{uuid.uuid4()}"
    result, sent = await send(client, path, [event(native, 1, "tool_result", **{field: value})])
    assert result["accepted"] == 1, result
    [rejection] = result["rejected"]
    assert rejection["index"] == 1 and rejection["id"] == sent[1]["id"]
    assert f"`{named}`" in rejection["reason"], rejection


@pytest.mark.parametrize("path", PATHS)
async def test_numbers_at_their_bounds_are_stored(client, database_url, path) -> None:
    native = f"max-{uuid.uuid4()}"
    events = [event(native, 1, "tool_result", seq=2**63 - 1, linesAdded=2**31 - 1,
                    linesRemoved=2**31 - 1, durationMs=10**12, filePath="/max.py"),
              event(native, 2, "tool_result", seq=2**63 - 2, linesAdded=2**31 - 1, filePath="/max.py"),
              event(native, 3, "llm_call", costUsd=9_999_999_999.99, durationMs=10**12,
                    tokens={"input": 10**12, "output": 10**12}),
              event(native, 4, "llm_call", costUsd=9_999_999_999.99, tokens={"input": 10**12})]
    result, _ = await send(client, path, events)
    assert result["accepted"] == 5 and result["rejected"] == [], result
    sid = session_id("claude-code", native)
    s = (await stored(database_url, "SELECT cost_usd, tokens_input FROM agent_session WHERE id = $1", sid))[0]
    assert float(s["cost_usd"]) == pytest.approx(2 * 9_999_999_999.99) and s["tokens_input"] == 2 * 10**12
    f = (await stored(database_url, "SELECT touches, lines_added FROM session_file WHERE session_id = $1", sid))[0]
    assert f["lines_added"] == 2 * (2**31 - 1)  # the session's sum outgrows an integer


@pytest.mark.parametrize("path", PATHS)
async def test_payload_numbers_no_reader_can_hold_reject_their_event(client, database_url, path) -> None:
    native = f"pn-{uuid.uuid4()}"
    body = body_of([event(f"nb-{uuid.uuid4()}", 0, "user_prompt", content="the neighbour"),
                    event(native, 1, payload={"a": "NUMBER"}),
                    event(native, 2, payload={"b": [1, 2.5, -1e-5, 10**40]}),
                    *([event(native, 3, "telepathy")] if path == "general" else [])])
    for number in (b"1e131072", b"1e400", b"-1e999999", b"1" + b"0" * 5000, b"NaN", b"-Infinity"):
        result = await post(client, body.replace(b'"NUMBER"', number))
        reasons = {r["index"]: r["reason"] for r in result["rejected"]}
        assert 1 in reasons and "`payload`" in reasons[1], (number, result)
        assert 0 not in reasons and 2 not in reasons, (number, result)
    rows = await stored(database_url, "SELECT seq, payload FROM agent_event WHERE session_id = $1",
                        session_id("claude-code", native))
    assert [(r["seq"], json.loads(r["payload"])) for r in rows] == [(2, {"b": [1, 2.5, -1e-5, 10**40]})]


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00+05:00",
                                "0001-01-01T00:00:00-05:00", "9999-12-31T23:59:59-05:00",
                                "1969-12-31T23:59:59.999999Z", "future"])
async def test_timestamps_before_1970_or_a_day_ahead_are_rejected(client, database_url, path, ts) -> None:
    if ts == "future":
        ts = (datetime.now(timezone.utc) + timedelta(days=1, minutes=5)).isoformat()
    native = f"ts-{uuid.uuid4()}"
    result, _ = await send(client, path, [dict(event(native, 1), ts=ts)])
    assert result["accepted"] == 1, result
    [rejection] = result["rejected"]
    assert rejection["index"] == 1 and "`ts`" in rejection["reason"], rejection
    assert not await stored(database_url, "SELECT 1 FROM agent_session WHERE id = $1",
                            session_id("claude-code", native))


@pytest.mark.parametrize("path", PATHS)
async def test_timestamps_at_the_ends_of_the_accepted_range_are_stored(client, database_url, path) -> None:
    native = f"tsok-{uuid.uuid4()}"
    soon = datetime.now(timezone.utc) + timedelta(hours=23)
    result, _ = await send(client, path, [event(native, 1, ts=datetime(1970, 1, 1, tzinfo=timezone.utc)),
                                          event(native, 2, ts=soon)])
    assert result["accepted"] == 3 and result["rejected"] == [], result
    s = (await stored(database_url, "SELECT started_at, last_event_at FROM agent_session WHERE id = $1",
                      session_id("claude-code", native)))[0]
    assert s["started_at"] == datetime(1970, 1, 1, tzinfo=timezone.utc) and s["last_event_at"] == soon


# --------------------------------------------------------------------------- long keys


@pytest.mark.parametrize("path", PATHS)
async def test_long_paths_are_stored_whole(client, database_url, path) -> None:
    """A 1,100-character workspace, a 4 KB project folder whose last component is 300
    characters, and a 4 KB file path (a btree entry holds about 2,700 bytes)."""
    tag = uuid.uuid4().hex
    workspace = long_path(1100) + f"/{tag}"
    folder = long_path(3700) + "/" + long_path(301, component=300)[1:] + tag[:4]
    file_path = long_path(4096 - 36) + f"/{tag}.py"
    other = file_path[:-4] + "y.py"
    native = f"long-{tag}"
    ctx = {"workspace": workspace, "project": {"path": folder}}
    events = [event(native, 1, "tool_call", toolName="Edit", filePath=file_path, **ctx),
              event(native, 2, "tool_result", toolName="Edit", filePath=file_path, linesAdded=3, **ctx),
              event(native, 3, "tool_call", toolName="Edit", filePath=other, **ctx)]
    result, _ = await send(client, path, events)
    assert result["accepted"] == 4 and result["rejected"] == [], result
    again, _ = await send(client, path, [event(native, 4, "tool_call", toolName="Edit",
                                               filePath=file_path, **ctx)])
    assert again["accepted"] == 2  # the known session, workspace, project and file are upserted
    sid = session_id("claude-code", native)
    rows = await stored(database_url, """
        SELECT w.path AS workspace, p.key, p.name, f.path, f.touches, f.lines_added
        FROM agent_session s JOIN workspace w ON w.id = s.workspace JOIN project p ON p.id = s.project
        JOIN session_file f ON f.session_id = s.id WHERE s.id = $1 ORDER BY f.path""", sid)
    name = folder.rsplit("/", 1)[1]
    assert [tuple(r) for r in rows] == sorted([
        (workspace, f"path:test-machine:{folder}", name, file_path, 3, 3),
        (workspace, f"path:test-machine:{folder}", name, other, 1, 0)], key=lambda r: r[3])
    assert len(folder.rsplit("/", 1)[1]) > 255 and len(file_path.encode()) == 4096


async def test_a_4kb_path_reaches_the_rollups_and_the_pages(client, database_url) -> None:
    from app.jobs import rollups

    tag = uuid.uuid4().hex
    file_path = long_path(4096 - 36) + f"/{tag}.py"
    native = f"page-{tag}"
    result = await post(client, body_of([
        event(native, 1, "tool_call", toolName="Edit", filePath=file_path, workspace=file_path[:3000]),
        event(native, 2, "tool_result", toolName="Edit", filePath=file_path, linesAdded=1)]))
    assert result["accepted"] == 2, result
    await rollups.refresh(wait=True)
    rows = await stored(database_url, "SELECT touches FROM tool_file_hourly WHERE file_path = $1", file_path)
    assert [r["touches"] for r in rows] == [1]
    page = await client.get(f"/sessions/{session_id('claude-code', native)}")
    assert page.status_code == 200 and tag in page.text


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("depth", [65, 1000, 100_000])
async def test_a_payload_nested_too_deep_rejects_its_event_alone(client, database_url, path, depth) -> None:
    native = f"deep-{uuid.uuid4()}"
    ok = event(native, 2, payload=json.loads("[" * 64 + "]" * 64))  # at the bound
    deep = event(native, 1, payload="DEEP")
    raw = body_of([event(f"nb-{uuid.uuid4()}", 0, "user_prompt", content="the neighbour"), deep, ok,
                   *([event(native, 3, "telepathy")] if path == "general" else [])])
    result = await post(client, raw.replace(b'"DEEP"', b"[" * depth + b"]" * depth))
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert result["accepted"] == 2 and 1 in reasons and "nested deeper than 64" in reasons[1], result
    rows = await stored(database_url, "SELECT seq FROM agent_event WHERE session_id = $1",
                        session_id("claude-code", native))
    assert [r["seq"] for r in rows] == [2]


async def test_deep_nesting_elsewhere_rejects_that_event_or_is_a_clear_bad_request(client) -> None:
    native = f"deepf-{uuid.uuid4()}"
    result = await post(client, body_of([event(f"nb-{uuid.uuid4()}", 0), event(native, 1, tokens="DEEP")])
                        .replace(b'"DEEP"', b"[" * 5000 + b"]" * 5000))
    assert result["accepted"] == 1 and [r["index"] for r in result["rejected"]] == [1], result
    assert "`tokens`" in result["rejected"][0]["reason"]
    # not an ingest body: not JSON we read, a 400 (was a 500: RecursionError)
    response = await client.post("/graphql", content=b'{"query": "{ __typename }", "variables": {"a": '
                                 + b"[" * 5000 + b"]" * 5000 + b"}}",
                                 headers={"content-type": "application/json"})
    assert response.status_code == 400
    # an ingest body that is not JSON at all (cut short) is still a 400, not a 500
    cut = body_of([event(native, 2)])[:-20]
    response = await client.post("/graphql", content=cut, headers={"content-type": "application/json"})
    assert response.status_code == 400


# --------------------------------------------------------------------------- machines


async def test_an_invalid_machine_entry_loses_no_event(client, database_url) -> None:
    tag = uuid.uuid4().hex
    native = f"mach-{tag}"
    machines = [{"key": f"m-{tag}", "hostname": "h" * 300}, {"key": f"m2-{tag}", "kind": "toaster"},
                {"key": f"m3-{tag}", "hostname": "fine"}]
    events = [event(native, 1, machine=f"m-{tag}"), event(f"{native}-3", 1, machine=f"m3-{tag}")]
    result = await post(client, body_of(events, machines))
    assert result == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = await stored(database_url, "SELECT key, hostname FROM machine WHERE key LIKE $1 ORDER BY key",
                        f"%{tag}")
    assert [tuple(r) for r in rows] == [(f"m-{tag}", f"m-{tag}"), (f"m3-{tag}", "fine")]


# --------------------------------------------------------------------------- in-process


def test_events_built_in_process_get_the_same_bounds() -> None:
    """What a receiver calling submit() with Python values (not an HTTP body) may pass: NaN
    floats, lone surrogates, objects JSON cannot hold, deep lists — the same outcome as over HTTP."""
    from app.ingest.batch import validate

    native = f"inproc-{uuid.uuid4()}"
    deep: list = []
    for _ in range(70):
        deep = [deep]
    events = [event(native, 1, content="ok\x00", payload={"\ud800k": ["v\udfff", None]}),
              event(native, 2, payload={"x": float("nan")}),
              event(native, 3, payload={"x": [float("-inf")]}),
              event(native, 4, payload={"x": object()}),
              event(native, 5, payload=deep),
              dict(event(native, 6), session="s\ud800"),
              event(native, 7, payload={"fine": None, "n": 1.5})]
    machines, prepared, rejected, repeats = validate({"events": events, "machines": [MACHINE]},
                                                     max_events=100, max_event_bytes=1 << 20)
    assert [p.event.seq for p in prepared] == [1, 6, 7] and repeats == 0
    assert prepared[0].event.content == "ok\ufffd"
    assert json.loads(prepared[0].payload_json) == {"\ufffdk": ["v\ufffd", None]}
    assert prepared[1].event.session == "s\ufffd"
    assert json.loads(prepared[2].payload_json) == {"fine": None, "n": 1.5}
    reasons = {r.index: r.reason for r in rejected}
    assert set(reasons) == {1, 2, 3, 4}
    assert "NaN" in reasons[1] and "NaN" in reasons[2] and "`payload` is not JSON" in reasons[3]
    assert "nested deeper than 64" in reasons[4]
