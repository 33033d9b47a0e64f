"""``/tools``: per tool calls, error rate, duration percentiles, lines changed and the files it
touched most; per model calls, tokens, cost and latency; filtered by agent, project and range."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from litestar import Request, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from app.services import events as event_service
from app.services import prices as price_service
from app.services import projects as project_service
from app.services import usage as usage_service
from ui.pages import ranges
from ui.pages.common import bad_request, render, time_zone, wants_fragment
from ui.pages.ranges import BadParameter

AGENTS = ("claude-code", "codex", "copilot")
TOP_FILES = 10
TARGET = "tools-results"


@get("/tools", name="tools", include_in_schema=False)
async def tools_page(
    request: Request, range_: Annotated[str, QueryParameter(name="range")] = "",
    since: FromQuery[str] = "", until: FromQuery[str] = "",
    agent: FromQuery[str] = "", project: FromQuery[str] = "",
) -> Template:
    try:
        r = ranges.parse(range_, since, until, time_zone(request))
        if agent and agent not in AGENTS:
            raise BadParameter(f"Unknown agent {agent[:40]!r}: use {', '.join(AGENTS)}.")
        try:
            project_id = uuid.UUID(project) if project else None
        except ValueError:
            raise BadParameter(f"`project` must be a project's id, not {project[:40]!r}.") from None
    except BadParameter as e:
        return bad_request(request, str(e), TARGET)
    f = usage_service.UsageFilter(agents=[agent] if agent else None,
                                  projects=[project_id] if project_id else None)
    fragment = wants_fragment(request, TARGET)
    tools, models, _book = await asyncio.gather(
        usage_service.tool_stats(r.since, r.until, f, top_files=TOP_FILES),
        usage_service.model_stats(r.since, r.until, f),
        price_service.book())  # the aliases models are shown "priced as"
    ctx = {"r": r, "presets": ranges.PRESETS, "tools": tools, "models": models, "tz": r.tz,
           "values": {"agent": agent, "project": str(project_id or "")}, "agents": AGENTS,
           "anything": bool(tools or models), "ever": True, "fragment": fragment,
           "filtered": bool(agent or project_id), "nav": "tools"}
    if not ctx["anything"]:
        ctx["ever"] = bool((await event_service.list_events(first=1)).items)
    if fragment:
        return render("partials/_tools_results.html", **ctx)
    ctx["projects"] = await project_service.list_projects(limit=500)
    return render("tools.html", **ctx)
