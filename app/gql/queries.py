from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.types.Health import Health
from app.gql.types.Machine import Machine
from app.gql.types.Project import Project
from app.services import health as health_service
from app.services import projects as project_service

MAX_LIST = 500


@strawberry.type
class Query:
    @strawberry.field(description="Server and database health; answers even when the database is down.")
    async def health(self, info: Info) -> Health:
        return Health.from_record(await health_service.check(embedded=info.context.embedded))

    @strawberry.field(description="Projects, most recently active first.")
    async def projects(self, first: int = 100) -> list[Project]:
        records = await project_service.list_projects(limit=max(0, min(first, MAX_LIST)))
        return [Project.from_record(r) for r in records]

    @strawberry.field(description="Machines, most recently active first.")
    async def machines(self, first: int = 100) -> list[Machine]:
        records = await project_service.list_machines(limit=max(0, min(first, MAX_LIST)))
        return [Machine.from_record(r) for r in records]
