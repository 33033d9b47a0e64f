"""Usage analytics over the rollups: tokens, cost, calls and errors by time bucket and by agent,
model, project, machine or tool; tool and model statistics with latency percentiles.

Where the numbers come from, for a range [since, until) (``rows`` below):

- whole UTC days before the rollup watermark's day, when the answer is bucketed by day or week
  in UTC: the daily rollup;
- other whole hours: the hourly rollup, plus the raw events ingested after the watermark (the
  tail, plain PostgreSQL only: a TimescaleDB continuous aggregate adds its tail itself);
- a partial hour at either end (a range that does not start or end on the hour): raw events.

So every answer is exact and current to the last ingested event, and a 90-day query reads a
few thousand rollup rows instead of millions of events.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import msgspec

from app.db import reads, rollups
from app.db.ddl import storable
from app.db.rollups import Rollup
from app.db.timescale import events_in_hypertable
from app.db.watchdog import guarded, in_background
from app.jobs import ranges
from app.jobs import rollups as rollup_job
from app.jobs.rollups import NEVER
from app.turns import chunks_in_turns, map_in_turns

Bucket = Literal["hour", "day", "week"]
GroupBy = Literal["agent", "model", "project", "machine", "tool"]
GROUP_COLUMNS: dict[str, str] = {
    "agent": "agent", "model": "model", "project": "project_id", "machine": "machine_id",
    "tool": "tool_name",
}
UTC_NAMES = {"UTC", "Etc/UTC", "Z", "GMT", "Etc/GMT"}


class UsageFilter(msgspec.Struct, frozen=True, kw_only=True):
    agents: list[str] | None = None
    projects: list[uuid.UUID] | None = None
    machines: list[uuid.UUID] | None = None
    models: list[str] | None = None
    tools: list[str] | None = None


class UsagePoint(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime | None  # the bucket's start; None in totals
    agent: str | None = None
    model: str | None = None
    project_id: uuid.UUID | None = None
    machine_id: uuid.UUID | None = None
    tool: str | None = None
    events: int = 0
    sessions: int | None = None  # sessions started; None when grouped or filtered by model/tool
    prompts: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    errors: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    tokens_cache_read: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0
    cost_usd: float | None = None
    cost_reported_usd: float | None = None
    unpriced_calls: int = 0
    estimated_calls: int = 0
    lines_added: int = 0
    lines_removed: int = 0

    @property
    def tokens_total(self) -> int:
        """Input + output + cache read + cache write (reasoning is part of output)."""
        return self.prompt_tokens + self.tokens_output

    @property
    def prompt_tokens(self) -> int:
        return self.tokens_input + self.tokens_cache_read + self.tokens_cache_write

    @property
    def cache_share(self) -> float | None:
        """Cache reads as a share of all prompt tokens."""
        total = self.prompt_tokens
        return self.tokens_cache_read / total if total else None


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    until: datetime
    bucket: str
    group_by: list[str]
    points: list[UsagePoint]
    totals: UsagePoint
    as_of: datetime | None  # the rollup watermark (the tail after it is included)


class Percentiles(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None


class FileCount(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    touches: int
    lines_added: int
    lines_removed: int


class ToolStat(msgspec.Struct, frozen=True, kw_only=True):
    tool: str
    calls: int
    errors: int
    error_rate: float | None
    duration: Percentiles
    lines_added: int
    lines_removed: int
    top_files: list[FileCount]


class ModelStat(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    calls: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_reasoning: int
    cost_usd: float | None
    unpriced_calls: int
    latency: Percentiles


# -- where the rows come from -----------------------------------------------------------------


@dataclass
class _Params:
    values: list[object] = field(default_factory=list)

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def whole_hour_zone(time_zone: str, since: datetime, until: datetime) -> bool:
    """Whether the zone's offset is a whole number of hours throughout the range (sampled at
    both ends and every 30 days: offsets change at most twice a year)."""
    tz = ZoneInfo(_zone(time_zone))
    t = since
    while True:
        offset = t.astimezone(tz).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        if t >= until:
            return True
        t = min(until, t + timedelta(days=30))


@dataclass(frozen=True, slots=True)
class _Reader:
    """One consistent read: a connection in a REPEATABLE READ READ ONLY transaction and the
    rollup watermark read in it, so rollup rows and the tail after the watermark come from one
    snapshot (a refresh committing in between cannot count an event twice or drop it). The
    watermark is a bound value, so the planner sees how recent it is and reads the tail through
    the BRIN index on ``ingested_at`` instead of the whole range."""

    conn: asyncpg.Connection
    mark: datetime | None
    hypertable: bool
    now: datetime  # the database's clock at the start of the read

    async def fetch(self, sql: str, *args: object) -> list:
        return await guarded(self.conn.fetch(sql, *storable(args)))


_BEGIN = ("SELECT (SELECT watermark FROM job_state WHERE name = $1) AS mark, now() AS now"
          " FROM set_config('jit', 'off', true) AS j, set_config('enable_sort', 'off', true) AS o,"
          " set_config('statement_timeout', $2, true) AS t")


@contextlib.asynccontextmanager
async def _reading() -> AsyncIterator[_Reader]:
    """A read-only REPEATABLE READ transaction on a pool connection (within the request's share
    of the pool, under the read time limit: ``app.db.reads``). Each step fails at once when the
    database stops answering (``app.db.watchdog``); a step abandoned that way, and the end of a
    read that failed, finish in the background once the database answers again (the connection
    then goes back to the pool), so the request is not held."""
    hypertable = await events_in_hypertable()
    timeout = str(reads.timeout_ms())
    held = contextlib.AsyncExitStack()

    async def begin() -> tuple[asyncpg.Connection, Any, asyncpg.Record]:
        try:
            conn = await held.enter_async_context(reads.pooled())
            tx = conn.transaction(isolation="repeatable_read", readonly=True)
            await tx.start()
            # JIT compiles a plan in 100+ ms; these queries run in a few ms. The planner guesses
            # far more groups than there are and sorts thousands of raw rows: hash them instead.
            # The read time limit holds for the rest of the transaction.
            return conn, tx, await conn.fetchrow(_BEGIN, rollup_job.STATE, timeout)
        except BaseException:  # also when abandoned (cancelled): give the connection back
            await held.aclose()
            raise

    async def end(tx: Any) -> None:
        try:
            await tx.rollback()  # read only: nothing to keep
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            pass  # the pool's reset (or replacement) of the connection deals with it
        finally:
            await held.aclose()

    with reads.translated():
        conn, tx, row = await guarded(begin())
        try:
            yield _Reader(conn=conn, mark=None if hypertable else row["mark"],
                          hypertable=hypertable, now=row["now"])
        except BaseException:
            in_background(end(tx))
            raise
        await guarded(end(tx))


def _rows(rd: _Reader, r: Rollup, since: datetime, until: datetime | None, p: _Params, *,
          daily_ok: bool = False, time_zone: str | None = None) -> str:
    """SQL (a UNION ALL of parts) for the rollup's rows with buckets in [since, until).
    ``until=None``: up to now — read as up to the end of the current hour (no event is stamped
    after now), so the current hour comes from the rollup and its tail, not from raw events."""
    hypertable, mark = rd.hypertable, rd.mark
    if until is None:
        until = ranges.floor(rd.now, ranges.HOUR) + ranges.HOUR
    columns = ", ".join(r.columns)
    lo, hi = ranges.ceil(since, ranges.HOUR), ranges.floor(until, ranges.HOUR)
    parts: list[str] = []
    if hi <= lo or (time_zone and not whole_hour_zone(time_zone, since, until)):
        # Less than one whole hour, or buckets that do not start on UTC hours (a zone such as
        # Asia/Kolkata, UTC+5:30): raw events, each in its own bucket (exact, slower).
        return r.select("e.ts", rollups.RAW_EVENTS, f"e.ts >= {p(since)} AND e.ts < {p(until)}")
    if since < lo:
        parts.append(r.select_per_session(rollups.PLAIN_BUCKET, f"e.ts >= {p(since)} AND e.ts < {p(lo)}"))
    if until > hi:
        parts.append(r.select_per_session(rollups.PLAIN_BUCKET, f"e.ts >= {p(hi)} AND e.ts < {p(until)}"))
    hourly_lo, hourly_hi = lo, hi
    if daily_ok:
        d0 = ranges.ceil(lo, ranges.DAY)
        d1 = ranges.floor(hi, ranges.DAY)
        if mark is not None or hypertable:
            d1 = min(d1, ranges.floor(mark, ranges.DAY)) if mark is not None else d1
            if d1 > d0:
                parts.append(f"SELECT {columns} FROM {r.daily} WHERE bucket >= {p(d0)} AND bucket < {p(d1)}")
                if lo < d0:
                    parts.append(f"SELECT {columns} FROM {r.name} WHERE bucket >= {p(lo)} AND bucket < {p(d0)}")
                hourly_lo = d1
    parts.append(f"SELECT {columns} FROM {r.name} WHERE bucket >= {p(hourly_lo)} AND bucket < {p(hourly_hi)}")
    if not hypertable:  # the tail: events not rolled up yet
        parts.append(r.select_per_session(
            rollups.PLAIN_BUCKET, f"e.ingested_at >= {p(mark or NEVER)} AND e.ts >= {p(lo)} AND e.ts < {p(hi)}"))
    return "\nUNION ALL\n".join(f"({part})" for part in parts)


def _filters(f: UsageFilter | None, p: _Params, *, has_model: bool = True) -> str:
    if f is None:
        return "TRUE"
    conds = []
    if f.agents:
        conds.append(f"agent = ANY({p(f.agents)}::text[])")
    if f.projects:
        conds.append(f"project_id = ANY({p(f.projects)}::uuid[])")
    if f.machines:
        conds.append(f"machine_id = ANY({p(f.machines)}::uuid[])")
    if f.models and has_model:
        conds.append(f"model = ANY({p(f.models)}::text[])")
    if f.tools:
        conds.append(f"tool_name = ANY({p(f.tools)}::text[])")
    return " AND ".join(conds) or "TRUE"


def _zone(time_zone: str) -> str:
    """The name of a known zone; ValueError (a message for the client) otherwise."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ValueError(f"unknown time zone {time_zone[:64]!r} (use an IANA name like "
                         "Europe/Paris)") from None
    return time_zone


