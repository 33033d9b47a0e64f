"""``/sessions/{id}``: one session — header, timeline (paginated as you scroll, live while it is
active), sub-agent sessions where they were spawned, files touched."""

from __future__ import annotations

import uuid
from datetime import datetime

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.services import activity
from app.services import events as event_service
from app.services import prices as price_service
from app.services import projects as project_service
from app.services import sessions as session_service
from app.services.pagination import BadCursor, cursor_int, cursor_time, decode_keys
from ui.pages.common import not_found, render
from ui.render import aware

PAGE_SIZE = 200


async def _timeline(session: session_service.SessionRecord, after: str | None) -> dict:
    """One page of the timeline, with the sub-agent sessions spawned within its time span."""
    await price_service.book()  # the aliases its LLM calls are shown "priced as"
    try:
        page = await event_service.session_events(session.id, first=PAGE_SIZE, after=after)
        start = aware(decode_keys(after, cursor_time, cursor_int, uuid.UUID)[0]) if after else None
    except (BadCursor, ValueError):
        page, start = await event_service.session_events(session.id, first=PAGE_SIZE), None
    # times compared with aware(): PostgreSQL's ±infinity comes back without a time zone
    end = aware(page.items[-1].ts) if page.has_next and page.items else None
    children = [c for c in await session_service.children_by_parent_ids([session.id])
                for c in c]  # flatten the one list
    spawned = [c for c in children if c.started_at is not None
               and (start is None or aware(c.started_at) > start)
               and (end is None or aware(c.started_at) <= end)]
    items: list[tuple[datetime, int, str, object]] = [(aware(e.ts), 0, "event", e) for e in page.items]
    items += [(aware(c.started_at), 1, "child", c) for c in spawned]
    items.sort(key=lambda x: (x[0], x[1]))
    return {"items": items, "page": page, "s": session,
            "next_url": f"/sessions/{session.id}/events?after={page.end_cursor}"
            if page.has_next else None,
            "live": not page.has_next and session.status != "ended"}


@get("/sessions/{session_id:uuid}", name="session", include_in_schema=False)
async def session_page(request: Request, session_id: FromPath[uuid.UUID]) -> Template | Response:
    s = await session_service.get_session(session_id)
    if s is None:
        return not_found("session")
    parent = await session_service.get_session(s.parent_id) if s.parent_id else None
    project = (await project_service.projects_by_ids([s.project_id]))[0] if s.project_id else None
    machine = (await project_service.machines_by_ids([s.machine_id]))[0] if s.machine_id else None
    workspace = (await project_service.workspaces_by_ids([s.workspace_id]))[0] if s.workspace_id else None
    files = await activity.session_files(session_id)
    children = (await session_service.children_by_parent_ids([session_id]))[0]
    timeline = await _timeline(s, None)
    return render("session.html", parent=parent, project=project, machine=machine,
                  workspace=workspace, files=files, children=children, nav="sessions",
                  oob=False, **timeline)


@get("/sessions/{session_id:uuid}/events", include_in_schema=False)
async def session_events_page(request: Request, session_id: FromPath[uuid.UUID],
                              after: FromQuery[str] = "") -> Template | Response:
    s = await session_service.get_session(session_id)
    if s is None:
        return not_found("session")
    return render("partials/_timeline_page.html", **await _timeline(s, after or None))
