"""The TimescaleDB layout of event ids on a real PostgreSQL: ``agent_event`` keyed by (id, ts),
ids made unique by the ``event_key`` table (what migration 0008 builds on a hypertable), served
by a real ``devlog serve``. The same scenarios as tests/app/test_revisions.py: the same id with
another ts stored once, revisions in any order with the rollup job refreshing meanwhile, and
concurrent batches. (Hypertable specifics — chunks, compression, continuous aggregates — are in
tests/timescale, on PGlite.)"""

from __future__ import annotations

import asyncio
import random
import subprocess
from datetime import timedelta

import asyncpg
import httpx
import pytest

from migrations.devlog_0008_event_id_unique import EVENT_KEY_DDL
from tests.e2e.test_serve import _wait_ready
from tests.factories import event
from tests.helpers import devlog_cmd, free_port, subprocess_env
from tests.revision_scenarios import (DAY0, Sender, check_all, check_usage, ingest, new_agent,
                                      orders, versions)

KEYED_LAYOUT = """
ALTER TABLE agent_event DROP CONSTRAINT agent_event_pkey;
ALTER TABLE agent_event ADD CONSTRAINT agent_event_pkey PRIMARY KEY (id, ts);
""" + EVENT_KEY_DDL


@pytest.fixture(scope="module")
async def keyed(fresh_database):
    """(base URL, database URL) of a devlog serve on a database in the event_key layout, its
    rollup job refreshing every second."""
    url = await fresh_database()
    done = await asyncio.to_thread(
        subprocess.run, devlog_cmd("db", "migrate"), env=subprocess_env(DEVLOG_DATABASE_URL=url),
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(KEYED_LAYOUT)
    finally:
        await conn.close()
    port = free_port()
    proc = subprocess.Popen(
        devlog_cmd("serve", "--port", str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=subprocess_env(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning",
                                      DEVLOG_ROLLUP_INTERVAL_SECONDS="1"))
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_wait_ready, proc, base)
        yield base, url
    finally:
        proc.terminate()
        proc.wait(30)


async def rolled_up(conn: asyncpg.Connection) -> None:
    """Until the server's rollup job has rolled up every event ingested so far."""
    for _ in range(300):
        if await conn.fetchval(
                "SELECT watermark > (SELECT max(ingested_at) FROM agent_event)"
                " FROM job_state WHERE name = 'rollups'"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the rollup job did not catch up")


async def test_event_keys_same_id_and_revisions(keyed) -> None:
    base, url = keyed
    conn = await asyncpg.connect(url)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            # the same id with another ts: stored once
            agent = new_agent("kts")
            call = event(f"{agent}-one", 1, "llm_call", agent=agent, ts=DAY0,
                         model="claude-sonnet-4-5", tokens={"input": 1, "output": 10})
            sender = Sender(client, {})
            await sender.send([call])
            await rolled_up(conn)
            await sender.send([{**call, "ts": (DAY0 + timedelta(hours=26)).isoformat()}])
            await check_all(client, conn, agent, sender.kept)
            assert await conn.fetchval("SELECT count(*) FROM event_key WHERE id = $1", call["id"]) == 1
            # revisions in a random order, the job refreshing meanwhile
            agent = new_agent("krev")
            vs = versions(agent)
            sender = Sender(client, vs)
            rng = random.Random(4)
            for batch in orders(vs, 4):
                await sender.send(batch)
                if rng.random() < 0.25:
                    await rolled_up(conn)
                    await check_all(client, conn, agent, sender.kept)
            await check_all(client, conn, agent, sender.kept)
            await rolled_up(conn)
            await check_all(client, conn, agent, sender.kept)
            assert all(sender.kept[i] is v[-1] for i, v in vs.items())
            keys = await conn.fetch("SELECT k.id::text, k.ts, k.revision FROM event_key k"
                                    " JOIN agent_event e ON e.id = k.id AND e.ts = k.ts"
                                    " WHERE k.id = ANY($1::uuid[])", list(vs))
            assert len(keys) == len(vs) and all(k["revision"] == len(vs[k["id"]]) - 1 for k in keys)
    finally:
        await conn.close()


async def test_event_keys_concurrent_revisions(keyed) -> None:
    base, url = keyed
    agents = [new_agent("krace"), new_agent("krace")]
    vs = {k: v for a in agents for k, v in versions(a).items()}
    batches = [b for seed in (21, 22) for b in orders(vs, seed)]
    random.Random(6).shuffle(batches)
    queue = list(batches)
    results: list[dict] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            while queue:
                results.append(await ingest(c, queue.pop()))

    await asyncio.gather(*(client_loop() for _ in range(8)))
    assert sum(r["accepted"] for r in results) == len(vs)
    assert not any(r["rejected"] for r in results)
    conn = await asyncpg.connect(url)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for agent in agents:
                await check_all(client, conn, agent, {i: v[-1] for i, v in vs.items()})
            await rolled_up(conn)
            for agent in agents:
                await check_usage(client, conn, agent)
    finally:
        await conn.close()
