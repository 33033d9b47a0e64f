"""The ASGI layer in front of routing: Host allow-list, cross-site refusal, and the end of
connections whose API key was revoked. It wraps Litestar's router (``app.asgi_handler``), so it
runs for every HTTP request, SSE stream and WebSocket, including paths no route matches."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.access import hosts, origin
from app.access.connection import SCOPE_KEY, ConnectionAccess
from app.settings import Settings

MISDIRECTED = (
    "devlog does not answer to the host name {name!r}: it refuses names it was not told about, "
    "so that a web page cannot reach it by rebinding its own name (DNS rebinding). To reach this "
    "server by that name, add it to DEVLOG_ALLOWED_HOSTS."
)
CROSS_SITE = (
    "devlog refuses this request: it comes from a page on another site (Origin / Sec-Fetch-Site)."
)
REVOKED_CLOSE_CODE = 4403  # graphql-transport-ws's "Forbidden"


class AccessMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = hosts.policy_for(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host")
        host_text = host.decode("latin-1") if host is not None else None
        if not self.hosts.allows(host_text):
            name = hosts.hostname(host_text or "")
            await _refuse(scope, send, 421, MISDIRECTED.format(name=name))
            return
        if (kind == "websocket" or scope["method"] not in origin.SAFE_METHODS) \
                and origin.cross_site(headers):
            await _refuse(scope, send, 403, CROSS_SITE)
            return
        # The application may start waiting for its next message before the connection
        # authenticates: a WebSocket (connection_init, then an operation's task), and an HTTP
        # GET whose disconnect is watched from the start (app/http_disconnect.py runs inside,
        # before the route's guard). Their revocation event exists from the start, so that wait
        # can be interrupted. (A POST's body is read before it authenticates; its answer is
        # short: no stream to end.)
        conn = ConnectionAccess(watch=True)
        if kind == "websocket" or scope.get("method") == "GET":
            conn.revoked = asyncio.Event()
        scope[SCOPE_KEY] = conn  # type: ignore[literal-required]
        try:
            await self.app(scope, _receive_until_revoked(conn, receive, kind), send)
            if conn.revoked is not None and conn.revoked.is_set():
                await _finish(kind, send)
        finally:
            conn.close()


def _receive_until_revoked(conn: ConnectionAccess, receive: Receive, kind: str) -> Receive:
    """``receive``, except that once the connection's key is revoked the application hears that
    the client went away (its streams end; Litestar, Strawberry clean up as usual)."""
    gone: Message = ({"type": "http.disconnect"} if kind == "http"
                     else {"type": "websocket.disconnect", "code": REVOKED_CLOSE_CODE})

    async def guarded() -> Message:
        revoked = conn.revoked
        if revoked is None:  # no key watched (yet): nothing to race
            return await receive()
        if revoked.is_set():
            return gone
        incoming = asyncio.ensure_future(receive())
        waiter = asyncio.ensure_future(revoked.wait())
        try:
            await asyncio.wait((incoming, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if incoming.done():
            return incoming.result()
        incoming.cancel()
        return gone

    return guarded


async def _finish(kind: str, send: Send) -> None:
    """Close what the application left open when it stopped for a revoked key (the server
    refuses the message, harmlessly, when the application closed it already)."""
    try:
        if kind == "websocket":
            await send({"type": "websocket.close", "code": REVOKED_CLOSE_CODE,
                        "reason": "the API key was revoked"})
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception:  # noqa: BLE001, S110 - closed already, or the client is gone
        pass


async def _refuse(scope: Scope, send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    start: dict[str, Any] = {
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"connection", b"close")],
    }
    if scope["type"] == "http":
        await send({"type": "http.response.start", **start})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", **start})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # a server without the extension answers a refused handshake with 403
        await send({"type": "websocket.close", "code": 1008})
