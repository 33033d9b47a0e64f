"""The SQL of one ingest transaction (see ``app.ingest.writer`` for the order and why)."""

from __future__ import annotations

# The columns COPY writes, in record order (ingested_at: the column default, see above).
EVENT_COLUMNS = (
    "id", "ts", "session_id", "seq", "kind", "agent", "model", "provider",
    "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
    "tokens_cache_write_5m", "tokens_cache_write_1h", "tokens_reasoning", "tokens_estimated",
    "cost_usd", "cost_source", "duration_ms", "stop_reason", "tool_name", "tool_category",
    "tool_call_id", "status", "file_path", "lines_added", "lines_removed", "command", "content",
    "error", "payload", "revision",
)
# What the event_key table (TimescaleDB, see ARCHITECTURE "Storage") holds of each event.
EVENT_KEY_COLUMNS = ("id", "ts", "revision")

STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging "
    "(LIKE agent_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)

# The staged events not stored yet (by id: agent_event's primary key), in id order.
INSERT_EVENTS = f"""
INSERT INTO agent_event ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(EVENT_COLUMNS)} FROM ingest_staging ORDER BY id
ON CONFLICT DO NOTHING
RETURNING id
"""

# The same where event ids are unique through event_key (a hypertable's unique keys must hold
# its time column): the ids event_key did not have, then those events, in id order.
INSERT_KEYED_EVENTS = f"""
WITH k AS (
    INSERT INTO event_key ({", ".join(EVENT_KEY_COLUMNS)})
    SELECT {", ".join(EVENT_KEY_COLUMNS)} FROM ingest_staging ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO agent_event ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(EVENT_COLUMNS)} FROM ingest_staging WHERE id IN (SELECT id FROM k) ORDER BY id
ON CONFLICT DO NOTHING
RETURNING id
"""


