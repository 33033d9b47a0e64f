from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.gql.context import Info
from app.services.projects import ProjectRecord

if TYPE_CHECKING:
    from app.gql.types.Machine import Machine
    from app.gql.types.Workspace import Workspace


@strawberry.type(description="A code base: a git repository (by normalised remote URL) or a folder.")
class Project:
    id: strawberry.ID
    key: str = strawberry.field(description="Normalised remote URL, or path:<machine>:<folder>.")
    name: str
    remote_url: str | None
    created_at: datetime
    last_seen_at: datetime
    rec_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Machines with a workspace of this project; their `workspaces` "
                                  "are this project's.")
    async def machines(self, info: Info) -> list[Annotated[Machine, strawberry.lazy("app.gql.types.Machine")]]:
        from app.gql.types.Machine import Machine

        recs = await info.context.loaders.machines_by_project.load(self.rec_id)
        return [Machine.from_record(r, project_id=self.rec_id) for r in recs]

    @strawberry.field
    async def workspaces(self, info: Info) -> list[Annotated[Workspace, strawberry.lazy("app.gql.types.Workspace")]]:
        from app.gql.types.Workspace import Workspace

        recs = await info.context.loaders.workspaces_by_project.load(self.rec_id)
        return [Workspace.from_record(r) for r in recs]

    @classmethod
    def from_record(cls, rec: ProjectRecord) -> Project:
        return cls(
            id=strawberry.ID(str(rec.id)), key=rec.key, name=rec.name, remote_url=rec.remote_url,
            created_at=rec.created_at, last_seen_at=rec.last_seen_at, rec_id=rec.id,
        )
