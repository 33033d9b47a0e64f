"""What a page shows when one of its reads ran past ``DEVLOG_READ_TIMEOUT_SECONDS``: HTTP 503
with the reason, instead of a 500."""

from __future__ import annotations

from litestar import Request
from litestar.response import Template

from app import __version__
from app.errors import ReadTimeout
from ui.pages.common import SECURITY_HEADERS


def too_slow(request: Request, exc: ReadTimeout) -> Template:
    return Template(template_name="too_slow.html",
                    context={"message": str(exc), "version": __version__, "nav": "",
                             "back": request.url.path},
                    headers=SECURITY_HEADERS, status_code=503)
