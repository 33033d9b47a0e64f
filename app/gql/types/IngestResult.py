from __future__ import annotations

import strawberry

from collector.wire import IngestResult as IngestResultRecord


@strawberry.type(description="Why one event of a batch was not stored.")
class Rejection:
    index: int = strawberry.field(description="Position of the event in `batch.events`.")
    id: str | None = strawberry.field(description="The event's id, when it had a readable one.")
    reason: str


@strawberry.type(description=(
    "What happened to a batch. accepted + revised + duplicates + rejected = events sent. Only "
    "accepted and revised events changed anything; the answer comes after the database "
    "committed them."))
class IngestResult:
    accepted: int = strawberry.field(description="New events stored.")
    revised: int = strawberry.field(description=(
        "Stored events replaced by this batch's version, whose revision is higher; sessions "
        "and rollups moved by the difference."))
    duplicates: int = strawberry.field(description=(
        "Events already stored (same id, same or higher revision), in this batch or before; "
        "skipped."))
    rejected: list[Rejection]

    @classmethod
    def from_record(cls, rec: IngestResultRecord) -> IngestResult:
        return cls(accepted=rec.accepted, revised=rec.revised, duplicates=rec.duplicates,
                   rejected=[Rejection(index=r.index, id=r.id, reason=r.reason) for r in rec.rejected])
