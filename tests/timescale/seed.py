"""devlog's schema and deterministic test data for the PGlite + TimescaleDB tests.

The schema is migration 0001's own DDL and the hypertable/compression statements of
``app.db.timescale``; the events are generated in SQL (``generate_series``), so tests compare
query results with direct queries over the same rows rather than with hand-written numbers.
"""

from __future__ import annotations

from app.db import timescale
from migrations.devlog_0001_core_model import DDL as CORE_DDL
from migrations.devlog_0002_files_and_keys import DDL as _DDL_0002
from migrations.devlog_0007_long_keys import DDL as LONG_KEYS_DDL
from migrations.devlog_0008_event_id_unique import EVENT_KEY_DDL, merge_duplicates_sql

SESSION_FILE_DDL = _DDL_0002.split("CREATE TABLE IF NOT EXISTS api_key")[0]  # (no pg_trgm here)

PROJECT_A = "00000000-0000-4000-8000-0000000000a1"
PROJECT_B = "00000000-0000-4000-8000-0000000000a2"
SESSION_1 = "00000000-0000-4000-8000-000000000001"  # project A
SESSION_2 = "00000000-0000-4000-8000-000000000002"  # project B
SESSION_3 = "00000000-0000-4000-8000-000000000003"  # no project (NULL grouping key)

CONTEXT_SQL = f"""
INSERT INTO project (id, key, name) VALUES
    ('{PROJECT_A}', 'github.com/acme/a', 'a'),
    ('{PROJECT_B}', 'github.com/acme/b', 'b');
INSERT INTO agent_session (id, agent, native_id, project) VALUES
    ('{SESSION_1}', 'claude-code', 's1', '{PROJECT_A}'),
    ('{SESSION_2}', 'codex', 's2', '{PROJECT_B}'),
    ('{SESSION_3}', 'claude-code', 's3', NULL);
"""


def events_sql(start: str = "2026-01-01 00:00:00+00", count: int = 1000,
               every: str = "7 minutes", tag: str = "a") -> str:
    """INSERT ``count`` events from ``start`` (a timestamptz literal or SQL expression when it
    starts with ``(``), one every ``every``, spread over the three sessions, with kinds, models
    (some NULL), tokens and durations (some NULL). Ids derive from ``tag`` and the position:
    the same call inserts the same ids (for ON CONFLICT tests)."""
    base = start if start.startswith("(") else f"timestamptz '{start}'"
    return f"""
INSERT INTO agent_event (id, ts, session_id, seq, kind, agent, model, tokens_input,
                         tokens_output, duration_ms, tool_name, cost_usd)
SELECT md5('{tag}' || i)::uuid,
       {base} + i * INTERVAL '{every}',
       (ARRAY['{SESSION_1}', '{SESSION_2}', '{SESSION_3}']::uuid[])[1 + i % 3],
       i,
       (ARRAY['llm_call', 'tool_call', 'tool_call', 'prompt'])[1 + i % 4],
       CASE WHEN i % 3 = 1 THEN 'codex' ELSE 'claude-code' END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'model-' || (i % 2) END,
       i * 10, i % 17, CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 37) % 5000 END,
       CASE WHEN i % 4 IN (1, 2) THEN 'tool-' || (i % 3) END,
       (i % 11) * 0.00125
FROM generate_series(1, {count}) AS i
"""


def schema_sql(chunk_interval: str = "1 day", compress_after: str | None = "7 days",
               events_before_conversion: int = 0) -> list[str]:
    """What migrations 0001, 0002 (session_file), 0007 (md5 keys) and 0008 (revision, event_key) and the
    start-up policies run on TimescaleDB, in order. With ``events_before_conversion``, rows
    exist when agent_event becomes a hypertable (``migrate_data``)."""
    steps = [CORE_DDL, SESSION_FILE_DDL, LONG_KEYS_DDL, CONTEXT_SQL]
    if events_before_conversion:
        steps.append(events_sql(count=events_before_conversion, tag="pre"))
    steps += [timescale.CREATE_EXTENSION_SQL, timescale.hypertable_sql(chunk_interval)]
    steps += [*merge_duplicates_sql(), EVENT_KEY_DDL]
    if compress_after is not None:
        steps.append(timescale.compression_policy_sql(compress_after))
    return steps
