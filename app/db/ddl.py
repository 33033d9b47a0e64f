"""Run multi-statement SQL scripts through the engine (inside the current Piccolo transaction
when there is one, so a migration's raw DDL stays atomic)."""

from __future__ import annotations

import asyncpg

from app.db.engine import DB
from app.db.watchdog import guarded


async def execute_script(sql: str) -> None:
    transaction = DB.current_transaction.get()
    if transaction is not None:
        await transaction.connection.execute(sql)
        return
    if DB.pool is not None:
        async with DB.pool.acquire() as conn:
            await conn.execute(sql)
        return
    conn = await DB.get_new_connection()
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def storable(args: tuple[object, ...]) -> tuple[object, ...]:
    """Query arguments as PostgreSQL can take them: text holds no NUL, and ingest stores NUL as
    U+FFFD, so a filter's NUL is looked for as U+FFFD (instead of failing the query)."""
    if not any(isinstance(a, str | list) for a in args):
        return args
    return tuple(a.replace("\x00", "\ufffd") if isinstance(a, str)
                 else [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in a]
                 if isinstance(a, list) else a for a in args)


async def fetch(sql: str, *args: object) -> list:
    """Fetch rows (asyncpg Records) with the same transaction rules as execute_script;
    arguments made :func:`storable`."""
    args = storable(args)
    transaction = DB.current_transaction.get()
    if transaction is not None:
        return await transaction.connection.fetch(sql, *args)
    if DB.pool is not None:  # fails at once while the database hangs (app.db.watchdog)
        return await guarded(_pool_fetch(DB.pool, sql, args))
    conn = await DB.get_new_connection()
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _pool_fetch(pool: asyncpg.Pool, sql: str, args: tuple) -> list:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)
