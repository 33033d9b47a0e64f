"""Validate a decoded ``EventBatch`` item by item, then write the valid events.

Two ways in:

- a batch decoded as plain JSON values (dicts and lists): all its events are converted to
  ``Event`` with one msgspec call; only if that fails are they converted one by one, so each
  invalid event is rejected alone with its index and reason;
- a :class:`DecodedBatch`: the HTTP body of an ``ingestEvents`` request decoded by
  :func:`decode_request` straight into typed events (no intermediate dicts), payloads kept as
  the JSON text the client sent. That decode succeeds only when every event is valid;
  otherwise the body is decoded as plain JSON and takes the first way.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import msgspec

from app.db import engine
from app.db.engine import describe_connect_error
from app.errors import DatabaseUnavailable, DevlogError
from app.ingest import identity
from app.ingest.writer import PreparedEvent, encode_payload, write_batch
from app.pricing import book as prices
from collector.wire import Batch, Event, IngestResult, MachineInfo, ProjectRef, Rejection, Tokens


class BatchError(DevlogError):
    """The batch as a whole is unusable (not an object, too many events, …)."""


# The wire structs, untracked by the garbage collector (they never hold reference cycles). A
# batch makes thousands of them; tracked, they made full collections a large part of ingest.
class _Tokens(Tokens, gc=False):
    pass


class _ProjectRef(ProjectRef, gc=False):
    pass


class _Event(Event, gc=False):
    tokens: _Tokens | None = None
    project: _ProjectRef | None = None


# The typed decode of a whole request body (decode_request). Unknown fields make it fail (the
# body then takes the general path): msgspec does not check the UTF-8 of what it skips, which
# the general decode rejects.
_NULL = msgspec.Raw(b"null")


class _RawTokens(Tokens, forbid_unknown_fields=True, gc=False):
    pass


class _RawProjectRef(ProjectRef, forbid_unknown_fields=True, gc=False):
    pass


class _RawEvent(_Event, kw_only=True, forbid_unknown_fields=True, gc=False):
    # Checked by decode_request: canonical lowercase UUIDs (others take the general path). As
    # text, thousands of ids are neither parsed into nor collected as uuid.UUID objects.
    id: str  # type: ignore[assignment]
    tokens: _RawTokens | None = None  # type: ignore[assignment]
    project: _RawProjectRef | None = None  # type: ignore[assignment]
    payload: msgspec.Raw = _NULL  # the JSON text as sent, stored without re-encoding


class _RawMachineInfo(MachineInfo, forbid_unknown_fields=True, gc=False):
    pass


class _TypedBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    events: list[_RawEvent]
    machines: list[_RawMachineInfo] = []


class _Variables(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    batch: _TypedBatch


class _Request(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    query: str
    variables: _Variables
    operationName: str | None = None
    extensions: dict[str, Any] | None = None


_REQUEST = msgspec.json.Decoder(_Request)
_DECLARES_BATCH = re.compile(r"\$batch[\s,]*:[\s,]*EventBatch\b")


class DecodedBatch:
    """A batch whose events were decoded and validated with the request body."""

    __slots__ = ("events", "machines", "payloads")

    def __init__(self, events: list[_RawEvent], machines: list[_RawMachineInfo],
                 payloads: list[str | None]) -> None:
        self.events = events
        self.machines = machines
        self.payloads = payloads  # each event's payload as JSON text (None: no payload)


def decode_request(body: bytes) -> dict[str, Any] | None:
    """A GraphQL request body whose ``$batch: EventBatch`` variable is a batch of valid events,
    decoded with that variable as a :class:`DecodedBatch`; None for any other body (decode it as
    plain JSON then)."""
    if b"EventBatch" not in body:
        return None
    try:
        request = _REQUEST.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # not such a request, or an invalid
        return None  # event: the general path
    if not _DECLARES_BATCH.search(request.query):
        return None
    batch = request.variables.batch
    if batch.events and not _canonical_uuids([e.id for e in batch.events]):
        return None
    try:  # msgspec checks a Raw value's JSON syntax, not its UTF-8
        payloads = [None if e.payload is _NULL else str(e.payload, "utf-8")
                    for e in batch.events]
    except UnicodeDecodeError:
        return None
    payloads = [None if p == "null" else p for p in payloads]
    return {"query": request.query, "operationName": request.operationName,
            "variables": {"batch": DecodedBatch(batch.events, batch.machines, payloads)},
            "extensions": request.extensions}


_HEX = b"0123456789abcdef-"


def _canonical_uuids(ids: list[str]) -> bool:
    """Whether every id is a UUID in canonical lowercase form (msgspec accepts those and more)."""
    n = len(ids)
    if set(map(len, ids)) != {36}:
        return False
    try:
        text = "".join(ids).encode("ascii")
    except UnicodeEncodeError:
        return False
    dashes = b"-" * n
    return (not text.translate(None, _HEX) and text.count(b"-") == 4 * n
            and text[8::36] == dashes and text[13::36] == dashes
            and text[18::36] == dashes and text[23::36] == dashes)


def _id_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("id")
        return value if isinstance(value, str) else None
    return None


def _reason(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("`$.", "`")


_EVENTS = list[_Event]


def validate(batch_obj: Any, *, max_events: int, max_event_bytes: int
             ) -> tuple[Batch | DecodedBatch, list[PreparedEvent], list[Rejection], int]:
    """Returns (batch, valid events de-duplicated by id, rejections, duplicates within batch)."""
    payloads: list[str | None] | None = None
    invalid: dict[int, Rejection] = {}
    if isinstance(batch_obj, DecodedBatch):
        batch: Batch | DecodedBatch = batch_obj
        events: list[Any] = batch_obj.events
        payloads = batch_obj.payloads
    else:
        try:
            batch = msgspec.convert(batch_obj, Batch)
        except msgspec.ValidationError as exc:
            raise BatchError(f"invalid batch: {exc}") from None
        events = batch.events
    if len(events) > max_events:
        raise BatchError(f"batch has {len(events)} events; the limit is {max_events} "
                         "(DEVLOG_MAX_BATCH_EVENTS): split it")
    if payloads is None:
        try:  # the usual case, every event valid: one call converts them all
            events = msgspec.convert(events, _EVENTS)
        except msgspec.ValidationError:  # then one by one, to name each invalid event
            objs, events = events, []
            for index, obj in enumerate(objs):
                try:
                    events.append(msgspec.convert(obj, _Event))
                except msgspec.ValidationError as exc:
                    events.append(None)
                    invalid[index] = Rejection(index=index, id=_id_of(obj), reason=_reason(exc))
    rejected: list[Rejection] = []
    prepared: list[PreparedEvent] = []
    append = prepared.append
    seen: dict[str, int] = {}  # id -> its position in prepared
    repeats = 0
    session_key = identity.session_key
    for index, event in enumerate(events):
        if event is None:
            rejected.append(invalid[index])
            continue
        if payloads is None:
            payload_json = None if event.payload is None else encode_payload(event.payload)
        else:
            payload_json = payloads[index]
            if payload_json is not None and "\\u0000" in payload_json:  # jsonb rejects it
                payload_json = encode_payload(msgspec.json.decode(payload_json))
        size = len(payload_json) if payload_json else 0
        if event.content:
            size += len(event.content)
        if event.command:
            size += len(event.command)
        if event.error:
            size += len(event.error)
        if size > max_event_bytes:
            rejected.append(Rejection(
                index=index, id=str(event.id),
                reason=f"event is {size} bytes; the limit is {max_event_bytes} "
                       "(DEVLOG_MAX_EVENT_BYTES): truncate its payload or content"))
            continue
        key = event.id.hex if payloads is None else event.id.replace("-", "")
        if key in seen:  # the same event twice: the highest revision is the one written
            repeats += 1
            at = seen[key]
            if event.revision > prepared[at].event.revision:
                prepared[at] = PreparedEvent(event, key, session_key(event.agent, event.session),
                                             payload_json)
            continue
        seen[key] = len(prepared)
        append(PreparedEvent(event, key, session_key(event.agent, event.session), payload_json))
    return batch, prepared, rejected, repeats


async def ingest_batch(batch_obj: Any, *, max_events: int, max_event_bytes: int) -> IngestResult:
    batch, prepared, rejected, repeats = validate(
        batch_obj, max_events=max_events, max_event_bytes=max_event_bytes)
    if not prepared:
        return IngestResult(accepted=0, duplicates=repeats, rejected=rejected)
    try:
        async with engine.pool().acquire() as conn:
            book = await prices.current(conn)
            result = await write_batch(conn, prepared, batch.machines, book)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError) as exc:
        raise DatabaseUnavailable(
            f"database unavailable, nothing was stored ({describe_connect_error(exc)}); retry"
        ) from None
    if result.rejected:  # revisions that would change an event's identity
        more = [Rejection(index=_index_of(batch, uuid.UUID(key)), id=str(uuid.UUID(key)),
                          reason=reason) for key, reason in result.rejected]
        rejected = sorted(rejected + more, key=lambda r: r.index)
    return IngestResult(accepted=result.accepted, duplicates=result.duplicates + repeats,
                        revised=result.revised, rejected=rejected)


def _index_of(batch: Batch | DecodedBatch, event_id: uuid.UUID) -> int:
    """The position in the batch of the event written with this id: the first one with its
    highest revision (the one ``validate`` keeps)."""
    best, at = -1, -1
    for index, e in enumerate(batch.events):
        if isinstance(batch, DecodedBatch):
            same, revision = uuid.UUID(e.id) == event_id, e.revision
        elif isinstance(e, dict):
            try:
                same = uuid.UUID(str(e.get("id"))) == event_id
            except ValueError:
                continue
            revision = e.get("revision", 0)
        else:
            continue
        if same and isinstance(revision, int) and revision > best:
            best, at = revision, index
    return at
