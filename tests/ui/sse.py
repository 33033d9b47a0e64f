"""Read server-sent events from the real server (for tests of the live fragments)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import httpx


_BREAK = re.compile(r"\r\n|\r|\n")


async def _lines(r: httpx.Response) -> AsyncIterator[str]:
    """Lines as the SSE spec (and a browser) splits them: at CR LF, CR or LF only (httpx's
    aiter_lines also splits at U+2028, U+0085 … which may be inside a fragment)."""
    buffer = ""
    async for text in r.aiter_text():
        buffer += text
        hold = buffer.endswith("\r")  # maybe the first half of a CR LF
        parts = _BREAK.split(buffer[:-1] if hold else buffer)
        buffer = parts.pop() + ("\r" if hold else "")
        for line in parts:
            yield line


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
            async for line in _lines(r):
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
