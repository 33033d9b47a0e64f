"""Keyset (cursor) pagination shared by the GraphQL connections and the dashboard."""

from __future__ import annotations

import base64
from datetime import datetime
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


def clamp(first: int) -> int:
    return max(1, min(first, MAX_PAGE))
