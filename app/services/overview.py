"""The overview: what is happening now and today."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.db.ddl import fetch
from app.services import sessions


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
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {time_zone!r} (use an IANA name like Europe/Paris)") from None
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def overview(now: datetime, time_zone: str = "UTC", top: int = 8) -> OverviewRecord:
    start = day_start(now, time_zone)
    hour_ago = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    # Independent scans: run them at once on separate pool connections.
    today_rows, active, per_minute, tools, models = await asyncio.gather(
        fetch(
            """SELECT count(*) AS events,
                      count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls,
                      count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls,
                      count(*) FILTER (WHERE status = 'error' AND kind IN ('tool_call', 'tool_result')) AS tool_errors,
                      coalesce(sum(tokens_input), 0) AS t_in, coalesce(sum(tokens_output), 0) AS t_out,
                      coalesce(sum(tokens_cache_read), 0) AS t_cr, coalesce(sum(tokens_cache_write), 0) AS t_cw,
                      coalesce(sum(tokens_reasoning), 0) AS t_re, sum(cost_usd)::float8 AS cost
               FROM agent_event WHERE ts >= $1 AND ts <= $2""", start, now),
        # A session had activity today exactly when its last event is from today: the
        # session index answers that, instead of a DISTINCT over today's events.
        fetch("""SELECT count(*) FILTER (WHERE ended_at IS NULL AND last_event_at >= $1) AS n,
                        count(*) FILTER (WHERE last_event_at >= $2) AS today
                 FROM agent_session WHERE last_event_at >= least($1, $2)""",
              sessions.active_since(now), start),
        fetch("""SELECT date_trunc('minute', ts) AS minute, count(*) AS n FROM agent_event
                 WHERE ts >= $1 AND ts <= $2 GROUP BY 1""", hour_ago, now),
        fetch("""SELECT tool_name AS name, count(*) FILTER (WHERE kind = 'tool_call') AS count,
                        count(*) FILTER (WHERE status = 'error') AS errors
                 FROM agent_event WHERE ts >= $1 AND ts <= $2 AND tool_name IS NOT NULL
                   AND kind IN ('tool_call', 'tool_result')
                 GROUP BY tool_name ORDER BY 2 DESC, 1 LIMIT $3""", start, now, top),
        fetch("""SELECT model AS name, count(*) AS count FROM agent_event
                 WHERE ts >= $1 AND ts <= $2 AND kind = 'llm_call' AND model IS NOT NULL
                 GROUP BY model ORDER BY 2 DESC, 1 LIMIT $3""", start, now, top),
    )
    today = today_rows[0]
    counts = {r["minute"]: r["n"] for r in per_minute}
    minutes = [hour_ago + timedelta(minutes=i) for i in range(60)]
    return OverviewRecord(
        day_start=start, active_sessions=active[0]["n"], sessions_today=active[0]["today"],
        events_today=today["events"], llm_calls_today=today["llm_calls"],
        tool_calls_today=today["tool_calls"], tool_errors_today=today["tool_errors"],
        tokens_input=today["t_in"], tokens_output=today["t_out"], tokens_cache_read=today["t_cr"],
        tokens_cache_write=today["t_cw"], tokens_reasoning=today["t_re"], cost_usd=today["cost"],
        events_per_minute=[MinuteCount(minute=m, count=counts.get(m, 0)) for m in minutes],
        top_tools=[NameCount(name=r["name"], count=r["count"], errors=r["errors"]) for r in tools],
        top_models=[NameCount(name=r["name"], count=r["count"]) for r in models],
    )
