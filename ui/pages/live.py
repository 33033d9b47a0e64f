"""Server-sent events: rendered fragments for live pages, fed by the same LISTEN/NOTIFY bus as
the GraphQL subscriptions (so they work across server processes).

Each stream sends only what its page shows: the overview everything (its feed and a throttled
``stats`` nudge that makes the cards reload), a session page that session's events and header,
the sessions list the rows it displays. Message ids are the ingest time of the batch; a browser
that reconnects sends it back (``Last-Event-ID``) and gets what it missed. Fragments carry their
element ids, and app.js keeps one element per id, so the overlap of a resume shows nothing twice.
A subscriber that falls behind is closed by the bus: its stream ends with a ``closed`` message
saying why; the browser reconnects and resumes.

The work of a delivery does not grow with the number of streams: each fragment is rendered once
per event (or session) and delivery, and each message that several streams send alike (the
overview's feed, a session page's update) is encoded once and written to each as the same bytes
(:func:`_shared_message`). A stream that fell behind sends what it holds as one message (built
from the same rendered fragments). A stream's first bytes go out as soon as it is subscribed, so a
client that sees the response has a subscription in place. These streams are not compressed
(``app/asgi.py``): a gzip stream per connection would compress the same bytes once per stream.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.bus import Closed, Delivery
from app.http_errors import log_error
from app.services import events as event_service
from app.services import sessions as session_service
from ui.render import aware, render_item

PING_SECONDS = 15.0
STATS_EVERY = 2.0
FEED_MAX = 30
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RESUME_OVERLAP = timedelta(seconds=10)

# Fragments rendered, by template name (for tests: once per event, whatever the streams).
RENDERS: collections.Counter[str] = collections.Counter()

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# ---------------------------------------------------------------- encoding


class _Encoded(ServerSentEventMessage):
    """A message encoded once: Litestar writes ``encode()``'s bytes, the same for every stream."""

    def __init__(self, raw: bytes) -> None:  # noqa: D107 - no dataclass fields: just the bytes
        self.raw = raw

    def encode(self) -> bytes:
        return self.raw


def _data_lines(html: str) -> bytes:
    """``data:`` lines of one fragment (a message may hold several, in order)."""
    return "".join(f"data: {line}\r\n" for line in _LINE_BREAK.split(html)).encode()


def _message(event: str, data: bytes, event_id: str | None = None) -> _Encoded:
    head = (f"id: {event_id}\r\n" if event_id else "") + f"event: {event}\r\n"
    return _Encoded(head.encode() + data + b"\r\n")


OPENED = _Encoded(b": open\r\n\r\n")


def _closing(reason: Exception) -> _Encoded:
    """The last message of a stream the bus closed (the browser ignores it and reconnects)."""
    return _message("closed", _data_lines(str(reason)))

PING = _Encoded(b": ping\r\n\r\n")


def _fragment(request: Request, name: str, **context: Any) -> str:
    """A rendered fragment; "" (and a log line) if it cannot be rendered, so the stream goes
    on (a failing stream would be reopened by the browser and fail the same way again). An
    event's timeline or feed item that cannot be rendered becomes a placeholder instead."""
    RENDERS[name] += 1
    env = request.app.template_engine.engine
    event = context.get("e")
    if name in _ITEMS and event is not None and len(context) <= 2:
        return render_item(env, name, _ITEMS[name], event, children=context.get("children", {}))
    try:
        return env.get_template(name).render(**context)
    except Exception as exc:  # noqa: BLE001 - any failure of one fragment
        log_error(f"live {request.url.path}: rendering {name}", exc)
        return ""


_ITEMS = {"partials/_feed_item.html": "f", "partials/_event.html": "e"}  # item id prefixes


def _shared_fragment(d: Delivery, request: Request, name: str, key: object, **context: Any) -> bytes:
    """A fragment's ``data:`` lines, rendered once per delivery and key."""
    return d.shared(("fragment", name, key), lambda: _data_lines(_fragment(request, name, **context)))


