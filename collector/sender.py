"""Delivery: drain the outbox to the server's ``ingestEvents`` mutation.

Batches go out oldest first (``concurrency`` of them at once: the server ingests one while the
next is on its way), gzip-compressed, built from the stored JSON bodies without decoding them
again. An answer from the server means the batch is committed there: the batch is deleted from
the outbox, and the events the server refused by index become dead letters with its reason
(``collector.deadletters``). What happens when there is no answer depends on why:

- the server cannot be reached, times out, or says it is unavailable (HTTP 408/429/502/503/504,
  a GraphQL error saying so): the batch stays and is retried with exponential backoff and
  jitter. A request unanswered for ``stall_seconds`` is reported (status, log) while it waits;
- HTTP 413, or the server's batch limit: the batch is split in halves, and smaller batches are
  sent until the size grows back;
- an auth error: reported and retried slowly (a key can be fixed in the config file);
- any other batch-level error (a GraphQL error, an HTTP 500): something in the batch may make
  the server fail. First the *canary* (one event the server took before, sent again: a
  duplicate, it changes nothing) is sent: if the server fails it too, the fault is the
  server's and the batch stays, as for an outage. Otherwise the batch is bisected: halves that
  go through are acknowledged, halves that fail are split again, and an event that fails alone
  (and the canary passes right after) becomes a dead letter with the server's message — so one
  bad event costs two requests per halving, and never blocks the rest. Without a canary
  (nothing delivered yet) the bisection is trusted, and what it kept is sent again once the
  server has taken an event.

Dead letters that are due (after an upgrade of the collector or the server, or when asked) are
sent before the outbox, through the same path.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import aiohttp
import msgspec

from collector import version
from collector.answer import Answer, DeliveryError, read_answer
from collector.config import CollectorSettings
from collector.deadletters import Attempt
from collector.outbox import Outbox
from collector.wire import MachineInfo

log = logging.getLogger("devlog.collector")

MUTATION = (
    "mutation IngestEvents($batch: EventBatch!) { ingestEvents(batch: $batch) "
    "{ accepted duplicates rejected { index id reason } } }"
)
HEALTH = b'{"operationName":"CollectorHealth","query":"query CollectorHealth { health { version } }"}'
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
UPGRADE_CHECK_SECONDS = 3600.0  # how often a long-running sender asks the server's version
CANARY_MAX_BYTES = 16 * 1024
CANARY_REFRESH_SECONDS = 600.0
Row = tuple[int, bytes, str, bytes]  # (outbox seq, or 0 for a dead letter; id; agent; body)


@dataclass
class Delivered:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead: int = 0  # events a batch-level error was isolated to


class Sender:
    def __init__(self, settings: CollectorSettings, outbox_path: Path, machine: MachineInfo) -> None:
        self.settings = settings
        self.outbox_path = outbox_path
        self.machine = machine
        self.wake = asyncio.Event()
        self.totals = Delivered()
        self.on_sent: Callable[[int], None] | None = None  # events that left the outbox
        self.last_error: str | None = None
        self._prefix = (b'{"operationName":"IngestEvents","query":' + msgspec.json.encode(MUTATION)
                        + b',"variables":{"batch":{"machines":[' + msgspec.json.encode(machine)
                        + b'],"events":[')
        self._batch = settings.batch_size
        self._sent_since_reclaim = False
        self._outbox: Outbox | None = None
        self._http: aiohttp.ClientSession | None = None
        self._attempt = Attempt(collector=version())
        self._asked_version = False
        self._upgrade_checked: float | None = None  # monotonic time of the last check
        self._canary: bytes | None = None
        self._canary_at: float | None = None  # monotonic time it was last chosen (None: due)

    async def __aenter__(self) -> Self:
        self._outbox = Outbox(self.outbox_path)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "devlog-collector"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        # Per phase: a connection is given connect_timeout, the answer request_timeout (the
        # server answers after its commit, which a big batch may take a while to reach);
        # stall_seconds reports a slow answer while it is awaited (see _post).
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout,
                                        connect=self.settings.connect_timeout,
                                        sock_connect=self.settings.connect_timeout)
        self._http = aiohttp.ClientSession(headers=headers, timeout=timeout)
        self._canary = self._outbox.canary()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http:
            await self._http.close()
        if self._outbox:
            self._outbox.close()

    @property
    def outbox(self) -> Outbox:
        assert self._outbox is not None
        return self._outbox

    # -- loops --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver whenever there is something to deliver, until ``stop`` is set."""
        backoff = BACKOFF_START
        while not stop.is_set():
            try:
                sent = await self.send_batch()
            except DeliveryError as exc:
                self._failed(exc)
                delay = min(backoff, BACKOFF_MAX) * random.uniform(0.5, 1.5)
                backoff = min(backoff * 2, BACKOFF_MAX) if exc.retry else BACKOFF_MAX
                await _wait(stop, delay)
                continue
            backoff = BACKOFF_START
            if sent == 0:
                if self._sent_since_reclaim:
                    self.outbox.reclaim()
                    self._sent_since_reclaim = False
                self.wake.clear()
                await _wait_any(stop, self.wake, 1.0)

    async def drain(self, *, attempts: int = 1_000_000) -> bool:
        """Deliver until the outbox is empty (True) or ``attempts`` failures in a row (False)."""
        failures = 0
        backoff = BACKOFF_START
        while True:
            try:
                sent = await self.send_batch()
            except DeliveryError as exc:
                self._failed(exc)
                failures += 1
                if failures >= attempts:
                    return False
                await asyncio.sleep(min(backoff, BACKOFF_MAX) * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            failures, backoff = 0, BACKOFF_START
            if sent == 0:
                if self._sent_since_reclaim:
                    self.outbox.reclaim()
                    self._sent_since_reclaim = False
                return True

    async def send_dead_letters(self, *, attempts: int = 3) -> bool:
        """Send the due dead letters, and nothing else (``devlog collect dead-letters retry``):
        True once none is due, False after ``attempts`` failures in a row (they stay due)."""
        failures = 0
        backoff = BACKOFF_START
        while self.outbox.dead.any_due():
            try:
                await self._send(self.outbox.dead.due(self._batch), dead=True)
            except DeliveryError as exc:
                self._failed(exc)
                failures += 1
                if failures >= attempts:
                    return False
                await asyncio.sleep(min(backoff, BACKOFF_MAX) * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            failures, backoff = 0, BACKOFF_START
        return True

    # -- one batch ----------------------------------------------------------------------------

    async def send_batch(self) -> int:
        """Send the oldest waiting events, ``concurrency`` batches at once (due dead letters
        first); returns how many left the outbox or the due dead letters (0: none waiting).
        Raises DeliveryError when every batch failed; a batch that failed beside others that
        went through stays for the next call."""
        await self._check_upgrades()
        if self.outbox.dead.any_due():
            return await self._send(self.outbox.dead.due(self._batch), dead=True)
        batches: list[list[Row]] = []
        after = 0
        for _ in range(self.settings.concurrency):
            rows = self.outbox.next_batch(self._batch, after)
            if not rows:
                break
            batches.append(rows)
            after = rows[-1][0]
        if not batches:
            return 0
        if len(batches) == 1:
            sent = await self._send(batches[0])
        else:
            results = await asyncio.gather(*map(self._send, batches), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for error in errors:
                if not isinstance(error, DeliveryError):
                    raise error
            sent = sum(r for r in results if not isinstance(r, BaseException))
            if errors and not sent:
                raise errors[0]
            if errors:
                self._failed(errors[0])  # the others went through: retried on the next call
        # After a 413 the batch grows back step by step (not straight to batch_size, which would
        # hit the server's limit again on every call).
        self._batch = min(self.settings.batch_size, self._batch * 2)
        return sent

    async def _send(self, rows: list[Row], *, dead: bool = False, bisecting: bool = False) -> int:
        """Send these events (outbox rows, or due dead letters); returns how many were settled
        (delivered, refused or kept as dead letters)."""
        try:
            answer = await self._post([body for _seq, _id, _agent, body in rows])
        except DeliveryError as exc:
            if exc.too_large and len(rows) > 1:
                half = len(rows) // 2
                self._batch = max(1, half)
                log.warning("server refused a batch of %d events as too large: sending %d at a time",
                            len(rows), self._batch)
                return (await self._send(rows[:half], dead=dead, bisecting=bisecting)
                        + await self._send(rows[half:], dead=dead, bisecting=bisecting))
            if exc.too_large:  # one event the server will never take
                answer = Answer(accepted=0, duplicates=0,
                                rejected=[{"index": 0, "reason": exc.reason}])
            elif exc.batch:
                return await self._isolate(rows, exc, dead=dead, bisecting=bisecting)
            else:
                raise
        if answer.rejected and not self._asked_version:  # kept with the dead letters
            await self._learn_server_version()
        return self._settled(rows, answer, dead=dead)

    async def _isolate(self, rows: list[Row], exc: DeliveryError, *, dead: bool,
                       bisecting: bool) -> int:
        """The server failed these rows as a batch: find the event(s) it fails on (module doc)."""
        if len(rows) > 1:
            if not bisecting:
                await self._confirm(exc)
                log.warning("the server failed a batch of %d events (%s): splitting it to find "
                            "the event(s) it fails on", len(rows), exc.reason)
            half = len(rows) // 2
            return (await self._send(rows[:half], dead=dead, bisecting=True)
                    + await self._send(rows[half:], dead=dead, bisecting=True))
        confirmed = await self._confirm(exc)
        if not self._asked_version:  # remembered with the dead letter (retried after an upgrade)
            await self._learn_server_version()
        (_seq, eid, agent, _body), = rows
        if dead:
            self.outbox.fail_dead(rows, exc.reason, self._attempt, confirmed=confirmed)
        else:
            self.outbox.dead_letter(rows, exc.reason, self._attempt, confirmed=confirmed)
            if self.on_sent:
                self.on_sent(1)
        self.totals.dead += 1
        log.warning("%s event %s kept as a dead letter (`devlog collect dead-letters list`): the "
                    "server fails on it alone: %s", agent, uuid.UUID(bytes=eid), exc.reason)
        return 1

    async def _confirm(self, exc: DeliveryError) -> bool:
        """Raise a plain (retried) DeliveryError unless the server takes the canary: when it fails
        an event it took before too, the fault is not in the batch. False when there is no
        canary yet (nothing delivered so far): what is kept then is sent again once there is."""
        if self._canary is None:
            return False
        try:
            await self._post([self._canary])
        except DeliveryError as again:
            if again.too_large:  # the server's limits changed: the canary proves nothing
                return False
            if not again.batch:  # the server went away meanwhile: that is the error
                raise
            raise DeliveryError(f"{exc} (it fails an event it took before as well: the events "
                                "stay in the buffer)", retry=True, reason=exc.reason) from None
        return True

    def _settled(self, rows: list[Row], answer: Answer, *, dead: bool) -> int:
        refused: dict[int, str] = {}
        for item in answer.rejected:
            index = item.get("index")
            if isinstance(index, int) and 0 <= index < len(rows):
                refused[index] = str(item.get("reason") or "rejected")
        rejected = [(rows[i][1], rows[i][2], reason, rows[i][3]) for i, reason in refused.items()]
        canary = self._new_canary(rows, refused)
        if dead:
            self.outbox.acknowledge_dead([row[1] for i, row in enumerate(rows) if i not in refused],
                                         rejected, self._attempt, canary)
        else:
            self.outbox.acknowledge([seq for seq, *_ in rows], rejected, self._attempt, canary)
            if self.on_sent:
                self.on_sent(len(rows))
            self._sent_since_reclaim = True
        self.totals.accepted += answer.accepted
        self.totals.duplicates += answer.duplicates
        self.totals.rejected += len(rejected)
        self.outbox.set_meta(last_delivery=time.time(), last_error=None)
        self.outbox.count_meta(delivered=answer.accepted, duplicates=answer.duplicates)
        if rejected:
            log.warning("server rejected %d event(s), e.g. %s", len(rejected), rejected[0][2])
        if self.last_error:
            log.info("delivering again to %s", self.settings.server_url)
            self.last_error = None
            self._upgrade_checked = None  # after an outage the server may have been upgraded
        return len(rows)

    def _new_canary(self, rows: list[Row], refused: dict[int, str]) -> bytes | None:
        """The smallest body the server took in this batch, when the canary is due a refresh."""
        now = time.monotonic()
        if self._canary_at is not None and now - self._canary_at < CANARY_REFRESH_SECONDS:
            return None
        bodies = [row[3] for i, row in enumerate(rows)
                  if i not in refused and len(row[3]) <= CANARY_MAX_BYTES]
        if not bodies:
            return None
        first = self._canary is None
        self._canary, self._canary_at = min(bodies, key=len), now
        if first and self.outbox.dead.mark_due_unconfirmed():
            log.info("the server takes events: sending again the dead letters kept before it "
                     "had taken any")
        return self._canary

    # -- upgrades -----------------------------------------------------------------------------

    async def _check_upgrades(self) -> None:
        """At the first batch, after an outage and hourly: dead letters last tried by another
        collector or server version become due."""
        now = time.monotonic()
        if self._upgrade_checked is not None and now - self._upgrade_checked < UPGRADE_CHECK_SECONDS:
            return
        self._upgrade_checked = now
        if not self.outbox.dead.count():
            return
        await self._learn_server_version()
        due = self.outbox.dead.mark_due_after_upgrade(self._attempt.collector, self._attempt.server)
        if self._canary is not None:
            due += self.outbox.dead.mark_due_unconfirmed()
        if due:
            log.info("sending %d dead letter(s) again: they were last tried by another collector "
                     "or server version", due)

    async def _learn_server_version(self) -> None:
        """The server's version (``health { version }``), or None when it does not say."""
        assert self._http is not None
        self._asked_version = True
        timeout = aiohttp.ClientTimeout(total=min(self.settings.request_timeout, 30.0),
                                        sock_connect=self.settings.connect_timeout)
        try:
            async with self._http.post(self.settings.server_url, data=gzip.compress(HEALTH),
                                       timeout=timeout) as resp:
                doc = msgspec.json.decode(await resp.read())
            server = doc["data"]["health"]["version"]
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError, TypeError):
            return
        if isinstance(server, str) and server:
            self._attempt = Attempt(collector=self._attempt.collector, server=server)

    # -- the request --------------------------------------------------------------------------

    async def _post(self, bodies: list[bytes]) -> Answer:
        assert self._http is not None
        payload = gzip.compress(self._prefix + b",".join(bodies) + b"]}}}", compresslevel=5)
        url = self.settings.server_url
        stalled = asyncio.get_running_loop().call_later(self.settings.stall_seconds, self._stalled)
        try:
            async with self._http.post(url, data=payload) as resp:
                text = await resp.read()
                status = resp.status
        except aiohttp.ConnectionTimeoutError:
            raise DeliveryError(f"cannot reach {url}: no connection within "
                                f"{self.settings.connect_timeout:g} s") from None
        except TimeoutError:
            raise DeliveryError(f"no answer from {url} within {self.settings.request_timeout:g} s "
                                "(request_timeout)") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        finally:
            stalled.cancel()
        return read_answer(url, status, text)

    def _stalled(self) -> None:
        self._failed(DeliveryError(
            f"no answer from {self.settings.server_url} for {self.settings.stall_seconds:g} s; "
            f"still waiting (up to request_timeout, {self.settings.request_timeout:g} s), "
            "the events stay in the buffer"))

    def _failed(self, exc: DeliveryError) -> None:
        message = str(exc)
        if message != self.last_error:
            log.warning("delivery failed (events stay in the buffer): %s", message)
        self.last_error = message
        self.outbox.set_meta(last_error=message, last_error_at=time.time())


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
