"""Subscription plans: Claude's 5-hour blocks and Codex's rate-limit windows."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.gql.scalars.BigInt import BigInt
from app.gql.types.common import TokenBuckets
from app.services import plans as service


@strawberry.type(description=(
    "A Claude 5-hour usage block: from the hour of its first call, five hours long. The active "
    "block has a burn rate (since it started) and a projection to its end."))
class UsageBlock:
    agent: str
    start: datetime
    end: datetime
    active: bool
    first_call: datetime
    last_call: datetime
    calls: int
    tokens: TokenBuckets
    cost_usd: float | None
    models: list[str]
    tokens_per_minute: float | None
    cost_per_hour: float | None
    projected_tokens: BigInt | None
    projected_cost_usd: float | None
    minutes_left: float | None

    @classmethod
    def from_record(cls, r: service.UsageBlock) -> UsageBlock:
        return cls(agent=r.agent, start=r.start, end=r.end, active=r.active, first_call=r.first_call,
                   last_call=r.last_call, calls=r.calls,
                   tokens=TokenBuckets(input=BigInt(r.tokens_input), output=BigInt(r.tokens_output),
                                       cache_read=BigInt(r.tokens_cache_read),
                                       cache_write=BigInt(r.tokens_cache_write), reasoning=BigInt(0)),
                   cost_usd=r.cost_usd, models=r.models, tokens_per_minute=r.tokens_per_minute,
                   cost_per_hour=r.cost_per_hour,
                   projected_tokens=BigInt(r.projected_tokens) if r.projected_tokens is not None else None,
                   projected_cost_usd=r.projected_cost_usd, minutes_left=r.minutes_left)


@strawberry.type(description="A Codex rate-limit window, as Codex last logged it.")
class RateLimitWindow:
    agent: str
    name: str = strawberry.field(description="primary (usually 5 hours) or secondary (usually a week).")
    window_minutes: int | None
    used_percent: float
    resets_at: datetime | None
    observed_at: datetime
    plan: str | None
    points_per_hour: float | None = strawberry.field(description="Burn rate: percentage points per hour in this window.")
    projected_percent: float | None = strawberry.field(description="Where the window ends up at reset if the rate holds.")

    @classmethod
    def from_record(cls, r: service.RateLimitWindow) -> RateLimitWindow:
        return cls(agent=r.agent, name=r.name, window_minutes=r.window_minutes,
                   used_percent=r.used_percent, resets_at=r.resets_at, observed_at=r.observed_at,
                   plan=r.plan, points_per_hour=r.points_per_hour,
                   projected_percent=r.projected_percent)


@strawberry.type(description="Subscription-plan usage: Claude blocks and Codex windows.")
class Plans:
    claude_blocks: list[UsageBlock] = strawberry.field(description="The last day's blocks, newest first.")
    codex_windows: list[RateLimitWindow]
