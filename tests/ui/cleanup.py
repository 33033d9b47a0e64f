"""Take a test's hostile data out of the shared database again, rollups included: other tests
of the run read today's usage (a chart's legend keeps the top series) and the latest Codex
rate limits."""

from __future__ import annotations

from app.db import rollups
from app.db.engine import pool
from app.ingest.identity import machine_id


async def forget_machine(key: str) -> None:
    """Delete every session, event and rollup row of the machine ``key`` (raw rows first: a
    rollup refresh running meanwhile finds nothing more to add)."""
    mid = machine_id(key)
    db = pool()
    async with db.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM agent_session WHERE machine = $1", mid)]
        await conn.execute("DELETE FROM agent_event WHERE session_id = ANY($1::uuid[])", ids)
        await conn.execute("DELETE FROM agent_session WHERE id = ANY($1::uuid[])", ids)
    for rollup in rollups.ROLLUPS:
        for table in (rollup.name, rollup.daily):
            if await db.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                await db.execute(f"DELETE FROM {table} WHERE machine_id = $1", mid)
