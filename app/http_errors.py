"""What the server does with an error nobody handled: one log line, a plain answer.

Every unhandled exception of a request (a page, GraphQL, a probe, the CSV export) is logged as
one line at ERROR — method, path, a short reference and the exception — and its traceback at
DEBUG under the same reference (``devlog serve --log-level debug``). The client gets HTTP 500
with that reference and nothing else: no exception text, paths or driver state. An exception
after a streamed response has started (a live stream, a download) cannot change the response
any more; it is logged the same way and the connection is closed. WebSocket errors are logged
too.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from litestar import Request, Response
from litestar.exceptions import LitestarException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("devlog.http")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devlog: internal error</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><main><div class="panel empty" role="alert"><h1>Something went wrong</h1>
<p>The server could not show this page. The error is in the server's log under the
reference <code>{ref}</code>.</p><p><a href="/">Back to the overview</a></p></div></main></body></html>
"""


def reference() -> str:
    """A short id that ties what a client was told to the server's log line."""
    return secrets.token_hex(4)


def printable(text: str, limit: int = 500) -> str:
    """Text for one log line: control characters escaped (a request path with ``%0a`` cannot
    forge a second line), bounded."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line, bounded."""
    text = " ".join(str(exc).split())
    return printable(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, limit)


def log_error(where: str, exc: BaseException, ref: str | None = None) -> str:
    """Log one line about ``exc`` (and its traceback at DEBUG); return its reference."""
    ref = ref or reference()
    log.error("%s failed [%s]: %s", printable(where, 300), ref, describe(exc))
    log.debug("traceback of [%s]", ref, exc_info=exc)
    return ref


def _where(scope: Scope) -> str:
    method = scope.get("method") or scope.get("type", "").upper()
    return f"{method} {scope.get('path', '?')}"


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's handler for HTTP 500: the log line, then an answer without internals."""
    from ui.pages.common import SECURITY_HEADERS

    ref = log_error(_where(request.scope), exc)
    message = f"internal server error (reference {ref}; the details are in the server's log)"
    if request.url.path.startswith("/graphql"):
        return Response({"errors": [{"message": message}]}, status_code=500)
    if "text/html" in request.headers.get("accept", ""):
        return Response(_PAGE.format(ref=ref), status_code=500, media_type="text/html",
                        headers=SECURITY_HEADERS)
    return Response({"status_code": 500, "detail": message}, status_code=500)


async def log_websocket_error(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: HTTP errors are logged by :func:`internal_error`; a WebSocket
    has no such handler."""
    if scope.get("type") == "websocket":
        log_error(_where(scope), exc)


class LogStreamErrors:
    """ASGI middleware: an exception raised after the response started (Litestar's exception
    handlers can no longer answer) is logged as one line, then re-raised so the server closes
    the connection and the client sees an incomplete response, not a complete-looking one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                log_error(_where(scope) + " (after the response started)", _unwrap(exc))
            raise


def _unwrap(exc: BaseException) -> BaseException:
    """The exception itself, not Litestar's "Exception caught after response started" nor the
    task group of a streamed body around it."""
    while True:
        if isinstance(exc, LitestarException) and exc.__cause__ is not None:
            exc = exc.__cause__
        elif isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        else:
            return exc
