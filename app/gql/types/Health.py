from __future__ import annotations

from datetime import datetime

import strawberry

from app.services.health import HealthRecord


@strawberry.type(description="Server and database health.")
class Health:
    version: str = strawberry.field(description="devlog server version.")
    database: str = strawberry.field(
        description='"ok" when the database answers, otherwise "unavailable: <reason>".'
    )
    database_version: str | None = strawberry.field(description="PostgreSQL server version.")
    embedded: bool = strawberry.field(
        description="Whether the server runs on its private embedded PostgreSQL."
    )
    timescale: str | None = strawberry.field(
        description="TimescaleDB extension version when events live in a hypertable, else null."
    )
    storage: str = strawberry.field(
        description='"timescaledb" (hypertable) or "postgresql" (plain table).'
    )
    checked_at: datetime = strawberry.field(description="When this answer was computed.")

    @classmethod
    def from_record(cls, rec: HealthRecord) -> Health:
        return cls(
            version=rec.version, database=rec.database, database_version=rec.database_version,
            embedded=rec.embedded, timescale=rec.timescale, storage=rec.storage,
            checked_at=rec.checked_at,
        )
