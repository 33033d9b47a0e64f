"""An event id is stored once whatever its ts, and per id the highest revision wins — in the
event row, the session's rollups and every usage answer (compared with a GROUP BY over the raw
events), in every order of arrival, across batches and rollup refreshes, concurrently. Plain
PostgreSQL, real HTTP; the TimescaleDB layout (event_key) runs the same scenarios in
tests/e2e/test_event_keys.py."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import asyncpg
import httpx
import pytest

from app.ingest.identity import session_id
from app.jobs import rollups
from tests.app.test_live import next_payload, open_ws, subscribe
from tests.factories import MACHINE, event
from tests.revision_scenarios import (DAY0, INGEST, Sender, check_all, check_events, check_sessions,
                                      check_usage, ingest, new_agent, orders, versions)
from tests.helpers import gql


@pytest.fixture
async def conn(database_url: str):
    c = await asyncpg.connect(database_url)
    try:
        yield c
    finally:
        await c.close()


async def refresh() -> None:
    await rollups.refresh(wait=True)


async def test_same_id_with_another_ts_is_stored_and_counted_once(client, conn) -> None:
    agent = new_agent("ts")
    native = f"{agent}-s"
    t = DAY0 + timedelta(hours=10)
    call = event(native, 1, "llm_call", agent=agent, ts=t, model="claude-sonnet-4-5",
                 durationMs=800, tokens={"input": 10, "output": 100, "cacheRead": 500})
    tool = event(native, 2, "tool_call", agent=agent, ts=t, toolName="Read", filePath="/w/x.py")
    prompt = event(native, 3, "user_prompt", agent=agent, ts=t, content="hello")

    def moved(e: dict, hours: int) -> dict:  # the same event, another derived time
        return {**e, "ts": (t + timedelta(hours=hours)).isoformat()}

    sender = Sender(client, {})
    await sender.send([call, tool])
    await sender.send([moved(call, 3), moved(tool, 30)])  # before any refresh
    await refresh()
    await sender.send([moved(call, 5), prompt, moved(prompt, 2)])  # the first one rolled up
    for _ in range(2):  # from the rollups and their tail, then after another refresh
        assert sender.kept[call["id"]] is call
        await check_events(conn, sender.kept)
        await check_sessions(conn, agent, [native])
        await check_usage(client, conn, agent)
        await refresh()
    s = await conn.fetchrow("SELECT event_count, llm_call_count, tokens_output, files_touched,"
                            " started_at, last_event_at FROM agent_session WHERE id = $1",
                            session_id(agent, native))
    assert tuple(s) == (3, 1, 100, 1, t, t)


@pytest.mark.parametrize("order", ["ascending", "descending", "equal"])
async def test_revisions_in_order(client, conn, order: str) -> None:
    agent = new_agent(order[:4])
    vs = versions(agent)
    sender = Sender(client, vs)
    depth = max(len(v) for v in vs.values())
    levels = {"ascending": range(depth), "descending": reversed(range(depth)),
              "equal": [depth - 1, depth - 1, 0]}[order]
    for step, level in enumerate(levels):
        await sender.send([v[min(level, len(v) - 1)] for v in vs.values()])
        await check_all(client, conn, agent, sender.kept)
        if step % 2 == 0:
            await refresh()
            await check_all(client, conn, agent, sender.kept)
    assert all(sender.kept[i] is v[-1] for i, v in vs.items())


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_revisions_interleaved_across_batches_and_refreshes(client, conn, seed: int) -> None:
    agent = new_agent(f"mix{seed}")
    vs = versions(agent)
    sender = Sender(client, vs)
    rng = random.Random(seed)
    for batch in orders(vs, seed):
        await sender.send(batch)
        if rng.random() < 0.3:
            await refresh()
        if rng.random() < 0.3:
            await check_all(client, conn, agent, sender.kept)
    await check_all(client, conn, agent, sender.kept)
    await refresh()
    await check_all(client, conn, agent, sender.kept)
    assert all(sender.kept[i] is v[-1] for i, v in vs.items())


async def test_a_revision_cannot_change_an_events_identity(client, conn) -> None:
    agent = new_agent("id")
    native = f"{agent}-s"
    call = event(native, 1, "llm_call", agent=agent, ts=DAY0, tokens={"input": 1, "output": 2})
    assert (await ingest(client, [call]))["accepted"] == 1
    other_kind = {**call, "kind": "tool_call", "revision": 1}
    other_session = {**call, "session": f"{agent}-elsewhere", "revision": 2,
                     "tokens": {"input": 1, "output": 9}}
    fine = event(native, 2, "user_prompt", agent=agent, ts=DAY0, content="x")
    result = await ingest(client, [fine, other_kind])
    assert (result["accepted"], result["revised"], result["duplicates"]) == (1, 0, 0)
    assert [(r["index"], r["id"]) for r in result["rejected"]] == [(1, call["id"])]
    assert "kind 'llm_call' → 'tool_call'" in result["rejected"][0]["reason"]
    result = await ingest(client, [other_session])
    assert (result["accepted"], result["revised"], result["duplicates"]) == (0, 0, 0)
    [rejection] = result["rejected"]
    assert (rejection["index"], rejection["id"]) == (0, call["id"])
    assert "session" in rejection["reason"] and "kind, agent and session" in rejection["reason"]
    await check_events(conn, {call["id"]: call, fine["id"]: fine})
    await check_sessions(conn, agent, [native])
    # a lower or equal revision with another identity is only a duplicate
    assert await ingest(client, [{**call, "kind": "error"}]) == {
        "accepted": 0, "revised": 0, "duplicates": 1, "rejected": []}


async def test_concurrent_revisions_neither_deadlock_nor_duplicate(server, conn) -> None:
    """Batches of random versions of the same events (two agents, four sessions sharing rollup
    rows) from eight clients at once, while the rollup job refreshes: the highest revision of
    each event is what is stored and counted."""
    agents = [new_agent("race"), new_agent("race")]
    vs = {k: v for a in agents for k, v in versions(a).items()}
    batches = [b for seed in (11, 12, 13) for b in orders(vs, seed)]
    random.Random(5).shuffle(batches)
    queue = list(batches)
    results: list[dict] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=server, timeout=60) as c:
            while queue:
                results.append(await ingest(c, queue.pop()))

    done = asyncio.Event()

    async def refresher() -> None:
        while not done.is_set():
            await rollups.refresh()
            await asyncio.sleep(0.05)

    job = asyncio.create_task(refresher())
    try:
        await asyncio.gather(*(client_loop() for _ in range(8)))
    finally:
        done.set()
        await job
    assert sum(r["accepted"] for r in results) == len(vs)
    assert sum(r["accepted"] + r["revised"] + r["duplicates"] for r in results) == sum(map(len, batches))
    assert not any(r["rejected"] for r in results)
    kept = {i: v[-1] for i, v in vs.items()}
    async with httpx.AsyncClient(base_url=server, timeout=60) as c:
        for agent in agents:
            await check_all(c, conn, agent, kept)
        await refresh()
        for agent in agents:
            await check_usage(c, conn, agent)


async def test_subscribers_see_revised_events(server: str) -> None:
    agent = new_agent("live")
    native = f"{agent}-s"
    call = event(native, 1, "llm_call", agent=agent, tokens={"input": 1, "output": 64})
    grown = {**call, "revision": 1, "tokens": {"input": 1, "output": 212}}
    async with httpx.AsyncClient(base_url=server) as client:
        ws = await open_ws(server)
        try:
            await subscribe(ws, "e", "subscription($f: EventFilterInput) { eventAdded(filter: $f)"
                                     " { id revision tokens { output } } }",
                            {"f": {"session": str(session_id(agent, native))}})
            await asyncio.sleep(0.3)
            seen = []
            for e, answer in ((call, "accepted"), (grown, "revised")):
                body = await gql(client, INGEST, {"batch": {"events": [e], "machines": [MACHINE]}})
                assert body["data"]["ingestEvents"][answer] == 1
                msg = await next_payload(ws)
                assert msg["type"] == "next", msg
                seen.append(msg["payload"]["data"]["eventAdded"])
        finally:
            await ws.close()
    assert seen == [{"id": call["id"], "revision": 0, "tokens": {"output": 64}},
                    {"id": call["id"], "revision": 1, "tokens": {"output": 212}}]


async def test_a_revision_waits_for_a_rollup_refresh_in_progress(client, conn, database_url) -> None:
    """A revision subtracts from the rollups what the job added; it reads the watermark under
    the job's lock, so a refresh in progress (holding it) is never half-counted."""
    agent = new_agent("lock")
    call = event(f"{agent}-s", 1, "llm_call", agent=agent, ts=DAY0, tokens={"input": 1, "output": 5})
    assert (await ingest(client, [call]))["accepted"] == 1
    await refresh()
    job = await asyncpg.connect(database_url)  # as the rollup job holds it while it refreshes
    try:
        await job.execute("SELECT pg_advisory_lock($1)", rollups.LOCK_KEY)
        grown = asyncio.create_task(ingest(client, [{**call, "revision": 1,
                                                     "tokens": {"input": 1, "output": 50}}]))
        waiting = 0
        for _ in range(400):  # until the ingest transaction waits for that lock
            waiting = await conn.fetchval(
                """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                   AND classid = $1 AND objid = $2""",
                rollups.LOCK_KEY >> 32, rollups.LOCK_KEY & 0xFFFFFFFF)
            if waiting or grown.done():
                break
            await asyncio.sleep(0.05)
        assert waiting == 1 and not grown.done()
        await job.execute("SELECT pg_advisory_unlock($1)", rollups.LOCK_KEY)
        assert (await grown)["revised"] == 1
    finally:
        await job.close()
    await check_all(client, conn, agent, {call["id"]: {**call, "revision": 1,
                                                      "tokens": {"input": 1, "output": 50}}})


async def test_a_revision_out_of_range_is_rejected_alone(client, conn) -> None:
    agent = new_agent("range")
    native = f"{agent}-s"
    ok = event(native, 1, "llm_call", agent=agent, ts=DAY0, revision=2**31 - 1)
    too_big = event(native, 2, "llm_call", agent=agent, ts=DAY0, revision=2**31)
    negative = event(native, 3, "llm_call", agent=agent, ts=DAY0, revision=-1)
    result = await ingest(client, [ok, too_big, negative])
    assert (result["accepted"], result["revised"], result["duplicates"]) == (1, 0, 0)
    assert [(r["index"], "revision" in r["reason"]) for r in result["rejected"]] == [(1, True), (2, True)]
    await check_events(conn, {ok["id"]: ok})
