"""Validate a decoded ``EventBatch`` item by item, then write the valid events."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from app.db import engine
from app.db.engine import describe_connect_error
from app.errors import DatabaseUnavailable, DevlogError
from app.ingest import identity
from app.ingest.writer import PreparedEvent, encode_payload, event_size, write_batch
from collector.wire import Batch, IngestResult, Rejection, event_from_obj


class BatchError(DevlogError):
    """The batch as a whole is unusable (not an object, too many events, …)."""


def _id_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("id")
        return value if isinstance(value, str) else None
    return None


def _reason(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("`$.", "`")


def validate(batch_obj: Any, *, max_events: int, max_event_bytes: int
             ) -> tuple[Batch, list[PreparedEvent], list[Rejection], int]:
    """Returns (batch, valid events de-duplicated by id, rejections, duplicates within batch)."""
    try:
        batch = msgspec.convert(batch_obj, Batch)
    except msgspec.ValidationError as exc:
        raise BatchError(f"invalid batch: {exc}") from None
    if len(batch.events) > max_events:
        raise BatchError(f"batch has {len(batch.events)} events; the limit is {max_events} "
                         "(DEVLOG_MAX_BATCH_EVENTS): split it")
    prepared: list[PreparedEvent] = []
    rejected: list[Rejection] = []
    seen: set[uuid.UUID] = set()
    repeats = 0
    for index, obj in enumerate(batch.events):
        try:
            event = event_from_obj(obj)
        except msgspec.ValidationError as exc:
            rejected.append(Rejection(index=index, id=_id_of(obj), reason=_reason(exc)))
            continue
        payload_json = encode_payload(event.payload)
        size = event_size(event, payload_json)
        if size > max_event_bytes:
            rejected.append(Rejection(
                index=index, id=str(event.id),
                reason=f"event is {size} bytes; the limit is {max_event_bytes} "
                       "(DEVLOG_MAX_EVENT_BYTES): truncate its payload or content"))
            continue
        if event.id in seen:
            repeats += 1
            continue
        seen.add(event.id)
        prepared.append(PreparedEvent(event=event,
                                      session_id=identity.session_id(event.agent, event.session),
                                      payload_json=payload_json))
    return batch, prepared, rejected, repeats


async def ingest_batch(batch_obj: Any, *, max_events: int, max_event_bytes: int) -> IngestResult:
    batch, prepared, rejected, repeats = validate(
        batch_obj, max_events=max_events, max_event_bytes=max_event_bytes)
    if not prepared:
        return IngestResult(accepted=0, duplicates=repeats, rejected=rejected)
    try:
        async with engine.pool().acquire() as conn:
            result = await write_batch(conn, prepared, batch.machines)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError) as exc:
        raise DatabaseUnavailable(
            f"database unavailable, nothing was stored ({describe_connect_error(exc)}); retry"
        ) from None
    return IngestResult(accepted=result.accepted, duplicates=result.duplicates + repeats,
                        rejected=rejected)
