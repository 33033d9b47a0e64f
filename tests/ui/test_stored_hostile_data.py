"""Pages never fail on stored data: rows that older versions stored (or that a newer ingest
would refuse) render, on every page and in the live streams, over real HTTP.

The rows are ingested normally, then given their hostile values with SQL — PostgreSQL's
``-infinity``/``infinity`` (what a year-1 / year-9999 timestamp became), years 1 and 9999, the
largest values of each numeric column, payloads nested ~900 deep or holding a 5,000-digit
number, and tool inputs whose ``old_string``/``new_string`` are not text. They are deleted at the
end, rollups included (they would otherwise sit at the top of other tests' lists, dated 9999).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from app.db.engine import pool
from app.ingest.identity import machine_id, project_id, session_id
from app.services.pagination import encode_cursor
from tests.factories import event
from tests.ui.cleanup import forget_machine
from tests.ui.html_audit import HOSTILE, unsafe_markup
from tests.ui.sse import read_events
from tests.ui.test_dashboard_browser import ingest, recent

BIGINT = 2**63 - 1  # what older versions stored for durationMs and seq at most
INT = 2**31 - 1  # linesAdded/linesRemoved at most
TOKENS = 10**12  # the wire's bound on a token count

# ts per session: what the agent sent, as stored
TIMES = {
    "minus-infinity": "-infinity",  # "0001-01-01T00:00:00Z" (asyncpg stores datetime.min so)
    "infinity": "infinity",
    "year-1": "0001-01-01 00:00:01+00",
    "year-9999": "9999-12-31 23:59:59+00",
    "now": None,
}


def _events(native: str, machine: str, remote: str, t0) -> list[dict]:
    ctx = {"machine": machine, "project": {"remote": remote, "path": "/w"}, "workspace": "/w"}
    return [
        event(native, 0, "session_start", ts=t0, agentVersion="1", **ctx),
        event(native, 1, "user_prompt", ts=t0 + timedelta(seconds=1), content=HOSTILE[0], **ctx),
        event(native, 2, "llm_call", ts=t0 + timedelta(seconds=2), model="m", durationMs=1,
              tokens={"input": 1, "output": 2}, stopReason="end_turn", **ctx),
        event(native, 3, "tool_call", ts=t0 + timedelta(seconds=3), toolName="Edit",
              toolCallId="t1", filePath="/w/a.py",
              payload={"old_string": 5, "new_string": [1, 2]}, **ctx),  # the bug of issue 11
        event(native, 4, "tool_call", ts=t0 + timedelta(seconds=4), toolName="MultiEdit",
              toolCallId="t2", payload={"edits": [{"old_string": None}, 7, {"x": {}}, "e"]}, **ctx),
        event(native, 5, "tool_result", ts=t0 + timedelta(seconds=5), toolName="Edit",
              toolCallId="t1", status="ok", linesAdded=1, linesRemoved=1, durationMs=5, **ctx),
        event(native, 6, "tool_call", ts=t0 + timedelta(seconds=6), toolName="Bash",
              toolCallId="t3", command="ls", payload={"command": "ls"}, **ctx),
        event(native, 7, "system", ts=t0 + timedelta(seconds=7), agent="claude-code",
              payload={"subtype": {"not": "text"}}, durationMs=1, content=HOSTILE[1], **ctx),
        event(native, 8, "error", ts=t0 + timedelta(seconds=8), error=HOSTILE[2], **ctx),
        event(native, 9, "reasoning", ts=t0 + timedelta(seconds=9), content="[" * 40_000, **ctx),
    ]


@pytest.fixture(scope="module")
async def stored(server: str) -> AsyncIterator[dict]:
    tag = uuid.uuid4().hex[:8]
    machine, remote = f"hostile-{tag}", f"git@example.com:hostile/{tag}.git"
    natives = {name: f"hostile-{tag}-{name}" for name in TIMES}
    events = [e for n in natives.values() for e in _events(n, machine, remote, recent(600))]
    # a Codex snapshot of rate limits whose numbers are out of any range
    events.append(event(natives["now"], 20, "system", agent="codex", ts=recent(60), machine=machine,
                        payload={"primary": {"used_percent": 1e300, "window_minutes": 10**15,
                                             "resets_in_seconds": 10**17},
                                 "secondary": {"used_percent": 5, "window_minutes": 1,
                                               "resets_in_seconds": 86400}}))
    await ingest(server, events)
    ids = {name: session_id("claude-code", n) for name, n in natives.items()}
    db = pool()
    try:
        for name, ts in TIMES.items():
            sid = ids[name]
            if ts is not None:
                await db.execute("UPDATE agent_event SET ts = $2::text::timestamptz "
                                 "WHERE session_id = $1", sid, ts)
                await db.execute("UPDATE agent_session SET started_at = $2::text::timestamptz, "
                                 "last_event_at = $2::text::timestamptz WHERE id = $1", sid, ts)
        sid = ids["now"]
        await db.execute(
            """UPDATE agent_event SET duration_ms = $2, seq = $2, tokens_input = $4,
                      tokens_output = $4, tokens_cache_read = $4, tokens_cache_write = $4,
                      tokens_reasoning = $4, cost_usd = 9999999999.99999999,
                      lines_added = $3, lines_removed = $3 WHERE session_id = $1""",
            sid, BIGINT, INT, TOKENS)
        await db.execute(
            """UPDATE agent_session SET tokens_input = $2::bigint / 4, tokens_output = $2::bigint / 4,
                      tokens_cache_read = $2::bigint / 4, tokens_cache_write = $2::bigint / 4, tokens_reasoning = $2::bigint,
                      cost_usd = 9999999999.99999999, event_count = $3, prompt_count = $3,
                      llm_call_count = $3, tool_call_count = $3, tool_error_count = $3,
                      files_touched = $3, ended_at = 'infinity' WHERE id = $1""", sid, BIGINT, INT)
        deep = '{"old_string": ' + "[" * 900 + "]" * 900 + ', "new_string": {"a": ' + "{\"b\": " * 400 + "1" + "}" * 400 + "}}"
        wide = '{"old_string": 1' + "0" * 5000 + ', "new_string": 1e400}'
        await db.execute("UPDATE agent_event SET payload = $2::jsonb WHERE session_id = $1 AND seq = 3",
                         ids["year-1"], deep)
        await db.execute("UPDATE agent_event SET payload = $2::jsonb WHERE session_id = $1 AND seq = 4",
                         ids["year-1"], wide)
        yield {"ids": ids, "machine": machine_id(machine), "project": project_id(f"example.com/hostile/{tag}"),
               "tag": tag}
    finally:
        await forget_machine(machine)


def assert_page(r: httpx.Response) -> str:
    assert r.status_code == 200, (r.request.url, r.status_code, r.text[:300])
    problems = unsafe_markup(r.text)
    assert not problems, (r.request.url, problems)
    return r.text


async def test_session_pages_render_every_stored_row(client: httpx.AsyncClient, stored: dict) -> None:
    for name, sid in stored["ids"].items():
        html = assert_page(await client.get(f"/sessions/{sid}"))
        assert html.count('class="ev ') >= 10, name  # every event is there
        assert "render-error" not in html, name  # rendered, not replaced by the placeholder
    # the edit whose strings are a number and a list: a diff of their JSON
    html = (await client.get(f"/sessions/{stored['ids']['now']}")).text
    assert '<span class="d-del">-5</span>' in html and '<span class="d-add">+  2,</span>' not in html
    assert '<span class="d-add">+  1,</span>' in html
    # the times at the ends of the range, shown as dates with four-digit years
    assert "0001-01-01 00:00:00 UTC" in (await client.get(f"/sessions/{stored['ids']['minus-infinity']}")).text
    assert "9999-12-31 23:59:59 UTC" in (await client.get(f"/sessions/{stored['ids']['infinity']}")).text
    assert "9,223,372,036,854,775,807" in html  # a duration at bigint's maximum, as a number
    assert "106,751,991,167 d 7 h" in html


async def test_lists_and_reports_render_with_the_stored_rows(client: httpx.AsyncClient, stored: dict) -> None:
    urls = ["/", "/sessions", f"/sessions?machine={stored['machine']}", "/projects",
            f"/projects/{stored['project']}", "/usage", "/usage?range=90d&by=model", "/tools",
            "/tools?range=90d"]
    for url in urls:
        assert_page(await client.get(url))
    rows = (await client.get(f"/sessions?machine={stored['machine']}")).text
    assert len(re.findall(r'<tr id="s-', rows)) == len(stored["ids"]) + 1  # and the Codex one
    csv = await client.get("/usage.csv", params={"range": "90d", "by": "model"})
    assert csv.status_code == 200


async def test_live_streams_render_the_stored_rows(client: httpx.AsyncClient, stored: dict) -> None:
    resume = {"Last-Event-ID": "2000-01-01T00:00:00+00:00"}
    for name, sid in stored["ids"].items():
        messages = await read_events(client, f"/live/sessions/{sid}", headers=resume,
                                     until=lambda m: any(x["event"] == "event" for x in m))
        html = messages[0]["data"]
        assert 'id="session-header"' in html and html.count('class="ev ') >= 10, name
        assert not unsafe_markup(html) and "render-error" not in html, name
    messages = await read_events(client, "/live/overview", headers=resume,
                                 until=lambda m: any(x["event"] == "stats" for x in m))
    feed = "".join(m["data"] for m in messages if m["event"] == "event")
    assert feed.count('<li id="f-') >= 10 and not unsafe_markup(feed)


def cursor(*parts: object) -> str:
    """A cursor made up by hand (the pages' cursors are base64 of a JSON list)."""
    return encode_cursor(*parts)


EDGE = "0001-01-01T00:00:00+14:00"  # a valid ISO time that cannot be sent to PostgreSQL
ZERO = str(uuid.UUID(int=0))


@pytest.mark.parametrize("url", [
    "/sessions?until=9999-12-31", "/sessions?since=0001-01-01&until=0001-01-01",
    "/sessions?q=%00", "/sessions?q=%ED%A0%80", "/sessions?q=" + "x" * 5000,
    f"/sessions?after={cursor(5, 'x')}", f"/sessions?after={cursor(EDGE, ZERO)}",
    f"/sessions?after={cursor(None, None)}", "/sessions?after=%00",
    "/usage?range=custom&since=0001-01-01&until=9999-12-31",
    "/usage?range=custom&since=9999-12-31&until=9999-12-31",
    "/tools?range=custom&since=0001-01-01&until=0001-01-02",
])
async def test_hostile_query_parameters_never_fail(client: httpx.AsyncClient, url: str) -> None:
    r = await client.get(url)
    assert r.status_code in (200, 400), (url, r.status_code, r.text[:300])
    assert not unsafe_markup(r.text)


async def test_hostile_cursors_cookies_and_resume_ids(client: httpx.AsyncClient, stored: dict) -> None:
    sid = stored["ids"]["now"]
    for after in (cursor(5, "x", 3), cursor(EDGE, 0, ZERO), cursor([], {}, None), "%%%", cursor()):
        r = await client.get(f"/sessions/{sid}/events", params={"after": after})
        assert r.status_code == 200, (after, r.text[:300])
    for zone in ("Europe", "a" * 3000, "../../etc/passwd", "UTC%00", "Nope/Zone"):
        for url in ("/", "/usage", "/tools"):
            r = await client.get(url, headers={"Cookie": f"tz={zone}"})
            assert r.status_code == 200, (zone, url, r.text[:300])
    # a resume from the start of time: the whole session is replayed (not a broken stream)
    for last in ("0001-01-01T00:00:00", EDGE):
        messages = await read_events(client, f"/live/sessions/{sid}", headers={"Last-Event-ID": last},
                                     until=lambda m: True)
        assert messages[0]["event"] == "event" and 'id="session-header"' in messages[0]["data"], (last, messages[:2])


async def test_a_nul_in_a_filter_finds_what_ingest_stored(server: str, client: httpx.AsyncClient) -> None:
    """Ingest keeps NUL as U+FFFD; PostgreSQL cannot take a NUL in a query argument (it was a
    driver error, a page 500): a filter's NUL is looked for as U+FFFD."""
    tag = uuid.uuid4().hex[:8]
    await ingest(server, [event(f"nul-{tag}", 0, "user_prompt", ts=recent(5), content=f"a\x00{tag}")])
    sid = str(session_id("claude-code", f"nul-{tag}"))
    page = await client.get("/sessions", params={"q": f"a\x00{tag}"})
    assert page.status_code == 200 and f'id="s-{sid}"' in page.text
    r = await client.post("/graphql", json={"query": """query($t: String, $a: [String!]) {
        sessions(filter: {text: $t}) { edges { node { id } } }
        other: sessions(filter: {agent: $a}) { edges { node { id } } } }""",
        "variables": {"t": f"a\x00{tag}", "a": ["claude-code\x00"]}})
    body = r.json()
    assert "errors" not in body, body
    assert [e["node"]["id"] for e in body["data"]["sessions"]["edges"]] == [sid]
    assert body["data"]["other"]["edges"] == []
