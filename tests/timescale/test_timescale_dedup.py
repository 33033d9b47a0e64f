"""Event ids unique on a hypertable (whose unique keys must include ``ts``): the ``event_key``
table, run on PGlite + TimescaleDB 2.23 — ingest's statements (the same id with another ts is
stored once, in compressed chunks too), a revision's statements (the old row out, the new one in,
the sessions unrolled, the continuous aggregates re-materialised), migration 0008 on a
hypertable holding duplicates, and retention forgetting the keys of dropped chunks."""

from __future__ import annotations

import pytest

from app.db import rollups
from app.ingest import revision_statements as rev
from app.db import timescale
from app.ingest.records import group
from app.ingest.session_rollups import file_columns, rollup, rollup_args
from app.ingest.statements import (EVENT_COLUMNS, INSERT_EVENTS, INSERT_KEYED_EVENTS, ROLLUP,
                                   STAGING_DDL)
from app.jobs.retention import _FORGET_KEYS
from migrations.devlog_0001_core_model import DDL as CORE_DDL
from migrations.devlog_0008_event_id_unique import EVENT_KEY_DDL, merge_duplicates_sql
from tests.timescale.pglite import PGlite, assert_same_rows
from tests.timescale.seed import CONTEXT_SQL, SESSION_FILE_DDL, events_sql, schema_sql

pytestmark = pytest.mark.slow

COMPRESS_OLD = ("SELECT count(compress_chunk(c)) FROM show_chunks('agent_event', "
                "older_than => timestamptz '2026-01-03') AS c")


def staged(sql: str) -> str:
    return sql.replace("INSERT INTO agent_event", "INSERT INTO ingest_staging")


def moved(tag: str, count: int, shift: str, extra: str = "") -> str:
    """The events ``events_sql(tag=tag, count=count)`` made (same ids), ``shift`` later."""
    return staged(events_sql(count=count, tag=tag)).replace(
        "+ i * INTERVAL '7 minutes'", f"+ i * INTERVAL '7 minutes' + INTERVAL '{shift}'{extra}")


def test_same_id_with_another_ts_is_stored_once(pglite: PGlite) -> None:
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=300)])
    assert pglite.value(COMPRESS_OLD) == 2
    again = moved("pre", 320, "3 days")  # 300 stored (some compressed) + 20 new, other chunks
    results = pglite.run([{"sql": "BEGIN"}, {"sql": STAGING_DDL}, {"sql": again},
                          {"sql": INSERT_KEYED_EVENTS, "expect": "rows"}, {"sql": "COMMIT"}])
    assert len(results[3]["rows"]) == 20
    assert pglite.value("SELECT count(*) FROM agent_event") == 320
    assert pglite.value("SELECT count(DISTINCT id) FROM agent_event") == 320
    assert_same_rows(pglite, "SELECT id, ts, revision FROM event_key",
                     "SELECT id, ts, revision FROM agent_event")
    # Why event_key: the hypertable's own key, (id, ts), would have taken them all again.
    results = pglite.run([{"sql": "BEGIN"}, {"sql": STAGING_DDL}, {"sql": again},
                          {"sql": INSERT_EVENTS, "expect": "rows"}, {"sql": "ROLLBACK"}])
    assert len(results[3]["rows"]) == 300
    # ingest's first try, COPY into event_key, fails on a stored id (the batch is then retried
    # through INSERT_KEYED_EVENTS)
    failed = pglite.error("INSERT INTO event_key (id, ts) SELECT id, ts + INTERVAL '1 day' "
                          "FROM agent_event LIMIT 1")
    assert failed.error["code"] == "23505"


