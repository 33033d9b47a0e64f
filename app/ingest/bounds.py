"""The bounds of an ingested event that the wire structs' declarations cannot state, checked
in this one place (``check_event``/``check_typed_event``, called by ``app.ingest.batch``)
before the database sees the event.

The declared ones (types, enums, lengths, number ranges) are msgspec ``Meta`` on
``collector.wire`` and checked when an event is decoded. Here:

- **Text that can be made storable is.** NUL (PostgreSQL's text and jsonb cannot hold U+0000)
  and lone surrogates (not encodable as UTF-8) become U+FFFD in every string of an event —
  every text field, payload keys and values — and of a batch's machines. An HTTP body is
  repaired before it is decoded (:func:`repair_json`: its ``\\u0000`` and lone-surrogate
  escapes); events built in-process are cleaned field by field (:func:`clean_text`). The same
  value always gets the same replacement, so ids derived from text stay stable.
- **ts** is at or after 1970-01-01T00:00:00Z and at most a day after the server's clock.
- **payload** is JSON: nested at most ``MAX_PAYLOAD_DEPTH`` deep, numbers finite and within a
  double's range (what every JSON reader can read back; jsonb itself refuses exponents past
  about ±131,071 and a page renders what it stores).

Any other value out of bounds raises :class:`OutOfBounds`, whose message names the field: the
event is rejected alone, its neighbours are stored.
"""

from __future__ import annotations

import math
import operator
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

MAX_PAYLOAD_DEPTH = 64  # nested arrays/objects in a payload
EARLIEST_TS = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_AHEAD = timedelta(days=1)  # how far past the server's clock an event may be dated
MAX_REASON = 400  # characters of a rejection reason (msgspec quotes the bad value)
REPLACEMENT = "\ufffd"


class OutOfBounds(ValueError):
    """A value of one event outside its bounds; the message names the field."""


class UnreadableNumber:
    """A number the tolerant body decoder could not read as a finite double or an int
    (``NaN``, ``Infinity``, ``1e400``, an integer of thousands of digits): it stands in for it,
    so that the event holding it is rejected and its neighbours are not."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text if len(self.text) <= 40 else f"{self.text[:20]}…({len(self.text)} chars)"


# --------------------------------------------------------------------------- text

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def needs_cleaning(text: str) -> bool:
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def clean_text(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (same length)."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if needs_cleaning(text) else text


# A JSON string escape the body repair looks at: an escaped backslash (kept, so that the text
# ``\\u0000`` stays a backslash and "u0000"), ``\u0000``, a surrogate pair (kept), a lone
# surrogate.
_ESCAPE = re.compile(rb"\\(?:\\|u0000|u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                     rb"|u[dD][c-fC-F][0-9a-fA-F]{2})")
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _escape(match: re.Match[bytes]) -> bytes:
    text = match.group()
    return text if len(text) in (2, 12) else b"\\ufffd"


def repair_json(data: bytes) -> bytes:
    """JSON text whose ``\\u0000`` escapes and lone-surrogate escapes are ``\\ufffd``: the
    value it decodes to is the same as if each such string had gone through
    :func:`clean_text`. Costs one search when there is nothing to repair."""
    if _SUSPECT.search(data) is None:
        return data
    return _ESCAPE.sub(_escape, data)


def _clean_value(value: Any) -> Any:
    """A copy of a JSON value with every key and string cleaned (depth already bounded)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: _clean_value(v)
                for k, v in value.items()}
    return value


_EVENT_TEXT = ("agent", "session", "machine", "parent_session", "workspace", "agent_version",
               "model", "provider", "stop_reason", "tool_name", "tool_call_id", "file_path",
               "command", "content", "error")
_PROJECT_TEXT = ("remote", "path", "name", "branch", "commit")
MACHINE_TEXT = ("key", "hostname", "username", "os", "os_version", "arch")


def clean_fields(obj: Any, fields: tuple[str, ...]) -> None:
    """Clean the named text fields of a struct in place."""
    for name in fields:
        value = getattr(obj, name)
        if value is not None and needs_cleaning(value):
            setattr(obj, name, clean_text(value))


_event_text = operator.attrgetter(*_EVENT_TEXT)
_project_text = operator.attrgetter(*_PROJECT_TEXT)
_join = "".join


def _clean_event_text(event: Any) -> None:
    # one check of all the text (the usual case: nothing to clean), field by field only if needed
    if needs_cleaning(_join(filter(None, _event_text(event)))):
        clean_fields(event, _EVENT_TEXT)
    project = event.project
    if project is not None and needs_cleaning(_join(filter(None, _project_text(project)))):
        clean_fields(project, _PROJECT_TEXT)


# --------------------------------------------------------------------------- payload

_JSON = msgspec.json.Decoder()
_encode = msgspec.json.encode
_FLOAT = float
_INF = math.inf


