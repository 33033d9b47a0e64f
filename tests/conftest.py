"""Shared fixtures: a real PostgreSQL, a per-run database, a real HTTP server.

PostgreSQL: ``$DEVLOG_TEST_ADMIN_URL``, else ``127.0.0.1:5432`` (user postgres) when it answers,
else a private embedded cluster started for the run. Each run gets its own database, created
and migrated at the start and dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn

# An explicit server for the tests' databases (an admin URL), read before the clean-up below.
TEST_ADMIN_URL = os.environ.get("DEVLOG_TEST_ADMIN_URL")

# Isolate every test from the developer's own devlog configuration and environment.
for _name in list(os.environ):
    if _name.startswith("DEVLOG_") or _name == "DATABASE_URL":
        del os.environ[_name]
os.environ["DEVLOG_CONFIG"] = str(Path(tempfile.gettempdir()) / "devlog-tests-no-config.toml")

from app.db import engine  # noqa: E402
from app.db.embedded import EmbeddedPostgres  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from app.lifespan import Database  # noqa: E402
from app.server import bind_socket  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.helpers import traversable_tmpdir, with_database  # noqa: E402

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    if TEST_ADMIN_URL:
        yield TEST_ADMIN_URL
        return
    if asyncio.run(_answers(LOCAL_ADMIN_URL)):
        yield LOCAL_ADMIN_URL
        return
    cluster = EmbeddedPostgres(traversable_tmpdir("devlog-test-pg-"))
    url, _ = cluster.start()
    try:
        yield with_database(url, "postgres")
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def fresh_database(pg_admin_url: str):
    """Factory: create an empty database; all are dropped at the end of the run."""
    created: list[str] = []

    async def create() -> str:
        name = f"devlog_test_{os.getpid()}_{secrets.token_hex(4)}"
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return with_database(pg_admin_url, name)

    yield create

    async def drop_all() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            for name in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop_all())


@pytest.fixture(scope="session")
async def database_url(fresh_database) -> str:
    """The run's migrated database (shared by the in-process server and service tests)."""
    url = await fresh_database()
    engine.configure(url)
    try:
        await migrate()
    finally:
        await engine.close_pool()
    return url


@pytest.fixture(scope="session")
async def server(database_url: str) -> AsyncIterator[str]:
    """The real app on a real uvicorn, in this process, on a free port. Yields its base URL."""
    from app.asgi import create_app

    settings = load_settings(database_url=database_url)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(settings, Database(url=database_url, embedded=False))
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False,
                            log_level="warning")
    srv = uvicorn.Server(config)
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    for _ in range(200):
        if srv.started or task.done():
            break
        await asyncio.sleep(0.05)
    if not srv.started:
        raise RuntimeError("in-process server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    # TCP_NODELAY: httpx writes headers and body separately; Nagle + delayed ACK would add
    # ~40 ms to every request on the kept-alive connection.
    transport = httpx.AsyncHTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(base_url=server, timeout=30, transport=transport) as c:
        yield c
