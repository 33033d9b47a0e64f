"""Validate a decoded ``EventBatch`` item by item: each event is checked against the wire
contract's declared bounds (``collector.wire``) and the rest of its bounds
(``app.ingest.bounds``), so an invalid event is rejected alone with its index and a reason
naming the field. ``app.ingest.submit`` then writes the valid ones.

Two ways in:

- a batch decoded as plain JSON values (dicts and lists): all its events are converted to
  ``Event`` with one msgspec call; only if that fails are they converted one by one;
- a :class:`DecodedBatch`: the HTTP body of an ``ingestEvents`` request decoded by
  :func:`decode_request` straight into typed events (no intermediate dicts), payloads kept as
  the JSON text the client sent. That decode succeeds only when every event is valid;
  otherwise the body is decoded as plain JSON (``app.ingest.body``) and takes the first way.

A batch's ``machines`` are facts about the machines its events name: an invalid entry is
ignored (logged), its machine keeps the facts it had, and no event is lost for it.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.errors import DevlogError
from app.ingest import bounds, identity
from app.ingest.writer import PreparedEvent
from collector.wire import Event, MachineInfo, ProjectRef, Rejection, Tokens

log = logging.getLogger(__name__)


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
    plain JSON then). The body is repaired first (``bounds.repair_json``: NUL and lone
    surrogates), so every string of its events is storable."""
    if b"EventBatch" not in body:
        return None
    body = bounds.repair_json(body)
    try:
        request = _REQUEST.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # not such a request,
        return None  # or an invalid event, or nested too deep: the general path
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
        return bounds.shorten(value) if isinstance(value, str) else None
    return None


def _reason(exc: msgspec.ValidationError) -> str:
    return bounds.shorten(str(exc).replace("`$.", "`"))


class _Shape(msgspec.Struct, kw_only=True, gc=False):
    """A batch's shape, before its items are validated one by one."""

    events: list[Any]
    machines: list[Any] = []


class _MachineInfo(MachineInfo, gc=False):
    pass


_EVENTS = list[_Event]


def _machines(items: list[Any]) -> list[MachineInfo]:
    """The valid machine entries, cleaned; invalid ones are logged and ignored."""
    machines = []
    for index, item in enumerate(items):
        try:
            machine = msgspec.convert(item, _MachineInfo)
        except msgspec.ValidationError as exc:
            log.warning("ingest: machines[%d] ignored (%s)", index, _reason(exc))
            continue
        bounds.clean_fields(machine, bounds.MACHINE_TEXT)
        machines.append(machine)
    return machines


def validate(batch_obj: Any, *, max_events: int, max_event_bytes: int,
             now: datetime | None = None,
             ) -> tuple[list[MachineInfo], list[PreparedEvent], list[Rejection], int]:
    """Returns (the batch's valid machines, its valid events de-duplicated by id, rejections,
    duplicates within the batch). ``now``: the server's clock (events may be dated up to a day
    after it)."""
    payloads: list[str | None] | None = None
    invalid: dict[int, Rejection] = {}
    if isinstance(batch_obj, DecodedBatch):
        machines: list[MachineInfo] = batch_obj.machines  # type: ignore[assignment]
        events: list[Any] = batch_obj.events
        payloads = batch_obj.payloads
    else:
        try:
            shape = msgspec.convert(batch_obj, _Shape)
        except msgspec.ValidationError as exc:
            raise BatchError(f"invalid batch: {_reason(exc)}") from None
        events = shape.events
        machines = _machines(shape.machines)
    if len(events) > max_events:
        raise BatchError(f"batch has {len(events)} events; the limit is {max_events} "
                         "(DEVLOG_MAX_BATCH_EVENTS): split it")
    if payloads is None:
        try:  # the usual case, every event valid: one call converts them all
            events = msgspec.convert(events, _EVENTS)
        except (msgspec.ValidationError, RecursionError):  # then one by one, to name each
            objs, events = events, []
            for index, obj in enumerate(objs):
                try:
                    events.append(msgspec.convert(obj, _Event))
                except msgspec.ValidationError as exc:
                    events.append(None)
                    invalid[index] = Rejection(index=index, id=_id_of(obj), reason=_reason(exc))
                except RecursionError:  # a value nested far deeper than any bound
                    events.append(None)
                    invalid[index] = Rejection(
                        index=index, id=_id_of(obj),
                        reason=f"event is nested deeper than {bounds.MAX_PAYLOAD_DEPTH} levels")
    latest = bounds.latest_ts(now)
    check_typed, check_event = bounds.check_typed_event, bounds.check_event
    OutOfBounds = bounds.OutOfBounds
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
        try:
            if payloads is None:
                payload_json = check_event(event, latest)
            else:
                payload_json = check_typed(event, payloads[index], latest)
        except OutOfBounds as exc:
            rejected.append(Rejection(index=index, id=str(event.id),
                                      reason=bounds.shorten(str(exc))))
            continue
        size = _utf8_len(payload_json) if payload_json else 0
        if event.content:
            size += _utf8_len(event.content)
        if event.command:
            size += _utf8_len(event.command)
        if event.error:
            size += _utf8_len(event.error)
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
    return machines, prepared, rejected, repeats


def _utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (the limit counts bytes: 1 MB of emoji is 4 MB stored)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def index_of(batch_obj: Any, event_id: uuid.UUID) -> int:
    """The position in the batch of the event written with this id: the first one with its
    highest revision (the one ``validate`` keeps)."""
    best, at = -1, -1
    if isinstance(batch_obj, DecodedBatch):
        events: Any = batch_obj.events
    elif isinstance(batch_obj, dict):
        events = batch_obj.get("events") or []
    else:
        events = getattr(batch_obj, "events", [])
    for index, e in enumerate(events):
        if isinstance(batch_obj, DecodedBatch):
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
