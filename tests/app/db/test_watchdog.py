"""The database watchdog against a real PostgreSQL and a real TCP peer that never answers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app.db import engine, watchdog
from app.errors import DatabaseUnavailable


@pytest.fixture
def silent_port():
    """A listening socket that accepts connections (the kernel does) and never says a word:
    what a SIGSTOPped PostgreSQL looks like to a client."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


async def test_a_silent_database_is_marked_down_and_guarded_reads_fail_at_once(silent_port) -> None:
    dog = watchdog.Watchdog(f"postgresql://x@127.0.0.1:{silent_port}/x", timeout=0.3)
    await dog.probe()
    assert dog.down == "no answer within 0.3 s"
    watchdog._current, previous = dog, watchdog._current
    try:
        never = asyncio.get_running_loop().create_future()  # a query that never ends
        with pytest.raises(DatabaseUnavailable, match="not answering"):
            await watchdog.guarded(never)
    finally:
        watchdog._current = previous


async def test_a_read_in_flight_fails_when_the_database_goes_down(database_url: str) -> None:
    dog = watchdog.Watchdog(database_url, timeout=1.0)
    await dog.probe()
    assert dog.down is None
    watchdog._current, previous = dog, watchdog._current
    try:
        assert await watchdog.guarded(asyncio.sleep(0, result=7)) == 7
        stuck = asyncio.get_running_loop().create_future()
        read = asyncio.ensure_future(watchdog.guarded(stuck))
        await asyncio.sleep(0.05)
        assert not read.done()
        dog._mark_down("test")  # what a failed probe does
        with pytest.raises(DatabaseUnavailable, match=r"\(test\)"):
            await read
        assert stuck.cancelled()  # the abandoned work is cancelled, not left waiting
        await dog.probe()  # the database answers: reads work again
        assert dog.down is None
        assert await watchdog.guarded(asyncio.sleep(0, result=8)) == 8
    finally:
        watchdog._current = previous
        await dog.close()


async def test_reopening_the_pool_on_a_new_url_keeps_serving(database_url: str) -> None:
    # The run's in-process server may have the pool open already: then it is the one replaced
    # (and must keep working), else the test opens one of its own.
    opened = engine.DB.pool is None
    if opened:
        engine.configure(database_url)
        await engine.open_pool(1, 3)
    try:
        old = engine.pool()
        await engine.reopen_pool(database_url)
        assert engine.pool() is not old and old.is_closing()
        async with engine.pool().acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        if opened:
            await engine.close_pool()
