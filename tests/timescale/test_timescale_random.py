"""The TimescaleDB path on randomized data: devlog's rollup continuous aggregates (migration
0004's DDL), re-bucketed and grouped the way ``app/services/usage.py`` reads them, equal a direct
GROUP BY over the raw events — after a refresh, with real-time rows after the watermark, and after
late events land in compressed chunks and are refreshed. (The plain-PostgreSQL path has the same
check in tests/app/test_rollups.py.)"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.db import rollups
from tests.timescale.pglite import PGlite, assert_same_rows
from tests.timescale.seed import SESSION_1, SESSION_2, SESSION_3, schema_sql

pytestmark = pytest.mark.slow

START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ["user_prompt", "llm_call", "llm_call", "tool_call", "tool_result", "assistant_message", "error"]


def _lit(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, datetime):
        return f"timestamptz '{v.isoformat()}'"
    return str(v)


def random_events(rng: random.Random, n: int, start: datetime, hours: int) -> str:
    rows = []
    for i in range(n):
        kind = rng.choice(KINDS)
        llm, tool = kind == "llm_call", kind.startswith("tool")
        rows.append((
            str(uuid.UUID(int=rng.getrandbits(128))), start + timedelta(seconds=rng.randrange(hours * 3600)),
            rng.choice([SESSION_1, SESSION_2, SESSION_3]), i, kind, rng.choice(["claude-code", "codex"]),
            rng.choice(["m-a", "m-b", None]) if llm else None,
            rng.randrange(5000) if llm else None, rng.randrange(900) if llm else None,
            rng.randrange(50_000) if llm else None,
            rng.choice([None, rng.randrange(1, 120_000)]) if llm or kind == "tool_result" else None,
            rng.choice(["Edit", "Bash", "Read"]) if tool else None,
            rng.choice(["ok", "error"]) if kind == "tool_result" else None,
            rng.choice(["/a.py", "/b.py", None]) if tool else None,
            rng.randrange(30) if kind == "tool_result" else None,
            round(rng.random() / 10, 6) if llm and rng.random() < 0.6 else None,
        ))
    values = ",\n".join("(" + ", ".join(_lit(v) for v in row) + ")" for row in rows)
    return ("INSERT INTO agent_event (id, ts, session_id, seq, kind, agent, model, tokens_input,"
            " tokens_output, tokens_cache_read, duration_ms, tool_name, status, file_path,"
            f" lines_added, cost_usd) VALUES\n{values}")


USAGE_FROM_CAGG = """
SELECT date_trunc('{unit}', bucket) AS t, agent, model, tool_name,
       sum(events)::bigint AS events, sum(errors)::bigint AS errors,
       sum(tokens_input)::bigint AS ti, sum(tokens_output)::bigint AS tout,
       sum(tokens_cache_read)::bigint AS tcr, round(sum(cost_usd), 6) AS cost,
       sum(unpriced)::bigint AS unpriced, sum(duration_ms)::bigint AS ms, sum(durations)::bigint AS n
FROM {source} WHERE bucket >= '2026-01-01' AND bucket < '2026-01-09' GROUP BY 1, 2, 3, 4"""
USAGE_DIRECT = """
SELECT date_trunc('{unit}', e.ts) AS t, e.agent, coalesce(e.model, '') AS model,
       coalesce(e.tool_name, '') AS tool_name, count(*)::bigint AS events,
       count(*) FILTER (WHERE e.status = 'error')::bigint AS errors,
       coalesce(sum(e.tokens_input), 0)::bigint AS ti, coalesce(sum(e.tokens_output), 0)::bigint AS tout,
       coalesce(sum(e.tokens_cache_read), 0)::bigint AS tcr, round(sum(e.cost_usd), 6) AS cost,
       count(*) FILTER (WHERE e.kind = 'llm_call' AND e.cost_usd IS NULL)::bigint AS unpriced,
       coalesce(sum(e.duration_ms), 0)::bigint AS ms, count(e.duration_ms)::bigint AS n
FROM agent_event e JOIN agent_session s ON s.id = e.session_id
WHERE e.ts >= '2026-01-01' AND e.ts < '2026-01-09' GROUP BY 1, 2, 3, 4"""
HISTOGRAM_FROM_CAGG = "SELECT tool_name, model, le, sum(n)::bigint AS n FROM latency_hourly GROUP BY 1, 2, 3"
FILES_FROM_CAGG = ("SELECT tool_name, file_path, sum(touches)::bigint AS t, sum(lines_added)::bigint AS a"
                   " FROM tool_file_daily GROUP BY 1, 2")


def check(db: PGlite) -> None:
    for unit, source in (("hour", "usage_hourly"), ("day", "usage_hourly"), ("week", "usage_hourly"),
                         ("day", "usage_daily"), ("month", "usage_daily")):
        assert_same_rows(db, USAGE_FROM_CAGG.format(unit=unit, source=source),
                         USAGE_DIRECT.format(unit=unit))
    raw_latency = rollups.LATENCY.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS)
    assert_same_rows(db, HISTOGRAM_FROM_CAGG,
                     f"SELECT tool_name, model, le, sum(n)::bigint AS n FROM ({raw_latency}) AS r GROUP BY 1, 2, 3")
    raw_files = rollups.FILES.select(rollups.TIMESCALE_BUCKET, rollups.EVENTS)
    assert_same_rows(db, FILES_FROM_CAGG, "SELECT tool_name, file_path, sum(touches)::bigint AS t,"
                     f" sum(lines_added)::bigint AS a FROM ({raw_files}) AS r GROUP BY 1, 2")


def refresh_all(db: PGlite) -> None:
    db.run([{"sql": f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)"}
            for r in rollups.ROLLUPS for name in (r.name, r.daily)])


@pytest.mark.parametrize("seed", [11, 12])
def test_rollup_caggs_equal_group_by_on_random_events(pglite: PGlite, seed: int) -> None:
    rng = random.Random(seed)
    pglite.run([{"sql": s} for s in schema_sql()])
    pglite.execute(random_events(rng, 1200, START, 24 * 5))
    for r in rollups.ROLLUPS:
        pglite.execute(*rollups.timescale_ddl(r))
    check(pglite)  # nothing materialised: all real-time
    refresh_all(pglite)
    check(pglite)
    pglite.execute(random_events(rng, 300, START + timedelta(days=5), 24 * 3))  # after the watermark
    check(pglite)  # real-time aggregation adds them
    pglite.execute("SELECT compress_chunk(c) FROM show_chunks('agent_event', older_than => timestamptz '2026-01-03') AS c")
    for r in rollups.ROLLUPS:
        pglite.execute(*rollups.timescale_policy_sql(r, "1 day"), *rollups.timescale_compress_sql(r, "1 day"))
    pglite.execute(random_events(rng, 300, START, 48))  # late, into compressed chunks
    refresh_all(pglite)
    check(pglite)
