"""Delivery: drain the outbox to the server's ``ingestEvents`` mutation.

Batches go out oldest first (``concurrency`` of them at once: the server ingests one while the
next is on its way), gzip-compressed, built from the stored JSON bodies without decoding them
again. An answer from the server means the batch is committed there: the batch is deleted
from the outbox, and the events the server refused are kept in ``rejected`` with its reason (not
retried: the same event would be refused again). A failure (server down, 5xx, timeout) keeps the
batch and retries with exponential backoff and jitter. A batch the server refuses as a whole for
its size (HTTP 413) is split. An auth error is reported and retried slowly, since a key can be
fixed in the config without restarting the collector.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import msgspec

from collector.config import CollectorSettings
from collector.outbox import Outbox
from collector.wire import MachineInfo

log = logging.getLogger("devlog.collector")

MUTATION = (
    "mutation IngestEvents($batch: EventBatch!) { ingestEvents(batch: $batch) "
    "{ accepted duplicates rejected { index id reason } } }"
)
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class Answer(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class DeliveryError(Exception):
    def __init__(self, message: str, *, retry: bool = True, too_large: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.too_large = too_large


@dataclass
class Delivered:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


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

    async def __aenter__(self) -> Self:
        self._outbox = Outbox(self.outbox_path)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "devlog-collector"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        self._http = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120))
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

    # -- one batch ----------------------------------------------------------------------------

    async def send_batch(self) -> int:
        """Send the oldest waiting events, ``concurrency`` batches at once; returns how many left
        the outbox (0: none waiting). Raises DeliveryError when every batch failed; a batch that
        failed beside others that went through stays for the next call."""
        batches: list[list[tuple[int, bytes, str, bytes]]] = []
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

    async def _send(self, rows: list[tuple[int, bytes, str, bytes]]) -> int:
        """Send these events; returns how many left the outbox."""
        try:
            answer = await self._post([body for _seq, _id, _agent, body in rows])
        except DeliveryError as exc:
            if exc.too_large and len(rows) > 1:
                half = len(rows) // 2
                self._batch = max(1, half)
                log.warning("server refused a batch of %d events as too large: sending %d at a time",
                            len(rows), self._batch)
                return await self._send(rows[:half]) + await self._send(rows[half:])
            if exc.too_large:  # one event the server will never take
                answer = Answer(accepted=0, duplicates=0,
                                rejected=[{"index": 0, "reason": str(exc)}])
            else:
                raise
        rejected = []
        for item in answer.rejected:
            index = item.get("index")
            if isinstance(index, int) and 0 <= index < len(rows):
                _seq, eid, agent, body = rows[index]
                rejected.append((eid, agent, str(item.get("reason") or "rejected"), body))
        self.outbox.acknowledge([seq for seq, *_ in rows], rejected)
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
        return len(rows)

    async def _post(self, bodies: list[bytes]) -> Answer:
        assert self._http is not None
        payload = gzip.compress(self._prefix + b",".join(bodies) + b"]}}}", compresslevel=5)
        url = self.settings.server_url
        try:
            async with self._http.post(url, data=payload) as resp:
                text = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        if status == 413:
            raise DeliveryError(f"{url} answered 413: batch too large", too_large=True)
        if status >= 500 or status in (408, 429):
            raise DeliveryError(f"{url} answered HTTP {status}")
        try:
            doc = msgspec.json.decode(text)
        except ValueError:  # msgspec.DecodeError, or UnicodeDecodeError on bad UTF-8
            raise DeliveryError(f"{url} answered HTTP {status} with no GraphQL response "
                                f"(is server_url the /graphql endpoint?)") from None
        data = (doc.get("data") or {}).get("ingestEvents") if isinstance(doc, dict) else None
        if data is None:
            errors = doc.get("errors") if isinstance(doc, dict) else None
            message = "; ".join(str(e.get("message")) for e in errors or [] if isinstance(e, dict))
            auth = "API key" in message or status in (401, 403)
            raise DeliveryError(f"{url}: {message or f'HTTP {status}'}", retry=not auth)
        return msgspec.convert(data, Answer)

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


class BackgroundSender:
    """A :class:`Sender` on its own thread and event loop, delivering while the caller goes on
    reading (``devlog collect backfill``): the caller wakes it (:meth:`wake`) after each commit."""

    STOP_WAIT = 5.0  # seconds a request in flight may take to finish when stopping

    def __init__(self, settings: CollectorSettings, outbox_path: Path, machine: MachineInfo,
                 on_sent: Callable[[int], None] | None = None) -> None:
        self.settings, self.outbox_path, self.machine = settings, outbox_path, machine
        self.on_sent = on_sent
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._sender: Sender | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._thread_main, daemon=True, name="devlog-sender")
        self._thread.start()
        self._ready.wait()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:
            pass  # stopped while a request was in flight: its events stay in the outbox
        except Exception:  # sending stops; what is read waits in the outbox for the last drain
            log.exception("the background sender failed")
        finally:
            self._sender = None
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._task = asyncio.current_task()
        async with Sender(self.settings, self.outbox_path, self.machine) as sender:
            sender.on_sent = self.on_sent
            self._sender = sender
            self._ready.set()
            await sender.run(self._stop)

    def wake(self) -> None:
        loop, sender = self._loop, self._sender
        if loop is not None and sender is not None:
            try:
                loop.call_soon_threadsafe(sender.wake.set)
            except RuntimeError:  # the loop has just ended
                pass

    def stop(self) -> None:
        """Let a request in flight finish (a few seconds at most, else it is cancelled: its
        events stay in the outbox and go again), then stop."""
        thread = self._thread
        if thread is None:
            return
        self._call(lambda: self._stop.set() if self._stop is not None else None)
        thread.join(self.STOP_WAIT)
        if thread.is_alive():
            self._call(lambda: self._task.cancel() if self._task is not None else None)
            thread.join()
        self._thread = None

    def _call(self, fn: Callable[[], object]) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop already ended
                pass
