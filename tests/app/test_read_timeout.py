"""The read time limit (DEVLOG_READ_TIMEOUT_SECONDS): a read held up in PostgreSQL — here behind
a lock another connection holds, the honest way to make a query slow on demand — is stopped by
the database and answered with one clear error; writers are never limited by it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from app.db import engine, reads
from app.errors import ReadTimeout
from app.services import prices as price_service
from app.services import sessions as session_service
from app.services import usage as usage_service
from tests.factories import INGEST, MACHINE, event
from tests.helpers import gql

LIMIT = 0.4  # seconds: tiny, so the tests are quick
NEVER = 20  # a read that the limit did not stop would wait for the lock this long: a failure


@contextlib.contextmanager
def read_limit(seconds: float) -> Iterator[None]:
    previous = reads.limit()
    reads.configure(seconds)
    try:
        yield
    finally:
        reads.configure(previous)


@contextlib.asynccontextmanager
async def locked(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """``table`` locked against everyone else (ACCESS EXCLUSIVE) until the block ends."""
    conn = await asyncpg.connect(database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


@pytest.mark.parametrize("read, table", [
    (lambda: session_service.list_sessions(), "agent_session"),  # one statement (reads.fetch)
    (lambda: usage_service.usage(datetime.now(UTC) - timedelta(days=1), None, "hour", ["agent"]),
     "agent_event"),  # a read-only transaction (set_config in its first statement)
    (lambda: price_service.list_prices(), "model_price"),  # a connection (reads.connection)
], ids=["fetch", "transaction", "connection"])
async def test_each_read_path_is_stopped_by_the_limit(server: str, database_url: str, read, table: str) -> None:
    with read_limit(LIMIT):
        async with locked(database_url, table):
            with pytest.raises(ReadTimeout) as caught:
                await asyncio.wait_for(read(), NEVER)
    assert "DEVLOG_READ_TIMEOUT_SECONDS" in str(caught.value)
    await read()  # the pool is fine afterwards


async def test_graphql_answers_a_timeout_with_a_clear_error(client: httpx.AsyncClient, database_url: str) -> None:
    with read_limit(LIMIT):
        async with locked(database_url, "agent_session"):
            response = await asyncio.wait_for(client.post("/graphql", json={
                "query": "{ sessions(first: 5) { edges { node { id } } } }"}), NEVER)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "TIMEOUT", error
    assert error["extensions"]["setting"] == "DEVLOG_READ_TIMEOUT_SECONDS"
    assert "took longer than 0.4 s" in error["message"]
    assert "canceling statement" not in error["message"]  # not the driver's text


async def test_a_page_answers_a_timeout_with_503(client: httpx.AsyncClient, database_url: str) -> None:
    with read_limit(LIMIT):
        async with locked(database_url, "agent_session"):
            response = await asyncio.wait_for(client.get("/sessions"), NEVER)
    assert response.status_code == 503
    assert "DEVLOG_READ_TIMEOUT_SECONDS" in response.text and "Too slow" in response.text


async def test_writers_are_not_limited(client: httpx.AsyncClient, database_url: str) -> None:
    """An ingest that waits longer than the read limit (behind a lock) still commits, and a
    connection a read used comes back to the pool without the read's timeout."""
    native = f"rt-{uuid.uuid4().hex[:8]}"
    with read_limit(LIMIT):
        async with reads.connection() as conn:  # a read sets the timeout on a pool connection…
            assert await conn.fetchval("SHOW statement_timeout") == f"{int(LIMIT * 1000)}ms"
            pid = conn.get_server_pid()
        async with contextlib.AsyncExitStack() as held:  # …which the next user gets back reset
            while (conn := await held.enter_async_context(engine.pool().acquire())).get_server_pid() != pid:
                pass
            assert await conn.fetchval("SHOW statement_timeout") == "0"
        async with locked(database_url, "agent_session"):
            ingest = asyncio.create_task(gql(client, INGEST, {
                "batch": {"events": [event(native, 0, "user_prompt", content="hi")], "machines": [MACHINE]}}))
            await asyncio.sleep(3 * LIMIT)
            assert not ingest.done()  # waiting for the lock, past the read limit
        body = await asyncio.wait_for(ingest, NEVER)
    assert body["data"]["ingestEvents"]["accepted"] == 1, body


async def test_one_request_shares_one_budget() -> None:
    """Inside a request's budget, each statement gets what is left, and none starts once it is
    spent (so ten slow fields cannot take ten times the limit)."""
    with read_limit(LIMIT), reads.budget():
        assert 0 < reads.timeout_ms() <= LIMIT * 1000
        time.sleep(LIMIT / 2)
        assert reads.timeout_ms() <= LIMIT * 1000 / 2 + 1
        time.sleep(LIMIT / 2)
        with pytest.raises(ReadTimeout):
            reads.timeout_ms()
    with read_limit(LIMIT):
        assert reads.timeout_ms() == int(LIMIT * 1000)  # outside a budget: the plain limit
    with read_limit(0):
        assert reads.timeout_ms() == 0  # 0: no limit
