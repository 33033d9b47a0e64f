"""One request cannot take every pool connection: a query's reads hold at most a quarter of the pool
at once, so other requests still get one."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from app.db import reads
from tests.app.test_read_timeout import NEVER, locked
from tests.factories import INGEST, MACHINE, event
from tests.helpers import gql

WAITING = """SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active' AND wait_event_type = 'Lock'
               AND query LIKE '%FROM agent_event e WHERE e.session_id = $1%'"""


async def test_a_query_with_many_statements_leaves_connections_for_others(
        client: httpx.AsyncClient, database_url: str) -> None:
    """Each session's `events` is a statement of its own: 20 sessions ask for 20 at once."""
    share = reads.share()  # a quarter of the test server's pool
    assert share < 20
    tag = uuid.uuid4().hex[:8]
    await gql(client, INGEST, {"batch": {"events": [event(f"share-{tag}-{i}", 0, "user_prompt", content="hi")
                                                    for i in range(20)], "machines": [MACHINE]}})
    query = "{ sessions(first: 20) { edges { node { events(first: 1) { edges { cursor } } } } } }"
    watcher = await asyncpg.connect(database_url)
    try:
        async with locked(database_url, "agent_event"):
            greedy = asyncio.create_task(client.post("/graphql", json={"query": query}))
            for _ in range(100):  # until its reads wait for the lock
                if await watcher.fetchval(WAITING) >= share:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for more of its reads to take connections, if they could
            assert await watcher.fetchval(WAITING) == share
            # another request still gets a connection while the greedy one waits
            other = await asyncio.wait_for(client.post("/graphql", json={"query": "{ jobs { name } }"}), NEVER)
            assert "errors" not in other.json(), other.json()
            assert not greedy.done()
        body = (await asyncio.wait_for(greedy, NEVER)).json()
        assert "errors" not in body and len(body["data"]["sessions"]["edges"]) == 20, body
    finally:
        await watcher.close()
