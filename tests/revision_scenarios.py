"""Events sent several times — the same id with other timestamps, and revisions in any order —
and the checks that what is stored, the sessions and the usage answers are those of the highest
revision sent, as a GROUP BY over the raw events says. Shared by the plain PostgreSQL tests
(``tests/app/test_revisions.py``) and the event_key (TimescaleDB) layout on a real PostgreSQL
(``tests/e2e/test_event_keys.py``): the checks read the database and the HTTP API only."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from app.ingest.identity import session_id
from app.ingest.session_rollups import earliest_title
from tests.factories import MACHINE, event
from tests.helpers import gql

INGEST = """mutation($batch: EventBatch!) {
  ingestEvents(batch: $batch) { accepted revised duplicates rejected { index id reason } }
}"""

# A day well in the past (and no other test's): usage over whole days reads the daily rollups.
DAY0 = datetime(2017, 5, 8, tzinfo=UTC)

Versions = dict[str, list[dict]]  # event id -> its versions, revision 0, 1, 2, …


def versions(agent: str, start: datetime = DAY0) -> Versions:
    """Two sessions of one project (so they share rollup rows), events with up to four
    revisions that change what each rollup keys and sums: tokens, cost (priced, unpriced,
    reported), model, hour, duration, status, file, content, end time."""
    s1, s2 = f"{agent}-one", f"{agent}-two"
    ctx = {"agent": agent, "project": {"remote": f"git@github.com:acme/{agent}.git", "path": "/w"},
           "workspace": "/w"}
    t = start + timedelta(hours=10)
    out: Versions = {}

    def add(session: str, n: int, kind: str, changes: list[dict], **fields) -> None:
        base = event(session, n, kind, ts=t + timedelta(minutes=n), **ctx, **fields)
        vs = []
        for rev, change in enumerate(changes):
            v = {**base, **change}
            if rev:
                v["revision"] = rev
            vs.append({k: x for k, x in v.items() if x is not None})
        out[base["id"]] = vs

    add(s1, 1, "user_prompt", [{}, {"content": "  a clearer first\n prompt "},
                               {"ts": (t - timedelta(minutes=30)).isoformat()}],
        content="first prompt")
    sonnet = {"model": "claude-sonnet-4-5", "durationMs": 900, "stopReason": "tool_use"}
    add(s1, 2, "llm_call", [
        {"tokens": {"input": 10, "output": 64, "cacheRead": 1000}},
        {"tokens": {"input": 10, "output": 130, "cacheRead": 1000}},
        {"tokens": {"input": 10, "output": 212, "cacheRead": 1000}, "stopReason": "end_turn",
         "ts": (t + timedelta(hours=1, minutes=5)).isoformat()},
        {"tokens": {"input": 10, "output": 212, "cacheRead": 1000, "cacheWrite": 40},
         "durationMs": 41_000, "ts": (t + timedelta(hours=1, minutes=5)).isoformat()},
    ], **sonnet)
    add(s1, 3, "llm_call", [
        {"model": "mystery-model-x", "tokens": {"input": 5, "output": 5}},
        {"model": "claude-opus-4-1", "tokens": {"input": 5, "output": 50}},
        {"model": "mystery-model-x", "tokens": {"input": 5, "output": 80}},
        {"model": "mystery-model-x", "tokens": {"input": 5, "output": 80}, "costUsd": 0.25},
    ], durationMs=300)
    add(s1, 4, "tool_call", [{}, {"filePath": "/w/b.py"}],
        toolName="Edit", toolCategory="file_edit", toolCallId="c4", filePath="/w/a.py")
    add(s1, 5, "tool_result", [
        {"status": "ok", "linesAdded": 2},
        {"status": "error", "linesAdded": 0, "durationMs": 12_000},
        {"status": "ok", "linesAdded": 9, "filePath": "/w/b.py", "durationMs": 15},
    ], toolName="Edit", toolCallId="c4", filePath="/w/a.py", durationMs=40)
    add(s2, 1, "llm_call", [
        {"costUsd": 0.5, "tokens": {"input": 1, "output": 10}},
        {"tokens": {"input": 1, "output": 20}},
        {"tokens": {"input": 1, "output": 30}, "model": "gpt-5-codex"},
    ], model="claude-sonnet-4-5", durationMs=2000)
    add(s2, 9, "session_end", [{}, {"ts": (t + timedelta(hours=3)).isoformat()}])
    # events that are never revised, in both sessions
    for i in range(6):
        add(s1 if i % 2 else s2, 20 + i, "tool_call" if i % 3 else "assistant_message", [{}],
            toolName="Read" if i % 3 else None, filePath="/w/a.py" if i % 3 else None,
            content=None if i % 3 else f"note {i}")
    return out


async def ingest(client: httpx.AsyncClient, events: list[dict]) -> dict:
    body = await gql(client, INGEST, {"batch": {"events": events, "machines": [MACHINE]}})
    assert "errors" not in body, body
    return body["data"]["ingestEvents"]


class Sender:
    """Sends versions and keeps what the server must hold: per id the highest revision sent."""

    def __init__(self, client: httpx.AsyncClient, vs: Versions) -> None:
        self.client, self.vs = client, vs
        self.kept: dict[str, dict] = {}

    def expect(self, batch: list[dict]) -> dict:
        """The answer the batch must get (and records what it stores)."""
        accepted = revised = duplicates = 0
        best: dict[str, dict] = {}
        for e in batch:
            if e["id"] in best:
                duplicates += 1
                if e.get("revision", 0) > best[e["id"]].get("revision", 0):
                    best[e["id"]] = e
            else:
                best[e["id"]] = e
        for i, e in best.items():
            old = self.kept.get(i)
            if old is None:
                accepted += 1
                self.kept[i] = e
            elif e.get("revision", 0) > old.get("revision", 0):
                revised += 1
                self.kept[i] = e
            else:
                duplicates += 1
        return {"accepted": accepted, "revised": revised, "duplicates": duplicates, "rejected": []}

    async def send(self, batch: list[dict]) -> None:
        want = self.expect(batch)
        assert await ingest(self.client, batch) == want


def orders(vs: Versions, seed: int) -> list[list[dict]]:
    """Batches sending every version of every event in a random order: interleaved across
    batches, sometimes several versions of one event in one batch, repeats included."""
    rng = random.Random(seed)
    items = [v for versions_ in vs.values() for v in versions_]
    items += rng.sample(items, len(items) // 3)  # repeats
    rng.shuffle(items)
    batches, i = [], 0
    while i < len(items):
        n = rng.randint(1, 6)
        batches.append(items[i:i + n])
        i += n
    return batches


# -- checks -----------------------------------------------------------------------------------


async def check_events(conn: asyncpg.Connection, kept: dict[str, dict]) -> None:
    """One row per id, holding the kept version's values."""
    rows = await conn.fetch(
        """SELECT id::text, count(*) OVER (PARTITION BY id) AS copies, ts, revision, kind,
                  model, tokens_output, tokens_cache_write, duration_ms, stop_reason, status,
                  file_path, lines_added, content, cost_source
           FROM agent_event WHERE id = ANY($1::uuid[])""", list(kept))
    assert len(rows) == len(kept)
    for r in rows:
        want = kept[r["id"]]
        assert r["copies"] == 1
        assert (r["ts"], r["revision"], r["kind"]) == (
            datetime.fromisoformat(want["ts"]), want.get("revision", 0), want["kind"]), r["id"]
        tokens = want.get("tokens")
        assert (r["model"], r["tokens_output"], r["tokens_cache_write"]) == (
            want.get("model"), *((tokens.get("output", 0), tokens.get("cacheWrite", 0))
                                 if tokens else (None, None))), r["id"]
        assert (r["duration_ms"], r["stop_reason"], r["status"], r["file_path"],
                r["lines_added"], r["content"]) == (
            want.get("durationMs"), want.get("stopReason"), want.get("status"),
            want.get("filePath"), want.get("linesAdded"), want.get("content")), r["id"]
        if "costUsd" in want:
            assert r["cost_source"] == "reported"


