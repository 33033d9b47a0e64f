"""Subscription plans: Claude's 5-hour usage blocks and Codex's rate-limit windows.

**Claude blocks** (the way Claude's subscription limits count, and ccusage shows them): a block
starts at the hour of the first LLM call after the previous block ended, and lasts five hours;
calls within it count towards it. The current block is the one that has not ended; its burn
rate is its tokens (and cost) per minute since it started, and its projection what it reaches
at its end if that rate holds. Blocks are found from the last ``LOOKBACK`` of calls (a chain of
back-to-back blocks longer than that may start an hour off).

**Codex windows** are what Codex itself logs (``rate_limits`` on its token counts, stored as
``system`` events whose payload has ``primary``/``secondary``): the used percentage of each
window (usually 5 hours and a week), when it resets, and — from the snapshots since the window
began — the burn rate in points per hour and the projected percentage at reset.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.db.reads import fetch

BLOCK = timedelta(hours=5)
LOOKBACK = timedelta(hours=24)


class UsageBlock(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    start: datetime
    end: datetime
    active: bool
    first_call: datetime
    last_call: datetime
    calls: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    cost_usd: float | None
    models: list[str]
    tokens_per_minute: float | None = None   # burn rate (active block)
    cost_per_hour: float | None = None
    projected_tokens: int | None = None      # at the block's end, if the rate holds
    projected_cost_usd: float | None = None
    minutes_left: float | None = None

    @property
    def tokens(self) -> int:
        return self.tokens_input + self.tokens_output + self.tokens_cache_read + self.tokens_cache_write


class RateLimitWindow(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    name: str              # primary, secondary
    window_minutes: int | None
    used_percent: float
    resets_at: datetime | None
    observed_at: datetime  # the snapshot's time
    plan: str | None
    points_per_hour: float | None = None     # burn rate within this window
    projected_percent: float | None = None   # at reset, if the rate holds


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def blocks_of(calls: list[Any], now: datetime, agent: str = "claude-code") -> list[UsageBlock]:
    """Group calls into 5-hour blocks. A row is one call (ts, tokens_*, cost_usd, model) or the
    calls of one minute (also ``calls``, ``last`` and ``models``): blocks start and end on the
    hour, so a minute never straddles two. Rows oldest first."""
    groups: list[tuple[datetime, list[Any]]] = []
    for c in calls:
        if not groups or c["ts"] >= groups[-1][0] + BLOCK:
            groups.append((_floor_hour(c["ts"]), []))
        groups[-1][1].append(c)
    out = []
    for start, rows in groups:
        end = start + BLOCK
        cost = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
        block = UsageBlock(
            agent=agent, start=start, end=end, active=now < end, first_call=rows[0]["ts"],
            last_call=rows[-1].get("last") or rows[-1]["ts"],
            calls=sum(r.get("calls") or 1 for r in rows),
            tokens_input=sum(r["tokens_input"] or 0 for r in rows),
            tokens_output=sum(r["tokens_output"] or 0 for r in rows),
            tokens_cache_read=sum(r["tokens_cache_read"] or 0 for r in rows),
            tokens_cache_write=sum(r["tokens_cache_write"] or 0 for r in rows),
            cost_usd=float(sum(cost)) if cost else None,
            models=sorted({m for r in rows for m in (r.get("models") or [r.get("model")]) if m}))
        if block.active:
            elapsed = max((now - start).total_seconds() / 60, 1.0)
            left = (end - now).total_seconds() / 60
            rate = block.tokens / elapsed
            cost_rate = block.cost_usd / elapsed if block.cost_usd is not None else None
            block = msgspec.structs.replace(
                block, tokens_per_minute=round(rate, 1),
                cost_per_hour=round(cost_rate * 60, 4) if cost_rate is not None else None,
                projected_tokens=int(block.tokens + rate * left),
                projected_cost_usd=(round(block.cost_usd + cost_rate * left, 4)
                                    if cost_rate is not None and block.cost_usd is not None else None),
                minutes_left=round(left, 1))
        out.append(block)
    return out


async def claude_blocks(now: datetime | None = None, machine: uuid.UUID | None = None,
                        limit: int = 6) -> list[UsageBlock]:
    """Claude Code's 5-hour blocks over the last day, newest first."""
    now = now or datetime.now(UTC)
    # Per minute in SQL (a busy day has tens of thousands of calls), blocks in Python.
    rows = await fetch(
        """SELECT min(e.ts) AS ts, max(e.ts) AS last, count(*) AS calls,
                  sum(e.tokens_input)::bigint AS tokens_input,
                  sum(e.tokens_output)::bigint AS tokens_output,
                  sum(e.tokens_cache_read)::bigint AS tokens_cache_read,
                  sum(e.tokens_cache_write)::bigint AS tokens_cache_write,
                  sum(e.cost_usd)::float8 AS cost_usd,
                  array_agg(DISTINCT e.model) FILTER (WHERE e.model IS NOT NULL) AS models
           FROM agent_event e
           WHERE e.kind = 'llm_call' AND e.agent = 'claude-code' AND e.ts >= $1 AND e.ts <= $2
             AND ($3::uuid IS NULL OR e.session_id IN (SELECT id FROM agent_session WHERE machine = $3))
           GROUP BY date_trunc('minute', e.ts) ORDER BY 1""", now - LOOKBACK, now, machine)
    return list(reversed(blocks_of(rows, now)))[:limit]


