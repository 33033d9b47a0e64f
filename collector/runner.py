"""``devlog collect``: backfill what is new, then tail the agents' logs live until stopped.

Three tasks share one asyncio loop:

- the **watcher** (watchfiles on every existing root) hands changed files to the reader;
- the **reader** runs in one worker thread (parsing is CPU work; SQLite connections are per
  thread; a large catch-up is parsed by worker processes, see ``collector.source``): it scans
  changed files, closes LLM calls of files gone quiet, and every
  ``rescan_seconds`` looks for new agent folders (restarting the watcher on them) and for
  changes the watcher missed;
- the **sender** drains the outbox; the reader wakes it after each commit, so a live event
  reaches the server well within a second. A batch the server fails on is bisected and the
  events it fails on alone become dead letters (``collector.sender``), so a bad event never
  holds the live stream back.

SIGINT/SIGTERM stop reading, give the sender a few seconds to flush, and exit; whatever is not
delivered stays in the buffer for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import watchfiles

from collector.adapters import enabled_adapters
from collector.adapters.base import Adapter, Context
from collector.config import CollectorSettings
from collector.gitinfo import ProjectCache
from collector.machine import this_machine
from collector.outbox import Outbox, outbox_path
from collector.sender import Sender
from collector.source import Reader

log = logging.getLogger("devlog.collector")
T = TypeVar("T")
FLUSH_SECONDS = 5.0


class Collector:
    def __init__(self, settings: CollectorSettings, *, env: dict[str, str] | None = None,
                 home: Path | None = None) -> None:
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.home = home or Path.home()
        self.machine = this_machine(self.env)
        self.adapters = enabled_adapters(settings.agents)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devlog-reader")
        self._reader: Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: Sender | None = None
        self._stop: asyncio.Event | None = None
        self._touched: dict[str, tuple[Adapter, Path, float]] = {}  # lines files with new data

    # -- the reader thread --------------------------------------------------------------------

    def _in_reader(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        assert self._loop is not None
        return self._loop.run_in_executor(self._pool, fn, *args)

    def _reader_(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(
                settings=self.settings, outbox=Outbox(outbox_path(self.settings)),
                ctx=Context(machine=self.machine.key, project_of=ProjectCache()),
                adapters=self.adapters, env=self.env, home=self.home, on_commit=self._committed,
                stopping=self._stopping)
        return self._reader

    def _stopping(self) -> bool:
        """Asked between files (and before each worker's slice) during a long catch-up."""
        return self._stop is not None and self._stop.is_set()

    def _committed(self, added: int) -> None:
        if self._loop is not None and self._sender is not None:
            self._loop.call_soon_threadsafe(self._sender.wake.set)

    def _scan(self, items: list[tuple[Adapter, Path]]) -> None:
        # A catch-up with much to read (the first start on a machine with history) is parsed
        # by worker processes; a few changed files are read here.
        result = self._reader_().scan_many(items)
        now = time.monotonic()
        for adapter, path in result.touched:
            self._touched[str(path)] = (adapter, path, now)

    def _scan_all(self) -> list[Path]:
        reader = self._reader_()
        self._scan(list(reader.discover()))
        return sorted({root for _a, root in reader.roots() if root.is_dir()})

    def _close_quiet(self) -> None:
        now = time.monotonic()
        reader = self._reader_()
        for key, (adapter, path, at) in list(self._touched.items()):
            if now - at >= self.settings.quiet_seconds:
                del self._touched[key]
                reader.idle(adapter, path)

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.outbox.close()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop
        state = outbox_path(self.settings)
        log.info("collector for %s (%s) → %s; buffer %s", ", ".join(self.adapters),
                 self.machine.hostname, self.settings.server_url, state)
        outbox = Outbox(state)  # create the database before two threads open it
        dead = outbox.dead.count()
        outbox.close()
        if dead:
            log.warning("%s dead letter(s): events the server would not take "
                        "(`devlog collect dead-letters list`)", f"{dead:,}")
        async with Sender(self.settings, state, self.machine) as sender:
            self._sender = sender
            sending = asyncio.create_task(sender.run(stop), name="sender")
            try:
                roots = await self._in_reader(self._scan_all)
                log.info("watching %d folder(s): %s", len(roots), ", ".join(map(str, roots)) or "none yet")
                await self._tail(stop, roots)
            finally:
                stop.set()
                await self._in_reader(self._close_quiet)
                try:
                    await asyncio.wait_for(sending, FLUSH_SECONDS)
                except TimeoutError:
                    pass
                if sender.outbox.pending():
                    try:
                        await asyncio.wait_for(sender.drain(attempts=1), FLUSH_SECONDS)
                    except TimeoutError:
                        pass
                left = sender.outbox.pending()
                if left:
                    log.info("%s event(s) stay in the buffer for the next start", f"{left:,}")
                await self._in_reader(self._close)
                self._pool.shutdown(wait=True)

    async def _tail(self, stop: asyncio.Event, roots: list[Path]) -> None:
        ticker = asyncio.create_task(self._tick(stop), name="quiet")
        try:
            while not stop.is_set():
                rewatch = asyncio.Event()
                rescan = asyncio.create_task(self._rescan(stop, rewatch, roots))
                try:
                    if roots:
                        await self._watch(stop, rewatch, roots)
                    else:
                        await _first(stop.wait(), rewatch.wait())
                finally:
                    rescan.cancel()
                if not stop.is_set():
                    roots = await self._in_reader(self._scan_all)
                    log.info("now watching %d folder(s): %s", len(roots), ", ".join(map(str, roots)))
        finally:
            ticker.cancel()

    async def _watch(self, stop: asyncio.Event, rewatch: asyncio.Event, roots: list[Path]) -> None:
        either = _Either(stop, rewatch)
        reader = self._reader_()
        async for changes in watchfiles.awatch(*roots, stop_event=either, debounce=100, step=50,
                                               recursive=True, ignore_permission_denied=True):
            items: dict[str, tuple[Adapter, Path]] = {}
            for _change, name in changes:
                path = Path(name)
                adapter = reader.adapter_for(path)
                if adapter is not None:
                    items[name] = (adapter, path)
            if items:
                await self._in_reader(self._scan, list(items.values()))

    async def _rescan(self, stop: asyncio.Event, rewatch: asyncio.Event, roots: list[Path]) -> None:
        """Every rescan_seconds: new roots restart the watcher; otherwise catch missed changes
        (and resume reading after a full buffer drained)."""
        while not stop.is_set():
            await _sleep(stop, self.settings.rescan_seconds
                         if not self._reader_().buffer_full else 1.0)
            current = await self._in_reader(self._scan_all)
            if current != roots:
                rewatch.set()
                return

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _sleep(stop, min(0.5, self.settings.quiet_seconds / 2))
            if self._touched:
                await self._in_reader(self._close_quiet)


class _Either:
    """An event-like object set when either of two asyncio events is (watchfiles' stop_event)."""

    def __init__(self, a: asyncio.Event, b: asyncio.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
