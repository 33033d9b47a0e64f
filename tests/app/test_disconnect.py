"""A client that goes away stops its work: the backend query disappears from pg_stat_activity
(it would otherwise wait on, for nobody, until the read time limit)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import asyncpg
import httpx

from app import turns
from tests.app.test_read_timeout import locked

WAITING = """SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active' AND wait_event_type = 'Lock'
               AND query LIKE '%FROM agent_session s WHERE%'"""


async def _until(conn: asyncpg.Connection, want: int, seconds: float = 15) -> int:
    n = -1
    for _ in range(int(seconds / 0.05)):
        n = await conn.fetchval(WAITING)
        if n == want:
            break
        await asyncio.sleep(0.05)
    return n


async def _request_then_leave(server: str, database_url: str, request: bytes) -> tuple[int, int]:
    """Send ``request`` while agent_session is locked, wait until its query waits for the lock,
    close the connection; return (queries waiting before, after)."""
    parts = urlsplit(server)
    # pg_stat_activity is read outside the locking transaction (it is a snapshot per transaction)
    conn = await asyncpg.connect(database_url)
    try:
        async with locked(database_url, "agent_session"):
            _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.write(request)
            await writer.drain()
            before = await _until(conn, 1)
            writer.close()  # the client goes away mid-request
            await writer.wait_closed()
            after = await _until(conn, 0)
    finally:
        await conn.close()
    return before, after


async def test_a_graphql_query_is_cancelled_when_its_client_leaves(server: str, database_url: str) -> None:
    body = json.dumps({"query": "{ sessions(first: 5) { edges { node { id } } } }"}).encode()
    request = (b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    waiting = turns.waiting_for_answers()
    before, after = await _request_then_leave(server, database_url, request)
    assert before == 1, "the query never waited for the lock"
    assert after == 0, "the query ran on after its client left"
    async with httpx.AsyncClient(base_url=server) as client:  # the server is fine
        assert (await client.post("/graphql", json={"query": "{ health { database } }"})).status_code == 200
    assert turns.waiting_for_answers() == waiting  # the request counts as answered


async def test_a_page_is_cancelled_when_its_client_leaves(server: str, database_url: str) -> None:
    """A request without a body (a page, a GET) is watched from its start."""
    request = b"GET /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    before, after = await _request_then_leave(server, database_url, request)
    assert before == 1, "the query never waited for the lock"
    assert after == 0, "the query ran on after its client left"
