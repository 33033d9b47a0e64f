from __future__ import annotations

from datetime import datetime

import strawberry

from app.services.projects import ProjectRecord


@strawberry.type(description="A code base: a git repository (by normalised remote URL) or a folder.")
class Project:
    id: strawberry.ID
    key: str = strawberry.field(description="Normalised remote URL, or path:<machine>:<folder>.")
    name: str
    remote_url: str | None
    created_at: datetime
    last_seen_at: datetime

    @classmethod
    def from_record(cls, rec: ProjectRecord) -> Project:
        return cls(
            id=strawberry.ID(str(rec.id)), key=rec.key, name=rec.name, remote_url=rec.remote_url,
            created_at=rec.created_at, last_seen_at=rec.last_seen_at,
        )
