"""Hostile data in a real browser: 10 KB strings without a break point in every text a page
shows (title, prompt, message, command, output, paths, names), markup-shaped text and an edit of
non-text values stay inside the layout — no page scrolls sideways, nothing runs, no console
error — on the session page, the lists and the reports. Screenshots in tests/artifacts."""

from __future__ import annotations

import uuid

from app.ingest.identity import project_id
from tests.factories import event
from tests.helpers import screenshot_path
from tests.ui.cleanup import forget_machine
from tests.ui.html_audit import HOSTILE
from tests.ui.test_dashboard_browser import browser, htmx_ready, ingest, open_page, recent, session_id  # noqa: F401

UNBROKEN = "A" * 10_000  # one word of 10 KB: wraps only if the CSS lets it

# the page's width is the viewport's: nothing sticks out to the right
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
WIDEST = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


async def test_unbroken_strings_and_markup_stay_in_the_layout(server: str, browser) -> None:  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    native = f"layout-{tag}"
    remote = f"git@example.com:layout/{tag}-{'B' * 200}.git"
    ctx = {"machine": f"layout-{tag}", "project": {"remote": remote, "path": "/w/" + "C" * 900, "name": "N" * 255,
                       "branch": "D" * 255}, "workspace": "/w/" + "C" * 900}
    await ingest(server, [
        event(native, 0, "session_start", ts=recent(300), agentVersion="V" * 64, **ctx),
        event(native, 1, "user_prompt", ts=recent(299), content=UNBROKEN, **ctx),
        event(native, 2, "llm_call", ts=recent(298), model="M" * 128, stopReason="S" * 64,
              tokens={"input": 10**12, "output": 10**12}, durationMs=10**12, **ctx),
        event(native, 3, "assistant_message", ts=recent(297), content=UNBROKEN + " " + " ".join(HOSTILE), **ctx),
        event(native, 4, "tool_call", ts=recent(296), toolName="T" * 255, toolCallId="c1",
              filePath="/w/" + "P" * 2000, command=UNBROKEN, payload={"command": UNBROKEN}, **ctx),
        event(native, 5, "tool_result", ts=recent(295), toolName="T" * 255, toolCallId="c1",
              status="error", content=UNBROKEN, filePath="/w/" + "P" * 2000, linesAdded=2**31 - 1, **ctx),
        event(native, 6, "tool_call", ts=recent(294), toolName="Edit", toolCallId="c2",
              payload={"old_string": 5, "new_string": [UNBROKEN, {"k": None}]}, **ctx),
        event(native, 7, "error", ts=recent(293), error=UNBROKEN, **ctx),
        event(native, 8, "system", ts=recent(292), payload={"subtype": UNBROKEN}, content=UNBROKEN, **ctx),
    ])
    sid = await session_id(server, native)
    pid = project_id(f"example.com/layout/{tag}-{'B' * 200}")
    urls = {"session": f"/sessions/{sid}", "sessions": "/sessions", "overview": "/",
            "tools": "/tools", "usage": "/usage?by=model", "project": f"/projects/{pid}",
            "projects": "/projects"}
    try:
        await _check(server, browser, urls)
    finally:
        await forget_machine(f"layout-{tag}")


async def _check(server: str, browser, urls: dict[str, str]) -> None:  # noqa: F811
    for name, url in urls.items():
        page = await open_page(browser, server)
        await page.goto(f"{server}{url}")
        await htmx_ready(page)
        if name == "session":
            for summary in await page.locator("#timeline details summary").all():
                await summary.click()  # open every input, output and edit
        assert await page.evaluate(NO_SIDEWAYS_SCROLL), (url, await page.evaluate(WIDEST))
        assert await page.evaluate("window.zq7x") is None
        await page.screenshot(path=str(screenshot_path(f"hostile-{name}.png")), full_page=name != "session")
        assert not page.errors, (url, page.errors)
        await page.close()
