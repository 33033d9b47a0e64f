"""The Litestar application factory.

``create_app(settings, database)`` with a resolved :class:`~app.lifespan.Database` (what
``devlog serve`` does after its pre-flight checks) only opens the pool in its lifespan. Without
one (``uvicorn --factory app.asgi:create_app``), the lifespan resolves the database itself:
starts the embedded cluster if needed, waits, migrates, then opens the pool.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import msgspec
from cross_web import HTTPException as GraphQLHTTPError  # what Strawberry raises for a bad request
from litestar import Litestar, Request, Response
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.logging import LoggingConfig
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from strawberry.http import GraphQLRequestData
from strawberry.litestar import make_graphql_controller

from app import lifespan
from app.access import routes as access_routes
from app.access.middleware import AccessMiddleware
from app.bus import Bus
from app.db import reads, watchdog
from app.errors import DatabaseUnavailable, ReadTimeout
from app.gql.context import get_context
from app.gql.schema import schema
from app.http_compression import RemoteOnlyCompression
from app.http_disconnect import CancelOnDisconnect
from app.http_errors import LogStreamErrors, internal_error, log_websocket_error
from app.http_limits import GzipRequestMiddleware
from app.http_turns import TakingTurns
from app.ingest import body as ingest_body
from app.live_pacing import RequestsInFlight
from app.jobs.scheduler import scheduler
from app.services import sessions
from app.settings import Settings, get_settings
from app.system import favicon, healthz, readyz
from app.turns import freeze_startup_heap
from ui import STATIC_DIR, TEMPLATES_DIR, pages
from ui.pages.read_timeout import too_slow

GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

_GraphQLBase = make_graphql_controller(
    schema, path="/graphql", context_getter=get_context, graphql_ide="graphiql",
    keep_alive=True, keep_alive_interval=15,
)


class GraphQLController(_GraphQLBase):  # type: ignore[misc, valid-type]
    """Strawberry's controller, with GraphiQL served from vendored files instead of a CDN,
    msgspec as the JSON codec (ingest batches are large), and request errors (HTTP 400) answered
    as GraphQL errors (``{"errors": [{"message": …}]}``) instead of plain text."""

    def decode_json(self, data: str | bytes) -> object:
        # ingestEvents: events typed in the same pass when all are valid; one event's odd value
        # never fails the body (app/ingest/body.py). Not JSON: json.JSONDecodeError.
        if isinstance(data, str):  # a GET's `variables`/`extensions`, a WebSocket message
            return ingest_body.decode(data)  # Strawberry: HTTP 400 / close 4400
        try:  # a POST body
            value = ingest_body.decode(data)
        except json.JSONDecodeError as exc:  # also bad UTF-8 outside an ingest body
            raise GraphQLHTTPError(400, f"the request body is not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict | list):
            # a list: Strawberry answers that batching is off
            raise GraphQLHTTPError(400, "the request body must be a JSON object such as "
                                        '{"query": "{ health { database } }"}, not '
                                        + _json_kind(value))
        return value

    def encode_json(self, data: object) -> bytes:
        return msgspec.json.encode(data)

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and not isinstance(data.operation_name, str | None):
            raise GraphQLHTTPError(400, "The GraphQL operation's `operationName` must be a "
                                        "string or null, if provided.")
        return data

    async def execute_request(self, request: Request[Any, Any, Any], context: Any,
                              root_value: Any) -> Response[Any]:
        try:
            return await self.run(request, context=context, root_value=root_value)
        except GraphQLHTTPError as exc:
            message = _CLEARER.get(exc.reason, exc.reason)
            if request.method == "GET" and exc.reason == _BAD_JSON:
                message = "the `variables` or `extensions` parameter is not valid JSON"
            return Response(self.encode_json({"errors": [{"message": message}]}),
                            status_code=exc.status_code, media_type="application/json")

    async def render_graphql_ide(self, request: Request[Any, Any, Any]) -> Response[str]:
        html = (TEMPLATES_DIR / "graphiql.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html",
                        headers={"Content-Security-Policy": GRAPHIQL_CSP})


def database_unavailable(request: Request[Any, Any, Any], exc: DatabaseUnavailable) -> Response:
    """HTTP 503 with the reason: a page with the error banner for a browser, else JSON."""
    if "text/html" in request.headers.get("accept", ""):
        from ui.pages.common import unavailable_page

        return unavailable_page(request, str(exc))
    return Response({"errors": [{"message": str(exc)}]}, status_code=503,
                    headers={"Retry-After": "2"})


_BAD_JSON = "Unable to parse request body as JSON"
_CLEARER = {  # Strawberry's request errors, said so that a client knows what to change
    "Unsupported content type": "unsupported content type: send the operation as JSON "
                                "(Content-Type: application/json), or as a GET with `query`",
    "Batching is not enabled": "send one operation per request (batching is not enabled)",
    "No GraphQL query found in the request": "no GraphQL query in the request: send "
                                             '{"query": "…"} (and optionally "variables")',
}


def _no_such_file(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A static file path with a NUL or a name too long for the file system is a 404; Litestar
    reports the OS error as HTTP 500."""
    if isinstance(exc, ValueError | OSError) or isinstance(exc.__cause__, OSError):
        return Response("not found", status_code=404, media_type="text/plain")
    return internal_error(request, exc)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string"}.get(type(value), "a number")


