from __future__ import annotations

import strawberry

from collector.wire import IngestResult as IngestResultRecord


@strawberry.type(description="Why one event of a batch was not stored.")
class Rejection:
    index: int = strawberry.field(description="Position of the event in `batch.events`.")
    id: str | None = strawberry.field(description="The event's id, when it had a readable one.")
    reason: str


@strawberry.type(description=(
    "What happened to a batch. accepted + duplicates + rejected = events sent. Only accepted "
    "events changed anything; the answer comes after the database committed them."))
class IngestResult:
    accepted: int = strawberry.field(description="New events stored.")
    duplicates: int = strawberry.field(
        description="Events already stored (same id), in this batch or before; skipped.")
    rejected: list[Rejection]

    @classmethod
    def from_record(cls, rec: IngestResultRecord) -> IngestResult:
        return cls(accepted=rec.accepted, duplicates=rec.duplicates,
                   rejected=[Rejection(index=r.index, id=r.id, reason=r.reason) for r in rec.rejected])
