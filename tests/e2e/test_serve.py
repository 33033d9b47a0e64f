"""`devlog serve` as a user runs it: a subprocess, real HTTP, a real WebSocket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import httpx
import pytest
import websockets

from app.db.embedded import EmbeddedPostgres
from tests.helpers import devlog_cmd, free_port, subprocess_env, traversable_tmpdir


def _wait_ready(proc: subprocess.Popen, base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"devlog serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("devlog serve did not become ready")


async def test_serve_on_the_embedded_database_then_stop_it() -> None:
    home = traversable_tmpdir("devlog-home-")
    data_dir = home / ".local" / "share" / "devlog"
    port = free_port()
    env = subprocess_env(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
                         XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("DEVLOG_CONFIG", None)
    proc = subprocess.Popen(devlog_cmd("serve", "--port", str(port)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base)
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.post("/graphql", json={"query": "{ health { database embedded storage } }"})
        assert response.json() == {"data": {"health": {"database": "ok", "embedded": True,
                                                       "storage": "postgresql"}}}

        async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            await ws.send(json.dumps({"id": "h", "type": "subscribe",
                                      "payload": {"query": "subscription { health { database } }"}}))
            message = json.loads(await ws.recv())
            assert message == {"id": "h", "type": "next", "payload": {"data": {"health": {"database": "ok"}}}}

        cluster = EmbeddedPostgres(data_dir)  # the default data dir under $HOME was used
        status = cluster.status()
        assert status.running and not status.manual
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read()
    assert not cluster.status().running
    assert not (cluster.pgdata / "postmaster.pid").exists()
    try:
        os.kill(status.pid, 0)
    except ProcessLookupError:
        pass
    else:
        pytest.fail(f"postmaster {status.pid} still alive")


def _serve_fails(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(devlog_cmd("serve", *args), env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve_fails(subprocess_env(DEVLOG_DATABASE_URL="postgresql://x:y@127.0.0.1:1/z"),
                              "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"devlog: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(another devlog serve? choose one with --port or DEVLOG_PORT)")
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line_with_password_masked() -> None:
    env = subprocess_env(DEVLOG_DATABASE_URL="postgresql://devlog:s3cr3t@127.0.0.1:1/devlog",
                         DEVLOG_DB_CONNECT_TIMEOUT="1")
    result = _serve_fails(env, "--port", str(free_port()))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("devlog: cannot connect to database postgresql://devlog:***@127.0.0.1:1/devlog")
    assert "s3cr3t" not in result.stderr and "Traceback" not in result.stderr


def test_bad_setting_is_one_clear_line() -> None:
    result = _serve_fails(subprocess_env(DEVLOG_PORT="http"))
    assert result.returncode == 2
    assert result.stderr.strip() == "devlog: setting port (DEVLOG_PORT): Expected `int`, got `str`"


def test_listening_socket_disables_nagle() -> None:
    # Connections accepted from it inherit TCP_NODELAY; without it kept-alive clients wait ~40 ms
    # on delayed ACKs for every request.
    from app.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
