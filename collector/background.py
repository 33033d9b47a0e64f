"""A :class:`~collector.sender.Sender` on its own thread and event loop, delivering while the
caller goes on reading (``devlog collect backfill``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from collector.config import CollectorSettings
from collector.sender import Sender
from collector.wire import MachineInfo

log = logging.getLogger("devlog.collector")


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
