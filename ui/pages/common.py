"""What every dashboard page shares: rendering, fragments for htmx, the viewer's time zone,
the security headers."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, Response
from litestar.response import Template

from app import __version__

# No inline script or style anywhere; htmx reads its config from a <meta> tag.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(name: str, **context: Any) -> Template:
    context.setdefault("version", __version__)
    context.setdefault("nav", "")
    return Template(template_name=name, context=context, headers=SECURITY_HEADERS)


def wants_fragment(request: Request, target: str) -> bool:
    """An htmx request aimed at one part of the page (not a boosted navigation)."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-boosted") != "true"
            and request.headers.get("hx-target") == target)


def time_zone(request: Request) -> str:
    tz = request.cookies.get("tz") or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        return "UTC"
    return tz


def bad_request(request: Request, message: str, target: str) -> Template:
    """A readable HTTP 400: the whole page, or just the message for an htmx request aimed at
    ``target`` (htmx swaps 400 responses: see base.html's htmx-config)."""
    fragment = wants_fragment(request, target)
    return Template(template_name="partials/_bad_request.html" if fragment else "bad_request.html",
                    context={"message": message, "version": __version__, "nav": "",
                             "back": request.url.path},
                    headers=SECURITY_HEADERS, status_code=400)


def unavailable_page(request: Request, message: str) -> Template:
    """HTTP 503 while the database is down: the page's frame with an error banner, or the
    banner alone for an htmx request (it swaps it in place of the part it asked for)."""
    fragment = request.headers.get("hx-request") == "true"
    return Template(template_name="partials/_unavailable.html" if fragment else "unavailable.html",
                    context={"message": message, "version": __version__, "nav": "",
                             "back": request.url.path},
                    headers={**SECURITY_HEADERS, "Retry-After": "2"}, status_code=503)


def not_found(what: str) -> Response:
    return Response(content=f"{what} not found", status_code=404, media_type="text/plain",
                    headers=SECURITY_HEADERS)