SESSION_FROM_RAW = """
SELECT count(*) AS event_count,
       count(*) FILTER (WHERE kind = 'user_prompt') AS prompt_count,
       count(*) FILTER (WHERE kind = 'llm_call') AS llm_call_count,
       count(*) FILTER (WHERE kind = 'tool_call') AS tool_call_count,
       count(*) FILTER (WHERE status = 'error' AND kind IN ('tool_call', 'tool_result'))
           AS tool_error_count,
       count(DISTINCT file_path) FILTER (WHERE file_path <> '') AS files_touched,
       coalesce(sum(tokens_input), 0) AS tokens_input, coalesce(sum(tokens_output), 0) AS tokens_output,
       coalesce(sum(tokens_cache_read), 0) AS tokens_cache_read,
       coalesce(sum(tokens_cache_write), 0) AS tokens_cache_write,
       coalesce(sum(tokens_reasoning), 0) AS tokens_reasoning,
       sum(cost_usd) AS cost_usd, min(ts) AS started_at, max(ts) AS last_event_at,
       max(ts) FILTER (WHERE kind = 'session_end') AS ended_at,
       coalesce(jsonb_agg(DISTINCT model) FILTER (WHERE kind = 'llm_call' AND model <> ''), '[]')
           AS models
FROM agent_event WHERE session_id = $1
"""
SESSION_COLUMNS = ["event_count", "prompt_count", "llm_call_count", "tool_call_count",
                   "tool_error_count", "files_touched", "tokens_input", "tokens_output",
                   "tokens_cache_read", "tokens_cache_write", "tokens_reasoning", "started_at",
                   "last_event_at", "ended_at"]


