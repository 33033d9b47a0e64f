"""Reads under a time limit (``DEVLOG_READ_TIMEOUT_SECONDS``).

Every read of the services runs with PostgreSQL's ``statement_timeout`` set, so no query — a
slow filter, a lock it waits behind — holds a pool connection longer than the limit: the
database stops it and the caller gets :class:`~app.errors.ReadTimeout` (one clear sentence),
never the driver's text.

- :func:`fetch` (one statement, outside any transaction) sets the timeout on its pool
  connection first. It is a session setting; the pool's ``RESET ALL`` on release undoes it, so
  writers that take the connection next (ingest, jobs) are not limited.
- Read-only transactions (usage analytics) set it with ``set_config(…, true)`` in their first
  statement: local to the transaction, no extra round trip.
- :func:`budget` gives a whole request one deadline: every statement it starts gets at most
  the time left (a GraphQL query with ten fields cannot run ten times the limit), and a share
  of the pool: at most ``share`` of its reads hold a connection at once (a quarter of the
  pool, at least one), so one request with many fields or a statement per object cannot take
  every connection while others wait for one; the share also bounds how many of its tasks
  compete with other requests for the event loop at once. A read waiting for its share takes
  a turn first (``app.turns.pause``).

Writes (ingest, jobs, recompute, migrations) do not go through here and are not limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg

from app import turns
from app.db.ddl import storable
from app.db.engine import DB
from app.db.watchdog import guarded
from app.errors import ReadTimeout

_limit = 30.0  # seconds; 0: none
_share = 5  # connections one request's reads may hold at once
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("devlog_read_deadline",
                                                                         default=None)
_connections: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar(
    "devlog_read_connections", default=None)


def configure(seconds: float, pool_max: int = 10) -> None:
    """The read limit in seconds (0: none) and the pool size (a query may use a quarter)."""
    global _limit, _share
    _limit = max(0.0, float(seconds))
    _share = max(1, pool_max // 4)


def limit() -> float:
    return _limit


def share() -> int:
    """Connections one query's reads may hold at once."""
    return _share


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """One deadline and one share of the pool for every read started inside (in this task and
    the tasks it creates)."""
    deadline = _deadline.set(time.monotonic() + _limit if _limit else None)
    connections = _connections.set(asyncio.Semaphore(_share))
    try:
        yield
    finally:
        _connections.reset(connections)
        _deadline.reset(deadline)


@contextlib.asynccontextmanager
async def pooled() -> AsyncIterator[asyncpg.Connection]:
    """A pool connection, within the request's share of the pool when it has one."""
    share = _connections.get()
    if share is None:
        async with DB.pool.acquire() as conn:
            yield conn
        return
    if share.locked():  # this request already holds its share: let other requests go first
        await turns.pause()
    async with share, DB.pool.acquire() as conn:
        yield conn


def timeout_ms() -> int:
    """The ``statement_timeout`` for a read starting now, in ms (0: none). Raises ReadTimeout
    when the request's budget is spent."""
    if not _limit:
        return 0
    seconds = _limit
    deadline = _deadline.get()
    if deadline is not None:
        seconds = deadline - time.monotonic()
        if seconds <= 0:
            raise ReadTimeout(_limit)
    return max(1, int(seconds * 1000))


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """A statement stopped by the timeout → ReadTimeout (other cancellations pass through)."""
    try:
        yield
    except asyncpg.QueryCanceledError as exc:
        if "statement timeout" not in str(exc):
            raise
        raise ReadTimeout(_limit) from None


@contextlib.asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pool connection whose statements stop after the read limit (the time left)."""
    ms = timeout_ms()
    async with pooled() as conn:
        with translated():
            if ms:
                await conn.execute(f"SET statement_timeout = {ms}")
            yield conn


async def fetch(sql: str, *args: object) -> list:
    """Rows of one read statement, under the time limit. Inside a Piccolo transaction it runs
    there, with that transaction's settings (as ``app.db.ddl.fetch`` does)."""
    transaction = DB.current_transaction.get()
    if transaction is not None:
        return await transaction.connection.fetch(sql, *storable(args))
    if DB.pool is None:  # the CLI before a pool exists: a connection of its own
        conn = await DB.get_new_connection()
        try:
            with translated():
                if ms := timeout_ms():
                    await conn.execute(f"SET statement_timeout = {ms}")
                return await conn.fetch(sql, *storable(args))
        finally:
            await conn.close()
    # fails at once while the database hangs (app.db.watchdog): the abandoned read ends, and
    # gives its connection back, in the background
    return await guarded(_fetch_pooled(sql, args))


async def _fetch_pooled(sql: str, args: tuple) -> list:
    async with connection() as conn:
        return await conn.fetch(sql, *storable(args))
