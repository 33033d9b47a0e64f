from __future__ import annotations

from datetime import datetime, timezone

import strawberry

from app.gql.context import Info
from app.gql.inputs import EventFilterInput, SessionFilterInput
from app.gql.permissions import CanRead
from app.gql.types.common import PageInfo
from app.gql.types.Event import EventConnection
from app.gql.types.Health import Health
from app.gql.types.Machine import Machine
from app.gql.types.Overview import Overview
from app.gql.types.Project import Project
from app.gql.types.Session import Session, SessionConnection, SessionEdge, parse_id
from app.services import events as event_service
from app.services import health as health_service
from app.services import overview as overview_service
from app.services import projects as project_service
from app.services import sessions as session_service

MAX_LIST = 500
READ = [CanRead]


@strawberry.type
class Query:
    @strawberry.field(description="Server and database health; answers even when the database is down.")
    async def health(self, info: Info) -> Health:
        return Health.from_record(await health_service.check(embedded=info.context.embedded))

    @strawberry.field(permission_classes=READ, description="Projects, most recently active first.")
    async def projects(self, first: int = 100) -> list[Project]:
        records = await project_service.list_projects(limit=max(0, min(first, MAX_LIST)))
        return [Project.from_record(r) for r in records]

    @strawberry.field(permission_classes=READ, description="Machines, most recently active first.")
    async def machines(self, first: int = 100) -> list[Machine]:
        records = await project_service.list_machines(limit=max(0, min(first, MAX_LIST)))
        return [Machine.from_record(r) for r in records]

    @strawberry.field(permission_classes=READ,
                      description="Sessions, newest activity first (cursor pagination).")
    async def sessions(self, filter: SessionFilterInput | None = None, first: int = 50,
                       after: str | None = None) -> SessionConnection:
        f = filter.to_service() if filter else session_service.SessionFilter()
        page = await session_service.list_sessions(f, first=first, after=after)
        return SessionConnection(
            edges=[SessionEdge(cursor=c, node=Session.from_record(r))
                   for c, r in zip(page.cursors, page.items)],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            filter=f)

    @strawberry.field(permission_classes=READ, description="One session by id.")
    async def session(self, info: Info, id: strawberry.ID) -> Session | None:
        rec = await info.context.loaders.session_by_id.load(parse_id(id))
        return Session.from_record(rec) if rec and rec.last_event_at else None

    @strawberry.field(permission_classes=READ,
                      description="Events across sessions, newest first (cursor pagination).")
    async def events(self, filter: EventFilterInput | None = None, first: int = 100,
                     after: str | None = None) -> EventConnection:
        f = filter.to_service() if filter else None
        return EventConnection.from_page(await event_service.list_events(f, first=first, after=after))

    @strawberry.field(permission_classes=READ, description=(
        "Now and today: active sessions, today's events, tokens and cost, events per minute over "
        "the last hour, top tools and models. `timeZone` (IANA) decides when today began."))
    async def overview(self, time_zone: str = "UTC") -> Overview:
        now = datetime.now(timezone.utc)
        return Overview.from_record(await overview_service.overview(now, time_zone))
