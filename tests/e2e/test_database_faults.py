"""Database faults heal by themselves: `devlog serve` on its embedded PostgreSQL while that
PostgreSQL hangs (SIGSTOP) or dies (SIGKILL), and a configured database that refuses
connections."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.db.embedded import EmbeddedPostgres
from tests.helpers import devlog_cmd, free_port, subprocess_env, traversable_tmpdir

pytestmark = pytest.mark.slow


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (the postmaster and its backends)."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # it ended meanwhile (a backend whose connection closed)
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _signal_tree(pid: int, sig: signal.Signals) -> None:
    for p in _tree(pid):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def _poll(base: str, path: str, want: int, timeout: float, **kw) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}{path}", timeout=5, **kw)
            if r.status_code == want:
                return r
            last = r.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {want} (last: {last})")


def _shut_down(server: subprocess.Popen, cluster: EmbeddedPostgres) -> None:
    """Stop the server and, should it be left running (stopped, or started again by a server
    that was killed), its cluster."""
    status = cluster.status()
    if status.pid:
        _signal_tree(status.pid, signal.SIGCONT)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
    if cluster.status().running:
        cluster.stop()


@pytest.fixture
def embedded_server():
    home = traversable_tmpdir("devlog-faults-")
    data_dir = home / "data"
    port = free_port()
    log_path = home / "serve.log"
    log = log_path.open("w")
    env = subprocess_env(DEVLOG_DATA_DIR=str(data_dir))
    proc = subprocess.Popen(devlog_cmd("serve", "--port", str(port)), env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _poll(base, "/readyz", 200, 120)
        yield base, EmbeddedPostgres(data_dir), log_path
    finally:
        _shut_down(proc, EmbeddedPostgres(data_dir))
        log.close()


def test_a_hung_database_gives_quick_503s_and_the_pool_recovers(embedded_server) -> None:
    base, cluster, log_path = embedded_server
    pid = cluster.status().pid
    assert pid
    assert httpx.get(f"{base}/sessions", timeout=10).status_code == 200
    _signal_tree(pid, signal.SIGSTOP)
    try:
        # Without the watchdog these requests wait for a database that never answers: the
        # client's 10 s timeout would end them. With it they are refused with the reason.
        ready = _poll(base, "/readyz", 503, 30)
        assert ready.json()["status"] == "unavailable"
        page = httpx.get(f"{base}/sessions", timeout=10, headers={"accept": "text/html"})
        assert page.status_code == 503
        assert "The database is not answering" in page.text
        assert page.headers["retry-after"] == "2"
        gql = httpx.post(f"{base}/graphql", timeout=10,
                         json={"query": "{ sessions(first: 1) { edges { node { id } } } }"})
        assert "not answering" in gql.text
        health = httpx.post(f"{base}/graphql", timeout=10,
                            json={"query": "{ health { database } }"})
        assert health.json()["data"]["health"]["database"].startswith("unavailable")
    finally:
        _signal_tree(pid, signal.SIGCONT)
    _poll(base, "/readyz", 200, 30)
    assert httpx.get(f"{base}/sessions", timeout=10).status_code == 200
    # the pool's connections that were abandoned mid-query came back or were replaced
    for _ in range(20):
        assert httpx.get(f"{base}/sessions", timeout=10).status_code == 200
    assert "database not answering" in log_path.read_text()


def test_a_killed_embedded_database_is_started_again(embedded_server) -> None:
    base, cluster, log_path = embedded_server
    pid = cluster.status().pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    # Nothing restarts devlog: the server notices and starts its cluster again. (Its backends
    # may answer a last query or two before they notice their postmaster is gone.)
    _poll(base, "/readyz", 503, 30)
    _poll(base, "/readyz", 200, 90)
    status = cluster.status()
    assert status.running and status.pid != pid
    page = httpx.get(f"{base}/sessions", timeout=10)
    assert page.status_code == 200, (page.text, log_path.read_text())
    text = log_path.read_text()
    assert "embedded PostgreSQL is not running; starting it again (attempt 1 of 8)" in text
    assert "embedded PostgreSQL started again" in text


def test_a_database_port_that_refuses_connections_fails_at_once() -> None:
    # The connect timeout is a minute: a refused port must not wait for it.
    env = subprocess_env(DEVLOG_DATABASE_URL="postgresql://devlog:pw@127.0.0.1:1/devlog",
                         DEVLOG_DB_CONNECT_TIMEOUT="60")
    t0 = time.monotonic()
    result = subprocess.run(devlog_cmd("serve", "--port", str(free_port())), env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - t0
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "devlog: cannot connect to database postgresql://devlog:***@127.0.0.1:1/devlog: "
        "connection refused (is PostgreSQL running there?)")
    assert elapsed < 30, f"gave up after {elapsed:.1f} s, as if waiting for the 60 s timeout"


async def test_backfill_through_every_fault_stores_each_event_once(tmp_path: Path) -> None:
    """A backfill of over 50,000 events while the server is SIGKILLed and started again, its
    embedded PostgreSQL is SIGKILLed (and started again by the server) and SIGSTOPped for 20 s,
    and the collector is SIGKILLed: afterwards the stored event ids are exactly the logs' ids."""
    import asyncpg

    from tests.agent_logs import claude_session, expected_claude
    from tests.e2e.test_collector import collect, expected_ids

    home = tmp_path / "home"
    projects = home / ".claude" / "projects" / "-faults"
    projects.mkdir(parents=True)
    sessions, turns = 40, 160
    for n in range(sessions):
        (projects / f"s-{n}.jsonl").write_bytes(claude_session(f"fault-{n}", turns))
    want = expected_ids(home)
    assert len(want) == sum(expected_claude(sessions, turns).values()) >= 50_000

    data_dir = traversable_tmpdir("devlog-faults-") / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cluster = EmbeddedPostgres(data_dir)
    log_path = tmp_path / "serve.log"

    def start_server() -> subprocess.Popen:
        proc = subprocess.Popen(devlog_cmd("serve", "--port", str(port)),
                                env=subprocess_env(DEVLOG_DATA_DIR=str(data_dir)),
                                stdout=log_path.open("a"), stderr=subprocess.STDOUT)
        _poll(base, "/readyz", 200, 120)
        return proc

    def backfill() -> subprocess.Popen:
        return collect(home, port, "backfill", DEVLOG_COLLECTOR_BATCH_SIZE="200",
                       DEVLOG_COLLECTOR_WORKERS="1")

    async def stored_count() -> int:
        conn = await asyncpg.connect(cluster.url())
        try:
            return await conn.fetchval("SELECT count(*) FROM agent_event")
        finally:
            await conn.close()

    async def until_stored(more_than: int) -> None:  # wait for delivery to make progress
        deadline = time.monotonic() + 120
        while await stored_count() <= more_than:
            assert time.monotonic() < deadline, "no progress"
            await __import__("asyncio").sleep(0.2)

    server = start_server()
    collector = backfill()
    try:
        await until_stored(0)
        server.send_signal(signal.SIGKILL)  # 1. the server dies mid-backfill
        server.wait(30)
        server = start_server()
        await until_stored(await stored_count())
        os.kill(cluster.status().pid, signal.SIGKILL)  # 2. its database dies
        _poll(base, "/readyz", 200, 90)  # ... and the server starts it again
        await until_stored(await stored_count())
        pid = cluster.status().pid
        _signal_tree(pid, signal.SIGSTOP)  # 3. the database hangs for 20 s
        await __import__("asyncio").sleep(20)
        _signal_tree(pid, signal.SIGCONT)
        _poll(base, "/readyz", 200, 60)
        print("stored before the collector is killed:", await stored_count(), "of", len(want),
              "collector running:", collector.poll() is None)
        if collector.poll() is None:  # 4. the collector dies
            collector.send_signal(signal.SIGKILL)
        collector.communicate(timeout=60)
        for _ in range(10):  # backfill again until it has delivered everything
            collector = backfill()
            _out, err = collector.communicate(timeout=600)
            if collector.returncode == 0:
                break
        assert collector.returncode == 0, err
        conn = await asyncpg.connect(cluster.url())
        try:
            ids = [str(r["id"]) for r in await conn.fetch("SELECT id FROM agent_event")]
            counted = await conn.fetchval("SELECT sum(event_count) FROM agent_session")
        finally:
            await conn.close()
        assert len(ids) == len(set(ids))
        missing, extra = want - set(ids), set(ids) - want
        assert not missing and not extra, (len(missing), len(extra))
        assert counted == len(want)
    finally:
        if collector.poll() is None:
            collector.kill()
        _shut_down(server, cluster)
