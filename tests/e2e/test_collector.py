"""The collector as users run it: `devlog collect` processes against a `devlog serve` process on
a fresh database, with agent logs in a temporary home.

The expected events are what the adapters parse from the files (the adapters' own tests check
those against hand counts); here the question is delivery: every one arrives, exactly once, live,
across a server outage and across SIGKILLs at random points.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest

from collector.adapters import enabled_adapters
from collector.adapters.base import Context, parse_file
from tests.agent_logs import claude_session, claude_turn, make_home
from tests.e2e.test_serve import _wait_ready
from tests.helpers import devlog_cmd, free_port, subprocess_env

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agent-logs"
pytestmark = pytest.mark.slow


def expected_ids(home: Path) -> set[str]:
    """Ids of every event the logs under ``home`` contain, parsed file by file."""
    adapters = enabled_adapters(["claude-code", "codex", "copilot"])
    roots = {
        "claude-code": home / ".claude" / "projects",
        "codex": home / ".codex" / "sessions",
        "copilot": home / ".config" / "Code" / "User" / "workspaceStorage",
    }
    ids: set[str] = set()
    for name, root in roots.items():
        for path in sorted(root.rglob("*")):
            if path.is_file() and adapters[name].matches(path):
                ids |= {str(e.id) for e in parse_file(adapters[name], path, Context(machine="x"))}
    return ids


def collector_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = subprocess_env(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
        DEVLOG_COLLECTOR_SERVER_URL=f"http://127.0.0.1:{port}/graphql",
        DEVLOG_COLLECTOR_STATE_DIR=str(home / "state"), DEVLOG_COLLECTOR_QUIET_SECONDS="0.5",
        DEVLOG_COLLECTOR_RESCAN_SECONDS="1", **extra)
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "APPDATA"):
        env.pop(name, None)
    return env


class Server:
    def __init__(self, url: str) -> None:
        self.url, self.port = url, free_port()
        self.proc: subprocess.Popen | None = None
        self.log: deque[str] = deque(maxlen=500)  # the server's last log lines

    def start(self, **settings: str) -> None:
        env = subprocess_env(DEVLOG_DATABASE_URL=self.url, DEVLOG_LOG_LEVEL="warning", **settings)
        self.proc = subprocess.Popen(devlog_cmd("serve", "--port", str(self.port)), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_ready(self.proc, f"http://127.0.0.1:{self.port}")
        # Read what it logs from now on: a full pipe would block the server (it logs every
        # failed batch), and the collector would wait on it.
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()

    def _read_log(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


@pytest.fixture
async def server_db(fresh_database) -> Iterator[Server]:
    srv = Server(await fresh_database())  # `devlog serve` migrates it at start
    await asyncio.to_thread(srv.start)
    yield srv
    srv.stop()


async def stored(url: str) -> tuple[list[str], int, int]:
    """(event ids, sum of the sessions' event counts, sum of their output tokens)."""
    conn = await asyncpg.connect(url)
    try:
        ids = [str(r["id"]) for r in await conn.fetch("SELECT id FROM agent_event")]
        row = await conn.fetchrow("SELECT coalesce(sum(event_count), 0) AS n, "
                                  "coalesce(sum(tokens_output), 0) AS out FROM agent_session")
    finally:
        await conn.close()
    return ids, row["n"], row["out"]


async def wait_for(url: str, want: set[str], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            ids, _n, _out = await stored(url)
        except asyncpg.UndefinedTableError:  # the server has not migrated its database yet
            ids = []
        if want <= set(ids) or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.2)


def collect(home: Path, port: int, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(devlog_cmd("collect", *args), env=collector_env(home, port, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return err


def output_tokens(home: Path) -> int:
    """Output tokens of every distinct LLM call in the logs (files may repeat records: a Codex
    rollout that continues another, a resumed Claude session; the same id counts once)."""
    return sum(tokens for tokens in _llm_calls(home).values())


def _llm_calls(home: Path) -> dict[str, int]:
    adapters = enabled_adapters(["claude-code", "codex", "copilot"])
    roots = {"claude-code": ".claude", "codex": ".codex", "copilot": ".config"}
    calls: dict[str, int] = {}
    for path in sorted(home.rglob("*")):
        for name, adapter in adapters.items():
            if path.is_file() and roots[name] in path.parts and adapter.matches(path):
                for e in parse_file(adapter, path, Context(machine="x")):
                    if e.kind == "llm_call" and e.tokens:
                        calls.setdefault(str(e.id), e.tokens.output)
    return calls


async def test_backfill_then_live_tail_of_every_agent(server_db: Server, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    want = expected_ids(home)
    assert len(want) > 150
    proc = collect(home, server_db.port)
    try:
        ids = await wait_for(server_db.url, want)
        assert set(ids) == want and len(ids) == len(want)

        # live: an agent appends to a session, and starts a new one in a new project folder
        session = home / ".claude" / "projects" / "-tmp-private" / "4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl"
        with session.open("ab") as fh:
            for line in claude_turn("4c2ddfdc-b619-4525-8d03-1950fb1b0257", 90, _now()):
                fh.write(line + b"\n")
        fresh = home / ".claude" / "projects" / "-new-project" / "live-1.jsonl"
        fresh.parent.mkdir()
        fresh.write_bytes(claude_session("live-1", 2))
        # an agent whose folder did not exist when the collector started
        codex_late = home / ".codex" / "sessions" / "2026" / "05" / "13"
        codex_late.mkdir(parents=True)
        shutil.copy(FIXTURES / "codex" / "ccusage" / "sessions" / "project-alpha" / "session-alpha.jsonl",
                    codex_late / "rollout-2026-05-13T09-00-00-alpha.jsonl")
        want = expected_ids(home)
        ids = await wait_for(server_db.url, want)
        assert set(ids) == want and len(ids) == len(want)
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _ids, session_events, out_tokens = await stored(server_db.url)
    assert session_events == len(want)  # session rollups counted each event once
    assert out_tokens == output_tokens(home)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def test_events_wait_in_the_buffer_while_the_server_is_down(server_db: Server, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    proc = collect(home, server_db.port)
    try:
        await wait_for(server_db.url, expected_ids(home))
        await asyncio.to_thread(server_db.stop)
        log = home / ".claude" / "projects" / "-tmp-private" / "while-down.jsonl"
        log.write_bytes(claude_session("while-down", 3))
        status = ""
        for _ in range(100):  # the collector reads it and keeps it in the buffer
            status = subprocess.run(devlog_cmd("collect", "status"), env=collector_env(home, server_db.port),
                                    capture_output=True, text=True, timeout=60).stdout
            if "cannot reach" in status:
                break
            await asyncio.sleep(0.3)
        assert "cannot reach" in status, status
        waiting = [line for line in status.splitlines() if line.startswith("buffer:")]
        assert waiting and "(0 waiting" not in waiting[0], status
        await asyncio.to_thread(server_db.start)
        want = expected_ids(home)
        ids = await wait_for(server_db.url, want)
        assert set(ids) == want and len(ids) == len(want)
    finally:
        stop(proc)


async def test_sigkill_at_random_points_loses_and_duplicates_nothing(server_db: Server, tmp_path: Path) -> None:
    """At least 10 SIGKILLs: during backfill of a larger history, then during live tailing while the
    agents keep writing. After a final clean run the server holds exactly what the files hold.
    The history (19 MB) is over the size that puts worker processes to work: backfill runs are
    killed while workers parse."""
    home = make_home(tmp_path)
    projects = home / ".claude" / "projects" / "-big"
    projects.mkdir()
    for n in range(34):
        (projects / f"big-{n}.jsonl").write_bytes(claude_session(f"big-{n}", 80, text_bytes=1500))
    rng = random.Random(int(os.environ.get("DEVLOG_TEST_SEED", "7")))
    kills = 0
    for _ in range(40):  # backfill, killed at a random point (until 6 kills landed mid-run)
        proc = collect(home, server_db.port, "backfill", DEVLOG_COLLECTOR_BATCH_SIZE="50")
        await asyncio.sleep(rng.uniform(0.3, 1.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        if kills >= 6:
            break
    live = home / ".claude" / "projects" / "-live"
    live.mkdir()
    turn = 0
    for trial in range(6):  # live tailing, killed while a session is being written
        proc = collect(home, server_db.port, DEVLOG_COLLECTOR_BATCH_SIZE="20")
        path = live / f"live-{trial % 2}.jsonl"
        deadline = time.monotonic() + rng.uniform(1.5, 3.5)
        with path.open("ab") as fh:
            while time.monotonic() < deadline:
                for line in claude_turn(f"live-{trial % 2}", turn, _now()):
                    fh.write(line + b"\n")
                    if rng.random() < 0.3:
                        fh.flush()
                        await asyncio.sleep(0.01)
                turn += 1
                fh.flush()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 10
    final = collect(home, server_db.port, "backfill")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    want = expected_ids(home)
    ids, session_events, out_tokens = await stored(server_db.url)
    assert len(ids) == len(set(ids))
    missing, extra = want - set(ids), set(ids) - want
    assert not missing and not extra, (len(missing), len(extra))
    assert session_events == len(want)
    assert out_tokens == output_tokens(home)


def test_backfill_dry_run_summarises_and_sends_nothing(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    result = subprocess.run(devlog_cmd("collect", "backfill", "--dry-run", "--agent", "claude-code"),
                            env=collector_env(home, 9), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "claude-code" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    # sessions, events, LLM calls, tokens: the sums of the adapter's hand-checked fixtures
    # 4c2ddfdc (27 events, 7 calls) + two warm-up sub-agents (4 + 4, 1 + 1 calls) + turn-1 (32, 7)
    # + its sub-agent (51, 6)
    assert cells[:4] == ["claude-code", "5", f"{27 + 4 + 4 + 32 + 51}", f"{7 + 1 + 1 + 7 + 6}"]
    assert "dry run" in result.stdout
    buffer = home / "state" / "buffer.sqlite3"
    if buffer.exists():
        with sqlite3.connect(buffer) as db:
            assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM file").fetchone() == (0,)


async def test_rejected_events_are_kept_aside_and_the_rest_delivered(server_db: Server, tmp_path: Path) -> None:
    """The server refuses one event (over its size limit): the collector records the reason,
    does not retry it, and delivers everything else."""
    await asyncio.to_thread(server_db.stop)
    await asyncio.to_thread(server_db.start, DEVLOG_MAX_EVENT_BYTES="4000")
    home = tmp_path / "home"
    log = home / ".claude" / "projects" / "-big" / "s.jsonl"
    log.parent.mkdir(parents=True)
    (home / "state").mkdir()
    lines = claude_turn("s", 0, _now(), text_bytes=8000) + claude_turn("s", 1, _now(), text_bytes=100)
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    want = expected_ids(home)
    result = subprocess.run(devlog_cmd("collect", "backfill", "--agent", "claude-code"), timeout=120,
                            env=collector_env(home, server_db.port), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ids, _n, _out = await stored(server_db.url)
    refused = want - set(ids)
    assert 1 <= len(refused) <= 4 and set(ids) <= want  # the big prompt, reply and reasoning of turn 0
    status = subprocess.run(devlog_cmd("collect", "status"), env=collector_env(home, server_db.port),
                            capture_output=True, text=True, timeout=60).stdout
    assert f"{len(refused)} event(s) rejected by the server" in status, status
    assert "(0 waiting" in status
    again = subprocess.run(devlog_cmd("collect", "backfill"), env=collector_env(home, server_db.port),
                           capture_output=True, text=True, timeout=120)
    assert "nothing new to send" in again.stdout  # rejected events are not retried


async def test_batches_too_large_for_the_server_are_split(server_db: Server, tmp_path: Path) -> None:
    """The server's body limit is far below a batch: every 413 halves the batch (two batches in
    flight at once), until everything is delivered; nothing is refused."""
    await asyncio.to_thread(server_db.stop)
    await asyncio.to_thread(server_db.start, DEVLOG_MAX_BODY_BYTES="200000")
    home = tmp_path / "home"
    folder = home / ".claude" / "projects" / "-big"
    folder.mkdir(parents=True)
    (home / "state").mkdir()
    for n in range(3):
        (folder / f"s{n}.jsonl").write_bytes(claude_session(f"s{n}", 12, text_bytes=20_000))
    want = expected_ids(home)
    result = subprocess.run(devlog_cmd("collect", "backfill", "--agent", "claude-code"), timeout=180,
                            env=collector_env(home, server_db.port, DEVLOG_COLLECTOR_CONCURRENCY="2"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "too large: sending" in result.stderr
    ids, _n, _out = await stored(server_db.url)
    assert sorted(ids) == sorted(want)


async def test_devlog_up_runs_server_and_collector(fresh_database, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    want = expected_ids(home)
    url, port = await fresh_database(), free_port()
    env = collector_env(home, port, DEVLOG_DATABASE_URL=url, DEVLOG_PORT=str(port), DEVLOG_LOG_LEVEL="warning")
    env.pop("DEVLOG_COLLECTOR_SERVER_URL")  # `up` points its collector at its own server
    proc = subprocess.Popen(devlog_cmd("up"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ids = await wait_for(url, want, timeout=120)
        assert set(ids) == want
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def _status(home: Path, port: int) -> str:
    return subprocess.run(devlog_cmd("collect", "status"), env=collector_env(home, port),
                          capture_output=True, text=True, timeout=60).stdout


async def test_a_backfill_delivers_every_event_beside_ones_the_server_fails_on(
        server_db: Server, tmp_path: Path) -> None:
    """A tool name with a NUL made the server fail whole batches, and the backfill stopped with
    "N events wait in the buffer". Now every other event is delivered; the bad ones are either
    stored (a server that takes them) or kept as dead letters that status shows."""
    home = tmp_path / "home"
    log = home / ".claude" / "projects" / "-poison" / "p.jsonl"
    log.parent.mkdir(parents=True)
    (home / "state").mkdir()
    lines = [line for turn in range(6) for line in claude_turn("p", turn, _now())]
    poisoned = [n for n, line in enumerate(lines) if b'"name":"Bash"' in line][2]
    lines[poisoned] = lines[poisoned].replace(b'"name":"Bash"', b'"name":"Ba\\u0000sh"')
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    want = expected_ids(home)
    result = subprocess.run(devlog_cmd("collect", "backfill"), env=collector_env(home, server_db.port),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    ids, _n, _out = await stored(server_db.url)
    missing = want - set(ids)
    assert len(missing) <= 2  # the tool call with the NUL, and its result
    status = _status(home, server_db.port)
    assert "(0 waiting" in status, status
    if missing:
        with sqlite3.connect(home / "state" / "buffer.sqlite3") as db:
            dead = {str(uuid.UUID(bytes=r[0])) for r in db.execute("SELECT id FROM dead_letter")}
        assert dead == missing
        assert f"dead letters: {len(missing)} event(s) the server failed on alone" in status, status
        assert "kept as dead letters" in result.stderr


async def test_a_claude_code_log_whose_cwd_is_1100_characters_backfills_completely(
        server_db: Server, tmp_path: Path) -> None:
    """Depends on the server storing long identifying keys whole (issue 11, part 1)."""
    home = tmp_path / "home"
    cwd = "/home/dev/" + "/".join(f"{n:02d}-" + "p" * 96 for n in range(11))
    cwd = cwd[:1100]
    assert len(cwd) == 1100
    log = home / ".claude" / "projects" / ("-" + "p" * 200) / "long.jsonl"
    log.parent.mkdir(parents=True)
    (home / "state").mkdir()
    log.write_bytes(claude_session("long-cwd", 4, cwd=cwd))
    want = expected_ids(home)
    result = subprocess.run(devlog_cmd("collect", "backfill"), env=collector_env(home, server_db.port),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    ids, session_events, _out = await stored(server_db.url)
    assert sorted(ids) == sorted(want)
    assert session_events == len(want)
    status = _status(home, server_db.port)
    assert "(0 waiting" in status and "dead letters" not in status, status
    conn = await asyncpg.connect(server_db.url)
    try:
        paths = {r["path"] for r in await conn.fetch("SELECT path FROM workspace")}
    finally:
        await conn.close()
    assert cwd in paths  # stored whole


async def test_status_shows_a_server_that_does_not_answer_while_the_request_waits(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers (a hung process, a database
    SIGSTOPped behind it): within stall_seconds `devlog collect status` shows the delivery error,
    while the request still waits (request_timeout is far longer), and nothing leaves the buffer."""
    home = tmp_path / "home"
    log = home / ".claude" / "projects" / "-hung" / "h.jsonl"
    log.parent.mkdir(parents=True)
    (home / "state").mkdir()
    log.write_bytes(claude_session("hung", 2))
    want = expected_ids(home)
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)  # listens, never answers
    port = silent.getsockname()[1]
    proc = collect(home, port, DEVLOG_COLLECTOR_STALL_SECONDS="0.5",
                   DEVLOG_COLLECTOR_REQUEST_TIMEOUT="600")
    try:
        status = ""
        for _ in range(150):
            status = _status(home, port)
            if "no answer from" in status:
                break
            await asyncio.sleep(0.2)
        assert f"no answer from http://127.0.0.1:{port}/graphql for 0.5 s; still waiting" in status, status
        assert f"({len(want)} waiting" in status, status
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        silent.close()
    with sqlite3.connect(home / "state" / "buffer.sqlite3") as db:
        kept = {str(uuid.UUID(bytes=r[0])) for r in db.execute("SELECT id FROM outbox")}
    assert kept == want


async def test_the_live_collector_delivers_around_an_event_the_server_fails_on(
        server_db: Server, tmp_path: Path) -> None:
    """Live, a bad event arrives in a batch of its own or with the next lines: it is kept as a
    dead letter (or stored by a server that takes it) and the lines after it keep flowing."""
    home = tmp_path / "home"
    log = home / ".claude" / "projects" / "-live-poison" / "lp.jsonl"
    log.parent.mkdir(parents=True)
    (home / "state").mkdir()
    log.write_bytes(claude_session("lp", 2))
    proc = collect(home, server_db.port)
    try:
        first = expected_ids(home)
        ids = await wait_for(server_db.url, first)
        assert first <= set(ids)
        bad = [line.replace(b'"name":"Bash"', b'"name":"Ba\\u0000sh"')
               for line in claude_turn("lp", 2, _now())]
        with log.open("ab") as fh:
            fh.write(b"".join(line + b"\n" for line in bad))
            fh.flush()
            await asyncio.sleep(1.0)
            fh.write(b"".join(line + b"\n" for line in claude_turn("lp", 3, _now())))
        want = expected_ids(home)
        after = want - first
        deadline = time.monotonic() + 60
        while True:
            ids = set((await stored(server_db.url))[0])
            with sqlite3.connect(home / "state" / "buffer.sqlite3") as db:
                dead = {str(uuid.UUID(bytes=r[0])) for r in db.execute("SELECT id FROM dead_letter")}
                waiting = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            if (after <= ids | dead and not waiting) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert want - ids == dead and len(dead) <= 2, (len(want - ids), len(dead))
        assert not waiting
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