def _scan(value: Any) -> bool:
    """Check a decoded payload's depth and numbers (iteratively: no recursion limit to meet);
    True if some key or string needs cleaning."""
    dirty = False
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        if isinstance(v, dict):
            items: Any = v.items()
        elif isinstance(v, (list, tuple)):
            items = enumerate(v)
        else:  # a scalar at the top
            items = ((None, v),)
            depth -= 1
        depth += 1
        if depth > MAX_PAYLOAD_DEPTH:
            raise OutOfBounds(f"`payload` is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        for k, x in items:
            if k.__class__ is str and not dirty and needs_cleaning(k):
                dirty = True
            t = x.__class__
            if t is str:
                if not dirty and needs_cleaning(x):
                    dirty = True
            elif t is dict or t is list or t is tuple:
                push((x, depth))
            elif t is _FLOAT:
                if x != x or x == _INF or x == -_INF:
                    raise OutOfBounds("`payload` holds NaN or an infinity: not JSON numbers")
            elif t is UnreadableNumber:
                raise OutOfBounds(f"`payload` holds the number {x!r}: numbers must be finite "
                                  "and within a double's range")
    return dirty


def payload_json(value: Any) -> str | None:
    """JSON text of a decoded payload (an event built in-process or decoded as plain JSON),
    cleaned; raises OutOfBounds.

    Encoded first (the usual case costs that and three searches of the text); the payload is
    walked only when the text says it may be out of bounds: a ``\u0000`` escape or a string
    UTF-8 cannot encode (to clean), more brackets than the depth bound (to measure), ``null``
    (msgspec writes NaN and infinities as null), or a value msgspec cannot encode."""
    if value is None:
        return None
    try:
        data = _encode(value)
    except UnicodeEncodeError:  # lone surrogates
        data = None
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        _scan(value)  # names what is out of bounds (too deep, an unreadable number), or:
        raise OutOfBounds(f"`payload` is not JSON: {exc}") from None
    if (data is None or b"\\u0000" in data or b"null" in data
            or data.count(b"[") + data.count(b"{") > MAX_PAYLOAD_DEPTH):
        if _scan(value) or data is None or b"\\u0000" in data:
            data = _encode(_clean_value(value))
    return data.decode()


def check_payload_text(text: str) -> str:
    """A payload as the JSON text the client sent (typed decode of a repaired body): its
    numbers and depth checked, returned as is — or cleaned if it still holds a ``\\u0000``
    escape (a body that did not go through :func:`repair_json`)."""
    try:
        value = _JSON.decode(text)
    except msgspec.ValidationError as exc:  # "Number out of range", "Integer value out of range"
        raise OutOfBounds(f"`payload`: {str(exc)[:200]} (numbers must be finite and within a "
                          "double's range)") from None
    if text.count("[") + text.count("{") > MAX_PAYLOAD_DEPTH:  # else it cannot be that deep
        _scan(value)
    if "\\u0000" in text:
        return payload_json(value)  # type: ignore[return-value]
    return text


# --------------------------------------------------------------------------- events


def latest_ts(now: datetime | None = None) -> datetime:
    """The latest event time accepted now."""
    return (now or datetime.now(timezone.utc)) + MAX_AHEAD


def check_ts(ts: datetime, latest: datetime) -> None:
    if ts < EARLIEST_TS:
        raise OutOfBounds(f"`ts` {ts.isoformat()} is before 1970-01-01T00:00:00Z")
    if ts > latest:
        raise OutOfBounds(f"`ts` {ts.isoformat()} is more than a day ahead of the server's "
                          f"clock ({(latest - MAX_AHEAD).isoformat(timespec='seconds')})")


def check_event(event: Any, latest: datetime) -> str | None:
    """An event built in-process or converted from plain JSON: its text cleaned in place, its
    time checked; returns its payload as JSON text. Raises OutOfBounds."""
    _clean_event_text(event)
    check_ts(event.ts, latest)
    return payload_json(event.payload)


def check_typed_event(event: Any, payload: str | None, latest: datetime) -> str | None:
    """An event of a typed request body (repaired before it was decoded, so its text is
    clean): its time and payload checked; returns the payload text. Raises OutOfBounds."""
    check_ts(event.ts, latest)
    return None if payload is None else check_payload_text(payload)


def shorten(reason: str) -> str:
    """A rejection reason of at most about ``MAX_REASON`` characters, keeping the field it
    names (msgspec's messages end with `` - at `field` `` and may quote the whole value)."""
    if len(reason) <= MAX_REASON:
        return clean_text(reason)
    head, sep, where = reason.rpartition(" - at `")
    if not sep or len(where) > MAX_REASON // 2:
        head, where = reason, ""
    return clean_text(head[: MAX_REASON // 2] + "…" + (sep + where if where else ""))
