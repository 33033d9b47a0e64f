"""Migration 0008 on a database written before it: events stored twice (same id, another ts)
are merged — one row per id, the one ingested last — and the sessions, their files and the
analytics rollups then count each event once (compared with GROUP BYs over the raw events)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg

from app.db import rollups
from app.ingest.identity import session_id
from migrations.devlog_0008_event_id_unique import ID as MIGRATION_ID
from tests.helpers import devlog_cmd, subprocess_env
from tests.revision_scenarios import check_sessions

AGENT = "old-agent"
START = datetime(2024, 3, 4, 8, tzinfo=UTC)


def _migrate(url: str) -> str:
    done = subprocess.run(devlog_cmd("db", "migrate"), env=subprocess_env(DEVLOG_DATABASE_URL=url),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _events(rng: random.Random, natives: list[str]) -> list[tuple]:
    rows = []
    for i in range(400):
        native = rng.choice(natives)
        kind = rng.choice(["llm_call", "llm_call", "tool_call", "tool_result", "user_prompt",
                           "assistant_message"])
        llm = kind == "llm_call"
        tool = kind in ("tool_call", "tool_result")
        rows.append((
            uuid.uuid5(uuid.NAMESPACE_URL, f"old/{i}"), START + timedelta(minutes=rng.randrange(600)),
            session_id(AGENT, native), i, kind, AGENT,
            rng.choice(["claude-sonnet-4-5", "mystery"]) if llm else None,
            rng.randrange(100) if llm else None, rng.randrange(1000) if llm else None,
            (round(rng.random(), 4) if rng.random() < 0.7 else None) if llm else None,
            rng.randrange(5000) if llm or kind == "tool_result" else None,
            rng.choice(["ok", "error"]) if kind == "tool_result" else None,
            rng.choice(["/a.py", "/b.py"]) if tool else None,
            rng.randrange(9) if kind == "tool_result" else None,
            f"prompt {i}" if kind == "user_prompt" else None))
    return rows


COLUMNS = ["id", "ts", "session_id", "seq", "kind", "agent", "model", "tokens_input",
           "tokens_output", "cost_usd", "duration_ms", "status", "file_path", "lines_added",
           "content"]


async def _write_as_before_0008(url: str, rng: random.Random) -> list[str]:
    """The schema before 0008 (primary key (id, ts), no revision, rollup tables without their
    plain-only counts) holding events some of which were stored twice with another ts, and
    sessions, files and rollups counted as ingest then counted them: every copy."""
    natives = [f"old-{n}" for n in range(3)]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("""
            ALTER TABLE agent_event DROP CONSTRAINT agent_event_pkey;
            ALTER TABLE agent_event ADD PRIMARY KEY (id, ts);
            ALTER TABLE agent_event DROP COLUMN revision;""")
        for r in rollups.ROLLUPS:
            for name in (r.name, r.daily):
                for col, _ in r.plain_only:
                    await conn.execute(f"ALTER TABLE {name} DROP COLUMN {col}")
        await conn.execute("DELETE FROM migration WHERE name = $1", MIGRATION_ID)
        for native in natives:
            await conn.execute(
                "INSERT INTO agent_session (id, agent, native_id, title) VALUES ($1, $2, $3, $4)",
                session_id(AGENT, native), AGENT, native, None)
        events = _events(rng, natives)
        copies = [(e[0], e[1] + timedelta(minutes=rng.choice([-90, 7, 300])), *e[2:])
                  for e in rng.sample(events, 120)]
        copies += [(e[0], e[1] + timedelta(hours=2), *e[2:]) for e in copies[:30]]  # 3 copies
        await conn.copy_records_to_table("agent_event", records=events, columns=COLUMNS)
        await conn.copy_records_to_table("agent_event", records=copies, columns=COLUMNS)
        # as ingest counted them (every copy), and rolled up (the watermark after them)
        await conn.execute("""
            UPDATE agent_session s SET event_count = r.n, llm_call_count = r.llm, tokens_output = r.t_out,
                   tokens_input = r.t_in, cost_usd = r.cost, started_at = r.first, last_event_at = r.last,
                   tool_call_count = r.tools, prompt_count = r.prompts, tool_error_count = r.errors,
                   models = r.models, files_touched = r.files
            FROM (SELECT session_id, count(*) AS n, count(*) FILTER (WHERE kind = 'llm_call') AS llm,
                         count(*) FILTER (WHERE kind = 'tool_call') AS tools,
                         count(*) FILTER (WHERE kind = 'user_prompt') AS prompts,
                         count(*) FILTER (WHERE status = 'error') AS errors,
                         coalesce(sum(tokens_output), 0) AS t_out, coalesce(sum(tokens_input), 0) AS t_in,
                         sum(cost_usd) AS cost, min(ts) AS first, max(ts) AS last,
                         count(DISTINCT file_path) AS files,
                         coalesce(jsonb_agg(DISTINCT model) FILTER (WHERE kind = 'llm_call' AND model <> ''),
                                  '[]') AS models
                  FROM agent_event GROUP BY 1) r WHERE s.id = r.session_id;
            INSERT INTO session_file (session_id, path, first_ts, last_ts, touches, lines_added, lines_removed)
            SELECT session_id, file_path, min(ts), max(ts), count(*), coalesce(sum(lines_added), 0), 0
            FROM agent_event WHERE file_path <> '' GROUP BY 1, 2;
            INSERT INTO job_state (name, watermark) VALUES ('rollups', now());""")
        titles = await conn.fetch("""SELECT DISTINCT ON (session_id) session_id, content FROM agent_event
                                     WHERE kind = 'user_prompt' ORDER BY session_id, ts""")
        for t in titles:
            await conn.execute("UPDATE agent_session SET title = $2 WHERE id = $1", t[0], t[1])
        for r in rollups.ROLLUPS:
            columns = ", ".join(r.columns)
            await conn.execute(f"INSERT INTO {r.name} ({columns}) {r.select(rollups.PLAIN_BUCKET)}")
            await conn.execute(f"INSERT INTO {r.daily} ({columns}) {r.reaggregate(rollups.PLAIN_DAY, r.name)}")
        assert await conn.fetchval("SELECT count(*) FROM agent_event") == 400 + 150
    finally:
        await conn.close()
    return natives


async def test_stored_duplicates_are_merged(fresh_database) -> None:
    url = await fresh_database()
    await asyncio.to_thread(_migrate, url)
    rng = random.Random(8)
    natives = await _write_as_before_0008(url, rng)
    conn = await asyncpg.connect(url)
    try:
        last = {r["id"]: r["ts"] for r in await conn.fetch(
            "SELECT DISTINCT ON (id) id, ts FROM agent_event ORDER BY id, ingested_at DESC, ts DESC")}
        ingested = await conn.fetch("SELECT id, ts, ingested_at FROM agent_event")
        assert len({r["ingested_at"] for r in ingested}) == 2  # the copies came later
    finally:
        await conn.close()

    out = await asyncio.to_thread(_migrate, url)
    assert MIGRATION_ID in out

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, ts, revision FROM agent_event")
        assert len(rows) == 400 and Counter(r["id"] for r in rows).most_common(1)[0][1] == 1
        assert {r["id"]: r["ts"] for r in rows} == last  # the copy ingested last is kept
        assert {r["revision"] for r in rows} == {0}
        key = await conn.fetch("""SELECT a.attname FROM pg_index i JOIN pg_attribute a
                                  ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                                  WHERE i.indrelid = 'agent_event'::regclass AND i.indisprimary""")
        assert [k["attname"] for k in key] == ["id"]
        await check_sessions(conn, AGENT, natives)
        # the rollups: exactly the GROUP BY of the events before the watermark (all of them)
        for r in rollups.ROLLUPS:
            columns = ", ".join(r.plain_columns)
            want = await conn.fetch(f"SELECT {columns} FROM ({r.select(rollups.PLAIN_BUCKET, plain=True)}) x")
            got = await conn.fetch(f"SELECT {columns} FROM {r.name}")
            assert Counter(map(tuple, got)) == Counter(map(tuple, want)), r.name
            want_days = await conn.fetch(
                f"SELECT {columns} FROM ({r.reaggregate(rollups.PLAIN_DAY, r.name, plain=True)}) x")
            got_days = await conn.fetch(f"SELECT {columns} FROM {r.daily}")
            assert Counter(map(tuple, got_days)) == Counter(map(tuple, want_days)), r.daily
        with_cost = await conn.fetchval("SELECT count(*) FROM usage_hourly WHERE priced > 0")
        assert with_cost > 0
    finally:
        await conn.close()
