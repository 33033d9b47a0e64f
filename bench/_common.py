"""Shared bench helpers: a scratch database, waiting for a server, printing tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def scratch_database(prefix: str = "devlog_bench") -> Iterator[str]:
    """A throw-away database on $DEVLOG_BENCH_ADMIN_URL (default: local PostgreSQL)."""
    admin = os.environ.get("DEVLOG_BENCH_ADMIN_URL", LOCAL_ADMIN_URL)
    name = f"{prefix}_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait_ready(url: str, timeout: float = 120.0, proc=None) -> float:  # noqa: ANN001
    """Poll until GET url answers 200; returns the seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc, timeout: float = 60.0) -> None:  # noqa: ANN001
    """SIGTERM (a clean shutdown), then SIGKILL if it has not exited within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
