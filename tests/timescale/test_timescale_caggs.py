"""Continuous aggregates on devlog's hypertable, run on PGlite + TimescaleDB 2.23.

To check a rollup: append a :class:`CaggCase` to ``CASES`` — the statements that create it
(``CREATE MATERIALIZED VIEW ... WITH NO DATA``, ``ALTER``, policies), the caggs to refresh (in
order: hourly before daily), and pairs ``(query over the cagg, the same query as a direct
GROUP BY over agent_event/agent_session)``. The test loads 1000 events over five days (the first
two days' chunks compressed), refreshes, compares each pair, then adds events after the
materialised range and late ones inside it (into a compressed chunk), refreshes the whole
range again and compares again.

Findings this file pins down (TimescaleDB 2.23 in PGlite):
- A cagg may JOIN agent_event to regular tables (inner, LEFT, several tables); a change to a
  joined table does not invalidate anything: only ``refresh(..., force => true)`` picks it up.
- ``materialized_only`` is true by default; with false, rows after the watermark are read from
  the hypertable at query time, but late rows before the watermark stay invisible until that
  window is refreshed.
- ``CALL refresh_continuous_aggregate`` fails (SQLSTATE 25001) in a transaction block,
  including a multi-statement simple query; alone (or in a DO block) it runs.
- Policies (refresh, compression, retention) can be added on caggs, but PGlite has no
  background workers: only ``CALL run_job(id)`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.db import rollups
from tests.timescale.pglite import PGlite, PGliteError, assert_same_rows
from tests.timescale.seed import PROJECT_B, SESSION_1, events_sql, schema_sql

pytestmark = pytest.mark.slow

JOINED = "agent_event e JOIN agent_session s ON s.id = e.session_id"


@dataclass(frozen=True)
class CaggCase:
    name: str
    create: tuple[str, ...]
    refresh: tuple[str, ...]
    checks: tuple[tuple[str, str], ...]


HOURLY = f"""
CREATE MATERIALIZED VIEW events_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket('1 hour', e.ts) AS bucket, s.project AS project_id, e.kind,
       coalesce(e.model, '') AS model, count(*) AS events, sum(e.tokens_input) AS tokens_input,
       sum(e.cost_usd) AS cost_usd
FROM {JOINED}
GROUP BY 1, 2, 3, 4
WITH NO DATA"""
HOURLY_DIRECT = f"""
SELECT time_bucket('1 hour', e.ts) AS bucket, s.project AS project_id, e.kind,
       coalesce(e.model, '') AS model, count(*) AS events, sum(e.tokens_input) AS tokens_input,
       sum(e.cost_usd) AS cost_usd
FROM {JOINED} GROUP BY 1, 2, 3, 4"""

DAILY_ON_HOURLY = """
CREATE MATERIALIZED VIEW events_daily WITH (timescaledb.continuous) AS
SELECT time_bucket('1 day', bucket) AS bucket, project_id, kind, model,
       sum(events) AS events, sum(tokens_input) AS tokens_input
FROM events_hourly
GROUP BY 1, 2, 3, 4
WITH NO DATA"""
DAILY_DIRECT = f"""
SELECT time_bucket('1 day', e.ts) AS bucket, s.project AS project_id, e.kind,
       coalesce(e.model, '') AS model, count(*)::numeric AS events,
       sum(e.tokens_input) AS tokens_input