def test_a_revision_replaces_the_row_and_unrolls_its_session(pglite: PGlite) -> None:
    """The revision path's statements on a hypertable with compressed chunks and devlog's
    continuous aggregates: one row per id with the new values, the session rollups without
    the old rows (the writer then adds the new ones like new events), event_key following,
    and the aggregates equal to the direct GROUP BY once refreshed."""
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=300)])
    pglite.execute(SESSION_ROLLUPS_FROM_RAW, FILES_FROM_RAW)
    for r in rollups.ROLLUPS:
        pglite.execute(*rollups.timescale_ddl(r))
        refresh(pglite, r.name, r.daily)
    assert pglite.value(COMPRESS_OLD) == 2
    # revision 1 of 60 events (the first 24 h: in the compressed chunk): other tokens, model,
    # cost and duration, 5 hours later
    new = moved("pre", 60, "5 hours").replace(
        "(i % 11) * 0.00125\n", "(i % 11) * 0.00125 + 1, 1\n").replace(
        "tool_name, cost_usd)", "tool_name, cost_usd, revision)").replace(
        "i * 10, i % 17,", "i * 10 + 1, i % 17 + 100,")
    steps = [{"sql": "BEGIN"}, {"sql": STAGING_DDL}, {"sql": new},
             {"sql": INSERT_KEYED_EVENTS, "expect": "rows"},
             {"sql": "SELECT array_agg(id ORDER BY id) AS ids FROM ingest_staging", "expect": "rows"}]
    results = pglite.run(steps)
    assert results[3]["rows"] == []  # all stored already
    ids = results[4]["rows"][0]["ids"]
    stored = pglite.query(rev.STORED_KEYED, ids)
    assert len(stored) == 60 and {s["revision"] for s in stored} == {0}
    pglite.run([
        {"sql": rev.REMOVED_DDL},
        {"sql": rev.REMOVE, "params": [ids, [s["ts"] for s in stored]], "expect": "rows"},
        {"sql": rev.REPLACE, "params": [ids], "expect": "rows"},
        {"sql": rev.REPLACE_KEYS, "params": [ids], "expect": "rows"},
        {"sql": rev.UNROLL},
    ])
    # then, as for new events, ROLLUP adds the new versions to their sessions
    new_rows = pglite.query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM agent_event WHERE revision = 1")
    records = [tuple(row[c] for c in EVENT_COLUMNS) for row in new_rows]
    files: dict = {}
    added = {sid: rollup(g, files) for sid, g in group(sorted(records)).items()}
    pglite.run([{"sql": ROLLUP, "params": [*file_columns(files), *rollup_args(added)],
                 "expect": "rows"}, {"sql": "COMMIT"}])
    assert pglite.value("SELECT count(*) FROM agent_event") == 300
    assert pglite.value("SELECT count(*) FROM agent_event WHERE revision = 1") == 60
    assert pglite.value("SELECT count(*) FROM agent_event WHERE revision = 1 AND tokens_output >= 100"
                        " AND ts >= '2026-01-01 05:00'") == 60
    assert_same_rows(pglite, "SELECT id, ts, revision FROM event_key",
                     "SELECT id, ts, revision FROM agent_event")
    assert_same_rows(pglite, SESSIONS, SESSIONS_RAW)
    assert_same_rows(pglite, FILES, FILES_RAW)
    for r in rollups.ROLLUPS:
        refresh(pglite, r.name, r.daily)
        direct = r.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS)
        assert_same_rows(pglite, f"SELECT * FROM {r.name}", direct)
        assert_same_rows(pglite, f"SELECT * FROM {r.daily}",
                         r.reaggregate(rollups.TIMESCALE_DAY, f"({direct}) AS h"))