# Opens the transaction: the context rows not stored yet (machines, projects, workspaces,
# placeholder parents), then the sessions' upsert, which locks them in id order. The scalar
# subqueries read the CTEs left to right, which runs them in that order (an unread
# data-modifying CTE runs only after the main query: so does cf, after the sessions). Sessions
# new to the database are inserted with their rollups when the caller passes them (models
# sorted by PostgreSQL, as the rollup UPDATE does), and their session_file rows (cf; foreign
# keys are checked at the end of the statement); ``created`` names them.
OPEN = """
WITH cm AS (
    INSERT INTO machine (id, key, hostname, username, os, os_version, arch, kind, last_seen_at)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::timestamptz[])
         AS d(id, key, hostname, username, os, os_version, arch, kind, seen)
    WHERE NOT EXISTS (SELECT 1 FROM machine m WHERE m.id = d.id)
    ORDER BY 1 ON CONFLICT DO NOTHING
    RETURNING 1
), cp AS (
    INSERT INTO project (id, key, name, remote_url, last_seen_at)
    SELECT * FROM unnest($10::uuid[], $11::text[], $12::text[], $13::text[], $14::timestamptz[])
         AS d(id, key, name, remote, seen)
    WHERE NOT EXISTS (SELECT 1 FROM project p WHERE p.id = d.id)
    ORDER BY 1 ON CONFLICT DO NOTHING
    RETURNING 1
), cw AS (
    INSERT INTO workspace (id, machine, project, path, branch, commit, last_seen_at)
    SELECT * FROM unnest($15::uuid[], $16::uuid[], $17::uuid[], $18::text[], $19::text[],
                         $20::text[], $21::timestamptz[])
         AS d(id, machine, project, path, branch, commit, seen)
    WHERE NOT EXISTS (SELECT 1 FROM workspace w WHERE w.id = d.id)
    ORDER BY 1 ON CONFLICT DO NOTHING
    RETURNING 1
), cparent AS (
    -- a parent referenced before its own events arrive: a placeholder row (same id, so its
    -- events fill it in later)
    INSERT INTO agent_session (id, agent, native_id)
    SELECT * FROM unnest($22::uuid[], $23::text[], $24::text[]) ORDER BY 1
    ON CONFLICT DO NOTHING
    RETURNING 1
), cs AS (
    INSERT INTO agent_session AS s (id, agent, native_id, parent, project, machine, workspace,
                                    agent_version, git_branch, git_commit, event_count,
                                    prompt_count, llm_call_count, tool_call_count,
                                    tool_error_count, files_touched, tokens_input, tokens_output,
                                    tokens_cache_read, tokens_cache_write, tokens_reasoning,
                                    cost_usd, title, started_at, last_event_at, ended_at, status,
                                    models)
    SELECT d.id, d.agent, d.native_id, d.parent, d.project, d.machine, d.workspace,
           d.agent_version, d.git_branch, d.git_commit, d.events, d.prompts, d.llm_calls,
           d.tool_calls, d.tool_errors, d.new_files, d.t_in, d.t_out, d.t_cr, d.t_cw, d.t_re,
           d.cost, d.title, d.first_ts, d.last_ts, d.ended_at,
           CASE WHEN d.ended_at IS NULL THEN 'active' ELSE 'ended' END,
           (SELECT coalesce(jsonb_agg(m ORDER BY m), '[]'::jsonb)
              FROM (SELECT DISTINCT jsonb_array_elements_text(d.models)) AS u(m))
    FROM unnest($25::uuid[], $26::text[], $27::text[], $28::uuid[], $29::uuid[], $30::uuid[],
                $31::uuid[], $32::text[], $33::text[], $34::text[], $35::int[], $36::int[],
                $37::int[], $38::int[], $39::int[], $40::int[], $41::bigint[], $42::bigint[],
                $43::bigint[], $44::bigint[], $45::bigint[], $46::float8[], $47::text[],
                $48::timestamptz[], $49::timestamptz[], $50::timestamptz[], $51::jsonb[])
         AS d(id, agent, native_id, parent, project, machine, workspace, agent_version,
              git_branch, git_commit, events, prompts, llm_calls, tool_calls, tool_errors,
              new_files, t_in, t_out, t_cr, t_cw, t_re, cost, title, first_ts, last_ts,
              ended_at, models)
    ORDER BY 1
    ON CONFLICT (id) DO UPDATE SET
        parent = coalesce(s.parent, EXCLUDED.parent),
        project = coalesce(EXCLUDED.project, s.project),
        machine = coalesce(EXCLUDED.machine, s.machine),
        workspace = coalesce(EXCLUDED.workspace, s.workspace),
        agent_version = coalesce(EXCLUDED.agent_version, s.agent_version),
        git_branch = coalesce(EXCLUDED.git_branch, s.git_branch),
        git_commit = coalesce(EXCLUDED.git_commit, s.git_commit)
    WHERE (s.parent IS NULL AND EXCLUDED.parent IS NOT NULL)
       OR (EXCLUDED.project IS NOT NULL AND EXCLUDED.project IS DISTINCT FROM s.project)
       OR (EXCLUDED.machine IS NOT NULL AND EXCLUDED.machine IS DISTINCT FROM s.machine)
       OR (EXCLUDED.workspace IS NOT NULL AND EXCLUDED.workspace IS DISTINCT FROM s.workspace)
       OR (EXCLUDED.agent_version IS NOT NULL AND EXCLUDED.agent_version IS DISTINCT FROM s.agent_version)
       OR (EXCLUDED.git_branch IS NOT NULL AND EXCLUDED.git_branch IS DISTINCT FROM s.git_branch)
       OR (EXCLUDED.git_commit IS NOT NULL AND EXCLUDED.git_commit IS DISTINCT FROM s.git_commit)
    RETURNING id, (xmax = 0) AS created
), cf AS (
    -- the files of the sessions just created: all new, no upsert needed
    INSERT INTO session_file (session_id, path, first_ts, last_ts, touches, lines_added,
                              lines_removed)
    SELECT * FROM unnest($52::uuid[], $53::text[], $54::timestamptz[], $55::timestamptz[],
                         $56::int[], $57::bigint[], $58::bigint[])
         AS f(session_id, path, first_ts, last_ts, touches, lines_added, lines_removed)
    WHERE f.session_id IN (SELECT id FROM cs WHERE created)
    ORDER BY 1, 2
)
SELECT now() AS at,
       (SELECT count(*) FROM cm) + (SELECT count(*) FROM cp) + (SELECT count(*) FROM cw)
           + (SELECT count(*) FROM cparent) AS context_rows,
       (SELECT coalesce(array_agg(id), '{}') FROM cs WHERE created) AS created
"""