async def check_sessions(conn: asyncpg.Connection, agent: str, natives: list[str]) -> None:
    """Each session's rollups and files equal a GROUP BY over its raw events."""
    for native in natives:
        sid = session_id(agent, native)
        s = await conn.fetchrow("SELECT * FROM agent_session WHERE id = $1", sid)
        raw = await conn.fetchrow(SESSION_FROM_RAW, sid)
        assert {c: s[c] for c in SESSION_COLUMNS} == {c: raw[c] for c in SESSION_COLUMNS}, native
        assert sorted(_json(s["models"])) == sorted(_json(raw["models"])), native
        if raw["cost_usd"] is None:
            assert s["cost_usd"] is None, native
        else:
            assert s["cost_usd"] is not None and abs(s["cost_usd"] - raw["cost_usd"]) < Decimal("1e-6"), native
        assert s["status"] == ("ended" if raw["ended_at"] else "active")
        prompts = await conn.fetch("SELECT ts, content FROM agent_event WHERE session_id = $1"
                                   " AND kind = 'user_prompt' ORDER BY ts", sid)
        assert s["title"] == earliest_title([(p["ts"], p["content"]) for p in prompts]), native
        files = await conn.fetch(
            """SELECT path, first_ts, last_ts, touches, lines_added, lines_removed
               FROM session_file WHERE session_id = $1 ORDER BY path""", sid)
        raw_files = await conn.fetch(
            """SELECT file_path AS path, min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS touches,
                      coalesce(sum(lines_added), 0) AS lines_added,
                      coalesce(sum(lines_removed), 0) AS lines_removed
               FROM agent_event WHERE session_id = $1 AND file_path <> '' GROUP BY 1 ORDER BY 1""", sid)
        assert [tuple(f) for f in files] == [tuple(f) for f in raw_files], native


def _json(value: object) -> list:
    import json

    return json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]


USAGE = """query($since: DateTime!, $until: DateTime!, $agent: String!, $bucket: TimeBucket!,
                 $by: [UsageGroup!]) {
  usage(range: {since: $since, until: $until}, bucket: $bucket, groupBy: $by,
        filter: {agents: [$agent]}) {
    points { start model tool events llmCalls toolCalls toolErrors unpricedCalls linesAdded
             costUsd costReportedUsd tokens { input output cacheRead cacheWrite } }
  }
  modelStats(range: {since: $since, until: $until}, filter: {agents: [$agent]}) {
    model calls costUsd unpricedCalls tokens { output } latency { count } }
  toolStats(range: {since: $since, until: $until}, filter: {agents: [$agent]}) {
    tool calls errors linesAdded duration { count } topFiles { path touches } }
}"""

RAW_USAGE = """
SELECT date_trunc($2, ts, 'UTC') AS start, {keys}
       count(*) AS events, count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls,
       count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls,
       count(*) FILTER (WHERE status = 'error' AND kind IN ('tool_call', 'tool_result')) AS tool_errors,
       count(*) FILTER (WHERE kind = 'llm_call' AND cost_usd IS NULL) AS unpriced,
       coalesce(sum(lines_added), 0) AS lines_added,
       sum(cost_usd) AS cost, sum(cost_usd) FILTER (WHERE cost_source = 'reported') AS reported,
       coalesce(sum(tokens_input), 0) AS t_in, coalesce(sum(tokens_output), 0) AS t_out,
       coalesce(sum(tokens_cache_read), 0) AS t_cr, coalesce(sum(tokens_cache_write), 0) AS t_cw
FROM agent_event WHERE agent = $1 GROUP BY {group} ORDER BY 1"""


