"""Queries over real HTTP: sessions (filters, pagination), session detail, events, hierarchy
without N+1 queries, overview."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx

from app.db import engine
from app.ingest.identity import session_id
from tests.factories import INGEST, MACHINE, conversation, event
from tests.helpers import gql


async def ingest(client: httpx.AsyncClient, events: list[dict], machines=(MACHINE,)) -> dict:
    body = await gql(client, INGEST, {"batch": {"events": events, "machines": list(machines)}})
    assert "errors" not in body and not body["data"]["ingestEvents"]["rejected"], body
    return body["data"]["ingestEvents"]


SESSIONS = """query($filter: SessionFilterInput, $first: Int!, $after: String) {
  sessions(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id nativeId title status lastEventAt eventCount tokens { input total } } }
    pageInfo { hasNextPage endCursor } totalCount
  }
}"""


async def test_session_list_filters_and_stable_pagination(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    agent = f"agent-{tag}"
    base = datetime.now(timezone.utc) - timedelta(hours=2)
    natives = [f"{tag}-{i}" for i in range(7)]
    for i, native in enumerate(natives):  # session i is active i minutes after base
        await ingest(client, [event(native, 0, "user_prompt", agent=agent, content=f"prompt {tag} #{i}",
                                    ts=base + timedelta(minutes=i))])
    got, after, pages = [], None, 0
    while True:
        body = await gql(client, SESSIONS, {"filter": {"agent": [agent]}, "first": 3, "after": after})
        conn = body["data"]["sessions"]
        assert conn["totalCount"] == (7 if pages == 0 else 8)
        got += [e["node"]["nativeId"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        # new activity between pages must not shift or repeat what the next page shows
        if pages == 1:
            await ingest(client, [event(f"{tag}-new", 0, "user_prompt", agent=agent, content="late",
                                        ts=base + timedelta(minutes=30))])
    assert got == list(reversed(natives)) and pages == 3  # newest first, no duplicates, no gaps
    text = await gql(client, SESSIONS, {"filter": {"agent": [agent], "text": f"{tag} #3"}, "first": 10})
    assert [e["node"]["nativeId"] for e in text["data"]["sessions"]["edges"]] == [f"{tag}-3"]
    idle = await gql(client, SESSIONS, {"filter": {"agent": [agent], "status": "IDLE"}, "first": 10})
    assert len(idle["data"]["sessions"]["edges"]) == 8  # 2 h old (1.5 h for the late one), no end → idle
    active = await gql(client, SESSIONS, {"filter": {"agent": [agent], "status": "ACTIVE"}, "first": 10})
    assert active["data"]["sessions"]["edges"] == []
    window = await gql(client, SESSIONS, {"filter": {"agent": [agent], "since": (base + timedelta(minutes=5)).isoformat()},
                                          "first": 10})
    assert {e["node"]["nativeId"] for e in window["data"]["sessions"]["edges"]} == {f"{tag}-5", f"{tag}-6", f"{tag}-new"}
    bad = await gql(client, SESSIONS, {"first": 3, "after": "garbage"})
    assert "invalid cursor" in bad["errors"][0]["message"]


async def test_session_detail_with_events_children_and_files(client: httpx.AsyncClient) -> None:
    native = f"s-{uuid.uuid4()}"
    await ingest(client, conversation(native, turns=2))
    await ingest(client, [event(f"{native}-sub", 0, "assistant_message", parentSession=native,
                                content="sub-agent says hi")])
    sid = str(session_id("claude-code", native))
    q = """query($id: ID!, $after: String) { session(id: $id) {
        nativeId promptCount filesTouched durationMs models tokens { input output cacheRead cacheWrite total }
        project { name key } machine { hostname } workspace { path }
        children { nativeId parent { nativeId } }
        events(first: 4, after: $after) { edges { node { kind seq toolName content payload } } pageInfo { hasNextPage endCursor } }
    } }"""
    body = await gql(client, q, {"id": sid})
    s = body["data"]["session"]
    assert s["nativeId"] == native and s["promptCount"] == 2 and s["filesTouched"] == 2
    assert s["tokens"] == {"input": 20, "output": 200, "cacheRead": 2000, "cacheWrite": 100, "total": 2320}
    assert s["project"] == {"name": "app", "key": "github.com/acme/app"}
    assert s["machine"] == {"hostname": "devbox"} and s["workspace"] == {"path": "/home/dev/acme"}
    assert s["children"] == [{"nativeId": f"{native}-sub", "parent": {"nativeId": native}}]
    assert s["models"] == ["claude-sonnet-4-5"] and s["durationMs"] == 10_000
    kinds = [e["node"]["kind"] for e in s["events"]["edges"]]
    assert kinds == ["session_start", "user_prompt", "llm_call", "tool_call"]
    assert s["events"]["edges"][3]["node"]["payload"] == {"input": {"old": "a", "new": "b"}}
    rest = await gql(client, q, {"id": sid, "after": s["events"]["pageInfo"]["endCursor"]})
    seqs = [e["node"]["seq"] for e in rest["data"]["session"]["events"]["edges"]]
    assert seqs == [4, 5, 6, 7]
    assert (await gql(client, '{ session(id: "00000000-0000-0000-0000-000000000000") { id } }'))["data"]["session"] is None
    assert "invalid id" in (await gql(client, '{ session(id: "nope") { id } }'))["errors"][0]["message"]


async def test_events_across_sessions(client: httpx.AsyncClient) -> None:
    agent = f"ev-{uuid.uuid4().hex[:6]}"
    await ingest(client, conversation(f"{agent}-a", agent=agent) + conversation(f"{agent}-b", agent=agent))
    q = """query($f: EventFilterInput) { events(filter: $f, first: 100) { edges { node { kind toolName status ts } } } }"""
    body = await gql(client, q, {"f": {"agent": [agent], "kinds": ["tool_result"], "status": "error"}})
    nodes = [e["node"] for e in body["data"]["events"]["edges"]]
    assert len(nodes) == 2 and all(n["status"] == "error" and n["toolName"] == "Edit" for n in nodes)
    every = await gql(client, q, {"f": {"agent": [agent]}})
    ts = [e["node"]["ts"] for e in every["data"]["events"]["edges"]]
    assert len(ts) == 32 and ts == sorted(ts, reverse=True)


# 60 projects (the newest, ours among them): within DEVLOG_MAX_QUERY_COST with these nested lists.
HIERARCHY = """{ projects(first: 60) { key machines { hostname workspaces { path sessions(first: 5) {
    nativeId machine { hostname } project { name } workspace { path } parent { nativeId } } } } } }"""


async def _statements_for(client: httpx.AsyncClient, query: str) -> tuple[int, dict]:
    before = engine.statement_count()
    body = await gql(client, query)
    assert "errors" not in body, body
    return engine.statement_count() - before, body


async def test_hierarchy_statement_count_does_not_grow_with_rows(client: httpx.AsyncClient) -> None:
    tags: set[str] = set()

    async def add_projects(n: int) -> None:
        events = []
        for i in range(n):
            tag = uuid.uuid4().hex[:8]
            tags.add(tag)
            for m in range(2):
                for s in range(2):
                    events.append(event(f"h-{tag}-{m}-{s}", 0, "user_prompt", machine=f"hm-{tag}-{m}",
                                        project={"remote": f"https://github.com/h/{tag}"},
                                        workspace=f"/src/{tag}", content="x"))
        await ingest(client, events, machines=[])

    await add_projects(3)
    small, body_small = await _statements_for(client, HIERARCHY)
    await add_projects(9)
    large, body_large = await _statements_for(client, HIERARCHY)
    def ours(body: dict) -> list[dict]:
        return [p for p in body["data"]["projects"] if p["key"].rsplit("/", 1)[-1] in tags]

    # the newest projects come first: ours (with their machines, workspaces, sessions) grow
    assert len(ours(body_small)) == 3 and len(ours(body_large)) == 12
    assert sum(len(m["workspaces"]) for p in ours(body_large) for m in p["machines"]) == 24
    assert large == small, f"{small} statements for fewer rows, {large} for more"


async def test_overview(client: httpx.AsyncClient) -> None:
    agent = f"ov-{uuid.uuid4().hex[:6]}"
    now = datetime.now(timezone.utc)
    before = (await gql(client, "{ overview { eventsToday tokensToday { input } } }"))["data"]["overview"]
    events = [event(f"{agent}-1", 0, "user_prompt", agent=agent, ts=now - timedelta(minutes=2), content="hello"),
              event(f"{agent}-1", 1, "llm_call", agent=agent, ts=now - timedelta(minutes=1), model="gpt-5-codex",
                    tokens={"input": 7, "output": 3}),
              event(f"{agent}-1", 2, "tool_call", agent=agent, ts=now - timedelta(seconds=30), toolName="Bash")]
    await ingest(client, events)
    q = """{ overview(timeZone: "UTC") { activeSessions eventsToday tokensToday { input output }
             eventsPerMinute { minute count } topTools { name count } topModels { name count } } }"""
    o = (await gql(client, q))["data"]["overview"]
    assert o["eventsToday"] == before["eventsToday"] + 3 or now.hour == 0  # midnight edge
    assert o["tokensToday"]["input"] >= before["tokensToday"]["input"] + 7 or now.hour == 0
    assert o["activeSessions"] >= 1
    assert len(o["eventsPerMinute"]) == 60 and sum(m["count"] for m in o["eventsPerMinute"]) >= 3
    assert {"name": "Bash", "count": 1} in o["topTools"] or any(t["name"] == "Bash" for t in o["topTools"])
    assert any(m["name"] == "gpt-5-codex" for m in o["topModels"])
    bad = await gql(client, '{ overview(timeZone: "Mars/Olympus") { eventsToday } }')
    assert "unknown time zone" in bad["errors"][0]["message"]


async def test_query_depth_is_limited(client: httpx.AsyncClient) -> None:
    deep = "{ sessions { edges { node { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } } } }"
    body = await gql(client, deep)
    assert "nests 13 levels deep" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_text_search_finds_later_prompts_too(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    native = f"search-{tag}"
    await ingest(client, [
        event(native, 0, "user_prompt", content="first, unrelated words"),
        event(native, 1, "assistant_message", content=f"reply mentions zebra{tag} but is not a prompt"),
        event(native, 2, "user_prompt", content=f"now fix the zebra{tag}-parser please"),
    ])
    found = await gql(client, SESSIONS, {"filter": {"text": f"zebra{tag}-PARSER"}, "first": 5})
    assert [e["node"]["nativeId"] for e in found["data"]["sessions"]["edges"]] == [native]
    assert found["data"]["sessions"]["edges"][0]["node"]["title"] == "first, unrelated words"
    reply_only = await gql(client, SESSIONS, {"filter": {"text": f"mentions zebra{tag}"}, "first": 5})
    assert reply_only["data"]["sessions"]["edges"] == []  # assistant text is not searched
