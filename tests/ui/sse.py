"""Read server-sent events from the real server (for tests of the live fragments)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx


async def read_events(client: httpx.AsyncClient, url: str, *, headers: dict | None = None,
                      until: Callable[[list[dict]], bool], seconds: float = 20) -> list[dict]:
    """Messages (``{"event", "data", "id"}``, comments skipped) of the stream at ``url`` until
    ``until(messages)`` holds. ``seconds`` only bounds a broken test; a passing one returns as
    soon as the messages are there."""
    messages: list[dict] = []
    async with asyncio.timeout(seconds):
        async with client.stream("GET", url, headers=headers) as r:
            assert r.status_code == 200, (url, r.status_code)
            assert r.headers["content-type"].startswith("text/event-stream")
            current: dict = {"event": "message", "data": [], "id": None}
            async for line in r.aiter_lines():
                if line == "":
                    if any(current["data"]) or current["event"] != "message":  # not a keep-alive
                        messages.append({**current, "data": "\n".join(current["data"])})
                        if until(messages):
                            return messages
                    current = {"event": "message", "data": [], "id": None}
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    current["data"].append(value)
                elif name in ("event", "id"):
                    current[name] = value
    raise AssertionError(f"{url} ended before the expected messages: {messages}")