class _Money:
    """A cost compared to a millionth of a dollar (rollups add float8, raw rows numeric)."""

    def __init__(self, x: object) -> None:
        self.x = None if x is None else float(x)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Money):
            return NotImplemented
        if self.x is None or other.x is None:
            return self.x is other.x
        return abs(self.x - other.x) < 1e-6

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return repr(self.x)


_money = _Money


async def check_usage(client: httpx.AsyncClient, conn: asyncpg.Connection, agent: str,
                      start: datetime = DAY0) -> None:
    """usage (by hour, model and tool; by day), modelStats and toolStats equal a GROUP BY over
    the raw events."""
    since, until = start - timedelta(days=1), start + timedelta(days=3)
    for bucket, by in (("hour", ["model", "tool"]), ("day", [])):
        body = await gql(client, USAGE, {"since": since.isoformat(), "until": until.isoformat(),
                                         "agent": agent, "bucket": bucket.upper(),
                                         "by": [b.upper() for b in by]})
        assert "errors" not in body, body
        got = {(datetime.fromisoformat(p["start"]), *(p[b] for b in by)): (
            p["events"], p["llmCalls"], p["toolCalls"], p["toolErrors"], p["unpricedCalls"],
            p["linesAdded"], _money(p["costUsd"]), _money(p["costReportedUsd"]),
            p["tokens"]["input"], p["tokens"]["output"], p["tokens"]["cacheRead"],
            p["tokens"]["cacheWrite"]) for p in body["data"]["usage"]["points"]}
        keys = "".join(f"nullif(coalesce({'tool_name' if b == 'tool' else b}, ''), '') AS {b}, "
                       for b in by)
        group = ", ".join(str(i) for i in range(1, len(by) + 2))
        raw = await conn.fetch(RAW_USAGE.format(keys=keys, group=group), agent, bucket)
        want = {(r["start"], *(r[b] for b in by)): (
            r["events"], r["llm_calls"], r["tool_calls"], r["tool_errors"], r["unpriced"],
            r["lines_added"], _money(r["cost"]), _money(r["reported"]), r["t_in"], r["t_out"],
            r["t_cr"], r["t_cw"]) for r in raw}
        assert got == want, (bucket, by)
    data = body["data"]
    raw_models = await conn.fetch(
        """SELECT coalesce(model, '') AS model, count(*) AS calls, sum(cost_usd) AS cost,
                  count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
                  coalesce(sum(tokens_output), 0) AS t_out, count(duration_ms) AS timed
           FROM agent_event WHERE agent = $1 AND kind = 'llm_call' GROUP BY 1""", agent)
    assert {(m["model"], m["calls"], _money(m["costUsd"]), m["unpricedCalls"], m["tokens"]["output"],
             m["latency"]["count"]) for m in data["modelStats"]} == {
        (r["model"], r["calls"], _money(r["cost"]), r["unpriced"], r["t_out"], r["timed"])
        for r in raw_models}
    raw_tools = await conn.fetch(
        """SELECT tool_name, count(*) FILTER (WHERE kind = 'tool_call') AS calls,
                  count(*) FILTER (WHERE status = 'error') AS errors,
                  coalesce(sum(lines_added), 0) AS added, count(duration_ms) AS timed
           FROM agent_event WHERE agent = $1 AND kind IN ('tool_call', 'tool_result')
             AND tool_name IS NOT NULL GROUP BY 1""", agent)
    assert {(t["tool"], t["calls"], t["errors"], t["linesAdded"], t["duration"]["count"])
            for t in data["toolStats"]} == {
        (r["tool_name"], r["calls"], r["errors"], r["added"], r["timed"]) for r in raw_tools}
    raw_files = await conn.fetch(
        """SELECT tool_name, file_path, count(*) FILTER (WHERE kind = 'tool_call') AS touches
           FROM agent_event WHERE agent = $1 AND kind IN ('tool_call', 'tool_result')
             AND file_path IS NOT NULL GROUP BY 1, 2""", agent)
    for t in data["toolStats"]:
        want_files = {r["file_path"]: r["touches"] for r in raw_files if r["tool_name"] == t["tool"]}
        assert {f["path"]: f["touches"] for f in t["topFiles"]} == want_files, t["tool"]


async def check_all(client: httpx.AsyncClient, conn: asyncpg.Connection, agent: str,
                    kept: dict[str, dict]) -> None:
    """Events (``kept``: id → the version that must be stored), sessions, usage."""
    await check_events(conn, kept)
    await check_sessions(conn, agent, sorted({e["session"] for e in kept.values()
                                              if e["agent"] == agent}))
    await check_usage(client, conn, agent)


def new_agent(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