def _shared_message(d: Delivery, key: object, make: Callable[[], _Encoded]) -> _Encoded:
    return d.shared(("message", key), make)


# ---------------------------------------------------------------- what each stream selects


@dataclass(frozen=True, slots=True)
class _Everything:
    """The overview: every delivery, as it is."""

    needs_events: ClassVar[bool] = True

    def select(self, d: Delivery) -> list[Delivery]:
        return [d]


@dataclass(frozen=True, slots=True)
class _SessionPage:
    """A session page: deliveries that touched the session."""

    needs_events: ClassVar[bool] = True
    session_id: uuid.UUID

    def select(self, d: Delivery) -> list[Delivery]:
        return [d] if self.session_id in d.sessions else []


@dataclass(frozen=True, slots=True)
class _SessionRows:
    """A sessions list: the visible sessions a delivery touched."""

    needs_events: ClassVar[bool] = False
    ids: frozenset[uuid.UUID]

    def select(self, d: Delivery) -> list[tuple[Delivery, list[uuid.UUID]]]:
        touched = [sid for sid in d.sessions if sid in self.ids]
        return [(d, touched)] if touched else []


# ---------------------------------------------------------------- streams


def _last_id(request: Request) -> datetime | None:
    """Where a reconnecting stream resumes: the ingest time of the last message it got (its
    ``Last-Event-ID``), minus an overlap, since events ingested a moment before that message
    may commit later; the page drops what it already shows. Any other header value: none."""
    value = request.headers.get("last-event-id")
    try:
        since = aware(datetime.fromisoformat(value)) if value else None
    except ValueError:
        return None
    if since is None:
        return None
    try:
        return (since - RESUME_OVERLAP).astimezone(UTC)
    except OverflowError:  # at the start of time (what PostgreSQL can take): replay everything
        return datetime.min.replace(tzinfo=UTC)


async def _next(sub, timeout: float):  # noqa: ANN001, ANN202
    try:
        return await asyncio.wait_for(sub.get(), timeout)
    except TimeoutError:
        return None


def _feed_message(request: Request, ds: list[Delivery]) -> _Encoded:
    """The overview's feed items of one or more deliveries (a stream that fell behind sends
    what it holds at once): the newest ``FEED_MAX``, newest first (the feed swaps
    ``afterbegin``). One delivery: the same message for every stream."""
    def make(ds: list[Delivery] = ds) -> _Encoded:
        newest = []
        for d in reversed(ds):
            for e in reversed(d.events):
                newest.append((d, e))
                if len(newest) == FEED_MAX:
                    break
            if len(newest) == FEED_MAX:
                break
        data = b"".join(_shared_fragment(d, request, "partials/_feed_item.html", e.id, e=e)
                        for d, e in newest)
        return _message("event", data, ds[-1].events[-1].ingested_at.isoformat())
    return _shared_message(ds[0], "feed", make) if len(ds) == 1 else make()


@get("/live/overview", include_in_schema=False)
async def live_overview(request: Request) -> ServerSentEvent:
    bus = request.app.state.bus

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        last_stats = 0.0
        pending_stats = False
        with bus.subscribe(_Everything()) as sub:
            yield OPENED
            if _last_id(request) is not None:  # resuming: what may have been missed
                recent = await event_service.list_events(first=FEED_MAX)
                for e in reversed(recent.items):
                    yield ServerSentEventMessage(event="event", data=_fragment(
                        request, "partials/_feed_item.html", e=e))
                yield ServerSentEventMessage(event="stats", data="")
            while True:
                try:
                    d: Delivery | None = await _next(sub, STATS_EVERY if pending_stats else PING_SECONDS)
                except Closed as closed:
                    yield _closing(closed)
                    return
                if d is None:
                    if pending_stats:
                        pending_stats, last_stats = False, time.monotonic()
                        yield ServerSentEventMessage(event="stats", data="")
                    else:
                        yield PING
                    continue
                ds = [x for x in (d, *sub.take_ready()) if x.events]
                if not ds:
                    continue
                yield _feed_message(request, ds)
                if time.monotonic() - last_stats >= STATS_EVERY:
                    pending_stats, last_stats = False, time.monotonic()
                    at = ds[-1].events[-1].ingested_at.isoformat()
                    yield _shared_message(ds[-1], "stats", lambda at=at: _message("stats", b"data: \r\n", at))
                else:
                    pending_stats = True

    return ServerSentEvent(stream(), headers=HEADERS)


