"""Signing in to the dashboard. Who may read a page is decided by the access policy
(``app/access``): on a loopback address (the default, ``127.0.0.1``) pages are open, like
GraphQL reads; when the server listens beyond loopback, every page and live stream needs an API
key. ``/login`` takes one (``devlog keys create NAME``), checks it, and keeps it in an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS); ``POST /logout`` forgets it. A request may also send
``Authorization: Bearer``. The sign-in form carries a CSRF token (``app/access/csrf.py``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from app.access import csrf
from app.access.credentials import COOKIE
from app.services import keys
from ui.pages.common import SECURITY_HEADERS, render


def login_redirect(request: Request, exc: Exception) -> Response:
    """A page asked for without a valid key: to the sign-in form (live streams: 401)."""
    if request.url.path.startswith("/live/") or request.method not in ("GET", "HEAD"):
        return Response("an API key is needed", status_code=401, media_type="text/plain",
                        headers=SECURITY_HEADERS)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target)}", status_code=303)


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/"


def _form(request: Request, next: str, error: str | None, status_code: int = 200) -> Template:
    """The sign-in form, with a fresh CSRF token in the form and in its cookie."""
    token = csrf.new_token()
    page = render("login.html", next=next, error=error, csrf_field=csrf.FIELD, csrf_token=token)
    page.status_code = status_code
    page.set_cookie(csrf.COOKIE, token, httponly=True, samesite="strict", path="/login",
                    secure=request.url.scheme == "https", max_age=csrf.MAX_AGE)
    return page


@get("/login", include_in_schema=False)
async def login_form(request: Request, next: FromQuery[str] = "/") -> Template:
    return _form(request, _safe_next(next), None)


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Request, data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
                ) -> Response:
    target = _safe_next(str(data.get("next", "/")))
    if not csrf.valid(request.cookies.get(csrf.COOKIE), data.get(csrf.FIELD)):
        return _form(request, target, "The sign-in form expired (or was not sent from this "
                     "server's page): try again.", status_code=403)
    key = str(data.get("key", "")).strip()
    if not key or not await keys.verify(key):
        return _form(request, target, "That key is not valid (or was revoked).")
    response = Redirect(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    response.delete_cookie(csrf.COOKIE, path="/login")
    return response


@post("/logout", include_in_schema=False, status_code=303)
async def logout() -> Response:
    response = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
