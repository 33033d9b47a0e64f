"""The dashboard in a real browser (Debian's Chromium via Playwright) against the real server:
every page with data, filters and pagination in the URL, live updates over SSE, hostile log
content shown as text, no console errors (a CSP violation is one), screenshots light and dark."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.factories import INGEST, MACHINE, conversation, event
from tests.helpers import chromium_or_skip, screenshot_path
from tests.ui.test_graphiql_browser import CHROMIUM_ARGS

XSS_PROMPT = 'look: <script>window.__xss = 1</script> and <img src=x onerror="window.__xss = 2">'
XSS_OUTPUT = '<img src=x onerror="window.__xss = 3"><b>bold?</b> [link](javascript:window.__xss=4)'


_KEY: list[str] = []


async def ingest(server: str, events: list[dict]) -> None:
    """Ingest with an API key: other tests of the run may have created keys, after which the
    server requires one for ingest."""
    if not _KEY:
        from app.services import keys

        _KEY.append((await keys.create(f"ui-tests-{uuid.uuid4().hex[:6]}"))[1])
    async with httpx.AsyncClient(base_url=server, timeout=30,
                                 headers={"Authorization": f"Bearer {_KEY[0]}"}) as client:
        r = await client.post("/graphql", json={"query": INGEST, "variables": {
            "batch": {"events": events, "machines": [MACHINE]}}})
        body = r.json()
        assert body["data"]["ingestEvents"]["rejected"] == [], body


async def session_id(server: str, native: str, agent: str = "claude-code") -> str:
    from app.ingest.identity import session_id as derive

    return str(derive(agent, native))


def recent(seconds: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


@pytest.fixture
async def browser() -> AsyncIterator:
    executable = chromium_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser, server: str, scheme: str = "light"):
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: page.errors.append(f"external request {r.url}")
            if not r.url.startswith(server) and not r.url.startswith("data:") else None)
    return page


async def test_every_page_renders_with_data_light_and_dark(server: str, browser) -> None:
    native = f"pages-{uuid.uuid4().hex[:8]}"
    events = conversation(native, turns=3, ts=None)
    for i, e in enumerate(events):  # make them today's, so the overview shows them
        e["ts"] = (recent(120) + timedelta(seconds=i)).isoformat()
    child = f"{native}/sub"
    events += [event(child, 0, "subagent_start", parentSession=native, ts=recent(100), content="explore"),
               event(child, 1, "user_prompt", parentSession=native, ts=recent(99), content="explore the repo")]
    await ingest(server, events)
    sid = await session_id(server, native)
    for scheme in ("light", "dark"):
        page = await open_page(browser, server, scheme)
        await page.goto(f"{server}/")
        await page.get_by_role("heading", name="Overview").wait_for()
        assert await page.locator("#stats .card").count() >= 5
        await page.screenshot(path=str(screenshot_path(f"overview-{scheme}.png")))

        await page.goto(f"{server}/sessions")
        await page.locator(f"#s-{sid}").wait_for()
        await page.screenshot(path=str(screenshot_path(f"sessions-{scheme}.png")))

        await page.goto(f"{server}/sessions/{sid}")
        await page.get_by_role("heading", name="turn 0: please fix the bug").wait_for()
        timeline = page.locator("#timeline")
        assert await timeline.locator("li.ev.user_prompt").count() == 3
        assert await timeline.locator("li.ev.llm_call").count() == 3
        assert await timeline.locator("li.child-row").count() == 1  # the sub-agent, where it began
        assert await timeline.locator("li.ev.is-error").count() == 1  # turn 1's failed edit
        await page.screenshot(path=str(screenshot_path(f"session-{scheme}.png")), full_page=True)

        await page.get_by_role("link", name=["acme", "app"][1]).first.click()
        await page.wait_for_url(re.compile(r"/projects/"))
        await page.get_by_text("/home/dev/acme").first.wait_for()
        await page.screenshot(path=str(screenshot_path(f"project-{scheme}.png")))
        await page.goto(f"{server}/projects")
        await page.get_by_role("heading", name="Projects").wait_for()
        assert not page.errors, page.errors
        await page.close()


async def htmx_ready(page) -> None:
    """Scripts are deferred: interact only once htmx has processed the page."""
    await page.wait_for_load_state("load")
    await page.wait_for_function("() => !!window.htmx")


# n rows, every one of them a session of this test (not the previous, unfiltered view)
ROWS_ARE = """([n, tag]) => {
  const rows = [...document.querySelectorAll('#session-rows tr')];
  return rows.length === n && rows.every(r => r.textContent.includes(tag));
}"""


async def test_filters_and_pagination_live_in_the_url(server: str, browser) -> None:
    tag = uuid.uuid4().hex[:8]
    events = []
    for n in range(55):
        native = f"page-{tag}-{n:02d}"
        events.append(event(native, 0, "user_prompt", ts=recent(3600 - n), content=f"task {tag} number {n:02d}",
                            agent="codex" if n % 5 == 0 else "claude-code"))
    await ingest(server, events)
    page = await open_page(browser, server)
    await page.goto(f"{server}/sessions")
    await htmx_ready(page)
    await page.fill("#q", tag)
    await page.wait_for_url(re.compile(rf"q={tag}"))
    rows = page.locator("#session-rows tr")
    await page.wait_for_function(ROWS_ARE, arg=[50, tag])
    await page.get_by_role("link", name="Next page »").click()
    await page.wait_for_url(re.compile(r"after="))
    await page.wait_for_function(ROWS_ARE, arg=[5, tag])
    assert "task " + tag + " number 00" in await rows.last.inner_text()  # oldest activity last
    # a bookmarked URL shows the same view without JavaScript's help
    bookmarked = page.url
    await page.goto(f"{server}/sessions")
    await page.goto(bookmarked)
    assert await rows.count() == 5
    await page.goto(f"{server}/sessions?q={tag}")
    await htmx_ready(page)
    await page.select_option("select[name=agent]", "codex")
    await page.wait_for_url(re.compile(r"agent=codex"))
    await page.wait_for_function(ROWS_ARE, arg=[11, tag])
    assert not page.errors, page.errors


async def test_ingested_event_appears_live_on_overview_and_session(server: str, browser) -> None:
    native = f"live-{uuid.uuid4().hex[:8]}"
    await ingest(server, [event(native, 0, "user_prompt", ts=recent(30), content="first prompt")])
    sid = await session_id(server, native)
    overview = await open_page(browser, server)
    await overview.goto(f"{server}/")
    session = await open_page(browser, server)
    await session.goto(f"{server}/sessions/{sid}")
    await session.locator("#timeline li.ev.user_prompt").first.wait_for()
    for page in (overview, session):  # both event streams connected
        await page.locator("html[data-live=open]").wait_for(state="attached")
    marker = f"live marker {uuid.uuid4().hex[:6]}"
    await ingest(server, [event(native, 1, "assistant_message", ts=recent(1), content=marker)])
    await overview.locator("#feed").get_by_text(marker).wait_for(timeout=2000)
    await session.locator("#timeline").get_by_text(marker).wait_for(timeout=2000)
    # the header's counts follow (out-of-band swap)
    await session.locator("#session-header").get_by_text("2 events").wait_for(timeout=2000)
    assert await session.locator("#timeline").get_by_text(marker).count() == 1
    assert not overview.errors and not session.errors, (overview.errors, session.errors)


async def test_hostile_log_content_is_shown_as_text_and_runs_nothing(server: str, browser) -> None:
    native = f"xss-{uuid.uuid4().hex[:8]}"
    await ingest(server, [
        event(native, 0, "user_prompt", ts=recent(60), content=XSS_PROMPT),
        event(native, 1, "assistant_message", ts=recent(59), content=XSS_OUTPUT),
        event(native, 2, "tool_call", ts=recent(58), toolName="Bash", toolCallId="x1",
              command='echo "<script>window.__xss=5</script>"', payload={"command": "<svg onload=alert(1)>"}),
        event(native, 3, "tool_result", ts=recent(57), toolName="Bash", toolCallId="x1", status="error",
              content=XSS_OUTPUT),
    ])
    sid = await session_id(server, native)
    for url in ("/", "/sessions", f"/sessions/{sid}"):
        page = await open_page(browser, server)
        await page.goto(f"{server}{url}")
        await page.wait_for_load_state("networkidle") if url != "/" else await page.wait_for_timeout(800)
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("main script").count() == 0
        assert await page.locator("main img[src=x]").count() == 0
        assert await page.locator("main a[href^='javascript']").count() == 0
        assert not page.errors, (url, page.errors)
        if url.startswith("/sessions/"):
            await page.locator("#timeline").get_by_text("<script>window.__xss = 1</script>").wait_for()
            await page.locator("details:has-text('output') summary").first.click()
            assert await page.evaluate("window.__xss") is None
        await page.close()


async def test_csp_header_forbids_inline_scripts(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        for url in ("/", "/sessions", "/projects"):
            r = await client.get(url)
            assert r.status_code == 200
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            i = r.text.find("<script>")
            assert i < 0, (url, r.text[max(0, i - 300):i + 50])
            assert "<img src=x" not in r.text.lower()
        assert (await client.get("/sessions/not-a-uuid")).status_code == 404
        assert (await client.get(f"/sessions/{uuid.uuid4()}")).status_code == 404
