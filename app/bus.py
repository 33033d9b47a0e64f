"""The event bus: what any server process committed, delivered to this process's subscribers.

Ingest sends ``pg_notify('devlog_events', …)`` inside its transaction (PostgreSQL delivers it at
commit, to every listening connection of every server process). The payload is small: session
ids, the transaction's ``now()`` (every event it wrote carries it as ``ingested_at``) and the
time range. Here one dedicated connection LISTENs; a worker loads each announced batch with one
query for the events and one for the sessions, and offers them to the subscribers.

Subscribers never slow ingest or each other: each has a bounded queue filled with
``put_nowait``. A subscriber that falls ``subscriber_queue`` items behind is closed (its
subscription ends with an error saying so); the client resubscribes. Nothing is silently
skipped for a subscription that stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from app.ingest.writer import NOTIFY_CHANNEL
from app.services import events as event_service
from app.services import sessions as session_service

log = logging.getLogger("devlog.bus")


class Overflow(Exception):
    """A subscriber fell too far behind and was closed."""


@dataclass(slots=True)
class Delivery:
    """One committed batch as seen by this process."""

    events: list[event_service.EventRecord]
    sessions: dict[uuid.UUID, session_service.SessionRecord]


@dataclass(eq=False)
class Subscriber:
    accepts: Callable[[Delivery], list[Any]]  # what of a delivery this subscriber wants
    maxsize: int
    queue: asyncio.Queue = field(init=False)
    dropped: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize + 1)  # +1: room for the closing marker

    def offer(self, items: list[Any]) -> None:
        if self.closed:
            return
        for item in items:
            if self.queue.qsize() >= self.maxsize:
                self.dropped += len(items)
                self.closed = True
                self.queue.put_nowait(Overflow(
                    f"subscriber fell more than {self.maxsize} items behind and was closed "
                    "(DEVLOG_SUBSCRIBER_QUEUE); resubscribe"))
                return
            self.queue.put_nowait(item)

    async def get(self) -> Any:
        item = await self.queue.get()
        if isinstance(item, Overflow):
            raise item
        return item


class Bus:
    def __init__(self, url: str, queue_size: int = 1000) -> None:
        self.url = url
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._pending: asyncio.Queue[str] = asyncio.Queue()
        self._conn: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task] = []
        self.delivered = 0  # batches delivered (for health and tests)
        self.ready = asyncio.Event()

    async def __aenter__(self) -> Bus:
        self._tasks = [asyncio.create_task(self._listen_forever(), name="bus-listen"),
                       asyncio.create_task(self._work(), name="bus-work")]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    # ---------------------------------------------------------------- subscribers

    @contextlib.contextmanager
    def subscribe(self, accepts: Callable[[Delivery], list[Any]]):  # noqa: ANN201
        sub = Subscriber(accepts=accepts, maxsize=self.queue_size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    # ---------------------------------------------------------------- listening

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._pending.put_nowait(payload)

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                self._conn = await asyncpg.connect(self.url)
                await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.ready.set()
                delay = 0.5
                while not self._conn.is_closed():
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await self._conn.execute("SELECT 1")  # notices a dead connection
                log.warning("bus: lost the LISTEN connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening whatever happens
                log.warning("bus: cannot listen (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _work(self) -> None:
        while True:
            payload = await self._pending.get()
            try:
                await self._deliver(payload)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad batch must not stop live updates
                log.exception("bus: could not deliver a batch")

    async def _deliver(self, payload: str) -> None:
        if not self._subscribers:
            return
        note = msgspec.json.decode(payload)
        session_ids = [uuid.UUID(s) for s in note["sessions"]]
        at = datetime.fromisoformat(note["at"])
        rows = await event_service.events_ingested(
            session_ids, at, datetime.fromisoformat(note["from"]), datetime.fromisoformat(note["to"]))
        records = await session_service.sessions_by_ids(session_ids)
        delivery = Delivery(events=rows,
                            sessions={r.id: r for r in records if r is not None})
        for sub in list(self._subscribers):
            items = sub.accepts(delivery)
            if items:
                sub.offer(items)
        self.delivered += 1
