"""Activity over time and by place, for the dashboard's overview and project pages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from app.db.reads import fetch
from app.services import usage


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    agent: str
    events: int
    tokens: int  # input + output + cache read + cache write


class PlaceCount(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID | None
    name: str
    events: int
    sessions: int
    last_event_at: datetime | None


class FileTouch(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    first_ts: datetime
    last_ts: datetime
    touches: int
    lines_added: int
    lines_removed: int


class WorkspaceSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    machine_id: uuid.UUID
    hostname: str
    path: str
    branch: str | None
    sessions: int
    events: int
    last_event_at: datetime | None


class ProjectSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    remote_url: str | None
    machines: int
    workspaces: int
    sessions: int
    events: int
    last_event_at: datetime | None


async def hourly_by_agent(since: datetime, until: datetime) -> list[Bucket]:
    """Events and tokens per hour and agent in [since, until) (from the rollups)."""
    report = await usage.usage(since, until, "hour", ["agent"], with_sessions=False)
    return [Bucket(start=p.start, agent=p.agent or "", events=p.events,
                   tokens=p.prompt_tokens + p.tokens_output) for p in report.points if p.start]


async def by_machine(since: datetime, until: datetime, limit: int = 8) -> list[PlaceCount]:
    """Machines by events in [since, until): events from the rollups; sessions (with activity
    since ``since``) and last activity from the sessions table."""
    report = await usage.usage(since, until, "day", ["machine"], with_sessions=False)
    events: dict[uuid.UUID | None, int] = {}
    for p in report.points:
        events[p.machine_id] = events.get(p.machine_id, 0) + p.events
    rows = await fetch(
        """SELECT m.id, coalesce(m.hostname, 'unknown') AS name, count(s.id) AS sessions,
                  max(s.last_event_at) AS last_event_at
           FROM agent_session s LEFT JOIN machine m ON m.id = s.machine
           WHERE s.last_event_at >= $1 AND s.started_at < $2 GROUP BY m.id, m.hostname""",
        since, until)
    out = [PlaceCount(id=r["id"], name=r["name"], events=events.get(r["id"], 0),
                      sessions=r["sessions"], last_event_at=r["last_event_at"]) for r in rows]
    out.sort(key=lambda p: (-p.events, p.name))
    return out[:limit]


async def session_files(session_id: uuid.UUID, limit: int = 500) -> list[FileTouch]:
    rows = await fetch(
        """SELECT path, first_ts, last_ts, touches, lines_added, lines_removed FROM session_file
           WHERE session_id = $1 ORDER BY last_ts DESC, path LIMIT $2""", session_id, limit)
    return [FileTouch(**dict(r)) for r in rows]


async def project_summaries(limit: int = 200) -> list[ProjectSummary]:
    rows = await fetch(
        """SELECT p.id, p.name, p.remote_url,
                  count(DISTINCT s.machine) AS machines, count(DISTINCT s.workspace) AS workspaces,
                  count(s.id) AS sessions, coalesce(sum(s.event_count), 0) AS events,
                  max(s.last_event_at) AS last_event_at
           FROM project p LEFT JOIN agent_session s ON s.project = p.id
           GROUP BY p.id ORDER BY max(s.last_event_at) DESC NULLS LAST, p.name LIMIT $1""", limit)
    return [ProjectSummary(**{**dict(r), "events": int(r["events"])}) for r in rows]


async def project_summary(project_id: uuid.UUID) -> ProjectSummary | None:
    rows = await fetch(
        """SELECT p.id, p.name, p.remote_url,
                  count(DISTINCT s.machine) AS machines, count(DISTINCT s.workspace) AS workspaces,
                  count(s.id) AS sessions, coalesce(sum(s.event_count), 0) AS events,
                  max(s.last_event_at) AS last_event_at
           FROM project p LEFT JOIN agent_session s ON s.project = p.id
           WHERE p.id = $1 GROUP BY p.id""", project_id)
    return ProjectSummary(**{**dict(rows[0]), "events": int(rows[0]["events"])}) if rows else None


async def project_workspaces(project_id: uuid.UUID) -> list[WorkspaceSummary]:
    """The project's workspaces (folders on machines) with their sessions' activity."""
    rows = await fetch(
        """SELECT w.id, w.machine AS machine_id, m.hostname, w.path, w.branch,
                  count(s.id) AS sessions, coalesce(sum(s.event_count), 0) AS events,
                  max(s.last_event_at) AS last_event_at
           FROM workspace w JOIN machine m ON m.id = w.machine
           LEFT JOIN agent_session s ON s.workspace = w.id
           WHERE w.project = $1
           GROUP BY w.id, m.hostname ORDER BY m.hostname, max(s.last_event_at) DESC NULLS LAST""",
        project_id)
    return [WorkspaceSummary(**{**dict(r), "events": int(r["events"])}) for r in rows]


def hours_back(now: datetime, hours: int) -> tuple[datetime, datetime]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=hours), end
