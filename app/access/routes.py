"""The access policy of HTTP routes and WebSocket endpoints.

One guard for the whole Litestar app (``Litestar(guards=[guard])``): every route is READ unless
this table says otherwise, so a new page or endpoint is protected the day it is added. OTLP and
other receivers of events belong here as INGEST.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from app.access import connection, credentials, policy
from app.access.principal import Action

GRAPHQL = "graphql"  # each root field of the operation decides (app/access/graphql.py)

ROUTES: dict[str, Action | str] = {
    "/healthz": Action.OPEN,
    "/readyz": Action.OPEN,
    "/favicon.ico": Action.OPEN,
    "/static/{file_path}": Action.OPEN,  # the dashboard's CSS, scripts, icons: no data
    "/login": Action.OPEN,
    "/logout": Action.OPEN,
    "/graphql": GRAPHQL,  # also GraphiQL's page, which holds no data either
}
DEFAULT = Action.READ


class RouteDenied(NotAuthorizedException):
    """HTTP 401 (the dashboard's pages turn it into a redirect to /login)."""


def action_of(path_template: str) -> Action | str:
    return ROUTES.get(path_template, DEFAULT)


async def principal_of(conn: ASGIConnection):  # noqa: ANN201 - app.access.Principal
    """The caller of a request or WebSocket: its Bearer header, else the sign-in cookie."""
    token = credentials.from_headers(conn.headers, conn.cookies)
    return await connection.of(conn.scope).principal(conn.app.state.settings, token)


async def guard(conn: ASGIConnection, _handler: BaseRouteHandler) -> None:
    action = action_of(conn.scope.get("path_template", conn.scope["path"]))
    if action == GRAPHQL or action is Action.OPEN:
        return
    try:
        policy.authorise(await principal_of(conn), action)  # type: ignore[arg-type]
    except policy.AccessDenied as exc:
        raise RouteDenied(str(exc)) from None
