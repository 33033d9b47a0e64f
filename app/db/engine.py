"""The one Piccolo engine (and its asyncpg pool) every table and service uses.

The URL is only known at run time (it may point at the embedded cluster, whose port is chosen
when it starts), so the engine is created empty and configured by :func:`configure` before the
pool opens.
"""

from __future__ import annotations

import asyncio

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from app.errors import DatabaseUnavailable
from app.settings import mask_url

DB = PostgresEngine(config={}, extensions=())


def configure(url: str) -> None:
    """Point the engine at ``url`` (must be called before the pool opens)."""
    DB.config = {"dsn": url}


_statements = 0


def _count_statement(record: object) -> None:
    global _statements
    _statements += 1


def statement_count() -> int:
    """SQL statements run through the pool so far (tests use it to catch N+1 queries)."""
    return _statements


async def _init_connection(conn: asyncpg.Connection) -> None:
    conn.add_query_logger(_count_statement)


async def open_pool(min_size: int = 1, max_size: int = 10) -> None:
    await DB.start_connection_pool(min_size=min_size, max_size=max_size, init=_init_connection)


async def close_pool() -> None:
    if DB.pool is not None:
        await DB.close_connection_pool()


async def reopen_pool(url: str) -> None:
    """Point the pool at a new address (the embedded cluster restarted on another port): the
    new pool is opened before the old one is dropped, so no request finds none."""
    configure(url)
    old = DB.pool
    if old is None:
        return
    DB.pool = await asyncpg.create_pool(dsn=url, min_size=old.get_min_size(),
                                        max_size=old.get_max_size(), init=_init_connection)
    old.terminate()


def pool() -> asyncpg.Pool:
    if DB.pool is None:
        raise DatabaseUnavailable("database pool is not open")
    return DB.pool


# A refused connection is retried only this long: long enough for a database that is starting
# at the same moment, short enough that a wrong port fails at once (a timeout or "starting up"
# is waited for up to the caller's timeout).
REFUSED_GRACE_S = 1.5


async def wait_for_database(url: str, timeout: float) -> None:
    """Connect once, retrying briefly; raise DatabaseUnavailable with one clear line."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    last: BaseException | None = None
    while True:
        try:
            conn = await asyncpg.connect(dsn=url, timeout=min(5.0, max(timeout, 0.5)))
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError, ValueError) as exc:
            last = exc
            if isinstance(exc, (asyncpg.InvalidPasswordError, asyncpg.InvalidCatalogNameError,
                                asyncpg.InvalidAuthorizationSpecificationError, ValueError)):
                break  # retrying will not help
            now = loop.time()
            if now >= deadline or (_refused(exc) and now >= start + REFUSED_GRACE_S):
                break
            await asyncio.sleep(0.25)
        else:
            await conn.close()
            return
    reason = describe_connect_error(last)
    raise DatabaseUnavailable(f"cannot connect to database {mask_url(url)}: {reason}")


def _refused(exc: BaseException) -> bool:
    """A refused connection (asyncio reports several addresses' refusals as one OSError)."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    text = str(exc)
    return isinstance(exc, OSError) and ("refused" in text.lower() or "Connect call failed" in text)


def describe_connect_error(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    if _refused(exc):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