def test_migration_merges_duplicates_on_a_hypertable(pglite: PGlite) -> None:
    """A hypertable written before 0008 holding copies of events with other timestamps (some in
    compressed chunks): one row per id is left (the one ingested last), event_key holds them,
    and the sessions count each event once."""
    copies = events_sql(count=300, tag="pre").replace(
        "+ i * INTERVAL '7 minutes'", "+ i * INTERVAL '7 minutes' + INTERVAL '2 days 1 hour'").replace(
        "FROM generate_series(1, 300) AS i", "FROM generate_series(1, 300) AS i WHERE i % 4 = 0")
    pglite.run([{"sql": s} for s in (CORE_DDL, SESSION_FILE_DDL, CONTEXT_SQL,
                                     events_sql(count=300, tag="pre"),
                                     timescale.CREATE_EXTENSION_SQL, timescale.hypertable_sql("1 day"),
                                     timescale.compression_policy_sql("7 days"))])
    pglite.execute("UPDATE agent_event SET ingested_at = now() - INTERVAL '1 hour'", copies)
    pglite.execute(SESSION_ROLLUPS_FROM_RAW, FILES_FROM_RAW)  # as ingest counted them: every copy
    assert pglite.value(COMPRESS_OLD) == 2
    assert pglite.value("SELECT count(*) FROM agent_event") == 375
    last = pglite.query("SELECT DISTINCT ON (id) id, ts FROM agent_event "
                        "ORDER BY id, ingested_at DESC, ts DESC")
    pglite.run([{"sql": "BEGIN"}, *({"sql": s} for s in merge_duplicates_sql()),
                {"sql": EVENT_KEY_DDL}, {"sql": "COMMIT"}])  # one transaction, as migrations run
    assert_same_rows(pglite, "SELECT id, ts FROM agent_event",
                     "SELECT id, ts FROM (VALUES " + ", ".join(
                         f"('{r['id']}'::uuid, '{r['ts']}'::timestamptz)" for r in last) + ") AS v(id, ts)")
    assert pglite.value("SELECT count(*) FROM agent_event WHERE ts >= '2026-01-03'") == 75
    assert_same_rows(pglite, "SELECT id, ts, revision FROM event_key",
                     "SELECT id, ts, revision FROM agent_event")
    assert_same_rows(pglite, SESSIONS, SESSIONS_RAW)
    assert_same_rows(pglite, FILES, FILES_RAW)


def test_retention_forgets_the_keys_of_dropped_chunks(pglite: PGlite) -> None:
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=1000)])
    pglite.execute(COMPRESS_OLD)
    pglite.run([{"sql": "BEGIN"},
                {"sql": _FORGET_KEYS, "params": ["2026-01-03T00:00:00Z"], "expect": "rows"},
                {"sql": "SELECT drop_chunks('agent_event', older_than => timestamptz '2026-01-03')",
                 "expect": "rows"},
                {"sql": "COMMIT"}])
    assert pglite.value("SELECT min(ts) >= '2026-01-03' FROM agent_event") is True
    assert_same_rows(pglite, "SELECT id, ts FROM event_key", "SELECT id, ts FROM agent_event")


def refresh(db: PGlite, *caggs: str) -> None:
    db.run([{"sql": f"CALL refresh_continuous_aggregate('{c}', NULL, NULL)"} for c in caggs])


# The seed's sessions and files with rollups counted from their raw events (what ingest keeps).
SESSIONS_RAW = """
SELECT s.id, count(e.id) AS event_count, count(e.id) FILTER (WHERE e.kind = 'llm_call') AS llm,
       count(e.id) FILTER (WHERE e.kind = 'tool_call') AS tools,
       coalesce(sum(e.tokens_input), 0)::bigint AS t_in,
       coalesce(sum(e.tokens_output), 0)::bigint AS t_out,
       sum(e.cost_usd) AS cost, min(e.ts) AS first, max(e.ts) AS last,
       coalesce(jsonb_agg(DISTINCT e.model ORDER BY e.model)
                FILTER (WHERE e.kind = 'llm_call' AND e.model <> ''), '[]') AS models
FROM agent_session s LEFT JOIN agent_event e ON e.session_id = s.id
GROUP BY s.id
"""
SESSIONS = """
SELECT id, event_count, llm_call_count AS llm, tool_call_count AS tools, tokens_input AS t_in,
       tokens_output AS t_out, cost_usd AS cost, started_at AS first, last_event_at AS last, models
FROM agent_session
"""
SESSION_ROLLUPS_FROM_RAW = f"""
UPDATE agent_session s SET event_count = r.event_count, llm_call_count = r.llm,
       tool_call_count = r.tools, tokens_input = r.t_in, tokens_output = r.t_out, cost_usd = r.cost,
       started_at = r.first, last_event_at = r.last, models = r.models
FROM ({SESSIONS_RAW}) r WHERE s.id = r.id
"""
FILES_RAW = """
SELECT session_id, file_path AS path, min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS touches
FROM agent_event WHERE file_path <> '' GROUP BY 1, 2
"""
FILES = "SELECT session_id, path, first_ts, last_ts, touches FROM session_file"
# The seed has no file paths: its tool names stand in for them (not in the new versions).
FILES_FROM_RAW = f"""
UPDATE agent_event SET file_path = tool_name;
INSERT INTO session_file (session_id, path, first_ts, last_ts, touches)
{FILES_RAW}
"""
