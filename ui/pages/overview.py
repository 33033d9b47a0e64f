"""``/``: what is happening now and today."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from litestar import Request, get
from litestar.response import Template

from app.services import activity
from app.services import events as event_service
from app.services import overview as overview_service
from ui import charts
from ui.pages.common import render, time_zone, wants_fragment

AGENT_ORDER = ("claude-code", "codex", "copilot")


async def overview_context(request: Request) -> dict:
    now = datetime.now(UTC)
    tz = time_zone(request)
    since, until = activity.hours_back(now, 24)
    ov, buckets, feed, machines = await asyncio.gather(
        overview_service.overview(now, tz), activity.hourly_by_agent(since, until),
        event_service.list_events(first=30),
        activity.by_machine(overview_service.day_start(now, tz), now))
    agents = sorted({b.agent for b in buckets},
                    key=lambda a: (AGENT_ORDER.index(a) if a in AGENT_ORDER else 99, a))
    hours = [since + (until - since) * i / 24 for i in range(24)]
    events_cols = [(h, {b.agent: b.events for b in buckets if b.start == h}) for h in hours]
    tokens_cols = [(h, {b.agent: b.tokens for b in buckets if b.start == h}) for h in hours]

    def label(t: datetime) -> str:
        return t.strftime("%H:00 UTC")

    per_minute = [m.count for m in ov.events_per_minute]
    return {
        "ov": ov, "agents": agents, "feed": feed.items, "machines": machines, "tz": tz,
        "events_chart": charts.stacked_columns(events_cols, agents, label=label, unit=" events",
                                               title="Events per hour by agent, last 24 hours"),
        "tokens_chart": charts.stacked_columns(tokens_cols, agents, label=label, unit=" tokens",
                                               title="Tokens per hour by agent, last 24 hours"),
        "minute_chart": charts.sparkline(per_minute, title="Events per minute, last hour",
                                         labels=[m.minute.strftime("%H:%M UTC") for m in ov.events_per_minute]),
        "per_minute_now": per_minute[-1] if per_minute else 0,
        "per_minute_avg": sum(per_minute) / len(per_minute) if per_minute else 0,
        "anything": bool(feed.items),
        "nav": "overview",
    }


@get("/", name="overview", include_in_schema=False)
async def overview_page(request: Request) -> Template:
    ctx = await overview_context(request)
    if wants_fragment(request, "stats"):
        return render("partials/_overview_stats.html", **ctx)
    return render("overview.html", **ctx)
