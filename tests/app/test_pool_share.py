"""One request cannot take every pool connection: a query's reads hold at most half the pool
at once, so other requests still get one."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from app.settings import Settings
from tests.app.test_disconnect import WAITING
from tests.app.test_read_timeout import NEVER, locked


async def test_a_query_with_many_fields_leaves_connections_for_others(
        client: httpx.AsyncClient, database_url: str) -> None:
    pool = Settings().db_pool_max  # the test server's pool
    fields = " ".join(f"s{i}: sessions(first: 1) {{ edges {{ cursor }} }}" for i in range(pool))
    watcher = await asyncpg.connect(database_url)
    try:
        async with locked(database_url, "agent_session"):
            greedy = asyncio.create_task(client.post("/graphql", json={"query": "{ " + fields + " }"}))
            waiting = 0
            for _ in range(100):  # until its reads wait for the lock
                waiting = await watcher.fetchval(WAITING)
                if waiting >= pool // 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for more of its reads to take connections, if they could
            assert await watcher.fetchval(WAITING) == pool // 2
            # another request still gets a connection while the greedy one waits
            other = await asyncio.wait_for(client.post("/graphql", json={"query": "{ jobs { name } }"}), NEVER)
            assert "errors" not in other.json(), other.json()
            assert not greedy.done()
        body = (await asyncio.wait_for(greedy, NEVER)).json()
        assert "errors" not in body and len(body["data"]) == pool
    finally:
        await watcher.close()