# -- usage --------------------------------------------------------------------------------------

# Token buckets, cost and lines: the same columns in both usage rollups.
_SUMS = """sum(tokens_input)::bigint AS tokens_input, sum(tokens_output)::bigint AS tokens_output,
       sum(tokens_cache_read)::bigint AS tokens_cache_read,
       sum(tokens_cache_write)::bigint AS tokens_cache_write,
       sum(tokens_reasoning)::bigint AS tokens_reasoning,
       sum(cost_usd)::float8 AS cost_usd, sum(cost_reported_usd)::float8 AS cost_reported_usd,
       sum(unpriced)::bigint AS unpriced_calls, sum(estimated)::bigint AS estimated_calls,
       sum(lines_added)::bigint AS lines_added, sum(lines_removed)::bigint AS lines_removed"""
_MEASURES = """sum(events)::bigint AS events,
       (sum(events) FILTER (WHERE kind = 'user_prompt'))::bigint AS prompts,
       (sum(events) FILTER (WHERE kind = 'llm_call'))::bigint AS llm_calls,
       (sum(events) FILTER (WHERE kind = 'tool_call'))::bigint AS tool_calls,
       (sum(errors) FILTER (WHERE kind IN ('tool_call', 'tool_result')))::bigint AS tool_errors,
       (sum(events) FILTER (WHERE kind = 'error'))::bigint AS errors,
       """ + _SUMS
