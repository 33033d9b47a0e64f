"""Fixtures for the TimescaleDB SQL tests: PGlite + TimescaleDB under Node (see pglite.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.timescale.pglite import PGlite, PGliteServer, harness_or_skip


@pytest.fixture(scope="session")
def pglite_server() -> Iterator[PGliteServer]:
    """One ``node run_sql.mjs --serve`` for the session (skips when Node/npm are missing)."""
    server = PGliteServer(harness_or_skip())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pglite(pglite_server: PGliteServer) -> Iterator[PGlite]:
    """An empty in-memory database with the timescaledb extension, for one test."""
    db = pglite_server.database("test")
    yield db
    db.run([], drop=True)
