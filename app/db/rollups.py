"""The rollups' SQL: one definition per rollup, rendered for plain PostgreSQL (tables that the
rollup job re-aggregates hour by hour) or for TimescaleDB (continuous aggregates).

Every rollup groups events by hour, agent, project, machine and a few columns of its own, and
keeps only additive measures (counts and sums), so a day, a week or a whole range is the sum of
its hours, and the not-yet-rolled-up tail of raw events can be added row by row
(the tail, read in the same snapshot; see ``app/services/usage.py``). Project and machine come from the event's session (an inner join: ingest
creates a session before its events). ``model`` and ``tool_name`` are ``''`` when the event has
none, so that they can be grouping keys on both paths.

Latency percentiles come from ``latency_hourly``: a histogram whose bucket ``le`` holds the
durations ``d`` with ``floor(4·log2(d + 1)) = le`` (quarter-octave buckets, ±9 % resolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# floor(4 * log2(d + 1)) as ln(d + 1) * 4/ln 2: float arithmetic, accepted in a continuous aggregate.
HISTOGRAM_STEPS_PER_OCTAVE = 4
_LE = f"floor(ln(greatest(e.duration_ms, 0) + 1.0) * {HISTOGRAM_STEPS_PER_OCTAVE / math.log(2)!r})::int"


def histogram_bounds(le: int) -> tuple[float, float]:
    """The duration range (ms) of histogram bucket ``le``."""
    return (2 ** (le / HISTOGRAM_STEPS_PER_OCTAVE) - 1, 2 ** ((le + 1) / HISTOGRAM_STEPS_PER_OCTAVE) - 1)


EVENTS = "agent_event e JOIN agent_session s ON s.id = e.session_id"
# The same for a few thousand raw events (a query's partial hours, the tail): their sessions by
# primary key. As a join, the planner hashes every session (tens of ms) for a handful of rows;
# OFFSET 0 keeps the lateral subquery from being turned back into that join.
RAW_EVENTS = ("agent_event e CROSS JOIN LATERAL (SELECT project, machine FROM agent_session"
              " WHERE id = e.session_id OFFSET 0) AS s")


@dataclass(frozen=True, slots=True)
class Rollup:
    """One rollup. ``keys`` and ``measures`` are ``(column, SQL expression over e and s)``.

    ``plain_only``: measures that only the plain-PostgreSQL tables keep (not the continuous
    aggregates, not the readers): the counts that let a revision *subtract* an event exactly
    (:func:`plain_undo_sql`) — ``count`` names the ``count(*)`` measure (a row whose count
    drops to 0 holds no event and is deleted), ``priced``/``reported`` count the events with a
    cost / a reported cost (a cost sum whose count drops to 0 is NULL, as the GROUP BY says)."""

    name: str
    keys: tuple[tuple[str, str], ...]
    measures: tuple[tuple[str, str], ...]
    where: str = "TRUE"
    key_types: tuple[str, ...] = ()
    # keys too long for a btree entry (file paths): indexed by their md5 in the plain tables,
    # and without TimescaleDB's per-key group index on the continuous aggregates
    long_keys: tuple[str, ...] = ()
    plain_only: tuple[tuple[str, str], ...] = ()
    count: str = "events"

    @property
    def columns(self) -> list[str]:
        return ["bucket", *(k for k, _ in self.keys), *(m for m, _ in self.measures)]

    @property
    def plain_columns(self) -> list[str]:
        """The columns of the plain tables: :attr:`columns` and the plain-only counts."""
        return [*self.columns, *(m for m, _ in self.plain_only)]

    def _measures(self, plain: bool) -> tuple[tuple[str, str], ...]:
        return self.measures + self.plain_only if plain else self.measures

    def select(self, bucket: str, source: str = EVENTS, where: str = "TRUE", *,
               plain: bool = False) -> str:
        """``SELECT bucket, keys…, measures… FROM <source> … GROUP BY keys`` over raw events
        (``e``: agent_event, ``s``: its session); ``where`` is added to the rollup's own filter.
        ``plain``: with the plain-only counts (the plain tables' columns)."""
        keys = ",\n       ".join(f"{expr} AS {col}" for col, expr in self.keys)
        measures = ",\n       ".join(f"{expr} AS {col}" for col, expr in self._measures(plain))
        group = ", ".join(str(i) for i in range(1, len(self.keys) + 2))
        return (f"SELECT {bucket} AS bucket,\n       {keys},\n       {measures}\n"
                f"FROM {source}\nWHERE ({self.where}) AND ({where})\nGROUP BY {group}")

    def select_per_session(self, bucket: str, where: str) -> str:
        """The same rows from a few thousand raw events, cheaper: aggregated per session first,
        then each session looked up by key (OFFSET 0 keeps the planner from turning the lookup
        into a join that hashes every session) and the rows added up. Every measure is additive."""
        e_keys = [(c, x) for c, x in self.keys if "s." not in x]
        inner = ", ".join([f"{bucket} AS bucket", *(f"{x} AS {c}" for c, x in e_keys),
                           "e.session_id AS session_id", *(f"{x} AS {c}" for c, x in self.measures)])
        inner_group = ", ".join(str(i) for i in range(1, len(e_keys) + 3))
        keys = ", ".join(f"{x} AS {c}" if "s." in x else f"x.{c} AS {c}" for c, x in self.keys)
        measures = ", ".join(f"sum(x.{c})" + ("" if c.startswith("cost") else "::bigint") + f" AS {c}"
                             for c, _ in self.measures)
        group = ", ".join(str(i) for i in range(1, len(self.keys) + 2))
        return (f"SELECT x.bucket AS bucket, {keys}, {measures}\n"
                f"FROM (SELECT {inner} FROM agent_event e WHERE ({self.where}) AND ({where})"
                f" GROUP BY {inner_group}) AS x\n"
                f"CROSS JOIN LATERAL (SELECT project, machine FROM agent_session"
                f" WHERE id = x.session_id OFFSET 0) AS s\nGROUP BY {group}")

    def reaggregate(self, bucket: str, source: str, where: str = "TRUE", *,
                    plain: bool = False) -> str:
        """The same rows re-grouped from rows of this rollup (e.g. days from hours): every
        measure is additive, so counts and sums become sums."""
        keys = ", ".join(col for col, _ in self.keys)
        measures = ", ".join(f"sum({col}) AS {col}" for col, _ in self._measures(plain))
        group = ", ".join(str(i) for i in range(1, len(self.keys) + 2))
        return f"SELECT {bucket} AS bucket, {keys}, {measures}\nFROM {source}\nWHERE {where}\nGROUP BY {group}"

    @property
    def daily(self) -> str:
        return self.name.replace("_hourly", "_daily")


# Events with a cost / a reported cost (plain tables only: see Rollup).
_COST_COUNTS = (("priced", "count(e.cost_usd)"),
                ("reported", "count(e.cost_usd) FILTER (WHERE e.cost_source = 'reported')"))
# The cost sums and the count that says whether they are NULL.
COST_COUNTS = {"cost_usd": "priced", "cost_reported_usd": "reported"}

# No project / machine is the nil UUID, not NULL: every key column is NOT NULL, so a plain
# unique index (PostgreSQL 14 has no NULLS NOT DISTINCT) lets the job add deltas with ON CONFLICT.
NIL = "00000000-0000-0000-0000-000000000000"
_CONTEXT = (("agent", "e.agent"), ("project_id", f"coalesce(s.project, '{NIL}'::uuid)"),
            ("machine_id", f"coalesce(s.machine, '{NIL}'::uuid)"))
_CONTEXT_TYPES = ("text NOT NULL", "uuid NOT NULL", "uuid NOT NULL")

USAGE = Rollup(
    name="usage_hourly",
    keys=(*_CONTEXT, ("kind", "e.kind"), ("model", "coalesce(e.model, '')"),
          ("tool_name", "coalesce(e.tool_name, '')")),
    key_types=(*_CONTEXT_TYPES, "text NOT NULL", "text NOT NULL", "text NOT NULL"),
    measures=(
        ("events", "count(*)"),
        ("errors", "count(*) FILTER (WHERE e.status = 'error')"),
        ("tokens_input", "coalesce(sum(e.tokens_input), 0)"),
        ("tokens_output", "coalesce(sum(e.tokens_output), 0)"),
        ("tokens_cache_read", "coalesce(sum(e.tokens_cache_read), 0)"),
        ("tokens_cache_write", "coalesce(sum(e.tokens_cache_write), 0)"),
        ("tokens_cache_write_5m", "coalesce(sum(e.tokens_cache_write_5m), 0)"),
        ("tokens_cache_write_1h", "coalesce(sum(e.tokens_cache_write_1h), 0)"),
        ("tokens_reasoning", "coalesce(sum(e.tokens_reasoning), 0)"),
        ("cost_usd", "sum(e.cost_usd)"),
        ("cost_reported_usd", "sum(e.cost_usd) FILTER (WHERE e.cost_source = 'reported')"),
        ("unpriced", "count(*) FILTER (WHERE e.kind = 'llm_call' AND e.cost_usd IS NULL)"),
        ("estimated", "count(*) FILTER (WHERE e.tokens_estimated)"),
        ("duration_ms", "coalesce(sum(e.duration_ms), 0)"),
        ("durations", "count(e.duration_ms)"),
        ("lines_added", "coalesce(sum(e.lines_added), 0)"),
        ("lines_removed", "coalesce(sum(e.lines_removed), 0)"),
    ),
    plain_only=_COST_COUNTS,
)

LATENCY = Rollup(
    name="latency_hourly",
    keys=(*_CONTEXT, ("kind", "e.kind"), ("model", "coalesce(e.model, '')"),
          ("tool_name", "coalesce(e.tool_name, '')"), ("le", _LE)),
    key_types=(*_CONTEXT_TYPES, "text NOT NULL", "text NOT NULL", "text NOT NULL", "int NOT NULL"),
    measures=(("n", "count(*)"),),
    count="n",
    where="e.duration_ms IS NOT NULL AND e.kind IN ('llm_call', 'tool_call', 'tool_result')",
)

FILES = Rollup(
    name="tool_file_hourly",
    keys=(*_CONTEXT, ("tool_name", "coalesce(e.tool_name, '')"), ("file_path", "e.file_path")),
    key_types=(*_CONTEXT_TYPES, "text NOT NULL", "text NOT NULL"),
    measures=(
        ("touches", "count(*) FILTER (WHERE e.kind = 'tool_call')"),
        ("errors", "count(*) FILTER (WHERE e.status = 'error')"),
        ("lines_added", "coalesce(sum(e.lines_added) FILTER (WHERE e.kind = 'tool_result'), 0)"),
        ("lines_removed", "coalesce(sum(e.lines_removed) FILTER (WHERE e.kind = 'tool_result'), 0)"),
    ),
    where="e.file_path IS NOT NULL AND e.kind IN ('tool_call', 'tool_result')",
    long_keys=("file_path",),
    plain_only=(("n", "count(*)"),),
    count="n",
)

# USAGE without kind, model and tool: the same totals in a tenth of the rows, for the common
# question "by time, agent, project or machine" (not split or filtered by model or tool).
CONTEXT = Rollup(
    name="context_hourly",
    keys=_CONTEXT,
    key_types=_CONTEXT_TYPES,
    measures=(
        ("events", "count(*)"),
        ("prompts", "count(*) FILTER (WHERE e.kind = 'user_prompt')"),
        ("llm_calls", "count(*) FILTER (WHERE e.kind = 'llm_call')"),
        ("tool_calls", "count(*) FILTER (WHERE e.kind = 'tool_call')"),
        ("tool_errors", "count(*) FILTER (WHERE e.status = 'error' AND e.kind IN ('tool_call', 'tool_result'))"),
        ("errors", "count(*) FILTER (WHERE e.kind = 'error')"),
        *(m for m in USAGE.measures if m[0] in (
            "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
            "tokens_reasoning", "cost_usd", "cost_reported_usd", "unpriced", "estimated",
            "lines_added", "lines_removed")),
    ),
    plain_only=_COST_COUNTS,
)

ROLLUPS: tuple[Rollup, ...] = (USAGE, LATENCY, FILES, CONTEXT)

# UTC hours and days. date_bin is several times cheaper per row than date_trunc(…, 'UTC').
_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
PLAIN_BUCKET = f"date_bin(INTERVAL '1 hour', e.ts, {_ORIGIN})"
PLAIN_DAY = f"date_bin(INTERVAL '1 day', bucket, {_ORIGIN})"
TIMESCALE_BUCKET = "time_bucket(INTERVAL '1 hour', e.ts)"
TIMESCALE_DAY = "time_bucket(INTERVAL '1 day', bucket)"


def _unique_key(r: Rollup) -> str:
    # file paths can be longer than a btree entry allows: the key holds their md5
    return ", ".join(["bucket", *(f"md5({c})" if c in r.long_keys else c for c, _ in r.keys)])


def _plain_table(name: str, r: Rollup) -> str:
    cols = ["bucket timestamptz NOT NULL"]
    cols += [f"{col} {typ}" for (col, _), typ in zip(r.keys, r.key_types, strict=True)]
    cols += [f"{col} numeric" if col.startswith("cost") else f"{col} bigint NOT NULL"
             for col, _ in r.measures]
    cols += [f"{col} bigint NOT NULL DEFAULT 0" for col, _ in r.plain_only]
    return (f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join(cols) + "\n);\n"
            f"CREATE UNIQUE INDEX IF NOT EXISTS {name}_key ON {name} ({_unique_key(r)});\n"
            f"CREATE INDEX IF NOT EXISTS {name}_bucket_idx ON {name} (bucket);\n")


def plain_ddl(r: Rollup) -> str:
    """The plain-PostgreSQL tables of a rollup, hourly and daily."""
    return _plain_table(r.name, r) + _plain_table(r.daily, r)


def _add(table: str, col: str, sign: str = "+", other: str = "excluded") -> str:
    """``col`` of ``table`` plus (or minus) ``other``'s: a cost is NULL once no event with a
    cost is left in the row (its plain-only count)."""
    if col in COST_COUNTS:
        n = COST_COUNTS[col]
        return (f"{col} = CASE WHEN {table}.{n} {sign} {other}.{n} = 0 THEN NULL "
                f"ELSE coalesce({table}.{col}, 0) {sign} coalesce({other}.{col}, 0) END")
    return f"{col} = {table}.{col} {sign} {other}.{col}"


def _adds(table: str, r: Rollup, sign: str = "+", other: str = "excluded") -> str:
    return ", ".join(_add(table, c, sign, other) for c, _ in r._measures(plain=True))


def plain_delta_sql(r: Rollup) -> list[str]:
    """Statements that add the events ingested in [``$1``, ``$2``) with ``ts`` at or after
    ``$3`` (``-infinity`` for no bound) to the hourly rows, then — from the same aggregated
    delta, not the events again — to the daily rows. Run in one transaction. New rows go in
    bucket order: a range query then reads few pages."""
    delta = f"_delta_{r.name}"
    where = "e.ingested_at >= $1 AND e.ingested_at < $2 AND e.ts >= $3"
    columns = ", ".join(r.plain_columns)
    return [
        f"CREATE TEMP TABLE {delta} ON COMMIT DROP AS\n{r.select(PLAIN_BUCKET, EVENTS, where, plain=True)}",
        (f"INSERT INTO {r.name} ({columns}) SELECT {columns} FROM {delta} ORDER BY bucket\n"
        f"ON CONFLICT ({_unique_key(r)}) DO UPDATE SET {_adds(r.name, r)}"),
        (f"INSERT INTO {r.daily} ({columns})\n{r.reaggregate(PLAIN_DAY, delta, plain=True)}\n"
        f"ON CONFLICT ({_unique_key(r)}) DO UPDATE SET {_adds(r.daily, r)}"),
    ]


def _same_key(r: Rollup, a: str, b: str) -> str:
    """Rows ``a`` and ``b`` have the same key (through the unique index: md5 of file paths)."""
    conds = [f"{a}.bucket = {b}.bucket"]
    for col, _ in r.keys:
        if col == "file_path":
            conds.append(f"md5({a}.file_path) = md5({b}.file_path)")
        conds.append(f"{a}.{col} = {b}.{col}")
    return " AND ".join(conds)


def plain_undo_sql(r: Rollup, removed: str, mark: str, horizon: str) -> str:
    """A script (one round trip) that takes the events of the table ``removed`` (rows as in
    ``agent_event``, no longer in it: replaced by a revision) out of the hourly and daily rows,
    where the rollup job had added them — ingested before the watermark ``mark`` and not before
    the retention ``horizon`` (SQL expressions). The inverse of the job's delta: the same
    aggregation, subtracted from the rows that hold it (``UPDATE``: an hourly row deleted by
    rollup retention stays deleted); a row left with no event is deleted, and a cost sum left
    with no priced event is NULL, so the rows equal the GROUP BY over the remaining events."""
    undo = f"_undo_{r.name}"
    columns = ", ".join(r.plain_columns)
    day_keys = ", ".join([PLAIN_DAY + " AS bucket", *(c for c, _ in r.keys)])
    source = f"{removed} e JOIN agent_session s ON s.id = e.session_id"
    where = f"e.ingested_at < {mark} AND e.ts >= {horizon}"
    return ";\n".join([
        f"CREATE TEMP TABLE IF NOT EXISTS {undo} (LIKE {r.name}) ON COMMIT DELETE ROWS",
        f"INSERT INTO {undo} ({columns})\n{r.select(PLAIN_BUCKET, source, where, plain=True)}",
        f"UPDATE {r.name} t SET {_adds('t', r, '-', 'd')} FROM {undo} d WHERE {_same_key(r, 't', 'd')}",
        f"DELETE FROM {r.name} t USING {undo} d WHERE {_same_key(r, 't', 'd')} AND t.{r.count} <= 0",
        (f"UPDATE {r.daily} t SET {_adds('t', r, '-', 'd')} FROM "
         f"({r.reaggregate(PLAIN_DAY, undo, plain=True)}) d WHERE {_same_key(r, 't', 'd')}"),
        (f"DELETE FROM {r.daily} t USING (SELECT DISTINCT {day_keys} FROM {undo}) d"
         f" WHERE {_same_key(r, 't', 'd')} AND t.{r.count} <= 0"),
        f"DELETE FROM {undo}",  # several undos may run in one transaction
    ]) + ";\n"


_RANGES = "unnest($1::timestamptz[], $2::timestamptz[]) AS h(a, b)"


def plain_refresh_sql(r: Rollup) -> list[str]:
    """Four statements (for re-aggregation; the job adds deltas): replace the hours in the
    ranges ``unnest($1 starts, $2 ends)``; then replace the days in the ranges ``unnest($1, $2)``
    — whole UTC days, not overlapping — from the hourly rows (the caller passes hour ranges to
    the first two, day ranges to the last two). Only events before the watermark go in: the
    others are the readers' tail. Rows go in bucket order."""
    hours = days = _RANGES
    events = f"{hours} JOIN agent_event e ON e.ts >= h.a AND e.ts < h.b JOIN agent_session s ON s.id = e.session_id"
    columns = ", ".join(r.plain_columns)
    return [
        f"DELETE FROM {r.name} USING {hours} WHERE bucket >= h.a AND bucket < h.b",
        f"INSERT INTO {r.name} ({columns})\n{r.select(PLAIN_BUCKET, events, ROLLED_UP, plain=True)} ORDER BY 1",
        f"DELETE FROM {r.daily} USING {days} WHERE bucket >= h.a AND bucket < h.b",
        f"INSERT INTO {r.daily} ({columns})\n"
        + r.reaggregate(PLAIN_DAY.replace("bucket", "x.bucket"),
                        f"{days} JOIN {r.name} x ON x.bucket >= h.a AND x.bucket < h.b", plain=True)
        + " ORDER BY 1",
    ]


def plain_counts_ddl(r: Rollup) -> str:
    """Migration 0008: the plain-only counts added to existing tables. Rows get values that
    keep their cost NULL exactly when it is (as if every event of a priced row had a cost, and
    each row held at least one event); the migration then re-aggregates the hours whose raw
    events exist, which makes the counts exact there."""
    out = []
    for name in (r.name, r.daily):
        out += [f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {col} bigint NOT NULL DEFAULT 0"
                for col, _ in r.plain_only]
        sets = [f"{n} = CASE WHEN {c} IS NULL THEN 0 ELSE {r.count} END"
                for c, n in COST_COUNTS.items() if n in dict(r.plain_only)]
        if r.count in dict(r.plain_only):
            sets.append(f"{r.count} = 1")
        if sets:
            out.append(f"UPDATE {name} SET {', '.join(sets)}")
    return ";\n".join(out) + ";\n"


def timescale_ddl(r: Rollup) -> list[str]:
    """Continuous aggregates (hourly on the hypertable, daily on the hourly one) with real-time
    aggregation: the not-yet-materialised tail is read at query time. Each statement must run
    on its own, outside a transaction block."""
    hourly = (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {r.name}\n"
              f"WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
              f"{r.select(TIMESCALE_BUCKET, EVENTS)}\nWITH NO DATA")
    daily = (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {r.daily}\n"
             f"WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
             f"{r.reaggregate(TIMESCALE_DAY, r.name)}\nWITH NO DATA")
    return [hourly, daily, *timescale_drop_long_key_indexes_sql(r)]


def timescale_drop_long_key_indexes_sql(r: Rollup) -> list[str]:
    """TimescaleDB gives a continuous aggregate a btree index ``(key, bucket)`` per grouping
    key; a file path longer than a btree entry (about 2,700 bytes) would fail every refresh of
    its hour. Those indexes on ``long_keys`` are dropped (no read looks a path up). Idempotent."""
    if not r.long_keys:
        return []
    views = ", ".join(f"'{name}'" for name in (r.name, r.daily))
    columns = " OR ".join(f"i.indexdef LIKE '%({c},%'" for c in r.long_keys)
    return [f"""DO $$
DECLARE ix record;
BEGIN
    FOR ix IN SELECT i.schemaname, i.indexname
              FROM pg_indexes i JOIN timescaledb_information.continuous_aggregates c
                ON i.schemaname = c.materialization_hypertable_schema
               AND i.tablename = c.materialization_hypertable_name
              WHERE c.view_name IN ({views}) AND ({columns})
    LOOP
        EXECUTE format('DROP INDEX %I.%I', ix.schemaname, ix.indexname);
    END LOOP;
END $$"""]


def timescale_policy_sql(r: Rollup, compress_after: str | None) -> list[str]:
    """Run at every start: make a rollup's continuous aggregates compressible. TimescaleDB
    accepts a compression *policy* on a cagg only next to a refresh policy, and refreshes are
    the rollup job's; so the retention job compresses old chunks (:func:`timescale_compress_sql`)."""
    if not compress_after:
        return []
    return [f"ALTER MATERIALIZED VIEW {name} SET (timescaledb.compress = true)"
            for name in (r.name, r.daily)]


def timescale_compress_sql(r: Rollup, compress_after: str) -> list[str]:
    """Compress the chunks of a rollup's continuous aggregates older than ``compress_after``."""
    interval = compress_after.replace("'", "''")
    return [f"SELECT count(compress_chunk(c, if_not_compressed => true)) FROM "
            f"show_chunks('{name}', older_than => now() - INTERVAL '{interval}') AS c"
            for name in (r.name, r.daily)]


# The plain path's watermark, as an expression (re-aggregation rolls up only events before it).
WATERMARK = ("coalesce((SELECT watermark FROM job_state WHERE name = 'rollups'),"
             " '-infinity'::timestamptz)")
ROLLED_UP = f"e.ingested_at < {WATERMARK}"  # the others
