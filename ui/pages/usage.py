"""``/usage`` and ``/usage.csv``: tokens and cost over time stacked by agent or model, the cache
share, and usage by project and by machine, for a range in the URL (``ui/pages/ranges.py``)."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import defaultdict
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from app.services import events as event_service
from app.services import plans as plan_service
from app.services import projects as project_service
from app.services import usage as usage_service
from app.services.usage import UsagePoint, UsageReport
from ui import charts
from ui.pages import ranges
from ui.pages.common import SECURITY_HEADERS, bad_request, render, time_zone, wants_fragment
from ui.pages.ranges import BadParameter, Range

GROUPS = ("agent", "model")
AGENT_ORDER = ("claude-code", "codex", "copilot")
MAX_SERIES = 7  # the rest is "other"
TARGET = "usage-results"
NIL = uuid.UUID(int=0)
CSV_COLUMNS = ("events", "sessions", "prompts", "llm_calls", "tool_calls", "tool_errors", "errors",
               "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
               "tokens_reasoning", "tokens_total", "cache_share", "cost_usd", "cost_reported_usd",
               "unpriced_calls", "estimated_calls", "lines_added", "lines_removed")


def parse(request: Request, range_: str, since: str, until: str, by: str) -> tuple[Range, str]:
    if by not in GROUPS:
        raise BadParameter(f"Cannot stack by {by[:40]!r}: use agent or model.")
    return ranges.parse(range_, since, until, time_zone(request)), by


async def series(r: Range, by: str, with_sessions: bool = True) -> UsageReport:
    """The page's series and the CSV's rows: one service call, one point per bucket and group
    (the page takes its session counts from the project and machine tables)."""
    return await usage_service.usage(r.since, r.until, r.bucket, [by], time_zone=r.tz,
                                     with_sessions=with_sessions)


def dollars(v: float, small_digits: int = 3) -> str:
    """A chart's dollar amount: cents, or more digits below a cent."""
    if v == 0:
        return "$0"
    if v >= 100:
        return f"${v:,.0f}"
    return f"${v:,.2f}" if v >= 0.01 else f"${v:.{small_digits}f}"


def series_name(p: UsagePoint, by: str) -> str:
    return (p.agent if by == "agent" else p.model) or f"(no {by})"


def chart_context(r: Range, by: str, report: UsageReport) -> dict:
    totals_by: dict[str, int] = defaultdict(int)
    for p in report.points:
        totals_by[series_name(p, by)] += p.tokens_total
    if by == "agent":
        names = sorted(totals_by, key=lambda a: (AGENT_ORDER.index(a) if a in AGENT_ORDER else 99, a))
    else:
        names = sorted(totals_by, key=lambda m: (-totals_by[m], m))
    shown = names[:MAX_SERIES] if len(names) <= MAX_SERIES + 1 else names[:MAX_SERIES] + ["other"]
    kept = set(shown)
    starts = r.starts()
    token_cols: dict = {t: defaultdict(float) for t in starts}
    cost_cols: dict = {t: defaultdict(float) for t in starts}
    per_bucket: dict = defaultdict(list)
    for p in report.points:
        if p.start is None:
            continue
        name = series_name(p, by)
        name = name if name in kept else "other"
        t = p.start
        token_cols.setdefault(t, defaultdict(float))[name] += p.tokens_total
        cost_cols.setdefault(t, defaultdict(float))[name] += p.cost_usd or 0.0
        per_bucket[t].append(p)
    order = sorted(token_cols)
    cache = [(t, usage_service.sum_points(per_bucket.get(t, [])).cache_share) for t in order]
    unit = {"hour": "hour", "day": "day", "week": "week"}[r.bucket]
    return {
        "series": shown,
        "tokens_chart": charts.stacked_columns(
            [(t, token_cols[t]) for t in order], shown, label=r.label, tooltip=r.long_label,
            unit=" tokens", title=f"Tokens per {unit} by {by}, {r.title}"),
        "cost_chart": charts.stacked_columns(
            [(t, cost_cols[t]) for t in order], shown, label=r.label, tooltip=r.long_label,
            fmt=lambda v: dollars(v, 4), axis=dollars,
            width=480, height=170, title=f"Cost per {unit} by {by}, {r.title}") if report.totals.cost_usd is not None else None,
        "cache_chart": charts.line(cache, label=r.label, tooltip=r.long_label, width=480, height=170,
                                   title=f"Cache share per {unit}, {r.title}"),
        "bucket_unit": unit, "bucket_adj": {"hour": "hourly", "day": "daily", "week": "weekly"}[unit],
        "legend": charts.legend(shown),
    }


def _place(i: uuid.UUID | None) -> uuid.UUID | None:
    """The rollups key "no project / machine" as the nil UUID."""
    return None if i is None or i == NIL else i