def create_app(settings: Settings | None = None,
               database: lifespan.Database | None = None) -> Litestar:
    settings = settings or get_settings()
    sessions.configure(idle_minutes=settings.session_idle_minutes)
    reads.configure(settings.read_timeout_seconds, pool_max=settings.db_pool_max)

    @contextlib.asynccontextmanager
    async def _lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db = database
            if db is None:
                db = await stack.enter_async_context(lifespan.database(settings))
                await lifespan.prepare(db, settings)
            app.state.embedded = db.embedded
            await stack.enter_async_context(lifespan.pool(db, settings))
            # reads fail fast while the database hangs; the embedded cluster is restarted
            app.state.watchdog = await stack.enter_async_context(watchdog.watching(
                db.url, interval=0.25, timeout=settings.db_hang_timeout, cluster=db.cluster))
            # after the pool: the bus loads announced rows through it
            app.state.bus = await stack.enter_async_context(
                Bus(db.url, queue_size=settings.subscriber_queue))
            app.state.scheduler = await stack.enter_async_context(scheduler(settings))
            app.state.watchdog.on_new_url.append(lambda url: setattr(app.state.bus, "url", url))
            freeze_startup_heap()  # short garbage-collector pauses from here on (app/turns.py)
            yield

    app = Litestar(
        route_handlers=[
            GraphQLController,
            healthz,
            readyz,
            favicon,
            create_static_files_router(path="/static", directories=[STATIC_DIR],
                                       include_in_schema=False,
                                       # a NUL or a too long name in the path: no such file
                                       exception_handlers={ValueError: _no_such_file,
                                                           OSError: _no_such_file,
                                                           HTTP_500_INTERNAL_SERVER_ERROR: _no_such_file}),
            *pages.routes(),
        ],
        template_config=pages.template_config(),
        lifespan=[_lifespan],
        state=State({"settings": settings, "embedded": database.embedded if database else False}),
        # gzip for remote clients only, at level 1, never for live streams (app/http_compression.py)
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024, gzip_compress_level=1,
                                             middleware_class=RemoteOnlyCompression),
        # CancelOnDisconnect first (outermost): it owns receive() to see a client leave.
        # TakingTurns: requests waiting for an answer are counted, big answers sent in pieces.
        middleware=[CancelOnDisconnect, TakingTurns, LogStreamErrors,
                    RequestsInFlight,  # live delivery yields to requests (app/live_pacing.py)
                    partial(GzipRequestMiddleware, max_body_bytes=settings.max_body_bytes)],
        request_max_body_size=settings.max_body_bytes,
        # an unhandled exception: one log line with the path, a 500 without internals
        exception_handlers={HTTP_500_INTERNAL_SERVER_ERROR: internal_error,
                            DatabaseUnavailable: database_unavailable, ReadTimeout: too_slow},
        after_exception=[log_websocket_error],
        logging_config=LoggingConfig(configure_root_logger=False, disable_stack_trace={404}),
        guards=[access_routes.guard],  # every route: READ unless app/access/routes.py says
        openapi_config=None,
        debug=False,
    )
    # Before routing, for every HTTP request, SSE stream and WebSocket: Host allow-list,
    # cross-site refusal, revoked keys' connections closed (app/access/middleware.py).
    app.asgi_handler = AccessMiddleware(app.asgi_handler, settings)
    return app