FROM {JOINED} GROUP BY 1, 2, 3, 4"""

# Quarter-octave latency histogram: floor(4*log2(d + 1)), as numeric log(2, x) and as float ln.
LATENCY_LE = "floor(4 * log(2, greatest(e.duration_ms, 0) + 1))::int"
LATENCY_LE_FLOAT = "floor(ln(greatest(e.duration_ms, 0) + 1.0) * 5.770780163555851)::int"


def latency(name: str, le: str) -> CaggCase:
    select = (f"SELECT time_bucket('1 hour', e.ts) AS bucket, s.project AS project_id, "
              f"e.agent, {le} AS le, count(*) AS n FROM {JOINED} "
              f"WHERE e.duration_ms IS NOT NULL GROUP BY 1, 2, 3, 4")
    create = f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS\n{select}\n"
    create += "WITH NO DATA"
    return CaggCase(
        name=name,
        create=(create,),
        refresh=(name,),
        checks=((f"SELECT * FROM {name}", select),),
    )


CASES = [
    CaggCase(
        name="hourly_join",
        create=(HOURLY,),
        refresh=("events_hourly",),
        checks=(("SELECT * FROM events_hourly", HOURLY_DIRECT),),
    ),
    CaggCase(
        name="daily_on_hourly",
        create=(HOURLY, DAILY_ON_HOURLY),
        refresh=("events_hourly", "events_daily"),
        checks=(("SELECT * FROM events_hourly", HOURLY_DIRECT),
                ("SELECT * FROM events_daily", DAILY_DIRECT)),
    ),
    CaggCase(
        name="real_time_daily_on_hourly",
        create=(HOURLY.replace("(timescaledb.continuous)",
                               "(timescaledb.continuous, timescaledb.materialized_only = false)"),
                DAILY_ON_HOURLY,
                "ALTER MATERIALIZED VIEW events_daily SET (timescaledb.materialized_only = false)"),
        refresh=("events_hourly", "events_daily"),
        checks=(("SELECT * FROM events_hourly", HOURLY_DIRECT),
                ("SELECT * FROM events_daily", DAILY_DIRECT)),
    ),
    latency("latency_log2", LATENCY_LE),
    latency("latency_ln", LATENCY_LE_FLOAT),
    CaggCase(
        name="left_join_two_tables_filter",
        create=("""
CREATE MATERIALIZED VIEW tools_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket('1 hour', e.ts) AS bucket, p.key AS project, coalesce(e.tool_name, '') AS tool,
       count(*) FILTER (WHERE e.kind = 'tool_call') AS calls, sum(e.duration_ms) AS duration_ms
FROM agent_event e JOIN agent_session s ON s.id = e.session_id
     LEFT JOIN project p ON p.id = s.project
GROUP BY 1, 2, 3 WITH NO DATA""",),
        refresh=("tools_hourly",),
        checks=(("SELECT * FROM tools_hourly", """
SELECT time_bucket('1 hour', e.ts) AS bucket, p.key AS project, coalesce(e.tool_name, '') AS tool,
       count(*) FILTER (WHERE e.kind = 'tool_call') AS calls, sum(e.duration_ms) AS duration_ms
FROM agent_event e JOIN agent_session s ON s.id = e.session_id
     LEFT JOIN project p ON p.id = s.project
GROUP BY 1, 2, 3"""),),
    ),
]


def devlog_rollup(r: rollups.Rollup) -> CaggCase:
    """devlog's own rollup (app/db/rollups.py): the continuous aggregates migration 0004 creates
    on TimescaleDB, checked against the same aggregation run directly (hourly) and by day."""
    day = r.select("time_bucket(INTERVAL '1 day', e.ts)", rollups.EVENTS)
    keys = ", ".join(c for c, _ in r.keys)
    measures = ", ".join(f"{c}::numeric AS {c}" for c, _ in r.measures)  # daily sums: numeric
    return CaggCase(
        name=f"devlog_{r.name}",
        create=tuple(rollups.timescale_ddl(r)),
        refresh=(r.name, r.daily),
        checks=((f"SELECT * FROM {r.name}", r.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS)),
                (f"SELECT * FROM {r.daily}", f"SELECT bucket, {keys}, {measures} FROM ({day}) AS d")),
    )


CASES += [devlog_rollup(r) for r in rollups.ROLLUPS]


def load_events(db: PGlite) -> None:
    """devlog's schema, 1000 events over 2026-01-01..05, the first two days compressed."""
    db.run([{"sql": s} for s in schema_sql(events_before_conversion=1000)])
    db.execute("SELECT compress_chunk(c) "
               "FROM show_chunks('agent_event', older_than => timestamptz '2026-01-03') AS c")


def refresh(db: PGlite, *caggs: str, window: str = "NULL, NULL") -> None:
    # One statement per request step: a multi-statement string is a transaction block.
    db.run([{"sql": f"CALL refresh_continuous_aggregate('{c}', {window})"} for c in caggs])


