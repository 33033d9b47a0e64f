"""Server-sent events: rendered fragments for live pages, fed by the same LISTEN/NOTIFY bus as
the GraphQL subscriptions (so they work across server processes).

Each stream sends only what its page shows: the overview everything (its feed and a throttled
``stats`` nudge that makes the cards reload), a session page that session's events and header,
the sessions list the rows it displays. Message ids are the ingest time of the batch; a browser
that reconnects sends it back (``Last-Event-ID``) and gets what it missed. Fragments carry their
element ids, and app.js keeps one element per id, so the overlap of a resume shows nothing twice. A subscriber that falls behind is closed by the bus; the browser reconnects and resumes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.bus import Delivery, Overflow
from app.http_errors import log_error
from app.services import events as event_service
from app.services import sessions as session_service
from ui.render import aware, render_item

PING_SECONDS = 15.0
STATS_EVERY = 2.0
FEED_MAX = 30
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _fragment(request: Request, name: str, **context) -> str:
    """A rendered fragment; "" (and a log line) if it cannot be rendered, so the stream goes
    on (a failing stream would be reopened by the browser and fail the same way again)."""
    try:
        return request.app.template_engine.engine.get_template(name).render(**context)
    except Exception as exc:  # noqa: BLE001 - any failure of one fragment
        log_error(f"live {request.url.path}: rendering {name}", exc)
        return ""


def _event_item(request: Request, name: str, prefix: str, e) -> str:
    """One event as a timeline or feed item (a placeholder if it cannot be rendered)."""
    return render_item(request.app.template_engine.engine, name, prefix, e, children={})


RESUME_OVERLAP = timedelta(seconds=10)


def _last_id(request: Request) -> datetime | None:
    """Where a reconnecting browser stopped, minus an overlap: a transaction that began earlier
    may commit later; the page drops what it already shows."""
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


async def _next(sub, timeout: float):
    try:
        return await asyncio.wait_for(sub.get(), timeout)
    except TimeoutError:
        return None


@get("/live/overview", include_in_schema=False)
async def live_overview(request: Request) -> ServerSentEvent:
    bus = request.app.state.bus

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        last_stats = 0.0
        pending_stats = False
        with bus.subscribe(lambda d: [d]) as sub:
            if _last_id(request) is not None:  # resuming: what may have been missed
                recent = await event_service.list_events(first=FEED_MAX)
                for e in reversed(recent.items):
                    yield ServerSentEventMessage(event="event", data=_event_item(
                        request, "partials/_feed_item.html", "f", e))
                yield ServerSentEventMessage(event="stats", data="")
            while True:
                try:
                    item: Delivery | None = await _next(sub, STATS_EVERY if pending_stats else PING_SECONDS)
                except Overflow:
                    return
                if item is None:
                    if pending_stats:
                        pending_stats, last_stats = False, time.monotonic()
                        yield ServerSentEventMessage(event="stats", data="")
                    else:
                        yield ServerSentEventMessage(comment="ping")
                    continue
                at = item.events[-1].ingested_at.isoformat() if item.events else None
                for e in item.events[-FEED_MAX:]:
                    yield ServerSentEventMessage(event="event", id=at, data=_event_item(
                        request, "partials/_feed_item.html", "f", e))
                if time.monotonic() - last_stats >= STATS_EVERY:
                    pending_stats, last_stats = False, time.monotonic()
                    yield ServerSentEventMessage(event="stats", data="", id=at)
                else:
                    pending_stats = True

    return ServerSentEvent(stream(), headers=HEADERS)


@get("/live/sessions/{session_id:uuid}", include_in_schema=False)
async def live_session(request: Request, session_id: FromPath[uuid.UUID]) -> ServerSentEvent:
    bus = request.app.state.bus

    def accepts(d: Delivery) -> list:
        if session_id not in d.sessions:
            return []
        return [([e for e in d.events if e.session_id == session_id], d.sessions[session_id])]

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        with bus.subscribe(accepts) as sub:
            since = _last_id(request)
            if since is not None:
                missed = await session_service.get_session(session_id)
                events = await event_service.session_events_ingested_after(session_id, since)
                if events and missed is not None:
                    yield _session_messages(request, events, missed, events[-1].ingested_at)
            while True:
                try:
                    item = await _next(sub, PING_SECONDS)
                except Overflow:
                    return
                if item is None:
                    yield ServerSentEventMessage(comment="ping")
                    continue
                events, session = item
                if events:
                    yield _session_messages(request, events, session, events[-1].ingested_at)

    return ServerSentEvent(stream(), headers=HEADERS)


def _session_messages(request: Request, events, session, at: datetime) -> ServerSentEventMessage:
    """New timeline items, and the header (out of band) with the session's new rollups."""
    html = "".join(_event_item(request, "partials/_event.html", "e", e) for e in events)
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

    def accepts(d: Delivery) -> list:
        return [s for sid, s in d.sessions.items() if sid in wanted]

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        if not wanted:
            return
        with bus.subscribe(accepts) as sub:
            while True:
                try:
                    s = await _next(sub, PING_SECONDS)
                except Overflow:
                    return
                if s is None:
                    yield ServerSentEventMessage(comment="ping")
                    continue
                row = _fragment(request, "partials/_session_row.html", s=s, oob=True)
                if row:
                    yield ServerSentEventMessage(event="session", data=row)

    return ServerSentEvent(stream(), headers=HEADERS)
