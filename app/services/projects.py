"""Projects and machines: the top of the hierarchy."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.db.tables import Machine, Project


class ProjectRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    remote_url: str | None
    created_at: datetime
    last_seen_at: datetime


class MachineRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    key: str
    hostname: str
    username: str | None
    os: str | None
    os_version: str | None
    arch: str | None
    kind: str
    created_at: datetime
    last_seen_at: datetime


async def list_projects(limit: int = 100) -> list[ProjectRecord]:
    rows = await (
        Project.select(*_columns(ProjectRecord, Project))
        .order_by(Project.last_seen_at, ascending=False)
        .limit(limit)
    )
    return msgspec.convert(rows, list[ProjectRecord])


async def list_machines(limit: int = 100) -> list[MachineRecord]:
    rows = await (
        Machine.select(*_columns(MachineRecord, Machine))
        .order_by(Machine.last_seen_at, ascending=False)
        .limit(limit)
    )
    return msgspec.convert(rows, list[MachineRecord])


def _columns(record: type[msgspec.Struct], table):  # noqa: ANN202
    return [getattr(table, name) for name in record.__struct_fields__]
