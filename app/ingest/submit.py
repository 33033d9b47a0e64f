"""The one ingest entry point: ``submit(batch, principal)``.

Every receiver calls it — the GraphQL ``ingestEvents`` mutation today, other receivers (OTLP)
tomorrow — with a batch in the wire format (``collector.wire``): a :class:`DecodedBatch` from
the typed body decode, or plain JSON values. It validates the batch event by event
(``app.ingest.batch``, with the bounds of ``app.ingest.bounds``), writes the valid events in one
transaction (``app.ingest.writer``) and answers after COMMIT: accepted, duplicates, and each
rejected event's index and reason. A batch fails whole only for what is not about one event:
its shape or size (``BatchError``) or the database being away (``DatabaseUnavailable``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from app.db import engine
from app.db.engine import describe_connect_error
from app.errors import DatabaseUnavailable
from app.ingest.batch import index_of, validate
from app.ingest.writer import write_batch
from app.pricing import book as prices
from collector.wire import IngestResult, Rejection

if TYPE_CHECKING:
    from app.access.principal import Principal


async def submit(batch: Any, principal: Principal | None, *, max_events: int,
                 max_event_bytes: int) -> IngestResult:
    """Validate and store ``batch`` on behalf of ``principal`` (who sends it, already
    authorised by the receiver; None until every receiver passes one). The limits are the
    settings ``max_batch_events`` and ``max_event_bytes``.

    Raises ``BatchError`` (the batch as a whole is unusable) or ``DatabaseUnavailable``."""
    machines, prepared, rejected, repeats = validate(
        batch, max_events=max_events, max_event_bytes=max_event_bytes)
    if not prepared:
        return IngestResult(accepted=0, duplicates=repeats, rejected=rejected)
    try:
        async with engine.pool().acquire() as conn:
            book = await prices.current(conn)
            result = await write_batch(conn, prepared, machines, book)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError) as exc:
        raise DatabaseUnavailable(
            f"database unavailable, nothing was stored ({describe_connect_error(exc)}); retry"
        ) from None
    if result.rejected:  # revisions that would change an event's identity
        more = [Rejection(index=index_of(batch, uuid.UUID(key)), id=str(uuid.UUID(key)),
                          reason=reason) for key, reason in result.rejected]
        rejected = sorted(rejected + more, key=lambda r: r.index)
    return IngestResult(accepted=result.accepted, duplicates=result.duplicates + repeats,
                        revised=result.revised, rejected=rejected)

