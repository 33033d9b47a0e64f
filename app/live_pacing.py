"""Live delivery takes turns with requests on the event loop.

Sending an item to a subscriber (running its GraphQL selection, rendering and writing an SSE
message) is done by that subscriber's own task, right after ``Subscriber.get`` hands it out; a
fan-out to hundreds of subscribers is a lot of such work becoming ready at once. Two rules keep
requests (an ingest, a query, a page) from waiting behind it:

- **Turns.** At most ``per_turn`` items, all subscribers together, are handed out per turn of
  the event loop; the other subscribers wait, first come first served, for the next turns
  (without even waking up: the bus hands a waiting subscriber to the pacer, which wakes it in
  its turn). A request's next step waits for a couple of items' worth of live work, never for a
  whole fan-out.
- **Share.** While HTTP requests are in flight (:class:`RequestsInFlight` counts them; not
  long-lived streams), live
  delivery may use at most ``share`` of the time: each item's time (from being handed out to
  its subscriber asking for the next) is charged to a budget that refills at ``share`` seconds
  per second; with the budget spent, items wait. With no request in flight, live delivery runs
  as fast as it can. A burst of ingest keeps the process — and the CPU it shares with the
  database, often on the same machine — and live messages catch up right after it
  (``bench/live.py`` shows by how much they lag); under constant requests live delivery still
  gets its share.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

# Items all subscribers together are handed per turn of the event loop.
ITEMS_PER_TURN = 2
# Share of the time live delivery may use while requests are in flight.
LIVE_SHARE = 0.1
# Most live time banked for later, and most one item is charged (an item that waited on its
# client's socket was not using the process).
BUDGET_CAP = 0.005
CHARGE_CAP = 0.020


class Pacer:
    def __init__(self, per_turn: int = ITEMS_PER_TURN, share: float = LIVE_SHARE) -> None:
        self.per_turn = per_turn
        self.share = share
        self.requests = 0  # HTTP requests in flight (RequestsInFlight)
        self._budget = BUDGET_CAP  # live seconds that may still be spent while requests run
        self._refilled = time.perf_counter()
        self._spent_in_turn = 0  # items handed out in this turn
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None

    now = staticmethod(time.perf_counter)

    # ---------------------------------------------------------------- accounting

    def spent(self, started: float) -> None:
        """An item handed out at ``started`` has been dealt with: charge its time."""
        self._refill()
        self._budget -= min(time.perf_counter() - started, CHARGE_CAP)

    def _refill(self) -> None:
        now = time.perf_counter()
        if self.requests:
            self._budget = min(BUDGET_CAP, self._budget + (now - self._refilled) * self.share)
        else:
            self._budget = BUDGET_CAP
        self._refilled = now

    def request_started(self) -> None:
        self._refill()
        self.requests += 1

    def request_ended(self) -> None:
        self._refill()
        self.requests -= 1
        if not self.requests and self._waiters:
            self._schedule(asyncio.get_running_loop())

    def _may_go(self) -> bool:
        if self._spent_in_turn >= self.per_turn:
            return False
        if not self.requests:
            return True
        self._refill()
        return self._budget > 0

    # ---------------------------------------------------------------- turns

    async def turn(self) -> None:
        """Wait for the caller's turn to take an item."""
        loop = asyncio.get_running_loop()
        if not self._waiters and self._may_go():
            self._spent_in_turn += 1
            self._schedule(loop)
            return
        waiter = loop.create_future()
        self.admit(waiter)
        await waiter  # a later turn lets it through (and counts it)

    def admit(self, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` (a subscriber waiting for items, which now has some) in its turn."""
        self._waiters.append(waiter)
        self._schedule(asyncio.get_running_loop())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None and not self.requests:  # the requests are done: go now
            self._timer.cancel()
            self._timer = None
        if not self._scheduled and self._timer is None:
            self._scheduled = True
            loop.call_soon(self._next_turn, loop)  # runs after what is ready in this turn

    def _retry(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._schedule(loop)

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        self._spent_in_turn = 0
        while self._waiters and self._may_go():
            waiter = self._waiters.popleft()
            if not waiter.done():  # not cancelled (its stream went away)
                waiter.set_result(None)
                self._spent_in_turn += 1
        if self._waiters and self._spent_in_turn < self.per_turn:
            # out of budget while requests run: look again once it has refilled
            delay = max(-self._budget, 0.0) / self.share + 0.0005
            self._timer = loop.call_later(delay, self._retry, loop)
        elif self._waiters or self._spent_in_turn:
            self._schedule(loop)


_STREAMING = (b"text/event-stream", b"multipart/mixed")


def _streams(scope: dict) -> bool:
    """A long-lived response (SSE, GraphQL over multipart): live delivery itself, not a request."""
    if scope["path"].startswith("/live/"):
        return True
    for name, value in scope.get("headers", ()):
        if name == b"accept" and any(kind in value for kind in _STREAMING):
            return True
    return False


class RequestsInFlight:
    """ASGI middleware: counts the HTTP requests in flight (not live streams, not WebSockets)
    for the pacer of the app's bus."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        bus = getattr(scope.get("app"), "state", {}).get("bus") if scope["type"] == "http" else None
        if bus is None or _streams(scope):
            await self.app(scope, receive, send)
            return
        bus.pacer.request_started()
        try:
            await self.app(scope, receive, send)
        finally:
            bus.pacer.request_ended()
