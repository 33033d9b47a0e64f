"""No web page can reach the server, in a real browser (Chromium): a name rebound to 127.0.0.1
shows the refusal instead of the dashboard, a form on another site cannot sign in (CSRF), and
signing in and out works from the dashboard's own pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.test_access import a_key, serving
from tests.helpers import chromium_or_skip
from tests.ui.test_graphiql_browser import CHROMIUM_ARGS

ATTACKER = "attacker.example"


@pytest.fixture
async def chromium() -> AsyncIterator:
    executable = chromium_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # DNS rebinding, as the browser sees it: attacker.example resolves to 127.0.0.1
        b = await pw.chromium.launch(executable_path=executable, args=[
            *CHROMIUM_ARGS, f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1"])
        try:
            yield b
        finally:
            await b.close()


async def test_a_rebound_name_shows_no_data(server: str, chromium) -> None:
    port = server.rsplit(":", 1)[1]
    page = await chromium.new_page()
    response = await page.goto(f"http://{ATTACKER}:{port}/")
    assert response.status == 421
    assert "DNS rebinding" in await page.content()
    # the page's own script cannot read the API either
    answer = await page.evaluate("""async () => {
        const r = await fetch('/graphql', {
            method: 'POST', headers: {'content-type': 'application/json'},
            body: JSON.stringify({query: '{ projects { id } }'})});
        return [r.status, await r.text()];
    }""")
    assert answer[0] == 421 and "projects" not in answer[1]
    # the same server by its own name is the dashboard
    response = await page.goto(f"{server}/")
    assert response.status == 200 and await page.title() == "Overview · devlog"


async def test_sign_in_and_out_and_no_sign_in_from_another_site(database_url: str,
                                                                 chromium) -> None:
    async with serving(database_url, "0.0.0.0") as base, a_key("browser") as (_name, secret):
        page = await chromium.new_page()
        # a page on another site posting the sign-in form (login CSRF) is refused
        elsewhere = (f'<form id="f" method="post" action="{base}/login">'
                     f'<input name="key" value="{secret}"><input name="next" value="/"></form>'
                     '<script>document.getElementById("f").submit()</script>')
        await page.route(f"http://{ATTACKER}/",
                         lambda route: route.fulfill(content_type="text/html", body=elsewhere))
        async with page.expect_navigation(url=f"{base}/login"):
            await page.goto(f"http://{ATTACKER}/")
        assert "another site" in await page.content()
        context = page.context
        assert not [c for c in await context.cookies() if c["name"] == "devlog_key"]

        # the dashboard's own form signs in (its CSRF token and Sec-Fetch-Site: same-origin)
        await page.goto(f"{base}/sessions")
        assert page.url == f"{base}/login?next=/sessions"
        await page.fill('input[name="key"]', secret)
        await page.click('button[type="submit"]')
        await page.wait_for_url(f"{base}/sessions")
        assert await page.title() == "Sessions · devlog"
        # and its button signs out
        await page.click("form.signout button")
        await page.wait_for_url(f"{base}/login")
        await page.goto(f"{base}/projects")
        assert page.url == f"{base}/login?next=/projects"
