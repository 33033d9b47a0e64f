from __future__ import annotations

import strawberry

from app.access.graphql import principal_of
from app.errors import DevlogError
from app.gql.context import Info
from app.gql.scalars.EventBatch import EventBatch
from app.gql.types.IngestResult import IngestResult
from app.ingest.submit import submit


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "Store a batch of events (see EventBatch). Idempotent: an event id is stored once, "
            "whatever its ts; an event whose id is stored already replaces the stored one if "
            "its revision is higher (revised), else it counts as a duplicate and changes "
            "nothing. Invalid events are rejected one by one; the others are kept. Answers "
            "after the database committed."
        ),
    )
    async def ingest_events(self, info: Info, batch: EventBatch) -> IngestResult:  # type: ignore[valid-type]
        settings = info.context.settings
        try:
            # the caller, as the Authorise extension resolved it (cached per connection)
            principal = await principal_of(info.context)
            result = await submit(batch, principal, max_events=settings.max_batch_events,
                                  max_event_bytes=settings.max_event_bytes)
        except DevlogError as exc:
            raise ValueError(str(exc)) from None
        return IngestResult.from_record(result)
