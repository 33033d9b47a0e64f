"""Where a caller's API key is read from: the ``Authorization: Bearer`` header (every client),
the dashboard's cookie (pages and live streams), or a WebSocket's ``connection_init`` payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COOKIE = "devlog_key"  # set by /login: HttpOnly, SameSite=Strict


def bearer(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def from_headers(headers: Mapping[str, str],
                 cookies: Mapping[str, str] | None = None) -> str | None:
    """The header's key, else (pages only: pass ``cookies``) the sign-in cookie's."""
    token = bearer(headers.get("authorization"))
    if token is None and cookies is not None:
        token = cookies.get(COOKIE) or None
    return token


def from_connection_params(params: Any) -> str | None:
    """``{"Authorization": "Bearer …"}`` (or ``authorization``, or ``{"authToken": "…"}``)."""
    if not isinstance(params, dict):
        return None
    token = bearer(params.get("Authorization") or params.get("authorization"))
    if token is None and isinstance(params.get("authToken"), str) and params["authToken"].strip():
        token = params["authToken"].strip()
    return token