# The same measures from the compact rollup (no kind, model or tool: counts are pre-split).
_CONTEXT_MEASURES = """sum(events)::bigint AS events, sum(prompts)::bigint AS prompts,
       sum(llm_calls)::bigint AS llm_calls, sum(tool_calls)::bigint AS tool_calls,
       sum(tool_errors)::bigint AS tool_errors, sum(errors)::bigint AS errors,
       """ + _SUMS


def _point(row, start: datetime | None, group_by: list[str], sessions: int | None) -> UsagePoint:
    keys = {g: row[GROUP_COLUMNS[g]] for g in group_by}
    if keys.get("model") == "":
        keys["model"] = None
    if keys.get("tool") == "":
        keys["tool"] = None
    return UsagePoint(
        start=start, agent=keys.get("agent"), model=keys.get("model"),
        project_id=keys.get("project"), machine_id=keys.get("machine"), tool=keys.get("tool"),
        sessions=sessions,
        **{k: (row[k] or 0) for k in (
            "events", "prompts", "llm_calls", "tool_calls", "tool_errors", "errors",
            "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
            "tokens_reasoning", "unpriced_calls", "estimated_calls", "lines_added",
            "lines_removed")},
        cost_usd=row["cost_usd"], cost_reported_usd=row["cost_reported_usd"])


