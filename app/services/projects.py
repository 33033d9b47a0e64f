"""Projects, machines and workspaces: the top of the hierarchy, and the batched lookups the
GraphQL loaders use (one query per batch of keys, results in key order)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.db.reads import fetch


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


class WorkspaceRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    machine_id: uuid.UUID
    project_id: uuid.UUID | None
    path: str
    branch: str | None
    commit: str | None
    created_at: datetime
    last_seen_at: datetime


_PROJECT = "p.id, p.key, p.name, p.remote_url, p.created_at, p.last_seen_at"
_MACHINE = ("m.id, m.key, m.hostname, m.username, m.os, m.os_version, m.arch, m.kind, "
            "m.created_at, m.last_seen_at")
_WORKSPACE = ("w.id, w.machine AS machine_id, w.project AS project_id, w.path, w.branch, "
              "w.commit, w.created_at, w.last_seen_at")


def _convert(rows: list, record: type[msgspec.Struct]) -> list:
    return [msgspec.convert(dict(r), record) for r in rows]


def _in_key_order(keys: list, found: dict) -> list:
    return [found.get(k) for k in keys]


async def list_projects(limit: int = 100) -> list[ProjectRecord]:
    rows = await fetch(f"SELECT {_PROJECT} FROM project p ORDER BY p.last_seen_at DESC, p.id LIMIT $1",
                       limit)
    return _convert(rows, ProjectRecord)


async def list_machines(limit: int = 100) -> list[MachineRecord]:
    rows = await fetch(f"SELECT {_MACHINE} FROM machine m ORDER BY m.last_seen_at DESC, m.id LIMIT $1",
                       limit)
    return _convert(rows, MachineRecord)


async def projects_by_ids(ids: list[uuid.UUID]) -> list[ProjectRecord | None]:
    rows = await fetch(f"SELECT {_PROJECT} FROM project p WHERE p.id = ANY($1::uuid[])", list(set(ids)))
    return _in_key_order(ids, {r.id: r for r in _convert(rows, ProjectRecord)})


async def machines_by_ids(ids: list[uuid.UUID]) -> list[MachineRecord | None]:
    rows = await fetch(f"SELECT {_MACHINE} FROM machine m WHERE m.id = ANY($1::uuid[])", list(set(ids)))
    return _in_key_order(ids, {r.id: r for r in _convert(rows, MachineRecord)})


async def workspaces_by_ids(ids: list[uuid.UUID]) -> list[WorkspaceRecord | None]:
    rows = await fetch(f"SELECT {_WORKSPACE} FROM workspace w WHERE w.id = ANY($1::uuid[])",
                       list(set(ids)))
    return _in_key_order(ids, {r.id: r for r in _convert(rows, WorkspaceRecord)})


async def machines_by_project_ids(ids: list[uuid.UUID]) -> list[list[MachineRecord]]:
    """Machines that have a workspace of each project."""
    rows = await fetch(
        f"""SELECT DISTINCT w.project AS project_id, {_MACHINE} FROM workspace w
            JOIN machine m ON m.id = w.machine WHERE w.project = ANY($1::uuid[])
            ORDER BY m.last_seen_at DESC""", list(set(ids)))
    grouped: dict[uuid.UUID, list[MachineRecord]] = {}
    for r in rows:
        d = dict(r)
        grouped.setdefault(d.pop("project_id"), []).append(msgspec.convert(d, MachineRecord))
    return [grouped.get(i, []) for i in ids]


async def workspaces_by_machine_ids(keys: list[tuple[uuid.UUID, uuid.UUID | None]]
                                    ) -> list[list[WorkspaceRecord]]:
    """For (machine id, project id or None) keys: the machine's workspaces (of that project)."""
    rows = await fetch(
        f"SELECT {_WORKSPACE} FROM workspace w WHERE w.machine = ANY($1::uuid[]) "
        "ORDER BY w.last_seen_at DESC, w.id", list({m for m, _ in keys}))
    recs = _convert(rows, WorkspaceRecord)
    return [[w for w in recs if w.machine_id == m and (p is None or w.project_id == p)]
            for m, p in keys]


async def workspaces_by_project_ids(ids: list[uuid.UUID]) -> list[list[WorkspaceRecord]]:
    rows = await fetch(
        f"SELECT {_WORKSPACE} FROM workspace w WHERE w.project = ANY($1::uuid[]) "
        "ORDER BY w.last_seen_at DESC, w.id", list(set(ids)))
    grouped: dict[uuid.UUID, list[WorkspaceRecord]] = {}
    for r in _convert(rows, WorkspaceRecord):
        grouped.setdefault(r.project_id, []).append(r)  # type: ignore[arg-type]
    return [grouped.get(i, []) for i in ids]
