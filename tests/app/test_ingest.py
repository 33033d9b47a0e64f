"""ingestEvents over real HTTP into the real database: idempotency, partial acceptance,
concurrency, rollups, limits, auth."""

from __future__ import annotations

import asyncio
import gzip
import uuid

import asyncpg
import httpx
import msgspec
import pytest

from app.ingest.identity import session_id
from app.services import keys
from tests.factories import INGEST, MACHINE, conversation, event
from tests.helpers import gql


async def ingest(client: httpx.AsyncClient, events: list[dict], machines=(MACHINE,), **kw) -> dict:
    body = await gql(client, INGEST, {"batch": {"events": events, "machines": list(machines)}}, **kw)
    assert "errors" not in body, body
    return body["data"]["ingestEvents"]


async def session_row(url: str, native: str, agent: str = "claude-code") -> dict:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT * FROM agent_session WHERE id = $1", session_id(agent, native))
        files = await conn.fetch("SELECT path, touches, lines_added, lines_removed FROM session_file "
                                 "WHERE session_id = $1 ORDER BY path", session_id(agent, native))
        events = await conn.fetchval("SELECT count(*) FROM agent_event WHERE session_id = $1",
                                     session_id(agent, native))
    finally:
        await conn.close()
    out = dict(row)
    out.pop("updated_at")
    out["files"] = [tuple(f) for f in files]
    out["stored_events"] = events
    return out


