"""API keys: created once (the secret is shown once), stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import datetime

import msgspec

from app.db.ddl import fetch

KEY_PREFIX = "dlk_"
_CACHE_TTL_S = 5.0
_active_cache: tuple[float, bool] | None = None


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _forget_cache() -> None:
    global _active_cache
    _active_cache = None


async def create(name: str) -> tuple[KeyRecord, str]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    rows = await fetch(
        """INSERT INTO api_key (id, name, prefix, secret_hash) VALUES ($1, $2, $3, $4)
           RETURNING id, name, prefix, created_at, last_used_at, revoked_at""",
        uuid.uuid4(), name, secret[:12], _hash(secret))
    _forget_cache()
    return msgspec.convert(dict(rows[0]), KeyRecord), secret


async def list_keys() -> list[KeyRecord]:
    rows = await fetch("""SELECT id, name, prefix, created_at, last_used_at, revoked_at
                          FROM api_key ORDER BY created_at""")
    return [msgspec.convert(dict(r), KeyRecord) for r in rows]


async def revoke(name_or_prefix: str) -> list[KeyRecord]:
    """Revoke the active keys whose name or prefix (or id) matches; returns them."""
    rows = await fetch(
        """UPDATE api_key SET revoked_at = now()
           WHERE revoked_at IS NULL AND (name = $1 OR prefix = $1 OR id::text = $1)
           RETURNING id, name, prefix, created_at, last_used_at, revoked_at""", name_or_prefix)
    _forget_cache()
    return [msgspec.convert(dict(r), KeyRecord) for r in rows]


async def any_active() -> bool:
    """Whether any unrevoked key exists (cached for a few seconds)."""
    global _active_cache
    now = time.monotonic()
    if _active_cache and now - _active_cache[0] < _CACHE_TTL_S:
        return _active_cache[1]
    rows = await fetch("SELECT EXISTS (SELECT 1 FROM api_key WHERE revoked_at IS NULL) AS any")
    _active_cache = (now, bool(rows[0]["any"]))
    return _active_cache[1]


class KeyIdentity(msgspec.Struct, frozen=True):
    """Who a valid key is: what a caller's principal records."""

    id: uuid.UUID
    name: str


async def identify(secret: str) -> KeyIdentity | None:
    """The active key with this secret (its last use recorded, at most once a minute), or
    None when no such key exists or it was revoked."""
    digest = _hash(secret)
    rows = await fetch(
        """UPDATE api_key SET last_used_at = now()
           WHERE secret_hash = $1 AND revoked_at IS NULL
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           RETURNING id, name""", digest)
    if not rows:
        rows = await fetch("SELECT id, name FROM api_key WHERE secret_hash = $1 AND revoked_at IS NULL",
                           digest)
    return KeyIdentity(rows[0]["id"], rows[0]["name"]) if rows else None


async def verify(secret: str) -> bool:
    return await identify(secret) is not None


async def revoked_among(ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these keys are revoked (or gone)."""
    rows = await fetch("SELECT id FROM api_key WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL",
                       ids)
    return set(ids) - {r["id"] for r in rows}
