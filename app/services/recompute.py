"""Recompute LLM-call costs with the current prices (``devlog prices recompute``).

Done in SQL, one time window at a time, so it scales to tens of millions of events: the model
names of the calls in range are resolved in Python once (the same ``PriceBook`` ingest uses) into
a temp table of price bands — (model, provider, valid from/to, prompt-token range) with their
resolved rates —, then one ``UPDATE … FROM`` per window joins each call to its band and
rewrites only the rows whose cost or source changes. Reported costs are left alone. The
sessions whose calls changed get their ``cost_usd`` summed again, then the rollups of the range
are re-aggregated (``app.jobs.rollups.reaggregate``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.db import engine
from app.jobs import rollups
from app.pricing import store
from app.pricing.book import PriceBook
from app.pricing.cost import SQL_COST

_MAX = 2**62
_PAST = datetime(1, 1, 1, tzinfo=UTC)
_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

_BANDS_DDL = """
CREATE TEMP TABLE IF NOT EXISTS price_band (
    model text NOT NULL, provider text NOT NULL,
    valid_from timestamptz NOT NULL, valid_to timestamptz NOT NULL,
    above bigint NOT NULL, upto bigint NOT NULL,
    p_in float8 NOT NULL, p_out float8 NOT NULL, p_cr float8 NOT NULL, p_cw float8 NOT NULL,
    p_cw1h float8, p_re float8
) ON COMMIT PRESERVE ROWS;
TRUNCATE price_band;
"""

_PROMPT = ("(coalesce(e.tokens_input, 0) + coalesce(e.tokens_cache_read, 0)"
           " + coalesce(e.tokens_cache_write, 0))")

_UPDATE = f"""
WITH c AS (
    SELECT e.id, e.ts,
           CASE WHEN b.model IS NULL THEN NULL ELSE {SQL_COST} END AS cost,
           CASE WHEN b.model IS NULL THEN 'unpriced' ELSE 'computed' END AS source
    FROM agent_event e
    LEFT JOIN price_band b
           ON b.model = e.model AND b.provider = coalesce(e.provider, '')
          AND e.ts >= b.valid_from AND e.ts < b.valid_to
          AND {_PROMPT} > b.above AND {_PROMPT} <= b.upto
    WHERE e.kind = 'llm_call' AND e.ts >= $1 AND e.ts < $2
      AND e.cost_source IS DISTINCT FROM 'reported'
), u AS (
    UPDATE agent_event t SET cost_usd = c.cost, cost_source = c.source
    FROM c
    WHERE t.id = c.id AND t.ts = c.ts AND t.ts >= $1 AND t.ts < $2
      AND (t.cost_usd IS DISTINCT FROM c.cost OR t.cost_source IS DISTINCT FROM c.source)
    RETURNING t.session_id
)
SELECT count(*) AS n, coalesce(array_agg(DISTINCT session_id), '{{}}') AS sessions FROM u
"""

_SESSIONS = """
UPDATE agent_session s SET cost_usd = c.total, updated_at = now()
FROM (SELECT d.id, (SELECT sum(e.cost_usd) FROM agent_event e WHERE e.session_id = d.id) AS total
      FROM unnest($1::uuid[]) AS d(id)) c
WHERE s.id = c.id AND s.cost_usd IS DISTINCT FROM c.total
"""


@dataclass(slots=True)
class RecomputeResult:
    since: datetime | None
    until: datetime | None
    windows: int = 0
    events: int = 0  # LLM calls whose cost or source changed
    sessions: int = 0  # sessions whose cost changed
    models: int = 0  # distinct (model, provider) pairs in range
    unpriced: list[str] = field(default_factory=list)  # model names without a price
    rollup_hours: int | None = None  # what reaggregate() reported (-1: TimescaleDB refresh)


def bands(book: PriceBook, pairs: list[tuple[str | None, str | None]]) -> list[tuple]:
    """Rows of ``price_band`` for these (model, provider) pairs."""
    out = []
    for model, provider in pairs:
        m = book.resolve(model, provider)
        if m is None or model is None:
            continue
        starts = [p.valid_from for p in m.prices]
        for i, price in enumerate(m.prices):
            start = price.valid_from or _PAST
            end = starts[i + 1] if i + 1 < len(starts) else _FUTURE
            thresholds = [-1] + [above for above, _ in price.bands]
            rates = [price.base] + [r for _, r in price.bands]
            for j, r in enumerate(rates):
                upto = thresholds[j + 1] if j + 1 < len(thresholds) else _MAX
                out.append((model, provider or "", start, end, thresholds[j], upto, r.input,
                            r.output, r.cache_read, r.cache_write, r.cache_write_1h, r.reasoning))
    return out


async def recompute(since: datetime | None = None, until: datetime | None = None, *,
                    step: timedelta = timedelta(days=1),
                    progress: Callable[[int, int], None] | None = None) -> RecomputeResult:
    """Recompute the costs of LLM calls in [since, until) (default: all). ``progress(done,
    total)`` is called after each time window."""
    result = RecomputeResult(since=since, until=until)
    async with engine.pool().acquire() as conn:
        book = await store.read_book(conn)
        lo, hi = await conn.fetchrow(
            "SELECT min(ts), max(ts) FROM agent_event WHERE kind = 'llm_call' "
            "AND ($1::timestamptz IS NULL OR ts >= $1) AND ($2::timestamptz IS NULL OR ts < $2)",
            since, until)
        if lo is None:
            if progress:
                progress(0, 0)
            return result
        hi = hi + timedelta(microseconds=1)
        pairs = [tuple(r) for r in await conn.fetch(
            "SELECT DISTINCT model, provider FROM agent_event WHERE kind = 'llm_call' "
            "AND ts >= $1 AND ts < $2 AND cost_source IS DISTINCT FROM 'reported'", lo, hi)]
        result.models = len(pairs)
        result.unpriced = sorted({m or "(no model)" for m, p in pairs if book.resolve(m, p) is None})
        await conn.execute(_BANDS_DDL)
        await conn.copy_records_to_table(
            "price_band", records=bands(book, pairs))
        await conn.execute("ANALYZE price_band")
        total = max(1, math.ceil((hi - lo) / step))
        sessions: set = set()
        changed: list[datetime] = []  # the span of windows where a cost changed
        for i in range(total):
            start = lo + i * step
            end = min(hi, start + step)
            row = await conn.fetchrow(_UPDATE, start, end)
            result.events += row["n"]
            if row["n"]:
                changed[:] = [changed[0] if changed else start, end]
            sessions.update(row["sessions"])
            result.windows += 1
            if progress:
                progress(i + 1, total)
        ids = sorted(sessions)
        for k in range(0, len(ids), 5000):
            status = await conn.execute(_SESSIONS, ids[k:k + 5000])
            result.sessions += int(status.rsplit(" ", 1)[-1])
        await conn.execute("DROP TABLE IF EXISTS price_band")
    if changed:  # only the hours whose costs changed; nothing changed, nothing to redo
        result.rollup_hours = await rollups.reaggregate(changed[0], changed[1])
    return result

