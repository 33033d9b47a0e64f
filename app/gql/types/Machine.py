from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.gql.context import Info
from app.services.projects import MachineRecord

if TYPE_CHECKING:
    from app.gql.types.Workspace import Workspace


@strawberry.type(description="A computer a collector runs on.")
class Machine:
    id: strawberry.ID
    key: str = strawberry.field(description="Stable machine key sent by the collector.")
    hostname: str
    username: str | None
    os: str | None
    os_version: str | None
    arch: str | None
    kind: str = strawberry.field(description="local, ssh, ci, codespaces or container.")
    created_at: datetime
    last_seen_at: datetime
    rec_id: strawberry.Private[uuid.UUID]
    project_scope: strawberry.Private[uuid.UUID | None] = None

    @strawberry.field(description="Workspaces on this machine (of the project it was reached "
                                  "through, when reached through a project).")
    async def workspaces(self, info: Info) -> list[Annotated[Workspace, strawberry.lazy("app.gql.types.Workspace")]]:
        from app.gql.types.Workspace import Workspace

        recs = await info.context.loaders.workspaces_by_machine.load((self.rec_id, self.project_scope))
        return [Workspace.from_record(r) for r in recs]

    @classmethod
    def from_record(cls, rec: MachineRecord, project_id: uuid.UUID | None = None) -> Machine:
        return cls(
            id=strawberry.ID(str(rec.id)), key=rec.key, hostname=rec.hostname,
            username=rec.username, os=rec.os, os_version=rec.os_version, arch=rec.arch,
            kind=rec.kind, created_at=rec.created_at, last_seen_at=rec.last_seen_at,
            rec_id=rec.id, project_scope=project_id,
        )
