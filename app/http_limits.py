"""Request bodies: gzip-compressed requests are inflated before the app sees them, and the
size limit (``DEVLOG_MAX_BODY_BYTES``) applies to the inflated body, so a small gzip bomb is
refused with 413 instead of exhausting memory."""

from __future__ import annotations

import zlib

from litestar.types import ASGIApp, Message, Receive, Scope, Send

_TOO_LARGE = b'{"errors":[{"message":"request body too large (DEVLOG_MAX_BODY_BYTES)"}]}'


class GzipRequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"").lower().strip()
        if encoding not in (b"gzip", b"x-gzip"):
            await self.app(scope, receive, send)
            return
        inflater = zlib.decompressobj(wbits=31)
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            try:
                body += inflater.decompress(chunk, self.max_body_bytes + 1 - len(body))
            except zlib.error:
                await _respond(send, 400, b'{"errors":[{"message":"request body is not valid gzip"}]}')
                return
            if len(body) > self.max_body_bytes or inflater.unconsumed_tail:
                await _respond(send, 413, _TOO_LARGE)
                return
            more = message.get("more_body", False)
        new_headers = [(k, v) for k, v in scope["headers"]
                       if k not in (b"content-encoding", b"content-length")]
        new_headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app({**scope, "headers": new_headers}, replay, send)


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