def check(db: PGlite, case: CaggCase) -> None:
    for cagg_sql, direct_sql in case.checks:
        assert_same_rows(db, cagg_sql, direct_sql)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cagg_matches_direct_group_by(pglite: PGlite, case: CaggCase) -> None:
    load_events(pglite)
    pglite.execute(*case.create)
    refresh(pglite, *case.refresh)
    check(pglite, case)
    # New events after the materialised range, late ones inside it (in a compressed chunk).
    pglite.execute(events_sql(start="2026-01-06 00:00:00+00", count=200, tag="new"),
                   events_sql(start="2026-01-01 00:03:00+00", count=100, every="11 minutes",
                              tag="late"))
    refresh(pglite, *case.refresh)
    check(pglite, case)


def test_real_time_aggregation_and_what_it_misses(pglite: PGlite) -> None:
    load_events(pglite)
    pglite.execute(HOURLY)
    assert pglite.query("SELECT materialized_only "
                        "FROM timescaledb_information.continuous_aggregates") == [
        {"materialized_only": True}]  # the default in 2.23
    assert pglite.value("SELECT count(*) FROM events_hourly") == 0  # WITH NO DATA
    pglite.execute("ALTER MATERIALIZED VIEW events_hourly "
                   "SET (timescaledb.materialized_only = false)")
    assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)  # all real-time
    refresh(pglite, "events_hourly")
    pglite.execute(events_sql(start="2026-01-06 00:00:00+00", count=50, tag="new"))
    assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)  # after the watermark

    # Late events before the watermark: invisible until their window is refreshed.
    pglite.execute(events_sql(start="2026-01-01 00:03:00+00", count=20, tag="late"))
    with pytest.raises(AssertionError):
        assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)
    refresh(pglite, "events_hourly", window="'2026-01-01', '2026-01-02'")
    assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)

    # A joined table's change (a session moved to another project) invalidates nothing.
    pglite.execute(f"UPDATE agent_session SET project = '{PROJECT_B}' WHERE id = '{SESSION_1}'")
    refresh(pglite, "events_hourly")
    with pytest.raises(AssertionError):
        assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)
    pglite.execute("CALL refresh_continuous_aggregate('events_hourly', NULL, NULL, force => true)")
    assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)


def test_refresh_outside_transactions_only(pglite: PGlite) -> None:
    load_events(pglite)
    # CREATE ... WITH NO DATA is accepted in a transaction block, and two in one string.
    pglite.execute(f"BEGIN; {HOURLY}; COMMIT", DAILY_ON_HOURLY)
    call = "CALL refresh_continuous_aggregate('events_hourly', NULL, NULL)"
    for sql in (f"BEGIN; {call}; COMMIT", f"{call}; SELECT 1"):
        with pytest.raises(PGliteError) as failed:
            pglite.execute(sql)
        assert failed.value.error["code"] == "25001"
        assert "cannot run inside a transaction block" in failed.value.message
    pglite.execute(f"DO $$ BEGIN {call}; END $$")
    pglite.execute(call)
    assert pglite.value("SELECT count(*) FROM events_hourly") > 0


def test_policies_on_caggs(pglite: PGlite) -> None:
    load_events(pglite)
    pglite.execute(
        HOURLY, DAILY_ON_HOURLY,
        "SELECT add_continuous_aggregate_policy('events_hourly', start_offset => NULL, "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes')",
        "SELECT add_continuous_aggregate_policy('events_daily', start_offset => NULL, "
        "end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour')",
        "ALTER MATERIALIZED VIEW events_hourly SET (timescaledb.compress = true)",
        "SELECT add_compression_policy('events_hourly', compress_after => INTERVAL '30 days')",
        "SELECT add_retention_policy('events_hourly', drop_after => INTERVAL '400 days')",
        "SELECT add_retention_policy('events_daily', drop_after => INTERVAL '5 years')",
    )
    jobs = pglite.query("SELECT job_id, proc_name, hypertable_name AS on "
                        "FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY job_id")
    by_view: dict[str, list[str]] = {}
    for job in jobs:  # hypertable_name: the cagg's own name for its policies
        by_view.setdefault(job["on"], []).append(job["proc_name"])
    assert by_view == {
        "agent_event": ["policy_compression"],
        "events_hourly": ["policy_refresh_continuous_aggregate", "policy_compression",
                          "policy_retention"],
        "events_daily": ["policy_refresh_continuous_aggregate", "policy_retention"],
    }
    assert pglite.value("SELECT count(*) FROM events_hourly") == 0  # nothing ran by itself
    for job in jobs:
        if job["proc_name"] == "policy_refresh_continuous_aggregate":
            pglite.execute(f"CALL run_job({job['job_id']})")
    assert_same_rows(pglite, "SELECT * FROM events_hourly", HOURLY_DIRECT)
    assert_same_rows(pglite, "SELECT * FROM events_daily", DAILY_DIRECT)