async def test_same_batch_twice_changes_nothing(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    events = conversation(native)
    first = await ingest(client, events)
    assert first == {"accepted": len(events), "duplicates": 0, "rejected": []}
    state = await session_row(database_url, native)
    second = await ingest(client, events)
    assert second == {"accepted": 0, "duplicates": len(events), "rejected": []}
    assert await session_row(database_url, native) == state


async def test_rollups_follow_the_events(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    events = conversation(native, turns=3)
    events.append(event(native, 99, "session_end"))
    await ingest(client, events)
    s = await session_row(database_url, native)
    assert s["event_count"] == len(events) == s["stored_events"]
    assert (s["prompt_count"], s["llm_call_count"], s["tool_call_count"], s["tool_error_count"]) == (3, 3, 3, 1)
    assert (s["tokens_input"], s["tokens_output"], s["tokens_cache_read"], s["tokens_cache_write"]) == (30, 300, 3000, 150)
    assert s["files_touched"] == 2 and [f[0] for f in s["files"]] == ["/home/dev/acme/f0.py", "/home/dev/acme/f1.py"]
    assert s["title"] == "turn 0: please fix the bug"
    assert s["models"] == '["claude-sonnet-4-5"]'
    assert s["status"] == "ended" and s["ended_at"] is not None
    assert s["agent_version"] == "2.0.64" and s["git_branch"] == "main"
    # none reported: computed at Claude Sonnet 4.5's price (3 calls of 10 in, 100 out, 1000
    # cache read, 50 cache write at $3 / $15 / $0.30 / $3.75 per million tokens)
    assert float(s["cost_usd"]) == pytest.approx(3 * (10 * 3 + 100 * 15 + 1000 * 0.3 + 50 * 3.75) / 1e6)

    # a later batch with an earlier prompt (out-of-order backfill) takes over the title
    from datetime import timedelta

    from tests.factories import BASE_TS

    late = await ingest(client, [event(native, 500, "user_prompt", content="the real first prompt",
                                       ts=BASE_TS - timedelta(seconds=5))])
    assert late["accepted"] == 1
    s2 = await session_row(database_url, native)
    assert s2["title"] == "the real first prompt" and s2["prompt_count"] == 4
    assert s2["started_at"] < s["started_at"]


async def test_hierarchy_rows_are_created_once(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    await ingest(client, conversation(native))
    await ingest(client, conversation(f"{native}-2", project={"remote": "https://github.com/acme/app"}))
    conn = await asyncpg.connect(database_url)
    try:
        projects = await conn.fetch("SELECT key, name FROM project WHERE key = 'github.com/acme/app'")
        machine = await conn.fetchrow("SELECT hostname, username, os FROM machine WHERE key = 'test-machine'")
        ws = await conn.fetch("SELECT path FROM workspace WHERE path = '/home/dev/acme'")
    finally:
        await conn.close()
    assert [tuple(p) for p in projects] == [("github.com/acme/app", "app")]  # ssh and https forms are one project
    assert tuple(machine) == ("devbox", "dev", "linux")
    assert len(ws) == 1


async def test_partial_acceptance_names_each_rejected_event(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    good = [event(native, 1, "user_prompt", content="hi"), event(native, 2, "assistant_message")]
    bad_kind = event(native, 3, "telepathy")
    no_ts = event(native, 4)
    del no_ts["ts"]
    bad_id = dict(event(native, 5), id="not-a-uuid")
    naive_ts = dict(event(native, 6), ts="2026-11-20T09:00:00")
    result = await ingest(client, [good[0], bad_kind, no_ts, good[1], bad_id, naive_ts, "junk"])
    assert result["accepted"] == 2 and result["duplicates"] == 0
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {1, 2, 4, 5, 6}
    assert "Invalid enum value 'telepathy'" in reasons[1] and "`kind`" in reasons[1]
    assert "missing required field `ts`" in reasons[2]
    assert "Invalid UUID" in reasons[4]
    assert "time zone" in reasons[5] or "timezone" in reasons[5]
    assert "Expected `object`" in reasons[6]
    assert result["rejected"][0]["id"] == bad_kind["id"]
    assert (await session_row(database_url, native))["event_count"] == 2


async def test_duplicates_inside_one_batch_count_once(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    e = event(native, 1, "llm_call", tokens={"input": 5, "output": 7})
    result = await ingest(client, [e, e, e])
    assert result == {"accepted": 1, "duplicates": 2, "rejected": []}
    s = await session_row(database_url, native)
    assert (s["event_count"], s["tokens_input"], s["tokens_output"]) == (1, 5, 7)


async def test_partly_stored_batch_counts_only_the_new_events(client, database_url) -> None:
    # the optimistic COPY meets stored events: the batch is written again through ON CONFLICT
    native = f"s-{uuid.uuid4()}"
    events = [event(native, n, "llm_call", tokens={"input": 1, "output": 2},
                    filePath=f"/home/dev/acme/f{n % 3}.py") for n in range(10)]
    first = await ingest(client, events[:5])
    assert first == {"accepted": 5, "duplicates": 0, "rejected": []}
    second = await ingest(client, events[3:])
    assert second == {"accepted": 5, "duplicates": 2, "rejected": []}
    s = await session_row(database_url, native)
    assert (s["event_count"], s["stored_events"], s["tokens_input"], s["tokens_output"]) == (10, 10, 10, 20)
    assert s["files_touched"] == 3 and [f[1] for f in s["files"]] == [4, 3, 3]


async def test_new_and_known_sessions_in_one_batch(client, database_url) -> None:
    # a session new to the database is inserted with its rollups; a known one is updated
    known, new = f"s-{uuid.uuid4()}", f"s-{uuid.uuid4()}"
    await ingest(client, [event(known, 1, "tool_call", filePath="/a.py", tokens={"input": 3})])
    result = await ingest(client, [
        event(known, 2, "tool_call", filePath="/a.py"), event(known, 3, "tool_call", filePath="/b.py"),
        event(new, 1, "user_prompt", content="  first\n prompt "),
        event(new, 2, "tool_call", filePath="/a.py", linesAdded=4),
        event(new, 3, "llm_call", model="m-2", tokens={"input": 5, "output": 6}),
        event(new, 4, "llm_call", model="m-1", tokens={"input": 5, "output": 6}),
        event(new, 5, "session_end")])
    assert result == {"accepted": 7, "duplicates": 0, "rejected": []}
    k, n = await session_row(database_url, known), await session_row(database_url, new)
    assert (k["event_count"], k["tool_call_count"], k["files_touched"], k["tokens_input"]) == (3, 3, 2, 3)
    assert [f[:2] for f in k["files"]] == [("/a.py", 2), ("/b.py", 1)]
    assert (n["event_count"], n["prompt_count"], n["llm_call_count"], n["files_touched"]) == (5, 1, 2, 1)
    assert (n["tokens_input"], n["tokens_output"], n["title"], n["models"]) == (10, 12, "first prompt", '["m-1", "m-2"]')
    assert n["status"] == "ended" and n["files"] == [("/a.py", 1, 4, 0)]
    assert n["started_at"] < n["last_event_at"] == n["ended_at"]


async def test_uppercase_ids_are_the_same_events(client, database_url) -> None:
    # canonical lowercase ids take the typed decode; any other form the general path
    native = f"s-{uuid.uuid4()}"
    e = event(native, 1, "llm_call", tokens={"input": 5})
    upper = dict(e, id=e["id"].upper())
    assert await ingest(client, [upper]) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert await ingest(client, [e]) == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert await ingest(client, [e, upper]) == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert (await session_row(database_url, native))["event_count"] == 1


def test_decode_request_types_only_all_valid_ingest_bodies() -> None:
    from app.ingest.batch import DecodedBatch, decode_request

    native = f"s-{uuid.uuid4()}"
    good = [event(native, 1, "user_prompt", content="hi", payload={"k": [1, "\x00"]}), event(native, 2)]

    def body(events: list, query: str = INGEST, **variables: object) -> bytes:
        return msgspec.json.encode({"query": query, "variables": {"batch": {"events": events}, **variables}})

    request = decode_request(body(good))
    assert request is not None and request["query"] == INGEST
    batch = request["variables"]["batch"]
    assert isinstance(batch, DecodedBatch) and [str(e.id) for e in batch.events] == [g["id"] for g in good]
    assert batch.payloads == ['{"k":[1,"\\ufffd"]}', None]  # NUL repaired before decoding
    assert decode_request(body([*good, event(native, 3, "telepathy")])) is None  # rejected one by one
    assert decode_request(body([dict(good[0], id=good[0]["id"].upper())])) is None
    assert decode_request(body(good, other=1)) is None  # other variables are not dropped
    assert decode_request(body([dict(good[1], extra="x")])) is None  # unknown fields: not checked
    assert decode_request(body(good).replace(b'"content"', b'"\xff":1,"content"')) is None
    assert decode_request(body(good, query="query { health { database } }")) is None
    assert decode_request(b'{"query": "{ __typename }"}') is None


async def test_concurrent_batches_on_one_session(server, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    events = [event(native, n, "llm_call", tokens={"input": 1, "output": 2}) for n in range(400)]
    # 8 clients, overlapping slices in different orders: every event sent 2-3 times
    slices = [events[i * 50:(i + 3) * 50] for i in range(8)]
    slices = [list(reversed(s)) if i % 2 else s for i, s in enumerate(slices)]

    async def send(batch: list[dict]) -> dict:
        async with httpx.AsyncClient(base_url=server, timeout=60) as c:
            return await ingest(c, batch)

    results = await asyncio.gather(*(send(s) for s in slices))
    assert sum(r["accepted"] for r in results) == 400
    assert sum(r["accepted"] + r["duplicates"] for r in results) == sum(len(s) for s in slices)
    s = await session_row(database_url, native)
    assert (s["event_count"], s["stored_events"], s["tokens_input"], s["tokens_output"]) == (400, 400, 400, 800)


async def test_subagent_before_its_parent(client, database_url) -> None:
    parent = f"p-{uuid.uuid4()}"
    child = f"{parent}-agent-1"
    await ingest(client, [event(child, 1, "assistant_message", parentSession=parent)])
    await ingest(client, conversation(parent))
    c = await session_row(database_url, child)
    p = await session_row(database_url, parent)
    assert c["parent"] == p["id"] and p["native_id"] == parent and p["event_count"] > 0


async def test_text_with_nul_and_markup_is_kept(client, database_url) -> None:
    native = f"s-{uuid.uuid4()}"
    content = "a\x00b <script>alert(1)</script> ✓"
    payload = {"raw": "x\x00y", "nested": [{"k": "\x00"}]}
    result = await ingest(client, [event(native, 1, "user_prompt", content=content, payload=payload)])
    assert result["accepted"] == 1
    conn = await asyncpg.connect(database_url)
    row = await conn.fetchrow("SELECT content, payload FROM agent_event WHERE session_id = $1",
                              session_id("claude-code", native))
    await conn.close()
    assert row["content"] == "a\ufffdb <script>alert(1)</script> ✓"
    assert msgspec.json.decode(row["payload"]) == {"raw": "x\ufffdy", "nested": [{"k": "\ufffd"}]}


async def test_limits(client, server) -> None:
    from app.settings import load_settings

    settings = load_settings()
    native = f"s-{uuid.uuid4()}"
    # too many events: one clear GraphQL error, nothing stored
    many = [event(native, n) for n in range(settings.max_batch_events + 1)]
    body = await gql(client, INGEST, {"batch": {"events": many}})
    assert body["data"] is None and "limit is 5000 (DEVLOG_MAX_BATCH_EVENTS)" in body["errors"][0]["message"]
    # an event over the size limit is rejected alone
    huge = event(native, 1, "tool_result", content="x" * (settings.max_event_bytes + 1))
    result = await ingest(client, [huge, event(native, 2)])
    assert result["accepted"] == 1 and "DEVLOG_MAX_EVENT_BYTES" in result["rejected"][0]["reason"]
    # not a batch at all
    body = await gql(client, INGEST, {"batch": [1, 2]})
    assert 'must be a JSON object with an "events" list' in body["errors"][0]["message"]
    # gzip bodies are accepted; a body over the limit (after inflating) is 413
    payload = msgspec.json.encode({"query": INGEST, "variables": {"batch": {"events": [event(native, 3)]}}})
    ok = await client.post("/graphql", content=gzip.compress(payload),
                           headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert ok.json()["data"]["ingestEvents"]["accepted"] == 1
    bomb = gzip.compress(b'{"query": "' + b" " * (settings.max_body_bytes + 10) + b'"}')
    assert len(bomb) < 1_000_000
    too_big = await client.post("/graphql", content=bomb,
                                headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert too_big.status_code == 413
    plain = await client.post("/graphql", content=b" " * (settings.max_body_bytes + 1),
                              headers={"content-type": "application/json"})
    assert plain.status_code == 413


async def test_ingest_needs_a_key_once_keys_exist(client) -> None:
    native = f"s-{uuid.uuid4()}"
    record, secret = await keys.create(f"test-{uuid.uuid4()}")
    try:
        body = await gql(client, INGEST, {"batch": {"events": [event(native, 1)]}})
        assert body["data"] is None and "ingest needs an API key" in body["errors"][0]["message"]
        wrong = await gql(client, INGEST, {"batch": {"events": [event(native, 1)]}},
                          headers={"Authorization": "Bearer dlk_wrong"})
        assert wrong["data"] is None
        ok = await ingest(client, [event(native, 1)], headers={"Authorization": f"Bearer {secret}"})
        assert ok["accepted"] == 1
        health = await gql(client, "{ health { database } }")  # reads stay open on loopback
        assert health["data"]["health"]["database"] == "ok"
    finally:
        revoked = await keys.revoke(record.name)
        assert [r.id for r in revoked] == [record.id]
    after = await ingest(client, [event(native, 2)])  # no active key left: open again on loopback
    assert after["accepted"] == 1


@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                           ("0.0.0.0", False), ("192.168.1.5", False)])
def test_loopback_detection(host: str, expected: bool) -> None:
    from app.access import is_loopback

    assert is_loopback(host) is expected


async def test_concurrent_first_batches_of_new_sessions(server, database_url) -> None:
    """Batches that create the same new sessions at the same moment: one inserts, the others
    update (never a unique-key error), and every event counts once."""
    for _ in range(30):
        natives = [f"race-{uuid.uuid4()}" for _ in range(3)]
        batches = [[event(n, k * 10 + i, "llm_call", tokens={"input": 1, "output": 1})
                    for n in natives for i in range(3)] for k in range(6)]

        async def send(batch: list[dict]) -> dict:
            async with httpx.AsyncClient(base_url=server, timeout=60) as c:
                return await ingest(c, batch)

        results = await asyncio.gather(*(send(b) for b in batches))
        assert sum(r["accepted"] for r in results) == 6 * 9
        for n in natives:
            assert (await session_row(database_url, n))["event_count"] == 18
