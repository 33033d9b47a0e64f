from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.gql.context import Info
from app.gql.scalars.BigInt import BigInt
from app.gql.types.common import PageInfo, TokenBuckets
from app.services import events as event_service
from app.services.sessions import SessionRecord

if TYPE_CHECKING:
    from app.gql.types.Event import EventConnection
    from app.gql.types.Machine import Machine
    from app.gql.types.Project import Project
    from app.gql.types.Workspace import Workspace


@strawberry.type(description="One conversation of one agent. Sub-agents are sessions with a parent.")
class Session:
    id: strawberry.ID
    agent: str
    native_id: str = strawberry.field(description="The agent's own session id.")
    agent_version: str | None
    title: str | None = strawberry.field(description="The first prompt, shortened.")
    status: str = strawberry.field(
        description="active, idle (no event for DEVLOG_SESSION_IDLE_MINUTES) or ended.")
    git_branch: str | None
    git_commit: str | None
    started_at: datetime | None
    last_event_at: datetime | None
    ended_at: datetime | None
    event_count: int
    prompt_count: int
    llm_call_count: int
    tool_call_count: int
    tool_error_count: int
    files_touched: int
    tokens: TokenBuckets
    cost_usd: float | None = strawberry.field(description="Null until prices or reported costs exist.")
    models: list[str]
    rec: strawberry.Private[SessionRecord]

    @strawberry.field(description="Milliseconds from the first to the last event.")
    def duration_ms(self) -> BigInt | None:
        if self.started_at and self.last_event_at:
            return BigInt(int((self.last_event_at - self.started_at).total_seconds() * 1000))
        return None

    @strawberry.field
    async def parent(self, info: Info) -> Session | None:
        if self.rec.parent_id is None:
            return None
        rec = await info.context.loaders.session_by_id.load(self.rec.parent_id)
        return Session.from_record(rec) if rec and rec.last_event_at else None

    @strawberry.field(description="Sub-agent sessions, in start order.")
    async def children(self, info: Info) -> list[Session]:
        recs = await info.context.loaders.children_by_parent.load(self.rec.id)
        return [Session.from_record(r) for r in recs if r.last_event_at]

    @strawberry.field
    async def project(self, info: Info) -> Annotated[Project, strawberry.lazy("app.gql.types.Project")] | None:
        from app.gql.types.Project import Project

        if self.rec.project_id is None:
            return None
        rec = await info.context.loaders.project_by_id.load(self.rec.project_id)
        return Project.from_record(rec) if rec else None

    @strawberry.field
    async def machine(self, info: Info) -> Annotated[Machine, strawberry.lazy("app.gql.types.Machine")] | None:
        from app.gql.types.Machine import Machine

        if self.rec.machine_id is None:
            return None
        rec = await info.context.loaders.machine_by_id.load(self.rec.machine_id)
        return Machine.from_record(rec) if rec else None

    @strawberry.field
    async def workspace(self, info: Info) -> Annotated[Workspace, strawberry.lazy("app.gql.types.Workspace")] | None:
        from app.gql.types.Workspace import Workspace

        if self.rec.workspace_id is None:
            return None
        rec = await info.context.loaders.workspace_by_id.load(self.rec.workspace_id)
        return Workspace.from_record(rec) if rec else None

    @strawberry.field(description="This session's events in time order.")
    async def events(self, first: int = 100, after: str | None = None,
                     kinds: list[str] | None = None
                     ) -> Annotated[EventConnection, strawberry.lazy("app.gql.types.Event")]:
        from app.gql.types.Event import EventConnection

        page = await event_service.session_events(self.rec.id, first=first, after=after, kinds=kinds)
        return await EventConnection.from_page(page)

    @classmethod
    def from_record(cls, r: SessionRecord) -> Session:
        return cls(
            id=strawberry.ID(str(r.id)), agent=r.agent, native_id=r.native_id,
            agent_version=r.agent_version, title=r.title, status=r.status,
            git_branch=r.git_branch, git_commit=r.git_commit, started_at=r.started_at,
            last_event_at=r.last_event_at, ended_at=r.ended_at, event_count=r.event_count,
            prompt_count=r.prompt_count, llm_call_count=r.llm_call_count,
            tool_call_count=r.tool_call_count, tool_error_count=r.tool_error_count,
            files_touched=r.files_touched,
            tokens=TokenBuckets(input=r.tokens_input, output=r.tokens_output,
                                cache_read=r.tokens_cache_read, cache_write=r.tokens_cache_write,
                                reasoning=r.tokens_reasoning),
            cost_usd=r.cost_usd, models=r.models, rec=r,
        )


@strawberry.type
class SessionEdge:
    cursor: str
    node: Session


@strawberry.type
class SessionConnection:
    edges: list[SessionEdge]
    page_info: PageInfo
    filter: strawberry.Private[object] = None

    @strawberry.field(description="Sessions matching the filter (one extra COUNT query).")
    async def total_count(self) -> int:
        from app.services.sessions import count_sessions

        return await count_sessions(self.filter)  # type: ignore[arg-type]


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"invalid id {value!r}") from None
