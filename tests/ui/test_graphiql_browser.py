"""GraphiQL in a real browser (Debian's Chromium via Playwright): it loads from vendored files,
runs a query, and logs no errors (a CDN request would fail here and show up as one)."""

from __future__ import annotations

from tests.helpers import chromium_or_skip, screenshot_path


async def test_graphiql_runs_a_query_offline(server: str) -> None:
    executable = chromium_or_skip()
    from playwright.async_api import async_playwright

    errors: list[str] = []
    external: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("request", lambda r: external.append(r.url)
                    if not r.url.startswith(server) and not r.url.startswith("data:") else None)
            await page.goto(f"{server}/graphql")
            await page.wait_for_selector(".graphiql-container .graphiql-execute-button", timeout=30_000)
            await page.click(".graphiql-execute-button")
            result = page.locator(".result-window")
            await result.get_by_text('"database": "ok"').wait_for(timeout=15_000)
            await page.screenshot(path=str(screenshot_path("graphiql.png")))
        finally:
            await browser.close()
    assert not external, external
    assert not errors, errors


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
