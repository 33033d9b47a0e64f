"""Work for a client that has gone away is stopped.

uvicorn reports a closed connection as an ``http.disconnect`` message from ``receive()``, but
only to an app that asks, and a handler waiting for PostgreSQL never asks: its query ran on to
the end (or to the read time limit) for nobody. This middleware watches ``receive()`` itself
once the request body has been read (at once for a request without a body) and, when the
client disconnects before the response is complete, cancels the request's task. asyncpg
answers the cancellation by sending PostgreSQL a cancel request for the running statement, and
the connection goes back to the pool; an ingest cut off this way rolls back (the collector,
which got no answer, sends the batch again).

The body is still read only as fast as the app asks for it (no buffering ahead of the app's
own limits), and the app sees every message it would have seen.
"""

from __future__ import annotations

import asyncio

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        state = _Request(receive, task)
        if not _has_body(scope):
            state.watch()

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                state.complete = True
            await send(message)

        try:
            await self.app(scope, state.receive, send_and_note)
        except asyncio.CancelledError:
            if not state.cancelled:
                raise
            task.uncancel()  # ours: the client is gone, nothing is left to answer
        finally:
            state.complete = True
            state.stop()


class _Request:
    def __init__(self, receive: Receive, task: asyncio.Task) -> None:
        self._receive = receive
        self._task = task
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._watcher: asyncio.Task | None = None
        self._gone = False
        self.complete = False
        self.cancelled = False

    def watch(self) -> None:
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        """Own receive() from here on: forward what it returns, cancel on a disconnect."""
        while True:
            message = await self._receive()
            self._queue.put_nowait(message)
            if message["type"] == "http.disconnect":
                self._gone = True
                if not self.complete:
                    self.cancelled = True
                    self._task.cancel()
                return

    async def receive(self) -> Message:
        """The app's receive(): straight through while it reads the body, then from the
        watcher."""
        if self._watcher is None:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self.watch()
            return message
        if self._gone and self._queue.empty():
            return {"type": "http.disconnect"}
        return await self._queue.get()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()  # waiting in receive(): nothing to clean up
