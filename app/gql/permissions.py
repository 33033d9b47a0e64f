"""Who may call what. The model (documented in README):

* Ingest (mutations) needs ``Authorization: Bearer <key>`` whenever an API key exists, and
  always when the server listens on a non-loopback address.
* Reads (queries, subscriptions) are open on loopback and need a key off loopback.
* WebSocket clients pass the key in the upgrade request's Authorization header or in the
  ``connection_init`` payload (``{"Authorization": "Bearer …"}``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from strawberry.permission import BasePermission

from app.gql.context import Info
from app.services import keys


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_token(info: Info) -> str | None:
    ctx = info.context
    header = None
    if ctx.request is not None:
        header = ctx.request.headers.get("authorization")
    elif ctx.websocket is not None:
        header = ctx.websocket.headers.get("authorization")
        params = ctx.connection_params or {}
        if not header and isinstance(params, dict):
            header = params.get("Authorization") or params.get("authorization")
            token = params.get("authToken")
            if not header and isinstance(token, str):
                return token
    if not isinstance(header, str):
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _authorised(info: Info, *, write: bool) -> bool:
    required = not is_loopback(info.context.settings.host) or (write and await keys.any_active())
    if not required:
        return True
    token = bearer_token(info)
    return bool(token) and await keys.verify(token)  # type: ignore[arg-type]


class CanIngest(BasePermission):
    message = ("ingest needs an API key: send 'Authorization: Bearer <key>' "
               "(create one with `devlog keys create NAME`)")

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return await _authorised(info, write=True)


class CanRead(BasePermission):
    message = ("reading needs an API key when the server listens beyond loopback: send "
               "'Authorization: Bearer <key>'")

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return await _authorised(info, write=False)
