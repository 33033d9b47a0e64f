"""What the access layer keeps for one ASGI connection (an HTTP request or a WebSocket): the
principal resolved for it, and whether its key has been revoked since."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from app.access import policy, revocation
from app.access.principal import Principal
from app.settings import Settings

SCOPE_KEY = "devlog.access"


class ConnectionAccess:
    __slots__ = ("_cache", "_keys", "_watch", "revoked")

    def __init__(self, *, watch: bool) -> None:
        self._watch = watch  # only the middleware's records: it ends the connection on revocation
        self._cache: tuple[str | None, Principal] | None = None
        self._keys: set = set()
        self.revoked: asyncio.Event | None = None  # created when a key is watched

    async def principal(self, settings: Settings, token: str | None) -> Principal:
        if self._cache is not None and self._cache[0] == token:
            return self._cache[1]
        principal = await policy.resolve(settings, token)
        self._cache = (token, principal)
        if self._watch and principal.key is not None and principal.key.id not in self._keys:
            if self.revoked is None:
                self.revoked = asyncio.Event()
            self._keys.add(principal.key.id)
            revocation.watch(principal.key.id, self)
        return principal

    def revoke(self) -> None:
        """A key this connection authenticated with was revoked: end the connection."""
        self._cache = None
        if self.revoked is not None:
            self.revoked.set()

    def close(self) -> None:
        for key_id in self._keys:
            revocation.unwatch(key_id, self)
        self._keys.clear()


def of(scope: MutableMapping[str, Any]) -> ConnectionAccess:
    """The connection's access record (set by the middleware; an unwatched one when absent)."""
    conn = scope.get(SCOPE_KEY)
    if conn is None:
        conn = scope[SCOPE_KEY] = ConnectionAccess(watch=False)
    return conn
