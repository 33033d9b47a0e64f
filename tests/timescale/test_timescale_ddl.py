"""devlog's TimescaleDB DDL, run on PGlite + TimescaleDB 2.23 (PostgreSQL 17 in WASM, Node).

Migration 0001's tables, the hypertable conversion and the compression policy of
``app.db.timescale``, the ingest INSERT, compression of chunks, the storage queries. PGlite has
no ``shared_preload_libraries`` and no background workers: the harness loads TimescaleDB into
each session itself, and policies are run with ``CALL run_job`` (the scheduler never does).
"""

from __future__ import annotations

import pytest

from app.db import timescale
from app.ingest.statements import INSERT_KEYED_EVENTS, STAGING_DDL
from tests.timescale.pglite import PGlite, PGliteServer
from tests.timescale.seed import SESSION_1, events_sql, schema_sql

pytestmark = pytest.mark.slow

EVENTS_BY_SESSION = """
SELECT session_id, count(*) AS n, sum(tokens_input) AS tokens, sum(cost_usd) AS cost,
       min(ts) AS first, max(ts) AS last, count(model) AS with_model
FROM agent_event GROUP BY session_id
"""


def compress_older_than(when: str) -> str:
    return (f"SELECT compress_chunk(c) AS chunk "
            f"FROM show_chunks('agent_event', older_than => timestamptz '{when}') AS c")


@pytest.fixture(scope="module")
def compressed(pglite_server: PGliteServer):
    """Rows inserted before the conversion and after it (1000 events over 5 days, then 2 days
    more; 1-day chunks), the compression policy, the chunks before 2026-01-03 compressed.
    Read-only."""
    db = PGlite(pglite_server, "ddl-compressed")
    db.run([{"sql": s} for s in schema_sql(events_before_conversion=1000)], fresh=True)
    db.execute(events_sql(start="2026-01-06 00:00:00+00", count=400, tag="post"))
    before = db.query(EVENTS_BY_SESSION)
    chunks = db.query(compress_older_than("2026-01-03 00:00:00+00"))
    yield db, before, chunks
    db.run([], drop=True)


def test_pglite_has_no_preloaded_timescaledb(pglite: PGlite) -> None:
    # The app's detection (timescale_loadable) would choose plain PostgreSQL here, so the tests
    # run the TimescaleDB statements themselves, as convert_agent_event_to_hypertable does.
    assert pglite.value(timescale.LOADABLE_SQL) is False
    assert pglite.value("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                        ).startswith("2.23")


def test_migration_converts_agent_event_with_its_rows(compressed) -> None:
    db, before, _ = compressed
    assert db.query(timescale.IS_HYPERTABLE_SQL) == [{"?column?": 1}]
    assert db.query("SELECT column_name, time_interval::text AS every "
                    "FROM timescaledb_information.dimensions "
                    "WHERE hypertable_name = 'agent_event'") == [
        {"column_name": "ts", "every": "1 day"}]
    # migrate_data: the 1000 rows inserted before the conversion (2026-01-01 .. 01-05) were
    # moved into chunks, one per day, plus the two days inserted after it.
    assert db.value("SELECT count(*) FROM ONLY agent_event") == 0
    days = db.query("SELECT range_start::date::text AS day FROM timescaledb_information.chunks "
                    "WHERE hypertable_name = 'agent_event' ORDER BY range_start")
    assert [d["day"] for d in days] == [f"2026-01-0{i}" for i in range(1, 8)]
    assert sum(r["n"] for r in before) == 1400


def test_hypertable_conversion_is_idempotent(compressed) -> None:
    db, _, _ = compressed
    db.execute(timescale.CREATE_EXTENSION_SQL, timescale.hypertable_sql("1 day"))
    assert db.value("SELECT count(*) FROM timescaledb_information.hypertables") == 1


def test_compression_settings_and_policy(compressed) -> None:
    db, _, _ = compressed
    settings = db.query("SELECT attname, segmentby_column_index AS seg, "
                        "orderby_column_index AS ord, orderby_asc AS asc "
                        "FROM timescaledb_information.compression_settings "
                        "WHERE hypertable_name = 'agent_event' ORDER BY attname")
    assert settings == [{"attname": "session_id", "seg": 1, "ord": None, "asc": None},
                        {"attname": "ts", "seg": None, "ord": 1, "asc": False}]
    jobs = db.query("SELECT config FROM timescaledb_information.jobs "
                    "WHERE proc_name = 'policy_compression' AND hypertable_name = 'agent_event'")
    assert [j["config"]["compress_after"] for j in jobs] == ["7 days"]


def test_compressed_chunks_read_back_the_same_rows(compressed) -> None:
    db, before, chunks = compressed
    assert len(chunks) == 2
    status = db.query("SELECT range_start::date::text AS day, is_compressed "
                      "FROM timescaledb_information.chunks "
                      "WHERE hypertable_name = 'agent_event' ORDER BY range_start")
    assert [s["is_compressed"] for s in status] == [True, True] + [False] * 5
    assert sorted(db.query(EVENTS_BY_SESSION), key=str) == sorted(before, key=str)
    # A per-session time range read from the compressed chunk (segmentby session_id).
    plan = "\n".join(r["QUERY PLAN"] for r in db.query(
        f"EXPLAIN SELECT * FROM agent_event WHERE session_id = '{SESSION_1}' "
        "AND ts < '2026-01-02'"))
    assert "compress_hyper_" in plan
    rows = db.query(f"SELECT seq FROM agent_event WHERE session_id = '{SESSION_1}' "
                    "AND ts < '2026-01-01 01:00' ORDER BY ts DESC")
    assert [r["seq"] for r in rows] == [6, 3]  # every 7 minutes, i % 3 = 0 -> session 1


def test_storage_info_queries(compressed) -> None:
    db, _, _ = compressed
    versions = db.query(timescale.VERSIONS_SQL)[0]
    assert versions["server_version"].startswith("17.")
    assert versions["ts_version"].startswith("2.23")
    stats = db.query("SELECT * FROM hypertable_compression_stats('agent_event')")[0]
    assert (stats["total_chunks"], stats["number_compressed_chunks"]) == (7, 2)
    assert stats["after_compression_total_bytes"] < stats["before_compression_total_bytes"]
    by_chunk = db.query("SELECT compression_status FROM chunk_compression_stats('agent_event')")
    assert sorted(c["compression_status"] for c in by_chunk) == ["Compressed"] * 2 + [
        "Uncompressed"] * 5
    size = db.query("SELECT * FROM hypertable_detailed_size('agent_event')")[0]
    assert size["total_bytes"] == db.value("SELECT hypertable_size('agent_event')") > 0
    ht = db.query("SELECT num_chunks, compression_enabled FROM timescaledb_information.hypertables")
    assert ht == [{"num_chunks": 7, "compression_enabled": True}]


def test_policy_statements_rerun_at_start_with_compressed_chunks(pglite: PGlite) -> None:
    # apply_policies runs at every start: the ALTER TABLE ... SET (timescaledb.compress ...)
    # must be accepted again once chunks are compressed, and a changed interval or none at all.
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=300)])
    pglite.execute(compress_older_than("2026-01-02 00:00:00+00"))
    for after in ("7 days", "3 days", None, "7 days"):
        pglite.execute(timescale.compression_policy_sql(after))
        jobs = pglite.query("SELECT config->>'compress_after' AS after "
                            "FROM timescaledb_information.jobs "
                            "WHERE proc_name = 'policy_compression'")
        assert jobs == ([{"after": after}] if after else [])


