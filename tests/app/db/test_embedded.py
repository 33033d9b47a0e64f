"""The embedded PostgreSQL: concurrent starts, hand-managed lifetime, last-user-stops."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import asyncpg
import pytest

from app.db.embedded import ROOT_FALLBACK_DIR, EmbeddedPostgres
from tests.helpers import devlog_cmd, subprocess_env, traversable_tmpdir


def _db(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(devlog_cmd("db", *args), capture_output=True, text=True, timeout=180,
                          env=subprocess_env(DEVLOG_DATA_DIR=str(data_dir)), check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def test_concurrent_starts_share_one_cluster_and_db_commands_manage_it() -> None:
    data_dir = traversable_tmpdir("devlog-emb-")
    procs = [subprocess.Popen(devlog_cmd("db", "start"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=subprocess_env(DEVLOG_DATA_DIR=str(data_dir)))
             for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outs = sorted(out for out, _ in results)
    assert outs[0].startswith("already running") and outs[1].startswith("started"), outs

    cluster = EmbeddedPostgres(data_dir)
    status = cluster.status()
    assert status.running and status.manual and status.port

    url = _db(data_dir, "url").stdout.strip()
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT current_database()") == "devlog"
    await conn.close()
    masked = _db(data_dir, "url", "--masked").stdout.strip()
    assert "***" in masked and cluster.password() not in masked

    st = _db(data_dir, "status")
    assert st.returncode == 0 and "running" in st.stdout and "migrations: 1 pending" in st.stdout

    # a server's use of a hand-started cluster does not stop it
    with cluster.in_use():
        pass
    assert cluster.status().running

    assert _db(data_dir, "stop").stdout.strip() == "stopped"
    assert not _alive(status.pid)
    assert not (cluster.pgdata / "postmaster.pid").exists()
    assert _db(data_dir, "status").returncode == 1


def test_the_last_user_stops_the_cluster() -> None:
    cluster = EmbeddedPostgres(traversable_tmpdir("devlog-emb-"))
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with cluster.in_use():
            first_in.set()
            second_in.wait(60)
        first_out.set()

    def second() -> None:
        first_in.wait(60)
        with cluster.in_use():
            second_in.set()
            first_out.wait(60)
            seen["running_after_first_left"] = cluster.status().running

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert seen == {"running_after_first_left": True}
    assert not cluster.status().running


def test_port_taken_by_someone_else_is_replaced() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        taken = blocker.getsockname()[1]
        cluster = EmbeddedPostgres(traversable_tmpdir("devlog-emb-"), preferred_port=taken)
        with cluster.in_use():
            port = cluster.status().port
            assert port and port != taken
    assert not cluster.status().running


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="root only")
def test_as_root_an_unreachable_data_dir_falls_back_to_var_lib() -> None:
    private = Path(tempfile.mkdtemp(prefix="devlog-private-"))  # 0700, owned by root
    cluster = EmbeddedPostgres(private)
    assert cluster.base == ROOT_FALLBACK_DIR / "postgres"
    assert cluster.account_name != "root"
