"""HTTP requests take turns on the event loop (see ``app.turns``).

- Each request counts as waiting from its arrival until its answer starts; long work elsewhere
  takes its turns politely while more than one request waits.
- A big answer is written in pieces of ``PIECE`` bytes with a turn between them: one write of a
  1 MB body into a loopback socket held the loop for milliseconds (the kernel runs the receiving
  side in the same call), the longest step left beside an abusive client (``bench/abuse.py``).
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app import turns

PIECE = 64 * 1024


class TakingTurns:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        waiting = True
        turns.request_waiting(+1)

        async def send_in_turns(message: Message) -> None:
            nonlocal waiting
            if waiting and message["type"] == "http.response.start":
                waiting = False
                turns.request_waiting(-1)
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            if len(body) <= PIECE:
                await send(message)
                return
            more = message.get("more_body", False)
            view = memoryview(body)
            for start in range(0, len(body), PIECE):
                last = start + PIECE >= len(body)
                await send({"type": "http.response.body", "body": bytes(view[start:start + PIECE]),
                            "more_body": more or not last})
                if not last:
                    await turns.pause()

        try:
            await self.app(scope, receive, send_in_turns)
        finally:
            if waiting:
                turns.request_waiting(-1)
