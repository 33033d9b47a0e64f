"""The access rule, written once: who may do what, used by GraphQL, pages, live streams and any
future endpoint.

* Reads (queries, subscriptions, pages, SSE, the CSV export) are open to anonymous callers when
  the server listens on loopback only, and need an API key otherwise.
* Ingest needs a key whenever an active key exists, and always off loopback.
* ``health`` (and static files, probes, the sign-in form) answer everyone who reaches the
  server — after the Host allow-list and the cross-site checks (``app/access/middleware.py``).
"""

from __future__ import annotations

import ipaddress

from app.access.principal import Action, KeyRef, Principal
from app.services import keys
from app.settings import Settings

KEY_HINT = "send 'Authorization: Bearer <key>' (create one with `devlog keys create NAME`)"


class AccessDenied(Exception):
    """The principal may not do this; the message says what to send."""


def is_loopback(host: str) -> bool:
    """Whether a listen address is loopback only (``0.0.0.0`` and ``::`` are not)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def resolve(settings: Settings, token: str | None) -> Principal:
    """The principal of a caller that presented ``token`` (or nothing)."""
    loopback = is_loopback(settings.host)
    if token:
        found = await keys.identify(token)
        if found is not None:
            return Principal(key=KeyRef(found.id, found.name), loopback=loopback, keys_exist=True)
    keys_exist = await keys.any_active() if loopback else True
    return Principal(key=None, loopback=loopback, keys_exist=keys_exist, bad_key=bool(token))


def authorise(principal: Principal, action: Action | None) -> None:
    """Raise AccessDenied unless the principal may do ``action``. ``None`` (something the policy
    does not cover) is always refused."""
    if action is not None and principal.may(action):
        return
    if action is None:
        raise AccessDenied("this operation is not covered by the access policy (app/access): "
                           "refused")
    bad = " (the key sent is not valid, or was revoked)" if principal.bad_key else ""
    if action is Action.INGEST:
        raise AccessDenied(f"ingest needs an API key{bad}: {KEY_HINT}")
    raise AccessDenied(f"reading needs an API key when the server listens beyond loopback{bad}: "
                       f"{KEY_HINT}")