def test_devlog_rollups_compressed_then_refreshed_with_late_events(pglite: PGlite) -> None:
    """The start-up policy statements (compression of the rollups' caggs) run, and a refresh
    after late events lands in compressed cagg chunks still gives the direct aggregation."""
    load_events(pglite)
    for r in rollups.ROLLUPS:
        pglite.execute(*rollups.timescale_ddl(r))
        refresh(pglite, r.name, r.daily)
        pglite.execute(*rollups.timescale_policy_sql(r, "7 days"))
        pglite.execute(*rollups.timescale_policy_sql(r, "7 days"))  # again, at the next start
        pglite.execute(*rollups.timescale_compress_sql(r, "7 days"))  # the retention job
        for name in (r.name, r.daily):
            compressed = pglite.value(
                "SELECT count(*) FROM timescaledb_information.chunks "
                f"WHERE hypertable_name = (SELECT materialization_hypertable_name FROM "
                f"timescaledb_information.continuous_aggregates WHERE view_name = '{name}') "
                "AND is_compressed")
            empty = pglite.value(f"SELECT count(*) FROM {name}") == 0  # (no file paths in the seed)
            assert compressed > 0 or empty, name
    pglite.execute(events_sql(start="2026-01-01 00:03:00+00", count=100, every="11 minutes", tag="late"))
    for r in rollups.ROLLUPS:
        refresh(pglite, r.name, r.daily)
        assert_same_rows(pglite, f"SELECT * FROM {r.name}",
                         r.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS))
        assert_same_rows(pglite, f"SELECT * FROM {r.daily}",
                         r.reaggregate("time_bucket(INTERVAL '1 day', bucket)",
                                       f"({r.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS)}) AS h"))


def test_file_paths_longer_than_a_btree_entry_refresh(pglite: PGlite) -> None:
    """TimescaleDB indexes each grouping key of a cagg; a 4 KB path (over the ~2,700-byte btree
    limit, and not compressible) failed every refresh of its hour until the file_path index was
    dropped (``timescale_ddl``, and migration 0007 on caggs made before)."""
    import hashlib

    path = "/" + "/".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(63))
    assert len(path) > 4000
    pglite.run([{"sql": s} for s in schema_sql()])
    pglite.execute(*rollups.timescale_ddl(rollups.FILES))
    pglite.execute(*rollups.timescale_drop_long_key_indexes_sql(rollups.FILES))  # again: a no-op
    pglite.execute(f"""INSERT INTO agent_event (id, ts, session_id, kind, agent, tool_name, file_path)
                       VALUES (gen_random_uuid(), '2026-01-01 01:00+00', '{SESSION_1}', 'tool_call',
                               'claude-code', 'Edit', '{path}')""")
    refresh(pglite, rollups.FILES.name, rollups.FILES.daily)
    for name in (rollups.FILES.name, rollups.FILES.daily):
        assert pglite.query(f"SELECT file_path, touches::int FROM {name}") == [
            {"file_path": path, "touches": 1}]
    indexes = pglite.query("SELECT i.indexdef FROM pg_indexes i JOIN timescaledb_information.continuous_aggregates c"
                           " ON i.tablename = c.materialization_hypertable_name"
                           " WHERE c.view_name LIKE 'tool_file_%'")
    assert indexes and not [i for i in indexes if "file_path" in i["indexdef"]]
    assert [i for i in indexes if "(tool_name, bucket" in i["indexdef"]]  # the others stay