def _number(value: Any) -> float | None:
    """A JSON number as a finite float (a Codex payload is whatever the log held)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _resets_at(window: dict, observed: datetime) -> datetime | None:
    try:
        at = _number(window.get("resets_at"))
        if at is not None and at > 0:
            return datetime.fromtimestamp(at, UTC)
        seconds = _number(window.get("resets_in_seconds"))
        if seconds is not None:
            return observed + timedelta(seconds=seconds)
    except (OverflowError, ValueError, OSError):  # beyond the dates Python can hold
        pass
    return None


def _decode(payload: Any) -> Any:
    if not isinstance(payload, str | bytes):
        return payload
    try:
        return msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):  # e.g. an integer wider than 64 bits
        return None


async def codex_windows(now: datetime | None = None, machine: uuid.UUID | None = None) -> list[RateLimitWindow]:
    """The latest Codex rate-limit windows, with burn rate and projection from the snapshots
    taken since each window began. Values that are not numbers (or not plausible ones) in a
    snapshot are ignored, never an error."""
    now = now or datetime.now(UTC)
    rows = await fetch(
        """SELECT e.ts, e.payload FROM agent_event e
           WHERE e.kind = 'system' AND e.agent = 'codex' AND e.ts >= $1 AND e.ts <= $2
             AND e.payload ? 'primary'
             AND ($3::uuid IS NULL OR e.session_id IN (SELECT id FROM agent_session WHERE machine = $3))
           ORDER BY e.ts DESC LIMIT 500""", now - timedelta(days=8), now, machine)
    if not rows:
        return []
    snapshots = [(r["ts"], _decode(r["payload"])) for r in rows]
    latest_ts, latest = snapshots[0]
    if not isinstance(latest, dict):
        return []
    out = []
    for name in ("primary", "secondary"):
        window = latest.get(name)
        used = _number(window.get("used_percent")) if isinstance(window, dict) else None
        if used is None:
            continue
        minutes = window.get("window_minutes")
        minutes = minutes if isinstance(minutes, int) and not isinstance(minutes, bool) \
            and 0 < minutes <= 10 * 366 * 24 * 60 else None
        resets = _resets_at(window, latest_ts)
        rate = projected = None
        if resets and minutes:
            began = resets - timedelta(minutes=minutes)
            same = [(ts, u) for ts, snap in snapshots
                    if isinstance(snap, dict) and isinstance(w := snap.get(name), dict)
                    and (u := _number(w.get("used_percent"))) is not None and ts >= began]
            if same:  # empty when the window "began" after the latest snapshot
                oldest_ts, oldest_used = same[-1]
                hours = (latest_ts - oldest_ts).total_seconds() / 3600
                if hours >= 1 / 60 and used >= oldest_used:
                    rate = _number(round((used - oldest_used) / hours, 2))
                    if rate is not None:
                        projected = _number(round(
                            used + rate * max(0.0, (resets - now).total_seconds() / 3600), 1))
        plan = latest.get("plan_type")
        out.append(RateLimitWindow(
            agent="codex", name=name, window_minutes=minutes, used_percent=used, resets_at=resets,
            observed_at=latest_ts, plan=plan if isinstance(plan, str) else None,
            points_per_hour=rate, projected_percent=projected))
    return out
