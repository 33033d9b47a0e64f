from __future__ import annotations

from datetime import datetime

import strawberry

from app.services.projects import MachineRecord


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

    @classmethod
    def from_record(cls, rec: MachineRecord) -> Machine:
        return cls(
            id=strawberry.ID(str(rec.id)), key=rec.key, hostname=rec.hostname,
            username=rec.username, os=rec.os, os_version=rec.os_version, arch=rec.arch,
            kind=rec.kind, created_at=rec.created_at, last_seen_at=rec.last_seen_at,
        )
