"""Usage analytics: series of usage points, tool and model statistics, scheduled jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry

from app.gql.context import Info
from app.gql.scalars.BigInt import BigInt
from app.gql.types.common import TokenBuckets
from app.gql.types.Machine import Machine
from app.gql.types.Project import Project
from app.gql.types.Session import parse_id
from app.services import usage as service
from app.turns import map_in_turns


@strawberry.enum(description="The width of a usage bucket, in the requested time zone.")
class TimeBucket(Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


@strawberry.enum(description="A dimension to split usage by.")
class UsageGroup(Enum):
    AGENT = "agent"
    MODEL = "model"
    PROJECT = "project"
    MACHINE = "machine"
    TOOL = "tool"


@strawberry.input(description="Time range [since, until). Ranges need not start on the hour.")
class TimeRangeInput:
    since: datetime
    until: datetime | None = strawberry.field(default=None, description="Default: now.")


@strawberry.input(description="All conditions must hold; each list matches any of its values.")
class UsageFilterInput:
    agents: list[str] | None = None
    projects: list[strawberry.ID] | None = None
    machines: list[strawberry.ID] | None = None
    models: list[str] | None = None
    tools: list[str] | None = None

    def to_service(self) -> service.UsageFilter:
        return service.UsageFilter(
            agents=self.agents, models=self.models, tools=self.tools,
            projects=[parse_id(p) for p in self.projects] if self.projects else None,
            machines=[parse_id(m) for m in self.machines] if self.machines else None)


@strawberry.type(description="Usage in one bucket for one group (or in the whole range: totals).")
class UsagePoint:
    # Plain attributes, not resolver methods: a 90-day series has hundreds of points, and a
    # resolver per field cost more than the query itself.
    start: datetime | None = strawberry.field(description="The bucket's start; null in totals.")
    agent: str | None = strawberry.field(description="Set when grouped by AGENT.")
    model: str | None = strawberry.field(
        description="Set when grouped by MODEL (null: events without a model).")
    tool: str | None = strawberry.field(description="Set when grouped by TOOL (null: events of no tool).")
    events: BigInt
    sessions: int | None = strawberry.field(
        description="Sessions started; null when grouped or filtered by model or tool.")
    prompts: int
    llm_calls: int
    tool_calls: int
    tool_errors: int = strawberry.field(description="Tool calls or results with status error.")
    errors: int = strawberry.field(description="Error events (API and agent errors).")
    tokens: TokenBuckets
    cache_share: float | None = strawberry.field(
        description="Cache reads / (input + cache reads + cache writes).")
    cost_usd: float | None = strawberry.field(
        description="Cost in USD, reported or computed; null when nothing is priced.")
    cost_reported_usd: float | None = strawberry.field(
        description="The part of costUsd that the agents reported themselves.")
    unpriced_calls: int = strawberry.field(description="LLM calls with no cost (no price for their model).")
    estimated_calls: int = strawberry.field(
        description="LLM calls whose tokens are estimates (the agent logged none).")
    lines_added: int
    lines_removed: int
    project_id: strawberry.Private[uuid.UUID | None]
    machine_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="Set when grouped by PROJECT.")
    async def project(self, info: Info) -> Project | None:
        if self.project_id is None:
            return None
        rec = await info.context.loaders.project_by_id.load(self.project_id)
        return Project.from_record(rec) if rec else None

    @strawberry.field(description="Set when grouped by MACHINE.")
    async def machine(self, info: Info) -> Machine | None:
        if self.machine_id is None:
            return None
        rec = await info.context.loaders.machine_by_id.load(self.machine_id)
        return Machine.from_record(rec) if rec else None

    @classmethod
    def from_record(cls, r: service.UsagePoint) -> UsagePoint:
        return cls(
            start=r.start, agent=r.agent, model=r.model, tool=r.tool, events=BigInt(r.events),
            sessions=r.sessions, prompts=r.prompts, llm_calls=r.llm_calls, tool_calls=r.tool_calls,
            tool_errors=r.tool_errors, errors=r.errors,
            tokens=TokenBuckets(input=BigInt(r.tokens_input), output=BigInt(r.tokens_output),
                                cache_read=BigInt(r.tokens_cache_read),
                                cache_write=BigInt(r.tokens_cache_write),
                                reasoning=BigInt(r.tokens_reasoning)),
            cache_share=r.cache_share, cost_usd=r.cost_usd, cost_reported_usd=r.cost_reported_usd,
            unpriced_calls=r.unpriced_calls, estimated_calls=r.estimated_calls,
            lines_added=r.lines_added, lines_removed=r.lines_removed,
            project_id=r.project_id, machine_id=r.machine_id)


@strawberry.type(description="A usage series: points oldest first, then by group.")
class UsageReport:
    since: datetime
    until: datetime
    bucket: TimeBucket
    group_by: list[UsageGroup]
    points: list[UsagePoint]
    totals: UsagePoint
    as_of: datetime | None = strawberry.field(description=(
        "Rollups are complete up to this ingest time; events ingested later are added from raw "
        "rows, so the answer is current either way (null on TimescaleDB: real-time aggregates)."))

    @classmethod
    async def from_record(cls, r: service.UsageReport) -> UsageReport:
        # thousands of points: converted taking turns with other requests (app/turns.py)
        return cls(since=r.since, until=r.until, bucket=TimeBucket(r.bucket),
                   group_by=[UsageGroup(g) for g in r.group_by],
                   points=await map_in_turns(UsagePoint.from_record, r.points),
                   totals=UsagePoint.from_record(r.totals),
                   as_of=r.as_of)


@strawberry.type(description="Duration percentiles from quarter-octave histograms (±9 %).")
class Percentiles:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None

    @classmethod
    def from_record(cls, r: service.Percentiles) -> Percentiles:
        return cls(count=r.count, p50_ms=r.p50_ms, p95_ms=r.p95_ms, mean_ms=r.mean_ms)


@strawberry.type
class FileCount:
    path: str
    touches: int
    lines_added: int
    lines_removed: int


@strawberry.type(description="One tool over a range.")
class ToolStat:
    tool: str
    calls: int
    errors: int
    error_rate: float | None
    duration: Percentiles
    lines_added: int
    lines_removed: int
    top_files: list[FileCount]

    @classmethod
    def from_record(cls, r: service.ToolStat) -> ToolStat:
        return cls(tool=r.tool, calls=r.calls, errors=r.errors, error_rate=r.error_rate,
                   duration=Percentiles.from_record(r.duration), lines_added=r.lines_added,
                   lines_removed=r.lines_removed,
                   top_files=[FileCount(path=f.path, touches=f.touches, lines_added=f.lines_added,
                                        lines_removed=f.lines_removed) for f in r.top_files])


@strawberry.type(description="One model over a range.")
class ModelStat:
    model: str = strawberry.field(description="'' for LLM calls that named no model.")
    calls: int
    tokens: TokenBuckets
    cost_usd: float | None
    unpriced_calls: int
    latency: Percentiles
    priced_as: str | None = strawberry.field(description=(
        "The model a user's price alias prices this one as (`devlog prices alias`); null "
        "when it is priced by its own name."))

    @classmethod
    def from_record(cls, r: service.ModelStat, priced_as: str | None = None) -> ModelStat:
        return cls(model=r.model, calls=r.calls, priced_as=priced_as,
                   tokens=TokenBuckets(input=BigInt(r.tokens_input), output=BigInt(r.tokens_output),
                                       cache_read=BigInt(r.tokens_cache_read),
                                       cache_write=BigInt(r.tokens_cache_write),
                                       reasoning=BigInt(r.tokens_reasoning)),
                   cost_usd=r.cost_usd, unpriced_calls=r.unpriced_calls,
                   latency=Percentiles.from_record(r.latency))


@strawberry.type(description="A scheduled job: what it did last (in any server process).")
class Job:
    name: str
    description: str
    every_seconds: float
    last_run: datetime | None
    last_ok: datetime | None
    last_duration_ms: int | None
    last_error: str | None = strawberry.field(description="Null when the last run succeeded.")
    last_result: str | None
    runs: int
    next_run: datetime | None = strawberry.field(
        description="In this server process; null when its scheduler is off (DEVLOG_JOBS=false).")
