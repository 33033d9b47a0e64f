"""``/projects`` and ``/projects/{id}``: project → machines → workspaces → sessions."""

from __future__ import annotations

import uuid
from itertools import groupby

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Template

from app.services import activity
from app.services import sessions as session_service
from ui.pages.common import not_found, render


@get("/projects", name="projects", include_in_schema=False)
async def projects_page(request: Request) -> Template:
    return render("projects.html", projects=await activity.project_summaries(), nav="projects")


@get("/projects/{project_id:uuid}", name="project", include_in_schema=False)
async def project_page(request: Request, project_id: FromPath[uuid.UUID]) -> Template | Response:
    project = await activity.project_summary(project_id)
    if project is None:
        return not_found("project")
    workspaces = await activity.project_workspaces(project_id)
    latest = await session_service.latest_by_workspace_ids([(w.id, 5) for w in workspaces])
    recent = dict(zip([w.id for w in workspaces], latest, strict=True))
    machines = [(host, list(ws)) for host, ws in groupby(workspaces, key=lambda w: w.hostname)]
    return render("project.html", p=project, machines=machines, recent=recent, nav="projects")
