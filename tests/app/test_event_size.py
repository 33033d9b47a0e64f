"""The event size limit (DEVLOG_MAX_EVENT_BYTES) counts UTF-8 bytes, not characters: text that
is under the limit in characters but over it in bytes is rejected alone, through real HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.settings import load_settings
from tests.app.test_ingest import ingest
from tests.e2e.test_access import a_key
from tests.factories import event


async def test_the_size_limit_counts_bytes(client) -> None:
    limit = load_settings().max_event_bytes
    native = f"bytes-{uuid.uuid4()}"
    now = datetime.now(UTC)
    wide = "é" * (limit // 2 + 1)  # fewer characters than the limit, more bytes (2 each)
    emoji = {"text": "🙂" * (limit // 4 + 1)}  # a payload: 4 bytes each
    exact = "é" * (limit // 2)  # exactly the limit: kept
    async with a_key("size") as (_name, secret):  # whether or not other tests left keys
        result = await ingest(client, [
            event(native, 1, "tool_result", ts=now, content=wide),
            event(native, 2, "tool_call", ts=now, payload=emoji),
            event(native, 3, "tool_result", ts=now, content=exact),
        ], headers={"Authorization": f"Bearer {secret}"})
    assert result["accepted"] == 1
    assert [r["index"] for r in result["rejected"]] == [0, 1]
    assert all("DEVLOG_MAX_EVENT_BYTES" in r["reason"] for r in result["rejected"])