# Rollups: session_file (locked in (session, path) order), then the sessions' counters (their
# rows are locked already), files_touched counting the paths new to session_file.
ROLLUP = """
WITH f AS (
    INSERT INTO session_file AS f (session_id, path, first_ts, last_ts, touches, lines_added,
                                   lines_removed)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                         $5::int[], $6::bigint[], $7::bigint[]) ORDER BY 1, 2
    ON CONFLICT (session_id, md5(path)) DO UPDATE SET
        first_ts = least(f.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(f.last_ts, EXCLUDED.last_ts),
        touches = f.touches + EXCLUDED.touches,
        lines_added = f.lines_added + EXCLUDED.lines_added,
        lines_removed = f.lines_removed + EXCLUDED.lines_removed
    RETURNING session_id, (xmax = 0) AS inserted
), nf AS (
    SELECT session_id, count(*) FILTER (WHERE inserted) AS n FROM f GROUP BY session_id
)
UPDATE agent_session s SET
    event_count = s.event_count + d.events,
    prompt_count = s.prompt_count + d.prompts,
    llm_call_count = s.llm_call_count + d.llm_calls,
    tool_call_count = s.tool_call_count + d.tool_calls,
    tool_error_count = s.tool_error_count + d.tool_errors,
    tokens_input = s.tokens_input + d.t_in,
    tokens_output = s.tokens_output + d.t_out,
    tokens_cache_read = s.tokens_cache_read + d.t_cr,
    tokens_cache_write = s.tokens_cache_write + d.t_cw,
    tokens_reasoning = s.tokens_reasoning + d.t_re,
    cost_usd = CASE WHEN d.cost IS NULL THEN s.cost_usd
                    ELSE coalesce(s.cost_usd, 0) + d.cost END,
    title = CASE WHEN d.title IS NOT NULL
                  AND (s.title IS NULL OR s.started_at IS NULL OR d.title_ts < s.started_at)
                 THEN d.title ELSE s.title END,
    started_at = least(s.started_at, d.first_ts),
    last_event_at = greatest(s.last_event_at, d.last_ts),
    ended_at = greatest(s.ended_at, d.ended_at),
    status = CASE WHEN d.ended_at IS NOT NULL OR s.ended_at IS NOT NULL THEN 'ended'
                  ELSE s.status END,
    models = CASE WHEN d.models = '[]'::jsonb THEN s.models ELSE (
        SELECT coalesce(jsonb_agg(m ORDER BY m), '[]'::jsonb) FROM (
            SELECT jsonb_array_elements_text(s.models)
            UNION SELECT jsonb_array_elements_text(d.models)) AS u(m)) END,
    files_touched = s.files_touched + coalesce(nf.n, 0),
    updated_at = now()
FROM unnest($8::uuid[], $9::int[], $10::int[], $11::int[], $12::int[], $13::int[],
            $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[],
            $19::float8[], $20::text[], $21::timestamptz[], $22::timestamptz[],
            $23::timestamptz[], $24::timestamptz[], $25::jsonb[])
     AS d(id, events, prompts, llm_calls, tool_calls, tool_errors, t_in, t_out, t_cr, t_cw,
          t_re, cost, title, title_ts, first_ts, last_ts, ended_at, models)
     LEFT JOIN nf ON nf.session_id = d.id
WHERE s.id = d.id
"""

# Closes the transaction: machines, projects, workspaces get an UPDATE only where facts changed
# or last_seen_at is more than a minute old (their row locks are then held only until COMMIT),
# and the first notification.
CLOSE = """
WITH cm AS (
    UPDATE machine m SET last_seen_at = greatest(m.last_seen_at, d.seen),
           hostname = CASE WHEN d.has_facts THEN d.hostname ELSE m.hostname END,
           username = CASE WHEN d.has_facts THEN d.username ELSE m.username END,
           os = CASE WHEN d.has_facts THEN d.os ELSE m.os END,
           os_version = CASE WHEN d.has_facts THEN d.os_version ELSE m.os_version END,
           arch = CASE WHEN d.has_facts THEN d.arch ELSE m.arch END,
           kind = CASE WHEN d.has_facts THEN d.kind ELSE m.kind END
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::timestamptz[], $9::bool[])
         AS d(id, hostname, username, os, os_version, arch, kind, seen, has_facts)
    WHERE m.id = d.id AND (m.last_seen_at < d.seen - interval '1 minute'
       OR (d.has_facts AND (m.hostname, m.username, m.os, m.os_version, m.arch, m.kind)
           IS DISTINCT FROM (d.hostname, d.username, d.os, d.os_version, d.arch, d.kind)))
    RETURNING 1
), cp AS (
    UPDATE project p SET last_seen_at = greatest(p.last_seen_at, d.seen),
           remote_url = coalesce(d.remote, p.remote_url)
    FROM unnest($10::uuid[], $11::text[], $12::timestamptz[]) AS d(id, remote, seen)
    WHERE p.id = d.id AND (p.last_seen_at < d.seen - interval '1 minute'
                           OR (d.remote IS NOT NULL AND p.remote_url IS DISTINCT FROM d.remote))
    RETURNING 1
), cw AS (
    UPDATE workspace w SET last_seen_at = greatest(w.last_seen_at, d.seen),
           project = coalesce(d.project, w.project),
           branch = coalesce(d.branch, w.branch), commit = coalesce(d.commit, w.commit)
    FROM unnest($13::uuid[], $14::uuid[], $15::text[], $16::text[], $17::timestamptz[])
         AS d(id, project, branch, commit, seen)
    WHERE w.id = d.id AND (w.last_seen_at < d.seen - interval '1 minute'
       OR (d.project IS NOT NULL AND w.project IS DISTINCT FROM d.project)
       OR (d.branch IS NOT NULL AND w.branch IS DISTINCT FROM d.branch)
       OR (d.commit IS NOT NULL AND w.commit IS DISTINCT FROM d.commit))
    RETURNING 1
)
SELECT (SELECT count(*) FROM cm) + (SELECT count(*) FROM cp) + (SELECT count(*) FROM cw),
       (SELECT pg_notify($18, $19) WHERE $19::text IS NOT NULL)
"""
