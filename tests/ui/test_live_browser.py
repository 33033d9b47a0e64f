"""Live updates in a real browser when one SSE message carries several fragments: the sessions
list updates every row a batch touched (out-of-band rows in one message), and the overview's
feed shows a batch's events newest first, each once."""

from __future__ import annotations

import uuid

from tests.factories import event
from tests.ui.test_dashboard_browser import browser, htmx_ready, ingest, open_page, recent

__all__ = ["browser"]  # the fixture, used by name


async def test_one_batch_updates_every_visible_row_and_the_feed(server: str, browser) -> None:  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    natives = [f"rows-{tag}-{n}" for n in range(3)]
    await ingest(server, [event(n, 0, "user_prompt", ts=recent(600), content=f"first {tag} {i}")
                          for i, n in enumerate(natives)])
    page = await open_page(browser, server)
    await page.goto(f"{server}/sessions?q={tag}")
    await htmx_ready(page)
    rows = page.locator("#session-rows tr")
    assert await rows.count() == 3
    overview = await open_page(browser, server)
    await overview.goto(f"{server}/")
    for p in (page, overview):
        await p.locator("html[data-live=open]").wait_for(state="attached")
    # one batch: a second prompt in each session (one delivery, one message per stream)
    marks = [f"second {tag} {i}" for i in range(3)]
    await ingest(server, [event(n, 1, "user_prompt", ts=recent(10 - i), content=marks[i])
                          for i, n in enumerate(natives)])
    prompts = "() => [...document.querySelectorAll('#session-rows tr')].map(r => r.children[5].textContent.trim())"
    await page.wait_for_function(f"() => ({prompts})().every(c => c === '2')", timeout=5000)
    feed = overview.locator("#feed li")
    for mark in marks:
        await feed.filter(has_text=mark).wait_for(timeout=5000)
    texts = [await feed.nth(i).inner_text() for i in range(3)]
    assert [m for t in texts for m in marks if m in t] == marks[::-1]  # newest first
    for mark in marks:
        assert await feed.filter(has_text=mark).count() == 1
    assert not page.errors and not overview.errors, (page.errors, overview.errors)
