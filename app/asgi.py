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
from litestar import Litestar, Request, Response
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.logging import LoggingConfig
from litestar.static_files import create_static_files_router
from strawberry.litestar import make_graphql_controller

from app import lifespan
from app.bus import Bus
from app.gql.context import get_context
from app.gql.schema import schema
from app.http_limits import GzipRequestMiddleware
from app.ingest.batch import decode_request
from app.live_pacing import RequestsInFlight
from app.jobs.scheduler import scheduler
from app.services import sessions
from app.settings import Settings, get_settings
from app.system import favicon, healthz, readyz
from ui import STATIC_DIR, TEMPLATES_DIR, pages

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
    """Strawberry's controller, with GraphiQL served from vendored files instead of a CDN and
    msgspec as the JSON codec (ingest batches are large)."""

    def decode_json(self, data: str | bytes) -> object:
        if isinstance(data, bytes):  # ingestEvents: events typed in the same pass, if all valid
            request = decode_request(data)
            if request is not None:
                return request
        try:
            return msgspec.json.decode(data)
        except ValueError as exc:  # also bad UTF-8; Strawberry turns this one into HTTP 400
            raise json.JSONDecodeError(str(exc), "", 0) from None

    def encode_json(self, data: object) -> bytes:
        return msgspec.json.encode(data)

    async def render_graphql_ide(self, request: Request[Any, Any, Any]) -> Response[str]:
        html = (TEMPLATES_DIR / "graphiql.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html",
                        headers={"Content-Security-Policy": GRAPHIQL_CSP})


def create_app(settings: Settings | None = None,
               database: lifespan.Database | None = None) -> Litestar:
    settings = settings or get_settings()
    sessions.configure(idle_minutes=settings.session_idle_minutes)

    @contextlib.asynccontextmanager
    async def _lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db = database
            if db is None:
                db = await stack.enter_async_context(lifespan.database(settings))
                await lifespan.prepare(db, settings)
            app.state.embedded = db.embedded
            await stack.enter_async_context(lifespan.pool(db, settings))
            # after the pool: the bus loads announced rows through it
            app.state.bus = await stack.enter_async_context(
                Bus(db.url, queue_size=settings.subscriber_queue))
            app.state.scheduler = await stack.enter_async_context(scheduler(settings))
            yield

    return Litestar(
        route_handlers=[
            GraphQLController,
            healthz,
            readyz,
            favicon,
            create_static_files_router(path="/static", directories=[STATIC_DIR],
                                       include_in_schema=False),
            *pages.routes(),
        ],
        template_config=pages.template_config(),
        lifespan=[_lifespan],
        state=State({"settings": settings, "embedded": database.embedded if database else False}),
        # live streams (SSE) uncompressed: they write the same bytes to many streams
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024, exclude="^/live/"),
        middleware=[RequestsInFlight,  # live delivery yields to requests (app/live_pacing.py)
                    partial(GzipRequestMiddleware, max_body_bytes=settings.max_body_bytes)],
        request_max_body_size=settings.max_body_bytes,
        logging_config=LoggingConfig(configure_root_logger=False, disable_stack_trace={404}),
        openapi_config=None,
        debug=False,
    )
