"""Off loopback, the dashboard asks for an API key (like GraphQL reads) and keeps it in an
HttpOnly cookie; on loopback it is open (the other UI tests)."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid

import httpx

from app.services import keys
from tests.e2e.test_serve import _wait_ready
from tests.e2e.test_two_servers import _serve
from tests.helpers import free_port


async def test_pages_need_a_key_beyond_loopback(database_url: str, server: str) -> None:
    port = free_port()
    proc = _serve(database_url, "0.0.0.0", port)
    record = None
    try:
        await asyncio.to_thread(_wait_ready, proc, f"http://127.0.0.1:{port}")
        record, secret = await keys.create(f"ui-{uuid.uuid4().hex[:6]}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.get("/sessions?agent=codex")
            assert r.status_code == 303 and r.headers["location"] == "/login?next=/sessions%3Fagent%3Dcodex"
            assert (await c.get("/live/overview")).status_code == 401
            form = await c.get("/login")
            assert form.status_code == 200 and 'name="key"' in form.text
            token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            # the form's CSRF token must come back with the form (a page elsewhere has none)
            forged = await c.post("/login", data={"key": secret, "next": "/"})
            assert forged.status_code == 403 and "expired" in forged.text
            assert "devlog_key" not in forged.headers.get("set-cookie", "")
            token = re.search(r'name="csrf" value="([^"]+)"', forged.text).group(1)  # a new one
            bad = await c.post("/login", data={"key": "dlk_wrong", "next": "/sessions", "csrf": token})
            assert "not valid" in bad.text and "devlog_key" not in bad.headers.get("set-cookie", "")
            token = re.search(r'name="csrf" value="([^"]+)"', bad.text).group(1)
            ok = await c.post("/login", data={"key": secret, "next": "//evil.example/", "csrf": token})
            assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
            cookie = ok.headers.get_list("set-cookie")[0].lower()
            assert "devlog_key=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            page = await c.get("/sessions")
            assert page.status_code == 200 and 'action="/logout"' in page.text
            # signing out is a POST (a link or an image elsewhere cannot sign anyone out)
            assert (await c.get("/logout")).status_code == 405
            assert (await c.get("/projects")).status_code == 200
            assert (await c.post("/logout")).status_code == 303
            assert (await c.get("/projects")).status_code == 303
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.get("/projects", headers={"Authorization": f"Bearer {secret}"})
            assert r.status_code == 200
    finally:
        if record is not None:
            await keys.revoke(record.name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
