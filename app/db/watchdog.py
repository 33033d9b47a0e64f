"""Notice within about a second and a half that the database stopped answering, and heal what
can be healed.

A database that dies refuses connections at once; one that hangs (a SIGSTOPped postmaster, a
frozen VM, a network partition) accepts TCP connections and never answers, and asyncpg then
waits forever. The :class:`Watchdog` asks ``SELECT 1`` on a connection of its own every
``interval`` seconds with a ``timeout``; an unanswered or failed probe, confirmed by a second
short one on a new connection, marks the database *down* with a reason; the first answered
probe marks it up again. Worst case from hang to *down*: interval + timeout + 0.5 s (1.75 s).

- Reads (:func:`guarded`) race the watchdog: a read in flight when the database goes down, or
  started while it is down, fails at once with :class:`~app.errors.DatabaseUnavailable`
  instead of hanging, so pages, probes and GraphQL answer 503 / an error within about 2 s. The
  abandoned query finishes (or is cancelled) in the background when the database comes back,
  and the pool replaces its connection if it broke: nothing to restart.
- The embedded cluster, when it is the one in use, is *supervised*: when the watchdog finds it
  down and its postmaster gone (killed, crashed — not merely stopped by SIGSTOP, which keeps the
  process alive), it is started again with exponential backoff (1 s, 2 s, 4 s … 30 s) for up to
  ``restart_attempts`` attempts in a row, each logged; a start that succeeds resets the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from app.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from app.db.embedded import EmbeddedPostgres

log = logging.getLogger("devlog.database")

T = TypeVar("T")

_current: Watchdog | None = None


class Watchdog:
    def __init__(self, url: str, *, interval: float = 0.25, timeout: float = 1.0,
                 cluster: EmbeddedPostgres | None = None, restart_attempts: int = 8) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.cluster = cluster
        self.restart_attempts = restart_attempts
        self.down: str | None = None  # why the database is down; None while it answers
        self.restarts = 0  # successful restarts of the embedded cluster by this process
        self._went_down = asyncio.Event()
        self._came_up = asyncio.Event()
        self._came_up.set()
        self._conn: asyncpg.Connection | None = None
        self._failures = 0  # consecutive failed restarts
        self.on_new_url: list[Callable[[str], object]] = []  # told when the address changes
        self._next_restart = 0.0

    # ------------------------------------------------------------------ state

    def _mark_down(self, reason: str) -> None:
        if self.down is None:
            log.warning("database not answering: %s", reason)
            self._came_up.clear()
            self._went_down.set()
        self.down = reason

    def _mark_up(self) -> None:
        if self.down is not None:
            log.warning("database answering again")
            self._went_down.clear()
            self._came_up.set()
        self.down = None

    async def wait_down(self) -> str:
        await self._went_down.wait()
        return self.down or "database not answering"

    async def wait_up(self) -> None:
        await self._came_up.wait()

    # ------------------------------------------------------------------ probing

    async def probe(self) -> None:
        """One check: ``SELECT 1`` within ``timeout``; a failure is confirmed at once by a
        second, shorter check on a new connection before the database counts as down (the
        first may have failed only because this process's own event loop was busy)."""
        reason = await self._ask(self.timeout)
        if reason is not None:
            reason = await self._ask(min(0.5, self.timeout / 2)) and reason
        if reason is None:
            self._failures = 0
            self._mark_up()
            return
        self._mark_down(reason)
        await self._supervise()

    async def _ask(self, timeout: float) -> str | None:
        """None if the database answered within ``timeout``, else why not."""
        try:
            async with asyncio.timeout(timeout):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(dsn=self.url, timeout=timeout)
                await self._conn.fetchval("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._drop_connection()
            from app.db.engine import describe_connect_error

            return (f"no answer within {self.timeout:.1f} s" if isinstance(exc, TimeoutError)
                    else describe_connect_error(exc))
        return None

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()  # no round trip: the server may not answer
            self._conn = None

    async def _supervise(self) -> None:
        """Start the embedded cluster again when its postmaster is gone."""
        cluster = self.cluster
        if cluster is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_restart:
            return
        status = await asyncio.to_thread(cluster.status)
        if status.running:
            return  # alive but not answering (stopped, overloaded): wait for it
        if self._failures >= self.restart_attempts:
            return
        self._failures += 1
        attempt = self._failures
        log.warning("embedded PostgreSQL is not running; starting it again (attempt %d of %d)",
                    attempt, self.restart_attempts)
        try:
            url, _ = await asyncio.to_thread(cluster.start)
        except Exception as exc:  # noqa: BLE001 - reported, retried with backoff
            delay = min(30.0, 2.0 ** (attempt - 1))
            self._next_restart = loop.time() + delay
            if attempt >= self.restart_attempts:
                log.error("embedded PostgreSQL did not start after %d attempts (%s); restart "
                          "devlog once the cause is fixed", attempt, exc)
            else:
                log.warning("embedded PostgreSQL did not start (%s); next attempt in %.0f s",
                            exc, delay)
            return
        self.restarts += 1
        if url != self.url:  # a new port: point every connection at it
            log.warning("embedded PostgreSQL came back on a new address; reconnecting")
            self.url = url
            from app.db import engine

            await engine.reopen_pool(url)
            for tell in self.on_new_url:
                tell(url)
        log.warning("embedded PostgreSQL started again")

    async def run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        self._drop_connection()


def current() -> Watchdog | None:
    return _current


@contextlib.asynccontextmanager
async def watching(url: str, *, interval: float, timeout: float,
                   cluster: EmbeddedPostgres | None = None) -> AsyncIterator[Watchdog]:
    """Run a watchdog for the duration of the block (the process's current one)."""
    global _current
    dog = Watchdog(url, interval=interval, timeout=timeout, cluster=cluster)
    await dog.probe()
    task = asyncio.create_task(dog.run(), name="devlog-db-watchdog")
    previous, _current = _current, dog
    try:
        yield dog
    finally:
        _current = previous
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dog.close()


def _unavailable(reason: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"the database is not answering ({reason}); try again shortly")


_background: set[asyncio.Task] = set()


def _consume(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()


def in_background(work: Awaitable[object]) -> None:
    """Let ``work`` (a clean-up that may wait for the database) finish on its own."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_consume)


async def guarded(work: Awaitable[T]) -> T:
    """``await work``, or raise DatabaseUnavailable as soon as the database is found down."""
    dog = _current
    if dog is None:
        return await work
    if dog.down is not None:
        if asyncio.iscoroutine(work):
            work.close()
        raise _unavailable(dog.down)
    task = asyncio.ensure_future(work)
    down = asyncio.ensure_future(dog.wait_down())
    try:
        await asyncio.wait((task, down), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        down.cancel()
    if task.done():
        return task.result()
    # The query may wait for the database to come back before it can be cancelled; it is
    # left to finish in the background (its connection goes back to the pool, or is replaced).
    task.cancel()
    _background.add(task)
    task.add_done_callback(_consume)
    raise _unavailable(dog.down or "database not answering")
