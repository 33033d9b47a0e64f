"""The SQL of revisions: an event stored already, sent again with a higher ``revision``, replaces
the stored one, and every rollup moves by the difference (see ``app.ingest.revisions``).

The old rows go through ``ingest_removed`` (a temp table shaped as ``agent_event``): ``REMOVE``
moves them there, the new versions are inserted from ``ingest_staging``, and ``UNROLL`` takes
the old rows' part out of their sessions and ``session_file`` rows (the new versions are then
added like new events). Migration 0008 uses the same ``UNROLL`` for the duplicate rows it
deletes.
"""

from __future__ import annotations

from app.ingest.statements import EVENT_COLUMNS

_COLUMNS = ", ".join(EVENT_COLUMNS)

REMOVED_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_removed "
    "(LIKE agent_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)

# The stored version of each candidate id ($1, in id order), locked (the sessions are locked
# already; this also holds an event whose stored session differs). Plain: agent_event's own
# primary key; TimescaleDB: event_key, then the row by (id, ts).
STORED = """
SELECT id, revision, ts, kind, agent, session_id FROM agent_event
WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
"""
STORED_KEYED = """
WITH k AS (  -- (TimescaleDB refuses FOR UPDATE in a query reading compressed chunks)
    SELECT id, revision, ts FROM event_key WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
)
SELECT k.id, k.revision, k.ts, e.kind, e.agent, e.session_id
FROM k JOIN agent_event e ON e.id = k.id AND e.ts = k.ts
ORDER BY k.id
"""

# The stored versions ($1 ids, $2 their ts) out of agent_event, into ingest_removed.
REMOVE = """
WITH gone AS (
    DELETE FROM agent_event e USING unnest($1::uuid[], $2::timestamptz[]) AS d(id, ts)
    WHERE e.id = d.id AND e.ts = d.ts
    RETURNING e.*
)
INSERT INTO ingest_removed SELECT * FROM gone
"""

# The new versions ($1 ids) from ingest_staging (ingested_at: now(), so the bus and the rollup
# job see them as this transaction's events); event_key follows on TimescaleDB.
REPLACE = f"""
INSERT INTO agent_event ({_COLUMNS})
SELECT {_COLUMNS} FROM ingest_staging WHERE id = ANY($1::uuid[]) ORDER BY id
"""
REPLACE_KEYS = """
UPDATE event_key k SET ts = s.ts, revision = s.revision
FROM ingest_staging s WHERE k.id = s.id AND s.id = ANY($1::uuid[])
"""

