from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator

import strawberry

from app.bus import Delivery
from app.gql.context import Info
from app.gql.inputs import EventFilterInput
from app.gql.types.Event import Event
from app.gql.types.Health import Health
from app.gql.types.Session import Session, parse_id
from app.services import health as health_service


@strawberry.input(description="All conditions must hold.")
class SessionWatchInput:
    session: strawberry.ID | None = None
    agent: list[str] | None = None
    project: strawberry.ID | None = None
    machine: strawberry.ID | None = None
    workspace: strawberry.ID | None = None


def _matches(rec, agent, project, machine, workspace) -> bool:  # noqa: ANN001
    return ((not agent or rec.agent in agent)
            and (project is None or rec.project_id == project)
            and (machine is None or rec.machine_id == machine)
            and (workspace is None or rec.workspace_id == workspace))


def _opt(value: strawberry.ID | None) -> uuid.UUID | None:
    return parse_id(value) if value is not None else None


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
        f = filter.to_service() if filter else None
        kinds = set(f.kinds) if f and f.kinds else None

        def accepts(d: Delivery) -> list:
            out = []
            for e in d.events:
                if f is not None:
                    s = d.sessions.get(e.session_id)
                    if (f.session is not None and e.session_id != f.session) or \
                            (kinds and e.kind not in kinds) or \
                            (f.tool_name and e.tool_name != f.tool_name) or \
                            (f.status and e.status != f.status) or \
                            (s is None or not _matches(s, f.agent, f.project, f.machine, f.workspace)):
                        continue
                out.append(e)
            return out

        async for item in _stream(info, accepts):
            yield Event.from_record(item)

    @strawberry.subscription(description=(
        "A session (with fresh rollups) each time events for it are committed. Closed with an "
        "error if the subscriber falls DEVLOG_SUBSCRIBER_QUEUE updates behind."))
    async def session_updated(self, info: Info, filter: SessionWatchInput | None = None
                              ) -> AsyncGenerator[Session, None]:
        sid = _opt(filter.session) if filter else None
        project = _opt(filter.project) if filter else None
        machine = _opt(filter.machine) if filter else None
        workspace = _opt(filter.workspace) if filter else None
        agent = filter.agent if filter else None

        def accepts(d: Delivery) -> list:
            return [s for s in d.sessions.values()
                    if (sid is None or s.id == sid) and _matches(s, agent, project, machine, workspace)]

        async for item in _stream(info, accepts):
            yield Session.from_record(item)


async def _stream(info: Info, accepts) -> AsyncGenerator:  # noqa: ANN001
    bus = info.context.bus
    if bus is None:
        raise RuntimeError("live updates are not available (no event bus)")
    with bus.subscribe(accepts) as sub:
        while True:
            yield await sub.get()
