"""The sign-in form's CSRF token (double submit).

``GET /login`` puts a random token in an HttpOnly, SameSite=Strict cookie scoped to ``/login``
and in the form; ``POST /login`` is accepted only when both are present and equal. A page on
another site can neither read the cookie nor make the browser send it (SameSite=Strict), so it
cannot build a valid form. This stands beside the cross-site check of the middleware
(``Sec-Fetch-Site`` / ``Origin``), for browsers that send neither header. The token needs no
server secret, so it works across replicas behind one name.
"""

from __future__ import annotations

import secrets

COOKIE = "devlog_login_csrf"
FIELD = "csrf"
MAX_AGE = 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def valid(cookie: str | None, submitted: object) -> bool:
    return (isinstance(cookie, str) and isinstance(submitted, str) and len(cookie) >= 32
            and secrets.compare_digest(cookie.encode(), submitted.encode()))
