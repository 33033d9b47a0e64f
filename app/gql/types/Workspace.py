from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.gql.context import Info
from app.services.projects import WorkspaceRecord

if TYPE_CHECKING:
    from app.gql.types.Machine import Machine
    from app.gql.types.Project import Project
    from app.gql.types.Session import Session


@strawberry.type(description="A folder on a machine where agents work.")
class Workspace:
    id: strawberry.ID
    path: str
    branch: str | None
    commit: str | None
    created_at: datetime
    last_seen_at: datetime
    rec: strawberry.Private[WorkspaceRecord]

    @strawberry.field
    async def machine(self, info: Info) -> Annotated[Machine, strawberry.lazy("app.gql.types.Machine")] | None:
        from app.gql.types.Machine import Machine

        rec = await info.context.loaders.machine_by_id.load(self.rec.machine_id)
        return Machine.from_record(rec) if rec else None

    @strawberry.field
    async def project(self, info: Info) -> Annotated[Project, strawberry.lazy("app.gql.types.Project")] | None:
        from app.gql.types.Project import Project

        if self.rec.project_id is None:
            return None
        rec = await info.context.loaders.project_by_id.load(self.rec.project_id)
        return Project.from_record(rec) if rec else None

    @strawberry.field(description="The most recently active sessions here (at most `first`, ≤ 100).")
    async def sessions(self, info: Info, first: int = 20
                       ) -> list[Annotated[Session, strawberry.lazy("app.gql.types.Session")]]:
        from app.gql.types.Session import Session

        n = max(1, min(first, 100))
        recs = await info.context.loaders.sessions_by_workspace.load((self.rec.id, n))
        return [Session.from_record(r) for r in recs]

    @classmethod
    def from_record(cls, r: WorkspaceRecord) -> Workspace:
        return cls(id=strawberry.ID(str(r.id)), path=r.path, branch=r.branch, commit=r.commit,
                   created_at=r.created_at, last_seen_at=r.last_seen_at, rec=r)
