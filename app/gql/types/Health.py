from __future__ import annotations

from datetime import datetime

import strawberry

from app.access.graphql import principal_of
from app.access.principal import Action
from app.gql.context import Info
from app.services.health import HealthRecord


@strawberry.type(description=(
    "Server and database health. Answers everyone who reaches the server; the version details "
    "(`databaseVersion`, `timescale`) only callers who may read (off loopback: with an API key)."))
class Health:
    version: str = strawberry.field(description="devlog server version.")
    database: str = strawberry.field(
        description='"ok" when the database answers, otherwise "unavailable: <reason>".'
    )
    embedded: bool = strawberry.field(
        description="Whether the server runs on its private embedded PostgreSQL."
    )
    storage: str = strawberry.field(
        description='"timescaledb" (hypertable) or "postgresql" (plain table).'
    )
    checked_at: datetime = strawberry.field(description="When this answer was computed.")
    _database_version: strawberry.Private[str | None]
    _timescale: strawberry.Private[str | None]

    @strawberry.field(description="PostgreSQL server version (null for callers who may not read).")
    async def database_version(self, info: Info) -> str | None:
        return self._database_version if await _may_read(info) else None

    @strawberry.field(description=(
        "TimescaleDB extension version when events live in a hypertable, else null (also null "
        "for callers who may not read)."))
    async def timescale(self, info: Info) -> str | None:
        return self._timescale if await _may_read(info) else None

    @classmethod
    def from_record(cls, rec: HealthRecord) -> Health:
        return cls(
            version=rec.version, database=rec.database, _database_version=rec.database_version,
            embedded=rec.embedded, _timescale=rec.timescale, storage=rec.storage,
            checked_at=rec.checked_at,
        )


async def _may_read(info: Info) -> bool:
    return (await principal_of(info.context)).may(Action.READ)
