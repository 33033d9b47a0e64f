"""Who may read the dashboard: the same model as the GraphQL API.

On a loopback address (the default, ``127.0.0.1``) pages are open, like GraphQL reads. When the
server listens beyond loopback, every page and live stream needs an API key: ``/login`` takes
one (``devlog keys create NAME``), checks it, and keeps it in an HttpOnly, SameSite=Strict cookie
(Secure over HTTPS); ``/logout`` forgets it. A request may also send ``Authorization: Bearer``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from app.gql.permissions import is_loopback
from app.services import keys
from ui.pages.common import SECURITY_HEADERS, render

COOKIE = "devlog_key"


class LoginRequired(NotAuthorizedException):
    pass


async def require_reader(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    settings = connection.app.state.settings
    if is_loopback(settings.host):
        return
    token = connection.cookies.get(COOKIE)
    header = connection.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    if token and await keys.verify(token):
        return
    raise LoginRequired("an API key is needed to read this server")


def login_redirect(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/live/"):
        return Response("an API key is needed", status_code=401, media_type="text/plain")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}", status_code=303)


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/"


@get("/login", include_in_schema=False)
async def login_form(next: FromQuery[str] = "/") -> Template:
    return render("login.html", next=_safe_next(next), error=None)


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Request, data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
                ) -> Response:
    key = str(data.get("key", "")).strip()
    target = _safe_next(str(data.get("next", "/")))
    if not key or not await keys.verify(key):
        return render("login.html", next=target, error="That key is not valid (or was revoked).")
    response = Redirect(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    return response


@get("/logout", include_in_schema=False)
async def logout() -> Response:
    response = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