async def places(r: Range) -> tuple[list[tuple[str, uuid.UUID | None, UsagePoint]],
                                     list[tuple[str, uuid.UUID | None, UsagePoint]], UsagePoint]:
    """Usage by project and by machine over the range (one usage call grouped by both — a
    session has one project and one machine, so session counts add up either way — and names
    in one lookup each): rows of (name, id or None, the range's sum), most tokens first; and
    the totals."""
    report = await usage_service.usage(r.since, r.until, "week", ["project", "machine"],
                                       time_zone=r.tz)
    by_project: dict[uuid.UUID | None, list[UsagePoint]] = defaultdict(list)
    by_machine: dict[uuid.UUID | None, list[UsagePoint]] = defaultdict(list)
    for p in report.points:
        by_project[_place(p.project_id)].append(p)
        by_machine[_place(p.machine_id)].append(p)
    p_ids = [i for i in by_project if i is not None]
    m_ids = [i for i in by_machine if i is not None]
    projects, machines = await asyncio.gather(
        project_service.projects_by_ids(p_ids) if p_ids else _none(),
        project_service.machines_by_ids(m_ids) if m_ids else _none())
    p_names = {i: rec.name for i, rec in zip(p_ids, projects or [], strict=False) if rec}
    m_names = {i: rec.hostname + (f" ({rec.username})" if rec.username else "")
               for i, rec in zip(m_ids, machines or [], strict=False) if rec}

    def rows(groups: dict, names: dict, missing: str) -> list:
        out = [(names.get(i, missing if i is None else str(i)), i, usage_service.sum_points(pts))
               for i, pts in groups.items()]
        out.sort(key=lambda row: (row[1] is None, -row[2].tokens_total, -row[2].events, row[0]))
        return out

    return (rows(by_project, p_names, "(no project)"), rows(by_machine, m_names, "(unknown machine)"),
            report.totals)


async def _none() -> None:
    return None


@get("/usage", name="usage", include_in_schema=False)
async def usage_page(
    request: Request, range_: Annotated[str, QueryParameter(name="range")] = "",
    since: FromQuery[str] = "", until: FromQuery[str] = "",
    by: FromQuery[str] = "agent",
) -> Template:
    try:
        r, by = parse(request, range_, since, until, by)
    except BadParameter as e:
        return bad_request(request, str(e), TARGET)
    report, (project_rows, machine_rows, place_totals) = await asyncio.gather(series(r, by, with_sessions=False),
                                                                                places(r))
    query = {**r.query(), "by": by}
    fragment = wants_fragment(request, TARGET)
    t = report.totals
    ctx = {
        "r": r, "by": by, "groups": GROUPS, "presets": ranges.PRESETS, "t": t,
        "total_tokens": t.tokens_total, "sessions": place_totals.sessions,
        "project_rows": project_rows, "machine_rows": machine_rows,
        "csv_url": f"/usage.csv?{urlencode(query)}", "tz": r.tz, "as_of": report.as_of,
        "anything": t.events > 0, "ever": True, "fragment": fragment, "action": "/usage",
        "target": TARGET, "nav": "usage", **chart_context(r, by, report),
    }
    if not ctx["anything"]:
        ctx["ever"] = bool((await event_service.list_events(first=1)).items)
    if fragment:
        return render("partials/_usage_results.html", **ctx)
    blocks, windows = await asyncio.gather(plan_service.claude_blocks(limit=1),
                                           plan_service.codex_windows())
    return render("usage.html", block=blocks[0] if blocks else None, windows=windows, **ctx)


def _cell(value: object) -> object:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(r: Range, by: str, report: UsageReport) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["bucket_start", "bucket", by, *CSV_COLUMNS])
    zone = ZoneInfo(r.tz)
    for p in report.points:
        share = p.cache_share
        values = {**{k: getattr(p, k) for k in CSV_COLUMNS if hasattr(p, k)},
                  "tokens_total": p.tokens_total, "cache_share": "" if share is None else f"{share:.4f}",
                  "sessions": "" if p.sessions is None else p.sessions,
                  "cost_usd": "" if p.cost_usd is None else f"{p.cost_usd:.6f}",
                  "cost_reported_usd": "" if p.cost_reported_usd is None else f"{p.cost_reported_usd:.6f}"}
        start = p.start.astimezone(zone).isoformat() if p.start else ""
        w.writerow([start, r.bucket, _cell(series_name(p, by)), *(values[k] for k in CSV_COLUMNS)])
    return out.getvalue()


@get("/usage.csv", name="usage_csv", include_in_schema=False)
async def usage_csv(
    request: Request, range_: Annotated[str, QueryParameter(name="range")] = "",
    since: FromQuery[str] = "", until: FromQuery[str] = "",
    by: FromQuery[str] = "agent",
) -> Response:
    try:
        r, by = parse(request, range_, since, until, by)
    except BadParameter as e:
        return Response(content=f"Bad request: {e}\n", status_code=400, media_type="text/plain",
                        headers=SECURITY_HEADERS)
    report = await series(r, by)
    name = f"devlog-usage-by-{by}-{r.first_day.isoformat()}-{r.last_day.isoformat()}.csv"
    return Response(content=to_csv(r, by, report), media_type="text/csv",
                    headers={**SECURITY_HEADERS,
                             "Content-Disposition": f'attachment; filename="{name}"'})
