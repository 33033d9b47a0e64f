"""Activity over time and by place, for the dashboard's overview and project pages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from app.db.ddl import fetch


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
    """Events and tokens per hour and agent in [since, until)."""
    rows = await fetch(
        """SELECT date_trunc('hour', ts) AS start, agent, count(*) AS events,
                  coalesce(sum(coalesce(tokens_input, 0) + coalesce(tokens_output, 0)
                               + coalesce(tokens_cache_read, 0) + coalesce(tokens_cache_write, 0)), 0)
                      AS tokens
           FROM agent_event WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2 ORDER BY 1, 2""",
        since, until)
    return [Bucket(start=r["start"], agent=r["agent"], events=r["events"], tokens=int(r["tokens"]))
            for r in rows]


async def by_machine(since: datetime, until: datetime, limit: int = 8) -> list[PlaceCount]:
    # Events are counted per session first (one pass over the time range), then the few
    # sessions are joined to their machines: joining every event to its session is much slower.
    rows = await fetch(
        """WITH per AS MATERIALIZED (
               SELECT session_id, count(*) AS n, max(ts) AS last FROM agent_event
               WHERE ts >= $1 AND ts < $2 GROUP BY session_id)
           SELECT m.id, coalesce(m.hostname, 'unknown') AS name, sum(per.n)::bigint AS events,
                  count(*) AS sessions, max(per.last) AS last_event_at
           FROM per JOIN agent_session s ON s.id = per.session_id
           LEFT JOIN machine m ON m.id = s.machine
           GROUP BY m.id, m.hostname ORDER BY events DESC, name LIMIT $3""", since, until, limit)
    return [PlaceCount(**dict(r)) for r in rows]


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
