"""The background sender's lifecycle against a server that never answers (a real socket that
accepts connections and stays silent): stopping does not wait out the HTTP timeout, and what
was not delivered stays in the outbox."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from collector.config import CollectorSettings
from collector.machine import this_machine
from collector.outbox import FileRow, Outbox
from collector.background import BackgroundSender
from collector.sender import Sender


def test_stop_cancels_a_request_the_server_never_answers(tmp_path: Path) -> None:
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)  # listens, never answers
    port = silent.getsockname()[1]
    path = tmp_path / "buffer.sqlite3"
    outbox = Outbox(path)
    outbox.commit(FileRow(path="f", agent="codex"),
                  [(bytes([n]) * 16, "codex", b'{"kind":"system"}') for n in range(1, 6)])
    settings = CollectorSettings(server_url=f"http://127.0.0.1:{port}/graphql",
                                 state_dir=str(tmp_path))
    sent: list[int] = []
    background = BackgroundSender(settings, path, this_machine(), on_sent=sent.append)
    background.STOP_WAIT = 0.3
    try:
        background.start()
        background.start()  # a second start is a no-op
        background.wake()
        time.sleep(0.5)  # the request is out, waiting for an answer that never comes
        t0 = time.monotonic()
        background.stop()
        assert time.monotonic() - t0 < 10  # not the 120 s HTTP timeout
        background.stop()  # a second stop is a no-op
    finally:
        silent.close()
    assert sent == [] and outbox.pending() == 5  # nothing acknowledged, nothing lost
    background.start()  # and it starts again
    background.stop()


async def test_a_request_unanswered_past_request_timeout_fails_and_keeps_its_events(
        tmp_path: Path) -> None:
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)
    path = tmp_path / "buffer.sqlite3"
    outbox = Outbox(path)
    outbox.commit(FileRow(path="f", agent="codex"),
                  [(bytes([n]) * 16, "codex", b'{"kind":"system"}') for n in range(1, 6)])
    settings = CollectorSettings(server_url=f"http://127.0.0.1:{silent.getsockname()[1]}/graphql",
                                 state_dir=str(tmp_path), request_timeout=0.5, stall_seconds=0.2)
    try:
        async with Sender(settings, path, this_machine()) as sender:
            assert not await sender.drain(attempts=1)
    finally:
        silent.close()
    assert sender.last_error == f"no answer from {settings.server_url} within 0.5 s (request_timeout)"
    assert outbox.meta()["last_error"] == sender.last_error
    assert outbox.pending() == 5 and outbox.dead.count() == 0
