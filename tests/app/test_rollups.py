"""Rollups (plain PostgreSQL path): every answer equals a direct GROUP BY over raw events, before
a refresh (all tail), after it (all rollup), with late arrivals (rollup + tail), after running
twice or concurrently, for every grouping, bucket and time zone, and for ranges that do not start
on the hour. Randomized data; each test uses its own agents and a far-away time window (in the past:
ingest refuses events dated more than a day ahead)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.db.ddl import fetch
from app.db.rollups import histogram_bounds
from app.jobs import retention, rollups
from app.services import usage
from app.services.usage import UsageFilter
from app.settings import load_settings
from tests.factories import MACHINE, event
from tests.helpers import gql

KINDS = ["user_prompt", "llm_call", "llm_call", "tool_call", "tool_result", "assistant_message",
         "reasoning", "error", "system"]
MODELS = ["claude-sonnet-4-5", "gpt-5-codex", "claude-opus-4-1"]
TOOLS = ["Edit", "Bash", "Read", "Grep"]


def random_events(rng: random.Random, agents: list[str], start: datetime, hours: int, n: int,
                  salt: str) -> list[dict]:
    out = []
    for i in range(n):
        agent = rng.choice(agents)
        session = f"{agent}-s{rng.randrange(4)}"
        kind = rng.choice(KINDS)
        ts = start + timedelta(seconds=rng.randrange(hours * 3600))
        fields: dict = {
            "project": {"remote": f"git@github.com:acme/{session[-1]}.git", "path": "/w"},
            "workspace": "/w",
            "machine": "second-machine" if session.endswith("3") else "test-machine"}
        if kind == "llm_call":
            fields.update(model=rng.choice(MODELS), durationMs=rng.randrange(50, 90_000),
                          tokens={"input": rng.randrange(1000), "output": rng.randrange(500),
                                  "cacheRead": rng.randrange(20_000), "cacheWrite": rng.randrange(2000),
                                  "reasoning": rng.randrange(300)})
            if rng.random() < 0.5:
                fields["costUsd"] = round(rng.random(), 6)
        elif kind in ("tool_call", "tool_result"):
            fields.update(toolName=rng.choice(TOOLS), toolCallId=f"c{i}",
                          filePath=rng.choice([None, "/w/a.py", "/w/b.py", "/w/c.md"]))
            if kind == "tool_result":
                fields.update(status=rng.choice(["ok", "ok", "error"]),
                              durationMs=rng.choice([None, rng.randrange(0, 30_000)]),
                              linesAdded=rng.randrange(20), linesRemoved=rng.randrange(5))
        out.append(event(session, i, kind, agent=agent, ts=ts, **fields,
                         **({"content": f"{salt} {i}"} if kind == "user_prompt" else {})))
        out[-1]["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}/{i}"))
    return out


async def ingest(client: httpx.AsyncClient, events: list[dict]) -> None:
    second = {**MACHINE, "key": "second-machine", "hostname": "ci-box", "kind": "ci"}
    for i in range(0, len(events), 500):
        body = await gql(client, """mutation($batch: EventBatch!) { ingestEvents(batch: $batch) {
                                      accepted rejected { reason } } }""",
                         {"batch": {"events": events[i:i + 500], "machines": [MACHINE, second]}})
        assert "errors" not in body and not body["data"]["ingestEvents"]["rejected"], body


RAW = """SELECT date_trunc($1, e.ts, $2) AS start, {keys}
       count(*) AS events,
       count(*) FILTER (WHERE e.kind = 'user_prompt') AS prompts,
       count(*) FILTER (WHERE e.kind = 'llm_call') AS llm_calls,
       count(*) FILTER (WHERE e.kind = 'tool_call') AS tool_calls,
       count(*) FILTER (WHERE e.status = 'error' AND e.kind IN ('tool_call', 'tool_result')) AS tool_errors,
       count(*) FILTER (WHERE e.kind = 'error') AS errors,
       coalesce(sum(e.tokens_input), 0) AS tokens_input, coalesce(sum(e.tokens_output), 0) AS tokens_output,
       coalesce(sum(e.tokens_cache_read), 0) AS tokens_cache_read,
       coalesce(sum(e.tokens_cache_write), 0) AS tokens_cache_write,
       coalesce(sum(e.tokens_reasoning), 0) AS tokens_reasoning,
       round(sum(e.cost_usd)::numeric, 6) AS cost_usd,
       count(*) FILTER (WHERE e.kind = 'llm_call' AND e.cost_usd IS NULL) AS unpriced_calls,
       coalesce(sum(e.lines_added), 0) AS lines_added
