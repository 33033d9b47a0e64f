from __future__ import annotations

from datetime import datetime

import strawberry

from app.gql.types.common import TokenBuckets
from app.services.overview import OverviewRecord


@strawberry.type
class NameCount:
    name: str
    count: int
    errors: int


@strawberry.type
class MinuteCount:
    minute: datetime
    count: int


@strawberry.type(description="What is happening now and today (today in the requested time zone).")
class Overview:
    day_start: datetime
    active_sessions: int
    sessions_today: int
    events_today: int
    llm_calls_today: int
    tool_calls_today: int
    tool_errors_today: int
    tokens_today: TokenBuckets
    cost_today_usd: float | None
    events_per_minute: list[MinuteCount] = strawberry.field(
        description="The last 60 minutes, oldest first, zeros included.")
    top_tools: list[NameCount]
    top_models: list[NameCount]

    @classmethod
    def from_record(cls, r: OverviewRecord) -> Overview:
        return cls(
            day_start=r.day_start, active_sessions=r.active_sessions,
            sessions_today=r.sessions_today, events_today=r.events_today,
            llm_calls_today=r.llm_calls_today, tool_calls_today=r.tool_calls_today,
            tool_errors_today=r.tool_errors_today,
            tokens_today=TokenBuckets(input=r.tokens_input, output=r.tokens_output,
                                      cache_read=r.tokens_cache_read,
                                      cache_write=r.tokens_cache_write, reasoning=r.tokens_reasoning),
            cost_today_usd=r.cost_usd,
            events_per_minute=[MinuteCount(minute=m.minute, count=m.count) for m in r.events_per_minute],
            top_tools=[NameCount(name=t.name, count=t.count, errors=t.errors) for t in r.top_tools],
            top_models=[NameCount(name=t.name, count=t.count, errors=t.errors) for t in r.top_models],
        )
