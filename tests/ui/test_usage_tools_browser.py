"""The usage and tools pages in a real browser (Debian's Chromium via Playwright) against the
real server: the range picker and the by-agent/by-model toggle change the URL and the content,
the CSV export downloads what the page shows, hostile tool names, file paths and model names
are shown as text, no console errors, screenshots light and dark."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta
from pathlib import Path

from tests.factories import event
from tests.helpers import screenshot_path
from tests.ui.test_dashboard_browser import browser, htmx_ready, ingest, open_page, recent

__all__ = ["browser"]  # the fixture, used by name

XSS_TOOL = '<img src=x onerror="window.__xss = 6">'
XSS_PATH = '/home/dev/<img src=x onerror="window.__xss = 7">.py'
XSS_MODEL = '<img src=x onerror="window.__xss = 8">'
PROJECT = {"remote": "git@github.com:acme/usage.git", "path": "/home/dev/usage", "branch": "main"}


def usage_events(tag: str) -> list[dict]:
    """Two sessions an hour ago (claude-code and codex, model ``model-{tag}``, Edit and Bash
    calls), and one codex session three days ago with model ``old-{tag}``."""
    out: list[dict] = []
    ctx = {"project": PROJECT, "workspace": "/home/dev/usage"}
    for agent in ("claude-code", "codex"):
        s = f"usage-{tag}-{agent}"
        t0 = recent(3600)
        n = 0

        def add(kind: str, s: str = s, agent: str = agent, t0=t0, **fields) -> None:
            nonlocal n
            out.append(event(s, n, kind, agent=agent, ts=t0 + timedelta(seconds=n), **ctx, **fields))
            n += 1

        add("session_start")
        for turn in range(3):
            add("user_prompt", content=f"turn {turn}")
            add("llm_call", model=f"model-{tag}", durationMs=800 + 400 * turn,
                tokens={"input": 100, "output": 200, "cacheRead": 3000, "cacheWrite": 500})
            add("tool_call", toolName="Edit", toolCallId=f"e{turn}", filePath=f"/home/dev/usage/src/f{turn % 2}.py")
            add("tool_result", toolName="Edit", toolCallId=f"e{turn}", durationMs=40 + 10 * turn,
                status="error" if turn == 2 else "ok", linesAdded=5, linesRemoved=2,
                filePath=f"/home/dev/usage/src/f{turn % 2}.py")
            add("tool_call", toolName=f"Bash-{tag}", toolCallId=f"b{turn}", command="make test")
            add("tool_result", toolName=f"Bash-{tag}", toolCallId=f"b{turn}", durationMs=2000, status="ok")
    s = f"usage-{tag}-old"
    t0 = recent(3 * 86400)
    out += [event(s, 0, "user_prompt", agent="codex", ts=t0, content="old work", **ctx),
            event(s, 1, "llm_call", agent="codex", ts=t0 + timedelta(seconds=1), model=f"old-{tag}",
                  durationMs=500, tokens={"input": 7, "output": 11}, **ctx)]
    return out


def hostile_events(tag: str) -> list[dict]:
    s = f"usage-xss-{tag}"
    ctx = {"project": PROJECT, "workspace": "/home/dev/usage"}
    return [event(s, 0, "user_prompt", ts=recent(600), content="hostile names", **ctx),
            event(s, 1, "llm_call", ts=recent(599), model=XSS_MODEL, durationMs=300,
                  tokens={"input": 1, "output": 2}, **ctx),
            event(s, 2, "tool_call", ts=recent(598), toolName=XSS_TOOL, toolCallId="x", filePath=XSS_PATH, **ctx),
            event(s, 3, "tool_result", ts=recent(597), toolName=XSS_TOOL, toolCallId="x", durationMs=5,
                  status="ok", linesAdded=1, filePath=XSS_PATH, **ctx)]


async def test_usage_page_range_toggle_and_csv(server: str, browser, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    await ingest(server, usage_events(tag))
    page = await open_page(browser, server)
    await page.goto(f"{server}/usage?range=7d&by=model")
    await page.get_by_role("heading", name="Usage").wait_for()
    await htmx_ready(page)
    legend = page.locator("#usage-results .legend").first
    await legend.get_by_text(f"old-{tag}").wait_for()  # three days ago: inside 7 days
    await legend.get_by_text(f"model-{tag}").wait_for()
    places = page.locator("table.places").first
    await places.get_by_role("link", name="usage").wait_for()  # the project, by name
    # the range picker: 24 hours leaves out the old session, in the URL and the content
    await page.select_option("select[name=range]", "24h")
    await page.wait_for_url(re.compile(r"range=24h"))
    await page.wait_for_function(
        "tag => !document.querySelector('#usage-results .legend').textContent.includes('old-' + tag)", arg=tag)
    assert await legend.get_by_text(f"model-{tag}").count() == 1
    # the toggle: stacked by agent
    await page.locator(".toggle label", has_text="agent").click()
    await page.wait_for_url(re.compile(r"by=agent"))
    await page.wait_for_function(
        "() => document.querySelector('#usage-results .legend').textContent.includes('codex')")
    assert await page.locator("#usage-results .legend").first.get_by_text(f"model-{tag}").count() == 0
    # custom dates: the date inputs appear and the range follows them
    await page.select_option("select[name=range]", "custom")
    await page.wait_for_url(re.compile(r"range=custom"))
    await page.locator("input[name=since]").wait_for(state="visible")
    assert await page.locator("input[name=since]").input_value()  # filled in by the server
    # the CSV has the same numbers as the page
    await page.goto(f"{server}/usage?range=7d&by=model")
    total = int(await page.locator("#total-tokens").get_attribute("data-value"))
    async with page.expect_download() as info:
        await page.locator("#csv-link").click()
    download = await info.value
    assert re.fullmatch(r"devlog-usage-by-model-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv", download.suggested_filename)
    path = tmp_path / "usage.csv"
    await download.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows and list(rows[0])[:3] == ["bucket_start", "bucket", "model"]
    assert sum(int(r["tokens_total"]) for r in rows) == total
    mine = [r for r in rows if r["model"] == f"model-{tag}"]
    assert sum(int(r["llm_calls"]) for r in mine) == 6
    assert sum(int(r["tokens_cache_read"]) for r in mine) == 6 * 3000
    assert not page.errors, page.errors


async def test_tools_page_filters_and_expandable_files(server: str, browser) -> None:
    tag = uuid.uuid4().hex[:8]
    await ingest(server, usage_events(tag))
    page = await open_page(browser, server)
    await page.goto(f"{server}/tools?range=7d")
    await page.get_by_role("heading", name="Tools and models").wait_for()
    await htmx_ready(page)
    row = page.locator("table.tools tbody > tr", has_text=f"Bash-{tag}")
    await row.wait_for()
    cells = await row.locator(":scope > td").all_inner_texts()
    assert cells[1] == "6"  # calls (two sessions × three)
    assert re.fullmatch(r"(1\.[89]|2\.[01]) s", cells[4]), cells  # p50 of 2 s, ±9 % (histogram)
    edit = page.locator("table.tools tbody > tr", has_text="Edit").first
    await edit.locator("summary").click()
    await edit.locator("td.path", has_text="/home/dev/usage/src/f0.py").wait_for()
    models = page.locator("table.models tbody > tr", has_text=f"model-{tag}")
    await models.wait_for()
    assert (await models.locator("td").nth(1).inner_text()) == "6"
    # the agent filter: only codex's calls
    await page.select_option("select[name=agent]", "codex")
    await page.wait_for_url(re.compile(r"agent=codex"))
    await page.wait_for_function(
        """tag => [...document.querySelectorAll('table.tools tbody > tr')]
             .some(r => r.textContent.includes('Bash-' + tag) && r.children[1].textContent.trim() === '3')""", arg=tag)
    # the range: 24 hours leaves out the old model
    await page.goto(f"{server}/tools?range=7d&agent=codex")
    await page.locator("table.models").get_by_text(f"old-{tag}").wait_for()
    await htmx_ready(page)
    await page.select_option("select[name=range]", "24h")
    await page.wait_for_url(re.compile(r"range=24h"))
    await page.wait_for_function(
        "tag => !document.querySelector('table.models').textContent.includes('old-' + tag)", arg=tag)
    assert not page.errors, page.errors


async def test_usage_and_tools_screenshots_light_and_dark(server: str, browser) -> None:
    tag = uuid.uuid4().hex[:8]
    await ingest(server, usage_events(tag))
    for scheme in ("light", "dark"):
        page = await open_page(browser, server, scheme)
        await page.goto(f"{server}/usage?range=7d&by=agent")
        await page.locator("#total-tokens").wait_for()
        await page.screenshot(path=str(screenshot_path(f"usage-{scheme}.png")), full_page=True)
        await page.goto(f"{server}/tools?range=7d")
        await page.locator("table.tools summary").first.click()
        await page.screenshot(path=str(screenshot_path(f"tools-{scheme}.png")), full_page=True)
        # bad parameters: a readable page, also when htmx asks for the results only
        await page.goto(f"{server}/usage?range=custom&since=2025-02-30")
        await page.get_by_text("must be a date").wait_for()
        await page.goto(f"{server}/usage?range=7d")
        await htmx_ready(page)
        await page.select_option("select[name=range]", "custom")
        await page.wait_for_url(re.compile(r"range=custom"))  # the server fills in the dates
        await page.wait_for_function("() => !!document.querySelector('input[name=since]').value")
        await page.fill("input[name=since]", "2025-03-10")
        await page.fill("input[name=until]", "2025-03-01")
        await page.get_by_role("button", name="Apply").click()
        await page.locator("#usage-results").get_by_text("ends (2025-03-01) before it starts").wait_for()
        page.errors = [e for e in page.errors if "400" not in e]  # the expected 400s
        assert not page.errors, page.errors
        await page.close()


async def test_hostile_tool_path_and_model_names_are_text(server: str, browser) -> None:
    tag = uuid.uuid4().hex[:8]
    await ingest(server, hostile_events(tag))
    for url, where in (("/tools?range=24h", "table.tools"), ("/tools?range=24h", "table.models"),
                       ("/usage?range=24h&by=model", "#usage-results .legend")):
        page = await open_page(browser, server)
        await page.goto(f"{server}{url}")
        await page.wait_for_load_state("networkidle")
        if where == "table.tools":
            await page.locator("table.tools tr", has_text=XSS_TOOL).locator("summary").click()
            await page.locator("table.tools td.path", has_text=XSS_PATH).wait_for()
        await page.locator(where).get_by_text(XSS_TOOL if where == "table.tools" else XSS_MODEL).first.wait_for()
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("main img[src=x]").count() == 0
        assert not page.errors, (url, page.errors)
        await page.close()
