"""Cross-site requests: what a page on another site may not make a browser do here.

A state-changing request (any method but GET, HEAD, OPTIONS: GraphQL mutations, ``/login``,
``/logout``) and every WebSocket handshake are refused when the browser says they come from
another site. Browsers say so in ``Sec-Fetch-Site`` (sent by every current browser): only
``same-origin`` and ``none`` (the user typed or bookmarked it) pass. Without it, ``Origin`` must
name the host the request was sent to. With neither header the client is not a browser (the
collector, curl, scripts), which carries no ambient credentials a page could abuse, and passes.
(The same rule as Go's ``http.CrossOriginProtection``.) Reading responses across sites is the
browser's same-origin policy's job: devlog sends no CORS headers.
"""

from __future__ import annotations

from strawberry.http.websocket_origin import is_same_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site(headers: dict[bytes, bytes]) -> bool:
    """Whether a request carrying these headers comes from a page on another site."""
    fetch_site = headers.get(b"sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.decode("latin-1").strip().lower() not in ("same-origin", "none")
    origin = headers.get(b"origin")
    if origin is None:
        return False
    host = headers.get(b"host")
    return not is_same_origin(origin.decode("latin-1"), host.decode("latin-1") if host else None)