async def usage(since: datetime, until: datetime | None = None, bucket: Bucket = "day",
                group_by: list[str] | None = None, filter: UsageFilter | None = None,
                time_zone: str = "UTC", with_sessions: bool = True) -> UsageReport:
    """Usage series: one point per bucket and group, oldest first, plus totals.
    ``until=None``: up to now. ``with_sessions=False`` skips counting sessions (``sessions``
    is then None)."""
    group_by = list(dict.fromkeys(group_by or []))
    for g in group_by:
        if g not in GROUP_COLUMNS:
            raise ValueError(f"cannot group by {g!r} (use {', '.join(GROUP_COLUMNS)})")
    if until is not None and until <= since:
        raise ValueError("the range is empty: `until` must be after `since`")
    tz = _zone(time_zone)
    async with _reading() as rd:
        return await _usage(rd, since, until, bucket, group_by, filter, tz, with_sessions)


async def _usage(rd: _Reader, since: datetime, until: datetime | None, bucket: str, group_by: list[str],
                 filter: UsageFilter | None, tz: str, with_sessions: bool) -> UsageReport:
    p = _Params()
    # Not split or filtered by model or tool: the compact rollup answers with a tenth of the rows.
    compact = not ({"model", "tool"} & set(group_by)) and not (filter and (filter.models or filter.tools))
    rows = _rows(rd, rollups.CONTEXT if compact else rollups.USAGE, since, until, p,
                 daily_ok=bucket != "hour" and tz in UTC_NAMES, time_zone=tz)
    cols = [GROUP_COLUMNS[g] for g in group_by]
    keys = "".join(f", {c}" for c in cols)
    trunc = f"date_trunc({p(bucket)}, bucket, {p(tz)})"
    where = _filters(filter, p)
    measures = _CONTEXT_MEASURES if compact else _MEASURES
    sql = (f"SELECT {trunc} AS start{keys}, {measures}\nFROM ({rows}) AS r\nWHERE {where}\n"
           f"GROUP BY 1{''.join(f', {i + 2}' for i in range(len(cols)))}\nORDER BY 1")
    data = await rd.fetch(sql, *p.values)
    sessions = (await _sessions(rd, since, until or rd.now, bucket, tz, group_by, filter)
                if with_sessions else None)
    # thousands of points are tens of milliseconds of Python: built and summed taking turns
    points = await map_in_turns(lambda r: _point(
        r, r["start"], group_by,
        None if sessions is None else sessions.get((r["start"], *(r[c] for c in cols)), 0)), data)
    partial = [sum_points(chunk) async for chunk in chunks_in_turns(points, 1000)]
    totals = msgspec.structs.replace(
        sum_points(partial), sessions=None if sessions is None else sum(sessions.values()))
    return UsageReport(since=since, until=until or rd.now, bucket=bucket, group_by=group_by, points=points,
                       totals=totals, as_of=rd.mark)


