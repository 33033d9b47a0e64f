"""Live streams opened with an API key end within seconds of the key's revocation.

A request or WebSocket connection that authenticated with a key registers its
:class:`~app.access.connection.ConnectionAccess` here while it lives. While anything is
registered, one task per process asks the database every ``CHECK_SECONDS`` which of the watched
keys are revoked (one small query, however many streams are open; revocation may come from
another process: `devlog keys revoke`) and ends their connections: the ASGI middleware then
tells the application the client went away and closes the stream (SSE: the response ends;
WebSocket: close code 4403).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from app.services import keys

if TYPE_CHECKING:
    from app.access.connection import ConnectionAccess

log = logging.getLogger("devlog.access")

CHECK_SECONDS = 2.0

_watched: dict[uuid.UUID, set[ConnectionAccess]] = {}
_task: asyncio.Task | None = None


def watch(key_id: uuid.UUID, conn: ConnectionAccess) -> None:
    global _task
    _watched.setdefault(key_id, set()).add(conn)
    if _task is None or _task.done() or _task.get_loop() is not asyncio.get_running_loop():
        _task = asyncio.get_running_loop().create_task(_check_forever(), name="key-revocations")


def unwatch(key_id: uuid.UUID, conn: ConnectionAccess) -> None:
    conns = _watched.get(key_id)
    if conns is not None:
        conns.discard(conn)
        if not conns:
            del _watched[key_id]


def watched() -> int:
    """How many connections are watched (for tests)."""
    return sum(len(c) for c in _watched.values())


async def _check_forever() -> None:
    while _watched:
        await asyncio.sleep(CHECK_SECONDS)
        if not _watched:
            break
        try:
            revoked = await keys.revoked_among(list(_watched))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may be away; check again later
            log.warning("cannot check for revoked API keys (%s); checking again in %.0fs",
                        exc, CHECK_SECONDS)
            continue
        for key_id in revoked:
            for conn in _watched.pop(key_id, ()):
                conn.revoke()
