"""Migrations apply to an empty database, are idempotent, serialise across processes, and
leave a schema that matches the Piccolo tables."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg

from app.db.tables import TABLES
from tests.helpers import devlog_cmd, subprocess_env


def _migrate_cmd(url: str) -> subprocess.Popen:
    return subprocess.Popen(devlog_cmd("db", "migrate"), env=subprocess_env(DEVLOG_DATABASE_URL=url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _schema(url: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT table_name, column_name, data_type, is_nullable, column_default
               FROM information_schema.columns WHERE table_schema = 'public'
               ORDER BY table_name, ordinal_position""")
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


async def test_two_processes_migrate_an_empty_database_once(fresh_database) -> None:
    url = await fresh_database()
    procs = [_migrate_cmd(url), _migrate_cmd(url)]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = sorted(out for out, _ in outputs)
    # exactly one of them applied the migrations; the other found nothing to do
    assert stdout[0].startswith("applied"), stdout
    assert stdout[1].strip() == "migrations: up to date", stdout

    before = await _schema(url)
    again = _migrate_cmd(url)
    out, err = await asyncio.to_thread(again.communicate, timeout=120)
    assert again.returncode == 0 and out.strip() == "migrations: up to date", err
    assert await _schema(url) == before


async def test_tables_match_the_migrated_schema(database_url: str) -> None:
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type, *_ in await _schema(database_url):
        columns.setdefault(table, {})[column] = data_type
    for table in TABLES:
        name = table._meta.tablename
        assert name in columns, f"table {name} missing"
        for col in table._meta.columns:
            db_name = col._meta.db_column_name
            assert db_name in columns[name], f"{name}.{db_name} declared but not migrated"
            expected = col.column_type.lower()
            actual = columns[name][db_name]
            assert _compatible(expected, actual), f"{name}.{db_name}: {expected} vs {actual}"
        extra = set(columns[name]) - {c._meta.db_column_name for c in table._meta.columns}
        assert not extra, f"{name}: columns {extra} migrated but not declared"


def _compatible(piccolo_type: str, pg_type: str) -> bool:
    aliases = {
        "varchar": "character varying", "timestamptz": "timestamp with time zone",
        "uuid": "uuid", "text": "text", "bigint": "bigint", "integer": "integer",
        "boolean": "boolean", "jsonb": "jsonb", "numeric": "numeric",
    }
    base = piccolo_type.split("(")[0].strip()
    return aliases.get(base, base) == pg_type


async def test_event_primary_key_is_the_id(database_url: str) -> None:
    # plain PostgreSQL: the id alone (TimescaleDB keeps (id, ts) and adds event_key: tests/timescale)
    conn = await asyncpg.connect(database_url)
    try:
        cols = await conn.fetch(
            """SELECT a.attname FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = 'agent_event'::regclass AND i.indisprimary""")
        indexes = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'agent_event'")}
    finally:
        await conn.close()
    assert {r["attname"] for r in cols} == {"id"}
    assert {"agent_event_ts_idx", "agent_event_session_idx"} <= indexes


def test_migrate_against_unreachable_database_is_one_clear_line() -> None:
    url = "postgresql://devlog:hunter2@127.0.0.1:1/devlog"
    result = subprocess.run(devlog_cmd("db", "migrate"), capture_output=True, text=True,
                            env=subprocess_env(DEVLOG_DATABASE_URL=url, DEVLOG_DB_CONNECT_TIMEOUT="1"),
                            timeout=60, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("devlog: cannot connect to database postgresql://devlog:***@127.0.0.1:1/devlog")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
