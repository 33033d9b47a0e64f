from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import strawberry

from app.gql.context import Info
from app.gql.inputs import EventFilterInput, SessionFilterInput
from app.gql.types.common import PageInfo
from app.gql.types.Event import EventConnection
from app.gql.types.Health import Health
from app.gql.types.Machine import Machine
from app.gql.types.Overview import Overview
from app.gql.types.Plans import Plans, RateLimitWindow, UsageBlock
from app.gql.types.Price import Price, PriceAlias
from app.gql.types.Project import Project
from app.gql.types.Session import Session, SessionConnection, SessionEdge, parse_id
from app.gql.types.Usage import (
    Job,
    ModelStat,
    TimeBucket,
    TimeRangeInput,
    ToolStat,
    UsageFilterInput,
    UsageGroup,
    UsageReport,
)
from app.services import events as event_service
from app.services import health as health_service
from app.services import jobs as job_service
from app.services import overview as overview_service
from app.services import plans as plan_service
from app.services import prices as price_service
from app.services import projects as project_service
from app.services import sessions as session_service
from app.services import usage as usage_service

MAX_LIST = 500


@strawberry.type
class Query:
    @strawberry.field(description="Server and database health; answers even when the database is down.")
    async def health(self, info: Info) -> Health:
        return Health.from_record(await health_service.check(embedded=info.context.embedded))

    @strawberry.field(description="Projects, most recently active first.")
    async def projects(self, first: int = 100) -> list[Project]:
        records = await project_service.list_projects(limit=max(0, min(first, MAX_LIST)))
        return [Project.from_record(r) for r in records]

    @strawberry.field(description="Machines, most recently active first.")
    async def machines(self, first: int = 100) -> list[Machine]:
        records = await project_service.list_machines(limit=max(0, min(first, MAX_LIST)))
        return [Machine.from_record(r) for r in records]

    @strawberry.field(description="Sessions, newest activity first (cursor pagination).")
    async def sessions(self, filter: SessionFilterInput | None = None, first: int = 50,
                       after: str | None = None) -> SessionConnection:
        f = filter.to_service() if filter else session_service.SessionFilter()
        page = await session_service.list_sessions(f, first=first, after=after)
        return SessionConnection(
            edges=[SessionEdge(cursor=c, node=Session.from_record(r))
                   for c, r in zip(page.cursors, page.items)],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            filter=f)

    @strawberry.field(description="One session by id.")
    async def session(self, info: Info, id: strawberry.ID) -> Session | None:
        rec = await info.context.loaders.session_by_id.load(parse_id(id))
        return Session.from_record(rec) if rec and rec.last_event_at else None

    @strawberry.field(description="Events across sessions, newest first (cursor pagination).")
    async def events(self, filter: EventFilterInput | None = None, first: int = 100,
                     after: str | None = None) -> EventConnection:
        f = filter.to_service() if filter else None
        return await EventConnection.from_page(await event_service.list_events(f, first=first, after=after))

    @strawberry.field(description=(
        "Now and today: active sessions, today's events, tokens and cost, events per minute over "
        "the last hour, top tools and models. `timeZone` (IANA) decides when today began."))
    async def overview(self, time_zone: str = "UTC") -> Overview:
        now = datetime.now(UTC)
        return Overview.from_record(await overview_service.overview(now, time_zone))

    @strawberry.field(description=(
        "Usage over a range: events, sessions, calls, errors, tokens by bucket and cost, per time "
        "bucket (in `timeZone`) and per group. Exact and current to the last ingested event."))
    async def usage(self, info: Info, range: TimeRangeInput, bucket: TimeBucket = TimeBucket.DAY,
                    group_by: list[UsageGroup] | None = None,
                    filter: UsageFilterInput | None = None, time_zone: str = "UTC") -> UsageReport:
        since, until = _range(range)
        report = await usage_service.usage(
            since, until, bucket.value, [g.value for g in group_by or []],
            filter.to_service() if filter else None, time_zone,
            with_sessions=_selects(info, "sessions"))
        return await UsageReport.from_record(report)

    @strawberry.field(description=(
        "Per tool over a range: calls, errors and error rate, duration p50/p95, lines changed, "
        "most touched files. Most used first."))
    async def tool_stats(self, range: TimeRangeInput, filter: UsageFilterInput | None = None,
                         top_files: int = 5) -> list[ToolStat]:
        since, until = _range(range)
        stats = await usage_service.tool_stats(since, until, filter.to_service() if filter else None,
                                               top_files=max(0, min(top_files, 50)))
        return [ToolStat.from_record(s) for s in stats]

    @strawberry.field(description=(
        "Per model over a range: calls, tokens by bucket, cost, unpriced calls, latency p50/p95."))
    async def model_stats(self, range: TimeRangeInput,
                          filter: UsageFilterInput | None = None) -> list[ModelStat]:
        since, until = _range(range)
        stats = await usage_service.model_stats(since, until, filter.to_service() if filter else None)
        book = await price_service.book()
        return [ModelStat.from_record(s, book.priced_as(s.model)) for s in stats]

    @strawberry.field(description=(
        "Subscription plans: Claude's 5-hour usage blocks (current one with burn rate and "
        "projection) and Codex's rate-limit windows. `machine` limits both to one machine."))
    async def plans(self, machine: strawberry.ID | None = None) -> Plans:
        mid = parse_id(machine) if machine else None
        blocks, windows = await asyncio.gather(plan_service.claude_blocks(machine=mid),
                                               plan_service.codex_windows(machine=mid))
        return Plans(claude_blocks=[UsageBlock.from_record(b) for b in blocks],
                     codex_windows=[RateLimitWindow.from_record(w) for w in windows])

    @strawberry.field(description=(
        "Model prices costs are computed from. With `model`: the priced model that name "
        "resolves to, as ingest resolves it (dated ids, aliases, `provider/` prefixes; "
        "`provider` is the one the agent reported), with all its dated prices — empty when "
        "it has none (its calls are `unpriced`). Without: every model's price valid now."))
    async def prices(self, model: str | None = None, provider: str | None = None) -> list[Price]:
        if model is None:
            records = await price_service.list_prices(provider=provider)
        else:
            found = await price_service.resolve(model, provider)
            records = found.prices if found else []
        return [Price.from_record(r) for r in records]

    @strawberry.field(description=(
        "Users' price aliases: model names priced as another model (`devlog prices alias`), "
        "by name."))
    async def price_aliases(self) -> list[PriceAlias]:
        return [PriceAlias.from_record(a) for a in await price_service.list_aliases()]

    @strawberry.field(description="The scheduled jobs and their last runs.")
    async def jobs(self, info: Info) -> list[Job]:
        sched = info.context.scheduler
        out = []
        for r in await job_service.list_jobs(info.context.settings):
            job = sched.get_job(r.name) if sched else None
            out.append(Job(name=r.name, description=r.description, every_seconds=r.every_seconds,
                           last_run=r.last_run, last_ok=r.last_ok, last_duration_ms=r.last_duration_ms,
                           last_error=r.last_error, last_result=r.last_result, runs=r.runs,
                           next_run=job.next_run_time if job else None))
        return out


def _selects(info: Info, name: str) -> bool:
    """Whether the query selects a field of this name anywhere below the current field."""
    stack = list(info.selected_fields)
    while stack:
        f = stack.pop()
        if getattr(f, "name", None) == name:
            return True
        stack.extend(getattr(f, "selections", ()) or ())
    return False


def _range(r: TimeRangeInput) -> tuple[datetime, datetime | None]:
    """(since, until); until None: up to now."""
    until = r.until or datetime.now(UTC)
    if r.since.tzinfo is None or until.tzinfo is None:
        raise ValueError("give times with a time zone (e.g. 2026-11-25T00:00:00Z)")
    if until <= r.since:
        raise ValueError("the range is empty: `until` must be after `since`")
    if until - r.since > timedelta(days=3660):
        raise ValueError("the range is longer than ten years")
    return r.since, r.until
