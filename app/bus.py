"""The event bus: what any server process committed, delivered to this process's subscribers.

Ingest sends ``pg_notify('devlog_events', …)`` inside its transaction (PostgreSQL delivers it at
commit, to every listening connection of every server process). The payload is small: session
ids, the transaction's ``now()`` (every event it wrote carries it as ``ingested_at``) and the
time range. Here one dedicated connection LISTENs; a worker loads each announced batch once —
one query for the events (only when a subscriber wants events), one for the sessions — into a
:class:`Delivery` that every subscriber shares.

The cost of a batch grows with the number of distinct filters, not with the number of
subscribers: each subscriber subscribes with a :class:`Selector` (a hashable filter); the
subscribers with equal selectors form a group, and a selector picks its part of a delivery once
for its whole group. What all subscribers of a delivery would compute alike — a rendered
fragment, an encoded GraphQL result — goes through :meth:`Delivery.shared`, computed once by the
first that needs it.

Subscribers never slow ingest or each other: each has a bounded buffer filled without waiting,
and live delivery takes turns with requests on the event loop (``app/live_pacing.py``).
A subscriber that falls ``subscriber_queue`` items behind is closed (what it already holds is
still delivered, then :meth:`Subscriber.get` raises :class:`Overflow`); the client resubscribes.
Nothing is silently skipped for a subscription that stays open. :meth:`Bus.close_owned` ends
the subscriptions of one owner (e.g. an API key that was revoked) with another
:class:`Closed` reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import asyncpg
import msgspec

from app.errors import DevlogError
from app.ingest.writer import NOTIFY_CHANNEL
from app.live_pacing import Pacer
from app.services import events as event_service
from app.services import sessions as session_service

log = logging.getLogger("devlog.bus")

T = TypeVar("T")

# Subscribers offered a delivery per turn of the event loop (selecting is cheap, but not free).
FANOUT_SLICE = 64


class Closed(DevlogError):
    """The server ended a subscription; the message says why and what to do (written for the
    client: GraphQL passes it on)."""


class Overflow(Closed):
    """A subscriber fell too far behind and was closed."""


@dataclass(eq=False, slots=True)
class Delivery:
    """One committed batch as seen by this process, shared by all its subscribers."""

    at: datetime | None  # the batch's ingested_at
    events: list[event_service.EventRecord]  # in (ts, seq, id) order; empty if nobody wanted them
    sessions: dict[uuid.UUID, session_service.SessionRecord]  # after the batch, fresh rollups
    by_session: dict[uuid.UUID, list[event_service.EventRecord]] = field(init=False)
    _shared: dict[Hashable, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        grouped: dict[uuid.UUID, list[event_service.EventRecord]] = {}
        for e in self.events:
            grouped.setdefault(e.session_id, []).append(e)
        self.by_session = grouped

    def shared(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, computed once per delivery and key, whoever asks first."""
        try:
            return self._shared[key]
        except KeyError:
            value = self._shared[key] = make()
            return value


class Selector(Protocol):
    """What a subscriber wants of a delivery. Must be hashable, equal for equal filters (a
    frozen dataclass): subscribers with equal selectors share one ``select`` per delivery."""

    needs_events: bool  # False: the bus may skip loading the batch's events for it

    def select(self, delivery: Delivery) -> Sequence[Any]:
        """The items to hand to each subscriber of this selector (empty: nothing)."""
        ...


