from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

import strawberry

from app.bus import Delivery, Selector
from app.gql.context import Info
from app.gql.inputs import EventFilterInput
from app.gql.live_results import shareable
from app.gql.types.Event import Event
from app.gql.types.Health import Health
from app.gql.types.Session import Session, parse_id
from app.live_filters import EventSelector, SessionConditions, SessionSelector
from app.services import health as health_service


@strawberry.input(description="All conditions must hold.")
class SessionWatchInput:
    session: strawberry.ID | None = None
    agent: list[str] | None = None
    project: strawberry.ID | None = None
    machine: strawberry.ID | None = None
    workspace: strawberry.ID | None = None


def _opt(value: strawberry.ID | None):  # noqa: ANN202
    return parse_id(value) if value is not None else None


# What a live subscription yields: one GraphQL object per event (or session) and delivery,
# shared by every subscriber it matches, so equal operations share their results too (see
# app/gql/live_results.py).

def _event(d: Delivery, e) -> Event:  # noqa: ANN001
    return d.shared(("gql.Event", e.id), lambda: shareable(
        Event.from_record(e, session=d.sessions.get(e.session_id))))


def _session(d: Delivery, s) -> Session:  # noqa: ANN001
    return d.shared(("gql.Session", s.id), lambda: shareable(Session.from_record(s)))


# The bus hands out (delivery, record) pairs; the subscription turns each into the shared object
# when its turn comes (so building them is paced like the rest of the sending).

@dataclass(frozen=True, slots=True)
class LiveEvents:
    needs_events: ClassVar[bool] = True
    filter: EventSelector

    def select(self, d: Delivery) -> list[tuple[Delivery, object]]:
        return [(d, e) for e in self.filter.select(d)]


@dataclass(frozen=True, slots=True)
class LiveSessions:
    needs_events: ClassVar[bool] = False
    filter: SessionSelector

    def select(self, d: Delivery) -> list[tuple[Delivery, object]]:
        return [(d, s) for s in self.filter.select(d)]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Health, now and then every `everySeconds` (1 to 3600) seconds."
    )
    async def health(self, info: Info, every_seconds: float = 5.0) -> AsyncGenerator[Health, None]:
        interval = min(max(every_seconds, 1.0), 3600.0)
        while True:
            yield Health.from_record(await health_service.check(embedded=info.context.embedded))
            await asyncio.sleep(interval)

    @strawberry.subscription(description=(
        "Each new event (ingested by any server process) matching the filter, in commit order. "
        "A subscriber that falls DEVLOG_SUBSCRIBER_QUEUE events behind is closed with an error; "
        "resubscribe (and query `events` for the gap)."))
    async def event_added(self, info: Info, filter: EventFilterInput | None = None
                          ) -> AsyncGenerator[Event, None]:
        selector = LiveEvents(EventSelector.of(filter.to_service() if filter else None))
        async for d, e in _stream(info, selector):
            yield _event(d, e)

    @strawberry.subscription(description=(
        "A session (with fresh rollups) each time events for it are committed. Closed with an "
        "error if the subscriber falls DEVLOG_SUBSCRIBER_QUEUE updates behind."))
    async def session_updated(self, info: Info, filter: SessionWatchInput | None = None
                              ) -> AsyncGenerator[Session, None]:
        selector = LiveSessions(SessionSelector() if filter is None else SessionSelector(
            session=_opt(filter.session),
            where=SessionConditions(agents=frozenset(filter.agent) if filter.agent else None,
                                    project=_opt(filter.project), machine=_opt(filter.machine),
                                    workspace=_opt(filter.workspace))))
        async for d, s in _stream(info, selector):
            yield _session(d, s)


async def _stream(info: Info, selector: Selector) -> AsyncGenerator:
    """The items of ``selector`` from the bus, until the client leaves or the bus closes the
    subscriber (the :class:`app.bus.Closed` reason becomes the subscription's error)."""
    bus = info.context.bus
    if bus is None:
        raise RuntimeError("live updates are not available (no event bus)")
    with bus.subscribe(selector) as sub:
        while True:
            yield await sub.get()
