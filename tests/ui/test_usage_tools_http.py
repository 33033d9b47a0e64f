"""The usage and tools pages over plain HTTP (no browser): the CSV export, fragments for htmx,
time zones, and bad parameters (a readable 400, never a 500)."""

from __future__ import annotations

import csv
import io
import re
import uuid

import httpx
import pytest

from tests.factories import event
from tests.ui.test_dashboard_browser import ingest, recent
from tests.ui.test_usage_tools_browser import usage_events


@pytest.fixture(scope="module")
async def tag(server: str) -> str:
    tag = uuid.uuid4().hex[:8]
    await ingest(server, [*usage_events(tag),  # and a session outside any project
                          event(f"usage-{tag}-nowhere", 0, "user_prompt", ts=recent(300), content="hi")])
    return tag


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_export(client: httpx.AsyncClient, tag: str) -> None:
    r = await client.get("/usage.csv", params={"range": "7d", "by": "model"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="devlog-usage-by-model-[0-9-]+\.csv"',
                        r.headers["content-disposition"])
    rows = rows_of(r.text)
    assert list(rows[0])[:4] == ["bucket_start", "bucket", "model", "events"]
    assert {row["bucket"] for row in rows} == {"day"}
    mine = [row for row in rows if row["model"] == f"model-{tag}"]
    assert sum(int(row["llm_calls"]) for row in mine) == 6
    assert sum(int(row["tokens_total"]) for row in mine) == 6 * 3800
    assert all(row["sessions"] == "" for row in rows)  # not defined per model
    old = [row for row in rows if row["model"] == f"old-{tag}"]
    assert len(old) == 1 and old[0]["tokens_total"] == "18"

    page = await client.get("/usage", params={"range": "7d", "by": "model"})
    assert "(no project)" in page.text and str(uuid.UUID(int=0)) not in page.text
    total = int(re.search(r'id="total-tokens" data-value="(\d+)"', page.text).group(1))
    assert sum(int(row["tokens_total"]) for row in rows) == total

    hourly = rows_of((await client.get("/usage.csv", params={"range": "24h", "by": "agent"})).text)
    assert {row["bucket"] for row in hourly} == {"hour"}
    assert not any(row["agent"] == "" for row in hourly)
    assert all(row["sessions"] != "" for row in hourly)


async def test_csv_follows_the_viewers_time_zone(client: httpx.AsyncClient, tag: str) -> None:
    for zone, offsets in (("Asia/Kolkata", ("+05:30",)), ("America/New_York", ("-05:00", "-04:00"))):
        r = await client.get("/usage.csv", params={"range": "7d"}, headers={"Cookie": f"tz={zone}"})
        assert r.status_code == 200
        starts = [row["bucket_start"] for row in rows_of(r.text)]
        assert starts and all(s.endswith(offsets) for s in starts), (zone, starts[:3])
        assert all("T00:00:00" in s for s in starts)  # the viewer's midnight
        page = await client.get("/usage", params={"range": "24h"}, headers={"Cookie": f"tz={zone}"})
        assert page.status_code == 200 and zone in page.text


async def test_fragments_for_htmx(client: httpx.AsyncClient, tag: str) -> None:
    for url, target in (("/usage?range=30d&by=agent", "usage-results"), ("/tools?range=30d", "tools-results")):
        r = await client.get(url, headers={"HX-Request": "true", "HX-Target": target})
        assert r.status_code == 200
        assert "<html" not in r.text and 'id="custom-dates" hx-swap-oob="true"' in r.text
        full = await client.get(url)
        assert "<html" in full.text and 'aria-current="page"' in full.text


@pytest.mark.parametrize("url, message", [
    ("/usage?range=custom&since=2025-13-01", "must be a date"),
    ("/usage?range=custom&since=yesterday&until=2025-01-01", "must be a date"),
    ("/usage?range=custom&since=2025-03-10&until=2025-03-01", "before it starts"),
    ("/usage?range=custom&since=2020-01-01&until=2025-01-01", "longer than"),
    ("/usage?range=1y", "Unknown range"),
    ("/usage?by=project", "Cannot stack by"),
    ("/tools?range=forever", "Unknown range"),
    ("/tools?agent=%3Cimg%20src%3Dx%3E", "Unknown agent"),
    ("/tools?project=not-a-uuid", "project"),
    ("/tools?range=custom&until=2025-02-30", "must be a date"),
])
async def test_bad_parameters_are_a_readable_400(client: httpx.AsyncClient, url: str, message: str) -> None:
    r = await client.get(url)
    assert r.status_code == 400, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert message in r.text and "<h1>Bad request</h1>" in r.text
    assert "<img src=x" not in r.text  # the bad value is shown escaped
    assert "script-src 'self'" in r.headers["content-security-policy"]
    fragment = await client.get(url, headers={"HX-Request": "true",
                                              "HX-Target": "usage-results" if "usage" in url else "tools-results"})
    assert fragment.status_code == 400 and message in fragment.text and "<html" not in fragment.text


async def test_bad_csv_parameters(client: httpx.AsyncClient) -> None:
    for params in ({"range": "custom", "since": "31/01/2025"}, {"by": "tool"}, {"range": "2w"}):
        r = await client.get("/usage.csv", params=params)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text.startswith("Bad request: ")


async def test_pages_are_in_the_nav_and_work_with_defaults(client: httpx.AsyncClient, tag: str) -> None:
    for url in ("/usage", "/tools", "/usage?range=90d&by=model", "/tools?range=24h&agent=codex",
                "/usage?range=custom", "/usage?range=custom&since=2100-01-01&until=2100-12-31"):
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert '<a href="/usage"' in r.text and '<a href="/tools"' in r.text
        assert "<script>" not in r.text
    # A year no event can be stored in (ingest refuses times more than a day ahead), so other
    # tests' arbitrary events (property tests) cannot be in it.
    weekly = rows_of((await client.get("/usage.csv", params={
        "range": "custom", "since": "2100-01-01", "until": "2100-12-31"})).text)
    assert weekly == []  # nothing then, and no error
    for url in ("/usage?range=custom&since=2100-01-01&until=2100-12-31",
                "/tools?range=custom&since=2100-01-01&until=2100-12-31"):
        assert "Nothing in this range" in (await client.get(url)).text


# -- without the server: the range, the money filter, the charts with costs ---------------------


def test_range_buckets_and_starts() -> None:
    from datetime import UTC, datetime

    from ui.pages import ranges

    now = datetime(2026, 3, 10, 15, 20, tzinfo=UTC)
    assert ranges.parse("24h", "", "", "UTC", now).bucket == "hour"
    assert len(ranges.parse("24h", "", "", "UTC", now).starts()) == 24
    assert ranges.parse("", "", "", "UTC", now).key == "7d"
    r90 = ranges.parse("90d", "", "", "UTC", now)
    assert r90.bucket == "day" and len(r90.starts()) == 90
    assert ranges.parse("custom", "2026-03-09", "2026-03-10", "UTC", now).bucket == "hour"
    assert ranges.parse("custom", "2026-03-08", "2026-03-10", "UTC", now).bucket == "day"
    year = ranges.parse("custom", "2025-01-01", "2025-12-31", "UTC", now)
    assert year.bucket == "week" and all(t.weekday() == 0 for t in year.starts())
    # the viewer's days: New York's midnights across the change to summer time (8 March 2026)
    ny = ranges.parse("7d", "", "", "America/New_York", now)
    assert [t.hour for t in ny.starts()] == [5, 5, 5, 5, 5, 4, 4]
    # half-hour zones: hours start at :30 UTC
    assert {t.minute for t in ranges.parse("24h", "", "", "Asia/Kolkata", now).starts()} == {30}
    with pytest.raises(ranges.BadParameter, match="before it starts"):
        ranges.parse("custom", "2026-03-02", "2026-03-01", "UTC", now)


def test_money_and_cost_chart() -> None:
    from datetime import UTC, datetime, timedelta

    from app.services.usage import UsagePoint, UsageReport
    from app.services.usage import sum_points as combine
    from ui.pages import ranges
    from ui.pages.usage import chart_context
    from ui.render import money

    assert 'title="no price known"' in money(None) and "—" in money(None)
    assert ">$1,234.50<" in money(1234.5) and "&lt;$0.01" in money(0.004)
    now = datetime(2026, 3, 10, 15, 20, tzinfo=UTC)
    r = ranges.parse("7d", "", "", "UTC", now)
    day = r.starts()[-1]
    pts = [UsagePoint(start=day, model="m1", llm_calls=2, tokens_input=10, cost_usd=1.5, unpriced_calls=0),
           UsagePoint(start=day - timedelta(days=1), model="m2", llm_calls=1, tokens_input=5, unpriced_calls=1)]
    report = UsageReport(since=r.since, until=r.until, bucket="day", group_by=["model"], points=pts,
                         totals=combine(pts), as_of=None)
    assert report.totals.cost_usd == 1.5 and report.totals.unpriced_calls == 1
    ctx = chart_context(r, "model", report)
    assert "m1: $1.50" in ctx["cost_chart"] and ctx["series"] == ["m1", "m2"]
    assert 'class="k1"' in ctx["legend"]
    unpriced = UsageReport(since=r.since, until=r.until, bucket="day", group_by=["model"], points=pts[1:],
                           totals=combine(pts[1:]), as_of=None)
    assert chart_context(r, "model", unpriced)["cost_chart"] is None


async def test_usage_page_shows_plan_limits(client: httpx.AsyncClient, server: str) -> None:
    from datetime import UTC, datetime, timedelta

    from app.services import plans

    key = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    limits = {"primary": {"used_percent": 42.0, "window_minutes": 300,
                          "resets_at": int((now + timedelta(hours=1)).timestamp())}, "plan_type": "pro"}
    await ingest(server, [
        event(f"plan-{key}", 0, "llm_call", ts=now - timedelta(minutes=3), model="claude-sonnet-4-5",
              tokens={"input": 5, "output": 50, "cacheRead": 500}),
        event(f"plan-{key}-x", 0, "system", agent="codex", ts=now - timedelta(seconds=1),  # the latest
              payload=limits, content="rate limits")])
    block = (await plans.claude_blocks(limit=1))[0]
    page = (await client.get("/usage")).text
    assert 'id="plans"' in page and "5-hour block" in page
    assert f'<dd id="block-tokens">{block.tokens:,}</dd>' in page
    assert "42.0 % used" in page and "(pro)" in page
    fragment = await client.get("/usage", params={"range": "30d"}, headers={"HX-Request": "true",
                                                                          "HX-Target": "usage-results"})
    assert 'id="plans"' not in fragment.text  # the range's fragment leaves the plan panel alone
