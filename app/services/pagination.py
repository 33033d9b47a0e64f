"""Keyset (cursor) pagination shared by the GraphQL connections and the dashboard."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")
MAX_PAGE = 500


class Page(msgspec.Struct, Generic[T], frozen=True):
    items: list[T]
    cursors: list[str]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


class BadCursor(ValueError):
    pass


def encode_cursor(*parts: Any) -> str:
    raw = msgspec.json.encode([p.isoformat() if isinstance(p, datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError):
        raise BadCursor(f"invalid cursor {cursor!r}") from None
    if not isinstance(parts, list) or len(parts) != n:
        raise BadCursor(f"invalid cursor {cursor!r}")
    return parts


def cursor_time(value: Any) -> datetime:
    """A cursor's time, as PostgreSQL can take it. Naive: ``datetime.min``/``max``, which is how
    asyncpg returns (and sends) PostgreSQL's -infinity/infinity."""
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        if t not in (datetime.min, datetime.max):
            raise ValueError("a cursor's time has a time zone")
    else:
        t.astimezone(UTC)  # OverflowError at the ends of the range (year 1 east of UTC…)
    return t


def cursor_int(value: Any) -> int:
    """A cursor's integer (a bigint column's value)."""
    if not isinstance(value, int) or not -2**63 <= value < 2**63:
        raise ValueError("not a 64-bit integer")
    return value


def decode_keys(cursor: str, *keys: Callable[[Any], Any]) -> list[Any]:
    """A keyset cursor's parts, each converted by its function (``cursor_time``, ``cursor_int``,
    ``uuid.UUID`` …); BadCursor for a cursor made up with parts of the wrong kind."""
    parts = decode_cursor(cursor, len(keys))
    try:
        return [key(part) for key, part in zip(keys, parts, strict=True)]
    except (TypeError, ValueError, AttributeError, OverflowError):
        raise BadCursor(f"invalid cursor {cursor!r}") from None


def clamp(first: int) -> int:
    return max(1, min(first, MAX_PAGE))