async def _sessions(rd: _Reader, since: datetime, until: datetime, bucket: str, tz: str, group_by: list[str],
                    f: UsageFilter | None) -> dict[tuple, int] | None:
    """Sessions started per bucket and group, from the sessions table (small); not defined
    when grouped or filtered by model or tool."""
    if {"model", "tool"} & set(group_by) or (f and (f.models or f.tools)):
        return None
    p = _Params()
    cols = [GROUP_COLUMNS[g] for g in group_by]
    keys = "".join(f", {c}" for c in cols)
    where = _filters(f, p)
    sql = (f"SELECT date_trunc({p(bucket)}, started_at, {p(tz)}) AS start{keys}, count(*) AS n\n"
           f"FROM (SELECT agent, coalesce(project, '{rollups.NIL}'::uuid) AS project_id,"
           f" coalesce(machine, '{rollups.NIL}'::uuid) AS machine_id, started_at"
           f" FROM agent_session) AS s WHERE started_at >= {p(since)} AND started_at < {p(until)} AND {where}\n"
           f"GROUP BY 1{''.join(f', {i + 2}' for i in range(len(cols)))}")
    return {(r["start"], *(r[c] for c in cols)): r["n"] for r in await rd.fetch(sql, *p.values)}


INT_MEASURES = ("events", "prompts", "llm_calls", "tool_calls", "tool_errors", "errors",
                "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
                "tokens_reasoning", "unpriced_calls", "estimated_calls", "lines_added",
                "lines_removed")


def sum_points(points: Iterable[UsagePoint], **keys: Any) -> UsagePoint:
    """Points added up (sessions: None if any point has none; cost: None if no point has one),
    with ``keys`` (agent=…, project_id=…) set on the sum."""
    ints: dict[str, int] = defaultdict(int)
    sessions: int | None = 0
    cost = reported = None
    for pt in points:
        for k in INT_MEASURES:
            ints[k] += getattr(pt, k)
        sessions = None if sessions is None or pt.sessions is None else sessions + pt.sessions
        if pt.cost_usd is not None:
            cost = (cost or 0.0) + pt.cost_usd
        if pt.cost_reported_usd is not None:
            reported = (reported or 0.0) + pt.cost_reported_usd
    return UsagePoint(start=None, sessions=sessions, cost_usd=cost, cost_reported_usd=reported,
                      **ints, **keys)


# -- latency ------------------------------------------------------------------------------------


def percentiles(hist: dict[int, int], total_ms: int | None = None) -> Percentiles:
    """p50/p95 from a quarter-octave histogram (``le`` → count), interpolated by rank inside
    the bucket; exact to the bucket's width (±9 %)."""
    n = sum(hist.values())
    if n == 0:
        return Percentiles(count=0, p50_ms=None, p95_ms=None, mean_ms=None)

    def at(q: float) -> float:
        rank = q * n
        seen = 0
        for le in sorted(hist):
            c = hist[le]
            if seen + c >= rank:
                lo, hi = rollups.histogram_bounds(le)
                return lo + (hi - lo) * ((rank - seen) / c)
            seen += c
        return rollups.histogram_bounds(max(hist))[1]

    return Percentiles(count=n, p50_ms=round(at(0.5), 1), p95_ms=round(at(0.95), 1),
                       mean_ms=round(total_ms / n, 1) if total_ms is not None else None)


async def _histograms(rd: _Reader, since: datetime, until: datetime | None, key: str, kinds: tuple[str, ...],
                      f: UsageFilter | None) -> dict[str, dict[int, int]]:
    p = _Params()
    rows = _rows(rd, rollups.LATENCY, since, until, p, daily_ok=True)
    sql = (f"SELECT {key} AS k, le, sum(n)::bigint AS n FROM ({rows}) AS r\n"
           f"WHERE kind = ANY({p(list(kinds))}::text[]) AND {_filters(f, p)} GROUP BY 1, 2")
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for r in await rd.fetch(sql, *p.values):
        out[r["k"]][r["le"]] = r["n"]
    return out


async def tool_stats(since: datetime, until: datetime | None, filter: UsageFilter | None = None,
                     top_files: int = 5) -> list[ToolStat]:
    """Per tool: calls, errors, error rate, duration percentiles, lines changed, top files;
    most used first."""
    async with _reading() as rd:
        return await _tool_stats(rd, since, until, filter, top_files)