def test_ingest_insert_into_compressed_chunks(pglite: PGlite) -> None:
    """The ingest transaction's INSERT ... ON CONFLICT DO NOTHING (through event_key) lands
    late events in compressed chunks, and skips the ones already there."""
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=300)])
    pglite.execute(compress_older_than("2026-01-02 00:00:00+00"))
    staged = events_sql(count=320, tag="pre").replace("INSERT INTO agent_event",
                                                      "INSERT INTO ingest_staging")
    results = pglite.run([
        {"sql": "BEGIN"},
        {"sql": STAGING_DDL},
        {"sql": staged},
        {"sql": INSERT_KEYED_EVENTS, "expect": "rows"},
        {"sql": "COMMIT"},
    ])
    assert len(results[3]["rows"]) == 20  # 300 of the 320 were already stored (same ids)
    assert pglite.value("SELECT count(*) FROM agent_event") == 320
    assert pglite.value("SELECT count(*) FROM timescaledb_information.chunks "
                        "WHERE is_compressed") == 1


def test_update_and_delete_in_compressed_chunks(pglite: PGlite) -> None:
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=300)])
    pglite.execute(compress_older_than("2026-01-02 00:00:00+00"))
    pglite.execute("UPDATE agent_event SET status = 'ok' WHERE ts < '2026-01-01 03:00'",
                   "DELETE FROM agent_event WHERE ts < '2026-01-01 01:00'")
    assert pglite.value("SELECT count(*) FROM agent_event WHERE status = 'ok'") == 25 - 8
    assert pglite.value("SELECT count(*) FROM agent_event") == 300 - 8


def test_policies_run_only_by_run_job(pglite: PGlite) -> None:
    """No background workers in PGlite: jobs are registered but never started by a scheduler;
    ``CALL run_job`` runs them in the foreground (compression, retention)."""
    pglite.run([{"sql": s} for s in schema_sql()])
    pglite.execute(events_sql(start="(date_trunc('day', now()) - INTERVAL '20 days')",
                              count=20, every="1 day"))
    pglite.execute("SELECT add_retention_policy('agent_event', drop_after => INTERVAL '15 days')")
    jobs = {j["proc_name"]: j["job_id"] for j in pglite.query(
        "SELECT proc_name, job_id FROM timescaledb_information.jobs "
        "WHERE hypertable_name = 'agent_event'")}
    assert set(jobs) == {"policy_compression", "policy_retention"}
    assert pglite.value("SELECT count(*) FILTER (WHERE is_compressed) "
                        "FROM timescaledb_information.chunks") == 0
    pglite.execute(f"CALL run_job({jobs['policy_compression']})")
    compressed = pglite.value("SELECT count(*) FILTER (WHERE is_compressed) "
                              "FROM timescaledb_information.chunks")
    assert compressed >= 12  # the chunks entirely older than 7 days
    pglite.execute(f"CALL run_job({jobs['policy_retention']})")
    assert pglite.value("SELECT min(ts) >= date_trunc('day', now()) - INTERVAL '16 days' "
                        "FROM agent_event") is True
    # The scheduler is absent: no job ever ran on its own.
    assert pglite.value("SELECT count(*) FROM timescaledb_information.job_stats "
                        "WHERE total_runs > 0") == 0


def test_drop_chunks(pglite: PGlite) -> None:
    pglite.run([{"sql": s} for s in schema_sql(events_before_conversion=1000)])
    pglite.execute(compress_older_than("2026-01-02 00:00:00+00"))
    kept = pglite.value("SELECT count(*) FROM agent_event WHERE ts >= '2026-01-03'")
    dropped = pglite.query("SELECT drop_chunks('agent_event', "
                           "older_than => timestamptz '2026-01-03') AS c")
    assert len(dropped) == 2
    assert pglite.value("SELECT count(*) FROM agent_event") == kept == 1000 - 411
