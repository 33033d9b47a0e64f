"""Values made storable without changing their meaning: PostgreSQL text and jsonb cannot hold
NUL characters, which become U+FFFD (in JSON keys too)."""

from __future__ import annotations

from typing import Any

import msgspec


def clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


def strip_nuls(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [strip_nuls(v) for v in value]
    if isinstance(value, dict):
        return {strip_nuls(k): strip_nuls(v) for k, v in value.items()}
    return value


_encode = msgspec.json.encode


def encode_payload(payload: Any) -> str | None:
    """JSON text for a jsonb column (which rejects \\u0000 escapes)."""
    if payload is None:
        return None
    data = _encode(payload)
    if b"\\u0000" in data:  # rare: clean the object, not the text (escapes make text edits unsafe)
        data = _encode(strip_nuls(payload))
    return data.decode()