@get("/live/sessions/{session_id:uuid}", include_in_schema=False)
async def live_session(request: Request, session_id: FromPath[uuid.UUID]) -> ServerSentEvent:
    bus = request.app.state.bus

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        with bus.subscribe(_SessionPage(session_id)) as sub:
            yield OPENED
            since = _last_id(request)
            if since is not None:
                missed = await session_service.get_session(session_id)
                events = await event_service.session_events_ingested_after(session_id, since)
                if events and missed is not None:
                    yield _session_messages(request, events, missed, events[-1].ingested_at)
            while True:
                try:
                    d = await _next(sub, PING_SECONDS)
                except Closed as closed:
                    yield _closing(closed)
                    return
                if d is None:
                    yield PING
                    continue
                ds = [x for x in (d, *sub.take_ready()) if x.by_session.get(session_id)]
                if ds:
                    yield _session_update(request, ds, session_id)

    return ServerSentEvent(stream(), headers=HEADERS)


def _session_update(request: Request, ds: list[Delivery], session_id: uuid.UUID) -> _Encoded:
    """New timeline items of a session from one or more deliveries, in order, and its header
    (out of band) with the session's latest rollups. One delivery: the same message for every
    stream of that session page."""
    def make(ds: list[Delivery] = ds) -> _Encoded:
        last = ds[-1]
        header = _shared_fragment(last, request, "partials/_session_header.html", session_id,
                                  s=last.sessions[session_id], oob=True)
        items = b"".join(_shared_fragment(d, request, "partials/_event.html", e.id, e=e, children={})
                         for d in ds for e in d.by_session[session_id])
        return _message("event", header + items,
                        last.by_session[session_id][-1].ingested_at.isoformat())
    return _shared_message(ds[0], ("session", session_id), make) if len(ds) == 1 else make()


def _session_messages(request: Request, events, session, at: datetime) -> ServerSentEventMessage:  # noqa: ANN001
    """A resume's timeline items and header (rendered for this stream alone)."""
    html = "".join(_fragment(request, "partials/_event.html", e=e, children={}) for e in events)
    header = _fragment(request, "partials/_session_header.html", s=session, oob=True)
    return ServerSentEventMessage(event="event", id=at.isoformat(), data=header + html)


@get("/live/sessions", include_in_schema=False)
async def live_sessions(request: Request, ids: FromQuery[str] = "") -> ServerSentEvent:
    """Updates of the rows a sessions list shows (``?ids=`` the visible session ids)."""
    bus = request.app.state.bus
    wanted: set[uuid.UUID] = set()
    for part in ids.split(",")[:200]:
        try:
            wanted.add(uuid.UUID(part))
        except ValueError:
            continue

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        if not wanted:
            return
        with bus.subscribe(_SessionRows(frozenset(wanted))) as sub:
            yield OPENED
            while True:
                try:
                    item = await _next(sub, PING_SECONDS)
                except Closed as closed:
                    yield _closing(closed)
                    return
                if item is None:
                    yield PING
                    continue
                latest: dict[uuid.UUID, Delivery] = {}  # the newest state of each touched row
                for d, touched in (item, *sub.take_ready()):
                    for sid in touched:
                        latest.pop(sid, None)
                        latest[sid] = d
                # one message with each touched row (out of band), each row rendered once
                yield _message("session", b"".join(
                    _shared_fragment(d, request, "partials/_session_row.html", sid,
                                     s=d.sessions[sid], oob=True) for sid, d in latest.items()))

    return ServerSentEvent(stream(), headers=HEADERS)