FROM agent_event e JOIN agent_session s ON s.id = e.session_id
WHERE e.agent = ANY($3::text[]) AND e.ts >= $4 AND e.ts < $5
GROUP BY {group} ORDER BY 1"""

RAW_KEYS = {"agent": "e.agent", "model": "coalesce(e.model, '')", "project": "s.project",
            "machine": "s.machine", "tool": "coalesce(e.tool_name, '')"}
COMPARED = ["events", "prompts", "llm_calls", "tool_calls", "tool_errors", "errors", "tokens_input",
            "tokens_output", "tokens_cache_read", "tokens_cache_write", "tokens_reasoning",
            "unpriced_calls", "lines_added"]


async def raw_usage(agents: list[str], since: datetime, until: datetime, bucket: str, tz: str,
                    group_by: list[str]) -> dict[tuple, dict]:
    keys = "".join(f"{RAW_KEYS[g]} AS k_{g}, " for g in group_by)
    group = ", ".join(str(i) for i in range(1, len(group_by) + 2))
    rows = await fetch(RAW.format(keys=keys, group=group), bucket, tz, agents, since, until)
    out = {}
    for r in rows:
        key = (r["start"], *(None if r[f"k_{g}"] == "" else r[f"k_{g}"] for g in group_by))
        out[key] = {c: r[c] for c in COMPARED} | {"cost_usd": r["cost_usd"]}
    return out


async def rolled_usage(agents: list[str], since: datetime, until: datetime, bucket: str, tz: str,
                       group_by: list[str]) -> dict[tuple, dict]:
    report = await usage.usage(since, until, bucket, group_by, UsageFilter(agents=agents), tz)
    key_attr = {"agent": "agent", "model": "model", "project": "project_id", "machine": "machine_id",
                "tool": "tool"}
    out = {}
    for p in report.points:
        key = (p.start, *(getattr(p, key_attr[g]) for g in group_by))
        out[key] = {c: getattr(p, c) for c in COMPARED} | {
            "cost_usd": None if p.cost_usd is None else round(__import__("decimal").Decimal(repr(p.cost_usd)), 6)}
    return out


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, w in want.items():
        g = got[k]
        assert {c: g[c] for c in COMPARED} == {c: w[c] for c in COMPARED}, k
        if w["cost_usd"] is None:
            assert g["cost_usd"] is None, k
        else:
            assert abs(float(g["cost_usd"]) - float(w["cost_usd"])) < 1e-5, k


CASES = [("hour", "UTC", []), ("day", "UTC", ["agent"]), ("day", "UTC", ["model", "tool"]),
         ("week", "UTC", ["project", "machine"]), ("day", "America/New_York", ["agent", "model"]),
         ("hour", "Asia/Kolkata", ["tool"])]


async def check_all(agents: list[str], since: datetime, until: datetime) -> None:
    for bucket, tz, group_by in CASES:
        want = await raw_usage(agents, since, until, bucket, tz, group_by)
        got = await rolled_usage(agents, since, until, bucket, tz, group_by)
        assert_same(got, want)


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollups_equal_group_by_over_raw_events(client: httpx.AsyncClient, seed: int) -> None:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    agents = [f"ra-{tag}", f"rb-{tag}"]
    start = datetime(2011, 3, 1 + seed * 7, 5, tzinfo=UTC)
    since, until = start - timedelta(days=1), start + timedelta(days=6)
    odd_since, odd_until = start + timedelta(hours=3, minutes=30), start + timedelta(days=2, minutes=17)

    await ingest(client, random_events(rng, agents, start, 24 * 5, 900, f"{tag}-a"))
    await check_all(agents, since, until)  # nothing rolled up yet: all from the tail

    await rollups.refresh(wait=True)
    await check_all(agents, since, until)  # all from the rollups
    await check_all(agents, odd_since, odd_until)

    # Late arrivals into old hours (a backfill) and new hours: rollup + tail, then refreshed.
    await ingest(client, random_events(rng, agents, start, 24 * 5, 300, f"{tag}-b"))
    await check_all(agents, since, until)
    await rollups.refresh(wait=True)
    await check_all(agents, since, until)

    # Idempotent: a second run, and two at once (one waits or skips), change nothing.
    await asyncio.gather(rollups.refresh(wait=True), rollups.refresh(), rollups.refresh(wait=True))
    await check_all(agents, since, until)
    assert await rollups.reaggregate(since, until) > 0
    await check_all(agents, since, until)
    await check_all(agents, odd_since, odd_until)


async def test_latency_histograms_and_tool_files_match_raw_events(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:6]
    agents = [f"lat-{tag}"]
    start = datetime(2011, 6, 1, tzinfo=UTC)
    since, until = start, start + timedelta(days=3)
    await ingest(client, random_events(rng, agents, start, 48, 1500, tag))
    await rollups.refresh(wait=True)
    await ingest(client, random_events(rng, agents, start, 48, 200, f"{tag}-late"))  # in the tail

    stats = await usage.tool_stats(since, until, UsageFilter(agents=agents))
    raw = await fetch("""SELECT tool_name, count(*) FILTER (WHERE kind = 'tool_call') AS calls,
                                count(*) FILTER (WHERE status = 'error') AS errors,
                                array_agg(duration_ms ORDER BY duration_ms) FILTER (WHERE duration_ms IS NOT NULL) AS d
                         FROM agent_event WHERE agent = ANY($1::text[]) AND ts >= $2 AND ts < $3
                           AND kind IN ('tool_call', 'tool_result') AND tool_name IS NOT NULL
                         GROUP BY 1""", agents, since, until)
    by_tool = {s.tool: s for s in stats}
    assert set(by_tool) == {r["tool_name"] for r in raw}
    for r in raw:
        s = by_tool[r["tool_name"]]
        assert (s.calls, s.errors) == (r["calls"], r["errors"])
        durations = r["d"] or []
        assert s.duration.count == len(durations)
        if durations:  # the estimate lies in the histogram bucket of the true percentile
            for q, est in ((0.5, s.duration.p50_ms), (0.95, s.duration.p95_ms)):
                true = durations[min(len(durations) - 1, max(0, int(q * len(durations) + 0.5) - 1))]
                lo, _ = histogram_bounds(int(__import__("math").floor(__import__("math").log2(true + 1) * 4)))
                assert lo * 0.8 - 1 <= est <= (true + 1) * 1.25, (q, est, true)
        files = await fetch("""SELECT file_path, count(*) AS n FROM agent_event
                               WHERE agent = ANY($1::text[]) AND ts >= $2 AND ts < $3 AND kind = 'tool_call'
                                 AND tool_name = $4 AND file_path IS NOT NULL GROUP BY 1""",
                            agents, since, until, r["tool_name"])
        want = {f["file_path"]: f["n"] for f in files}
        assert {f.path: f.touches for f in s.top_files} == want

    models = await usage.model_stats(since, until, UsageFilter(agents=agents))
    raw_models = await fetch("""SELECT model, count(*) AS n, sum(tokens_output) AS o FROM agent_event
                                WHERE agent = ANY($1::text[]) AND ts >= $2 AND ts < $3 AND kind = 'llm_call'
                                GROUP BY 1""", agents, since, until)
    assert {(m.model, m.calls, m.tokens_output) for m in models} == {
        (r["model"], r["n"], r["o"]) for r in raw_models}
    assert all(m.latency.count == m.calls and m.latency.p50_ms <= m.latency.p95_ms for m in models)


async def test_retention_deletes_old_events_and_keeps_their_rollups(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    agents = [f"ret-{tag}"]
    old = datetime(1999, 6, 1, 12, tzinfo=UTC)
    await ingest(client, random_events(random.Random(3), agents, old, 24, 200, tag))
    await rollups.refresh(wait=True)
    since, until = old - timedelta(days=1), old + timedelta(days=2)
    before = await rolled_usage(agents, since, until, "day", "UTC", ["model"])
    assert before

    settings = load_settings(retention_days=365)
    # As if today were 2001: raw events of 1999 are past retention (nothing else is that old).
    summary = await retention.apply(settings, now=datetime(2001, 1, 1, tzinfo=UTC))
    assert "events before 2000-01-02" in summary
    left = await fetch("SELECT count(*) AS n FROM agent_event WHERE agent = ANY($1::text[])", agents)
    assert left[0]["n"] == 0
    # A refresh does not redo hours past the horizon; the rollups still answer.
    assert rollups.retention_horizon(settings, datetime(2001, 1, 1, tzinfo=UTC)) > old
    assert await rolled_usage(agents, since, until, "day", "UTC", ["model"]) == before


async def test_jobs_run_in_the_server_and_report(client: httpx.AsyncClient) -> None:
    q = "{ jobs { name description lastRun nextRun lastDurationMs lastError lastResult runs } }"
    for _ in range(100):
        jobs = {j["name"]: j for j in (await gql(client, q))["data"]["jobs"]}
        if jobs["rollups"]["lastRun"]:
            break
        await asyncio.sleep(0.1)
    assert jobs["rollups"]["lastRun"] and jobs["rollups"]["lastError"] is None
    assert jobs["rollups"]["nextRun"] and jobs["rollups"]["runs"] >= 1
    assert "retention" in jobs


async def test_an_event_committed_after_a_refresh_began_is_not_lost(client: httpx.AsyncClient,
                                                                      database_url: str) -> None:
    """An ingest transaction stamps its events with its start time and may commit after a
    refresh has read past that time: the watermark must stop short of open transactions."""
    import asyncpg

    tag = uuid.uuid4().hex[:6]
    agents = [f"open-{tag}"]
    start = datetime(2011, 9, 1, 10, tzinfo=UTC)
    await ingest(client, random_events(random.Random(5), agents, start, 2, 50, tag))
    session = (await fetch("SELECT session_id FROM agent_event WHERE agent = $1 LIMIT 1", agents[0]))[0][0]
    slow = await asyncpg.connect(database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute("""INSERT INTO agent_event (id, ts, session_id, kind, agent, tokens_output)
                              VALUES ($1, $2, $3, 'llm_call', $4, 1234)""",
                           uuid.uuid4(), start + timedelta(minutes=5), session, agents[0])
        await ingest(client, random_events(random.Random(6), agents, start, 2, 50, f"{tag}-2"))
        await rollups.refresh(wait=True)  # sees the second batch, not the open transaction
        await tx.commit()
    finally:
        await slow.close()
    for _ in range(2):  # before and after the next refresh
        want = await raw_usage(agents, start, start + timedelta(hours=2), "hour", "UTC", ["agent"])
        assert sum(w["tokens_output"] for w in want.values()) >= 1234
        assert_same(await rolled_usage(agents, start, start + timedelta(hours=2), "hour", "UTC", ["agent"]),
                    want)
        await rollups.refresh(wait=True)


async def test_sessions_without_a_project_are_counted_in_their_group(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    agent = f"np-{tag}"
    start = datetime(2011, 10, 1, 8, tzinfo=UTC)
    await ingest(client, [event(f"{agent}-{i}", 0, "session_start", agent=agent, ts=start + timedelta(minutes=i))
                          for i in range(3)])
    await rollups.refresh(wait=True)
    report = await usage.usage(start, start + timedelta(hours=1), "day", ["project", "machine"],
                               UsageFilter(agents=[agent]))
    assert [(p.project_id, p.events, p.sessions) for p in report.points] == [
        (uuid.UUID(int=0), 3, 3)]
    assert report.totals.sessions == 3
    q = """query($since: DateTime!, $until: DateTime!, $agent: String!) {
           usage(range: {since: $since, until: $until}, groupBy: [PROJECT],
             filter: {agents: [$agent]}) { ...Counts totals { events } } }
           fragment Counts on UsageReport { points { project { id } events sessions } }"""
    body = await gql(client, q, {"since": start.isoformat(), "agent": agent,
                                 "until": (start + timedelta(hours=1)).isoformat()})
    assert body["data"]["usage"]["points"] == [{"project": None, "events": 3, "sessions": 3}]


async def test_a_range_up_to_now_includes_the_current_hour(client: httpx.AsyncClient) -> None:
    agent = f"now-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    events = [event(f"{agent}-s", i, "llm_call", agent=agent, ts=now - timedelta(minutes=m),
                    tokens={"input": 1, "output": 10}) for i, m in enumerate((90, 30, 0.01))]
    await ingest(client, events)
    for _ in range(2):  # from the tail, then from the rollup
        report = await usage.usage(now - timedelta(hours=2), None, "hour", [], UsageFilter(agents=[agent]))
        assert (report.totals.llm_calls, report.totals.tokens_output) == (3, 30)
        assert report.until >= now
        await rollups.refresh(wait=True)
