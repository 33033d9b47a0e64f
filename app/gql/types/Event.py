from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.scalars.BigInt import BigInt
from app.gql.types.common import PageInfo, TokenBuckets
from app.services.events import EventRecord
from app.services.pagination import Page
from app.services.sessions import SessionRecord
from app.turns import map_in_turns

if TYPE_CHECKING:
    from app.gql.types.Session import Session


@strawberry.type(description="One normalised agent event (see ARCHITECTURE.md for the vocabulary).")
class Event:
    id: strawberry.ID
    ts: datetime
    session_id: strawberry.ID
    seq: BigInt
    kind: str
    agent: str
    model: str | None
    provider: str | None
    tokens: TokenBuckets | None
    tokens_estimated: bool
    cost_usd: float | None
    cost_source: str | None = strawberry.field(description="reported (by the agent) or computed.")
    duration_ms: BigInt | None
    stop_reason: str | None
    tool_name: str | None
    tool_category: str | None
    tool_call_id: str | None
    status: str | None
    file_path: str | None
    lines_added: int | None
    lines_removed: int | None
    command: str | None
    content: str | None
    error: str | None
    rec: strawberry.Private[EventRecord]
    # Known when the event comes from a live delivery (which loaded its session): no query.
    session_rec: strawberry.Private[SessionRecord | None] = None

    @strawberry.field(description=(
        "For an LLM call: the model a user's price alias prices `model` as "
        "(`devlog prices alias`); null when it is priced by its own name."))
    async def priced_as(self) -> str | None:
        if self.kind != "llm_call" or not self.model:
            return None
        from app.services import prices as price_service

        return (await price_service.book()).priced_as(self.model)

    @strawberry.field(description=(
        "The version of this event: a later one with a higher revision (a call whose usage "
        "grew) replaced the lower ones; subscribers then receive the event again."))
    def revision(self) -> int:
        return self.rec.revision

    @strawberry.field(description="The agent's raw record.")
    def payload(self) -> JSON | None:
        import msgspec

        return msgspec.json.decode(self.rec.payload) if self.rec.payload else None

    @strawberry.field
    async def session(self, info: Info) -> Annotated[Session, strawberry.lazy("app.gql.types.Session")] | None:
        from app.gql.types.Session import Session

        rec = self.session_rec or await info.context.loaders.session_by_id.load(self.rec.session_id)
        return Session.from_record(rec) if rec else None

    @classmethod
    def from_record(cls, r: EventRecord, session: SessionRecord | None = None) -> Event:
        has_tokens = any(v is not None for v in (r.tokens_input, r.tokens_output,
                                                 r.tokens_cache_read, r.tokens_cache_write))
        return cls(
            id=strawberry.ID(str(r.id)), ts=r.ts, session_id=strawberry.ID(str(r.session_id)),
            seq=r.seq, kind=r.kind, agent=r.agent, model=r.model, provider=r.provider,
            tokens=TokenBuckets(input=r.tokens_input or 0, output=r.tokens_output or 0,
                                cache_read=r.tokens_cache_read or 0,
                                cache_write=r.tokens_cache_write or 0,
                                reasoning=r.tokens_reasoning or 0) if has_tokens else None,
            tokens_estimated=r.tokens_estimated, cost_usd=r.cost_usd, cost_source=r.cost_source,
            duration_ms=r.duration_ms, stop_reason=r.stop_reason, tool_name=r.tool_name,
            tool_category=r.tool_category, tool_call_id=r.tool_call_id, status=r.status,
            file_path=r.file_path, lines_added=r.lines_added, lines_removed=r.lines_removed,
            command=r.command, content=r.content, error=r.error, rec=r, session_rec=session,
        )


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo

    @classmethod
    async def from_page(cls, page: Page[EventRecord]) -> EventConnection:
        # a page of 500 events: converted taking turns with other requests (app/turns.py)
        edges = await map_in_turns(lambda cr: EventEdge(cursor=cr[0], node=Event.from_record(cr[1])),
                                   zip(page.cursors, page.items))
        return cls(edges=edges,
                   page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor))