class Subscriber:
    """One subscription's bounded buffer. Only the bus fills it; only its stream reads it."""

    __slots__ = ("selector", "owner", "maxsize", "dropped", "_items", "_closed", "_waiter",
                 "_pacer", "_started")

    def __init__(self, selector: Selector, maxsize: int, owner: Hashable | None = None,
                 pacer: Pacer | None = None) -> None:
        self.selector = selector
        self.owner = owner
        self.maxsize = maxsize
        self.dropped = 0  # items not delivered because it was closed
        self._items: collections.deque[Any] = collections.deque()
        self._closed: Closed | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pacer = pacer
        self._started: float | None = None  # when the item being sent was handed out

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def offer(self, items: Sequence[Any]) -> None:
        """Buffer ``items`` without waiting; close the subscriber if they do not all fit."""
        if self._closed is not None:
            return
        room = self.maxsize - len(self._items)
        if len(items) > room:
            self._items.extend(items[:room])
            self.dropped += len(items) - room
            self._closed = Overflow(
                f"subscriber fell more than {self.maxsize} items behind and was closed "
                "(DEVLOG_SUBSCRIBER_QUEUE); resubscribe")
        else:
            self._items.extend(items)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._pacer is not None and self._closed is None:
            self._pacer.admit(waiter)  # woken in its turn: a fan-out wakes few tasks at a time
        else:
            waiter.set_result(None)

    def close(self, error: Closed, *, discard: bool = True) -> None:
        """End the subscription with ``error``; ``discard``: without delivering what it holds."""
        if self._closed is not None:
            return
        if discard:
            self.dropped += len(self._items)
            self._items.clear()
        self._closed = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        """The next item, in its turn (see :class:`~app.live_pacing.Pacer`); raises the
        :class:`Closed` reason once nothing is left."""
        pacer = self._pacer
        if self._started is not None and pacer is not None:  # the last one has been dealt with
            pacer.spent(self._started)
            self._started = None
        admitted = False
        while not self._items:
            if self._closed is not None:
                raise type(self._closed)(*self._closed.args)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            admitted = True  # by the pacer (or by close, which needs no turn)
        if pacer is not None:
            if not admitted:
                await pacer.turn()
                if not self._items:  # closed (and emptied) while waiting for its turn
                    return await self.get()
            self._started = pacer.now()
        return self._items.popleft()

    def take_ready(self) -> list[Any]:
        """Everything already buffered (possibly nothing), without waiting."""
        items = list(self._items)
        self._items.clear()
        return items


class Bus:
    def __init__(self, url: str, queue_size: int = 1000) -> None:
        self.url = url
        self.queue_size = queue_size
        self._groups: dict[Selector, set[Subscriber]] = {}
        self.pacer = Pacer()
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
    def subscribe(self, selector: Selector, *, owner: Hashable | None = None) -> Iterator[Subscriber]:
        """A subscriber for as long as the ``with`` block runs. ``owner``: who opened it (what
        :meth:`close_owned` matches)."""
        sub = Subscriber(selector, self.queue_size, owner, self.pacer)
        self._groups.setdefault(selector, set()).add(sub)
        try:
            yield sub
        finally:
            group = self._groups.get(selector)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._groups[selector]

    def close_owned(self, owner: Hashable, error: Closed) -> int:
        """Close every subscriber opened by ``owner`` (not None) with ``error``, dropping what
        they hold; returns how many."""
        if owner is None:
            raise ValueError("close_owned needs an owner")
        closed = 0
        for group in list(self._groups.values()):
            for sub in list(group):
                if sub.owner == owner and not sub.closed:
                    sub.close(error)
                    closed += 1
        return closed

    @property
    def subscriber_count(self) -> int:
        return sum(len(g) for g in self._groups.values())

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
        if not self._groups:
            return
        note = msgspec.json.decode(payload)
        session_ids = [uuid.UUID(s) for s in note["sessions"]]
        at = datetime.fromisoformat(note["at"])
        rows: list[event_service.EventRecord] = []
        if any(selector.needs_events for selector in self._groups):
            rows = await event_service.events_ingested(
                session_ids, at, datetime.fromisoformat(note["from"]),
                datetime.fromisoformat(note["to"]))
        records = await session_service.sessions_by_ids(session_ids)
        delivery = Delivery(at=at, events=rows,
                            sessions={r.id: r for r in records if r is not None})
        self.delivered += 1
        await self.fan_out(delivery)

    async def fan_out(self, delivery: Delivery) -> None:
        """Each group's selection once, offered to each of its subscribers, in slices."""
        woken = 0
        for selector, group in list(self._groups.items()):
            try:
                items = selector.select(delivery)
            except Exception:  # noqa: BLE001 - one filter's bug must not starve the others
                log.exception("bus: selector %r failed", selector)
                continue
            if not items:
                continue
            for sub in list(group):
                sub.offer(items)
                woken += 1
                if woken % FANOUT_SLICE == 0:
                    await asyncio.sleep(0)