async def _tool_stats(rd: _Reader, since: datetime, until: datetime | None, filter: UsageFilter | None,
                      top_files: int) -> list[ToolStat]:
    p = _Params()
    rows = _rows(rd, rollups.USAGE, since, until, p, daily_ok=True)
    data = await rd.fetch(
        f"""SELECT tool_name,
                   (sum(events) FILTER (WHERE kind = 'tool_call'))::bigint AS calls,
                   sum(errors)::bigint AS errors,
                   (sum(duration_ms) FILTER (WHERE kind IN ('tool_call', 'tool_result')))::float8 AS ms,
                   sum(lines_added)::bigint AS added, sum(lines_removed)::bigint AS removed
            FROM ({rows}) AS r
            WHERE tool_name <> '' AND kind IN ('tool_call', 'tool_result') AND {_filters(filter, p)}
            GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1""", *p.values)
    hists = await _histograms(rd, since, until, "tool_name", ("tool_call", "tool_result"), filter)
    files = await _top_files(rd, since, until, filter, top_files)
    out = []
    for r in data:
        calls = r["calls"] or 0
        out.append(ToolStat(
            tool=r["tool_name"], calls=calls, errors=r["errors"],
            error_rate=r["errors"] / calls if calls else None,
            duration=percentiles(hists.get(r["tool_name"], {}), r["ms"]),
            lines_added=r["added"], lines_removed=r["removed"],
            top_files=files.get(r["tool_name"], [])))
    return out


async def _top_files(rd: _Reader, since: datetime, until: datetime | None, f: UsageFilter | None,
                     limit: int) -> dict[str, list[FileCount]]:
    p = _Params()
    rows = _rows(rd, rollups.FILES, since, until, p, daily_ok=True)
    sql = f"""SELECT tool_name, file_path, t, a, d FROM (
                SELECT tool_name, file_path, sum(touches)::bigint AS t, sum(lines_added)::bigint AS a,
                       sum(lines_removed)::bigint AS d,
                       row_number() OVER (PARTITION BY tool_name ORDER BY sum(touches) DESC, file_path) AS rank
                FROM ({rows}) AS r WHERE {_filters(f, p, has_model=False)} GROUP BY 1, 2) x
              WHERE rank <= {p(limit)} ORDER BY tool_name, rank"""
    out: dict[str, list[FileCount]] = defaultdict(list)
    for r in await rd.fetch(sql, *p.values):
        out[r["tool_name"]].append(FileCount(path=r["file_path"], touches=r["t"],
                                             lines_added=r["a"], lines_removed=r["d"]))
    return out


async def model_stats(since: datetime, until: datetime | None,
                      filter: UsageFilter | None = None) -> list[ModelStat]:
    """Per model: calls, tokens by bucket, cost, unpriced calls, latency percentiles."""
    async with _reading() as rd:
        p = _Params()
        rows = _rows(rd, rollups.USAGE, since, until, p, daily_ok=True)
        data = await rd.fetch(
            f"""SELECT model, sum(events)::bigint AS calls,
                       sum(tokens_input)::bigint AS ti, sum(tokens_output)::bigint AS tout,
                       sum(tokens_cache_read)::bigint AS tcr, sum(tokens_cache_write)::bigint AS tcw,
                       sum(tokens_reasoning)::bigint AS tr, sum(cost_usd)::float8 AS cost,
                       sum(unpriced)::bigint AS unpriced, sum(duration_ms)::float8 AS ms
                FROM ({rows}) AS r WHERE kind = 'llm_call' AND {_filters(filter, p)}
                GROUP BY 1 ORDER BY 2 DESC, 1""", *p.values)
        hists = await _histograms(rd, since, until, "model", ("llm_call",), filter)
    return [ModelStat(model=r["model"], calls=r["calls"], tokens_input=r["ti"],
                      tokens_output=r["tout"], tokens_cache_read=r["tcr"],
                      tokens_cache_write=r["tcw"], tokens_reasoning=r["tr"], cost_usd=r["cost"],
                      unpriced_calls=r["unpriced"],
                      latency=percentiles(hists.get(r["model"], {}), r["ms"]))
            for r in data]
