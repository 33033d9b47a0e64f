"""Server and database health, shared by ``/readyz``, the ``health`` query and the CLI."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec

from app import __version__
from app.db.engine import describe_connect_error
from app.db.timescale import storage_info


class HealthRecord(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    database: str  # "ok", or "unavailable: <reason>"
    database_version: str | None
    embedded: bool
    timescale: str | None  # extension version when agent_event is a hypertable
    storage: str  # "timescaledb" (hypertable) or "postgresql" (plain table)
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.database == "ok"


async def check(*, embedded: bool, timeout: float = 1.5) -> HealthRecord:
    now = datetime.now().astimezone()
    try:
        info = await asyncio.wait_for(storage_info(), timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as text
        return HealthRecord(
            version=__version__, database=f"unavailable: {describe_connect_error(exc)}",
            database_version=None, embedded=embedded, timescale=None, storage="unknown",
            checked_at=now,
        )
    return HealthRecord(
        version=__version__, database="ok", database_version=info.server_version,
        embedded=embedded, timescale=info.timescale_version if info.hypertable else None,
        storage=info.mode, checked_at=now,
    )