# Takes the rows of ingest_removed (already out of agent_event) out of their sessions' rollups
# and session_file rows: counts, tokens and cost subtracted; a bound (first/last time, a file's
# first/last touch, the end) that one of them set is read again from the remaining events (one
# index probe; only then, so events deleted by retention never make a bound move); a file
# no event touches any more is deleted (files_touched - 1); a model no remaining call names
# leaves ``models``; a cost with no priced event left is NULL (a remainder under a millionth
# of a dollar, rounding, counts as none). The end is never lost: a session_end's kind cannot
# change, so a revision or the kept copy of a duplicate is still there (status stays).
UNROLL = """
WITH d AS (
    SELECT session_id AS id, count(*) AS events,
           count(*) FILTER (WHERE kind = 'user_prompt') AS prompts,
           count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls,
           count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls,
           count(*) FILTER (WHERE status = 'error' AND kind IN ('tool_call', 'tool_result'))
               AS tool_errors,
           coalesce(sum(tokens_input), 0) AS t_in, coalesce(sum(tokens_output), 0) AS t_out,
           coalesce(sum(tokens_cache_read), 0) AS t_cr,
           coalesce(sum(tokens_cache_write), 0) AS t_cw,
           coalesce(sum(tokens_reasoning), 0) AS t_re,
           sum(cost_usd) AS cost, min(ts) AS first_ts, max(ts) AS last_ts,
           max(ts) FILTER (WHERE kind = 'session_end') AS ended_at,
           array_agg(DISTINCT model) FILTER (WHERE kind = 'llm_call' AND model <> '') AS models
    FROM ingest_removed GROUP BY session_id
), fd AS (
    SELECT session_id, file_path AS path, count(*) AS touches,
           coalesce(sum(lines_added), 0) AS added, coalesce(sum(lines_removed), 0) AS removed,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM ingest_removed WHERE file_path <> '' GROUP BY 1, 2
), gone AS (
    DELETE FROM session_file f USING fd
    WHERE f.session_id = fd.session_id AND f.path = fd.path AND f.touches <= fd.touches
    RETURNING f.session_id
), kept AS (
    UPDATE session_file f SET
        touches = f.touches - fd.touches,
        lines_added = f.lines_added - fd.added,
        lines_removed = f.lines_removed - fd.removed,
        first_ts = CASE WHEN fd.first_ts <= f.first_ts THEN coalesce(
            (SELECT min(e.ts) FROM agent_event e
             WHERE e.session_id = f.session_id AND e.file_path = f.path), f.first_ts)
            ELSE f.first_ts END,
        last_ts = CASE WHEN fd.last_ts >= f.last_ts THEN coalesce(
            (SELECT max(e.ts) FROM agent_event e
             WHERE e.session_id = f.session_id AND e.file_path = f.path), f.last_ts)
            ELSE f.last_ts END
    FROM fd
    WHERE f.session_id = fd.session_id AND f.path = fd.path AND f.touches > fd.touches
    RETURNING 1
), nf AS (
    SELECT session_id, count(*) AS n FROM gone GROUP BY session_id
)
UPDATE agent_session s SET
    event_count = s.event_count - d.events,
    prompt_count = s.prompt_count - d.prompts,
    llm_call_count = s.llm_call_count - d.llm_calls,
    tool_call_count = s.tool_call_count - d.tool_calls,
    tool_error_count = s.tool_error_count - d.tool_errors,
    tokens_input = s.tokens_input - d.t_in,
    tokens_output = s.tokens_output - d.t_out,
    tokens_cache_read = s.tokens_cache_read - d.t_cr,
    tokens_cache_write = s.tokens_cache_write - d.t_cw,
    tokens_reasoning = s.tokens_reasoning - d.t_re,
    cost_usd = CASE
        WHEN d.cost IS NULL THEN s.cost_usd
        WHEN EXISTS (SELECT 1 FROM agent_event e
                     WHERE e.session_id = s.id AND e.cost_usd IS NOT NULL) THEN s.cost_usd - d.cost
        WHEN abs(s.cost_usd - d.cost) < 0.000001 THEN NULL
        ELSE s.cost_usd - d.cost END,
    started_at = CASE WHEN d.first_ts <= s.started_at THEN coalesce(
        (SELECT min(e.ts) FROM agent_event e WHERE e.session_id = s.id), s.started_at)
        ELSE s.started_at END,
    last_event_at = CASE WHEN d.last_ts >= s.last_event_at THEN coalesce(
        (SELECT max(e.ts) FROM agent_event e WHERE e.session_id = s.id), s.last_event_at)
        ELSE s.last_event_at END,
    ended_at = CASE WHEN d.ended_at >= s.ended_at THEN coalesce(
        (SELECT max(e.ts) FROM agent_event e
         WHERE e.session_id = s.id AND e.kind = 'session_end'), s.ended_at)
        ELSE s.ended_at END,
    models = CASE WHEN d.models IS NULL THEN s.models ELSE (
        SELECT coalesce(jsonb_agg(u.m ORDER BY u.m), '[]'::jsonb)
        FROM jsonb_array_elements_text(s.models) AS u(m)
        WHERE u.m <> ALL (d.models)
           OR EXISTS (SELECT 1 FROM agent_event e
                      WHERE e.session_id = s.id AND e.kind = 'llm_call' AND e.model = u.m)) END,
    files_touched = s.files_touched - coalesce(nf.n, 0),
    updated_at = now()
FROM d LEFT JOIN nf ON nf.session_id = d.id
WHERE s.id = d.id
"""

# Sessions whose prompts were revised: their earliest prompts ($1 session ids), to take the
# title from again (in Python, by the same rule as new prompts).
TITLE_PROMPTS = """
SELECT x.id::text AS session_id, p.ts, p.content
FROM unnest($1::uuid[]) AS x(id)
CROSS JOIN LATERAL (SELECT ts, content FROM agent_event
                    WHERE session_id = x.id AND kind = 'user_prompt' AND content IS NOT NULL
                    ORDER BY ts LIMIT 20) AS p
"""
SET_TITLES = """
UPDATE agent_session s SET title = d.title
FROM unnest($1::uuid[], $2::text[]) AS d(id, title) WHERE s.id = d.id
"""
