"""The overview: what is happening now and today."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.db.reads import fetch
from app.services import sessions, usage


class NameCount(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    count: int
    errors: int = 0


class MinuteCount(msgspec.Struct, frozen=True, kw_only=True):
    minute: datetime
    count: int


class OverviewRecord(msgspec.Struct, frozen=True, kw_only=True):
    day_start: datetime
    active_sessions: int
    sessions_today: int
    events_today: int
    llm_calls_today: int
    tool_calls_today: int
    tool_errors_today: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_reasoning: int
    cost_usd: float | None
    events_per_minute: list[MinuteCount]  # the last 60 minutes, oldest first, zeros included
    top_tools: list[NameCount]
    top_models: list[NameCount]


def day_start(now: datetime, time_zone: str) -> datetime:
    try:
        tz = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ValueError(f"unknown time zone {time_zone[:64]!r} (use an IANA name like Europe/Paris)") from None
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def overview(now: datetime, time_zone: str = "UTC", top: int = 8) -> OverviewRecord:
    start = day_start(now, time_zone)
    hour_ago = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    # Independent queries: run them at once on separate pool connections. Today's totals and
    # the top tools and models come from the rollups (plus the not-yet-rolled-up tail).
    today, by_tool, by_model, active, per_minute = await asyncio.gather(
        usage.usage(start, None, "day", [], None, time_zone, with_sessions=False),
        usage.usage(start, None, "day", ["tool"], None, time_zone, with_sessions=False),
        usage.usage(start, None, "day", ["model"], None, time_zone, with_sessions=False),
        # A session had activity today exactly when its last event is from today: the
        # session index answers that, instead of a DISTINCT over today's events.
        fetch("""SELECT count(*) FILTER (WHERE ended_at IS NULL AND last_event_at >= $1) AS n,
                        count(*) FILTER (WHERE last_event_at >= $2) AS today
                 FROM agent_session WHERE last_event_at >= least($1, $2)""",
              sessions.active_since(now), start),
        fetch("""SELECT date_trunc('minute', ts) AS minute, count(*) AS n FROM agent_event
                 WHERE ts >= $1 AND ts <= $2 GROUP BY 1""", hour_ago, now),
    )
    t = today.totals
    tools = sorted((NameCount(name=p.tool, count=p.tool_calls, errors=p.tool_errors)
                    for p in by_tool.points if p.tool and p.tool_calls),
                   key=lambda n: (-n.count, n.name))[:top]
    models = sorted((NameCount(name=p.model, count=p.llm_calls)
                     for p in by_model.points if p.model and p.llm_calls),
                    key=lambda n: (-n.count, n.name))[:top]
    counts = {r["minute"]: r["n"] for r in per_minute}
    minutes = [hour_ago + timedelta(minutes=i) for i in range(60)]
    return OverviewRecord(
        day_start=start, active_sessions=active[0]["n"], sessions_today=active[0]["today"],
        events_today=t.events, llm_calls_today=t.llm_calls, tool_calls_today=t.tool_calls,
        tool_errors_today=t.tool_errors, tokens_input=t.tokens_input, tokens_output=t.tokens_output,
        tokens_cache_read=t.tokens_cache_read, tokens_cache_write=t.tokens_cache_write,
        tokens_reasoning=t.tokens_reasoning, cost_usd=t.cost_usd,
        events_per_minute=[MinuteCount(minute=m, count=counts.get(m, 0)) for m in minutes],
        top_tools=tools, top_models=models,
    )
