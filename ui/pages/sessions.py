"""``/sessions``: every session, filtered and paginated, with the filters in the URL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from app.services import projects as project_service
from app.services import sessions as session_service
from app.services.pagination import BadCursor
from ui.pages.common import render, wants_fragment

AGENTS = ("claude-code", "codex", "copilot")
PAGE_SIZE = 50


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _day(value: str | None) -> datetime | None:
    try:
        return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), UTC) if value else None
    except ValueError:
        return None


def _next_day(day: datetime | None) -> datetime | None:
    try:
        return day + timedelta(days=1) if day else None
    except OverflowError:  # 9999-12-31: no end
        return None


@get("/sessions", name="sessions", include_in_schema=False)
async def sessions_page(
    request: Request, agent: FromQuery[str] = "", status: FromQuery[str] = "",
    project: FromQuery[str] = "", machine: FromQuery[str] = "", workspace: FromQuery[str] = "",
    since: FromQuery[str] = "", until: FromQuery[str] = "", q: FromQuery[str] = "",
    after: FromQuery[str] = "",
) -> Template:
    values = {"agent": agent if agent in AGENTS else "",
              "status": status if status in session_service.STATUSES else "",
              "project": str(_uuid(project) or ""), "machine": str(_uuid(machine) or ""),
              "workspace": str(_uuid(workspace) or ""),
              "since": since if _day(since) else "", "until": until if _day(until) else "",
              "q": q.strip()[:200].replace("\x00", "\ufffd")}  # NUL is stored as U+FFFD
    until_day = _day(values["until"])
    f = session_service.SessionFilter(
        agent=[values["agent"]] if values["agent"] else None, status=values["status"] or None,
        project=_uuid(values["project"]), machine=_uuid(values["machine"]),
        workspace=_uuid(values["workspace"]), since=_day(values["since"]),
        until=_next_day(until_day), text=values["q"] or None)
    error = None
    try:
        page = await session_service.list_sessions(f, first=PAGE_SIZE, after=after or None)
    except (BadCursor, ValueError):
        error = "That page link is no longer valid; showing the first page."
        page = await session_service.list_sessions(f, first=PAGE_SIZE)
    query = {k: v for k, v in values.items() if v}
    next_url = (f"/sessions?{urlencode({**query, 'after': page.end_cursor})}"
                if page.has_next and page.end_cursor else None)
    first_url = f"/sessions?{urlencode(query)}" if after else None
    ctx = {"page": page, "values": values, "next_url": next_url, "first_url": first_url,
           "error": error, "agents": AGENTS, "statuses": session_service.STATUSES,
           "live_ids": ",".join(str(s.id) for s in page.items if s.status != "ended"),
           "nav": "sessions"}
    if wants_fragment(request, "results"):
        return render("partials/_sessions_results.html", **ctx)
    ctx["projects"] = await project_service.list_projects(limit=500)
    ctx["machines"] = await project_service.list_machines(limit=500)
    return render("sessions.html", **ctx)
