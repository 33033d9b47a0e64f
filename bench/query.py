"""Read latency at scale: p50/p95 of the session list (first page and a filtered page), session
detail (first page of events) and the overview, through HTTP GraphQL on a real `devlog serve`,
and of the dashboard's pages (target: p95 < 100 ms per page).

The generator COPies ``--events`` events (default 10 million) over ``--sessions`` sessions
(default 50,000) spread over 90 days into a fresh database, then builds the session rows and
their rollups with one GROUP BY, as ingest would have left them.

    ./dev bench query [--events 10000000] [--sessions 50000] [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench._common import free_port, scratch_database, table, wait_ready  # noqa: E402
from bench.ingest import migrate  # noqa: E402

KINDS = ["user_prompt", "llm_call", "llm_call", "tool_call", "tool_result", "tool_call",
         "tool_result", "assistant_message", "reasoning"]
TOOLS = ["Read", "Edit", "Bash", "Grep", "Write"]
AGENTS = ["claude-code", "codex", "copilot"]
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "gpt-5-codex", "gpt-5", "claude-haiku-4-5"]
COLUMNS = ("id", "ts", "session_id", "seq", "kind", "agent", "model", "tokens_input",
           "tokens_output", "tokens_cache_read", "tool_name", "status", "content", "duration_ms",
           "file_path")


async def generate(url: str, n_events: int, n_sessions: int) -> None:
    rng = random.Random(1)
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=90)
    per = n_events // n_sessions
    sessions = [(uuid.uuid4(), AGENTS[i % 3], start + timedelta(seconds=rng.uniform(0, 90 * 86400)))
                for i in range(n_sessions)]
    conn = await asyncpg.connect(url)
    t0 = time.perf_counter()
    await conn.execute("ALTER TABLE agent_event SET (autovacuum_enabled = false)")
    batch: list[tuple] = []
    done = 0
    for sid, agent, t in sessions:
        for i in range(per):
            t = t + timedelta(seconds=rng.randint(1, 40))
            kind = KINDS[i % len(KINDS)] if i else "user_prompt"
            batch.append((uuid.uuid4(), t, sid, i, kind, agent,
                          MODELS[(i + len(agent)) % 5] if kind == "llm_call" else None,
                          10 if kind == "llm_call" else None, 300 if kind == "llm_call" else None,
                          20000 if kind == "llm_call" else None,
                          TOOLS[i % 5] if kind.startswith("tool") else None,
                          ("error" if i % 17 == 0 else "ok") if kind == "tool_result" else None,
                          f"prompt {i} about the parser" if kind == "user_prompt" else "x" * 200,
                          rng.randint(20, 60_000) if kind in ("llm_call", "tool_result") else None,
                          f"/src/mod{i % 300}.py" if kind.startswith("tool") and i % 5 < 3 else None))
        if len(batch) >= 100_000:
            await conn.copy_records_to_table("agent_event", records=batch, columns=COLUMNS)
            done += len(batch)
            batch = []
            print(f"\r  {done:,} events ({done / (time.perf_counter() - t0):,.0f}/s)", end="", flush=True)
    if batch:
        await conn.copy_records_to_table("agent_event", records=batch, columns=COLUMNS)
    print()
    await conn.execute("""
        INSERT INTO machine (id, key, hostname) VALUES ('00000000-0000-0000-0000-000000000001', 'bench', 'bench');
        INSERT INTO agent_session (id, agent, native_id, machine, title, started_at, last_event_at,
            event_count, prompt_count, llm_call_count, tool_call_count, tool_error_count,
            tokens_input, tokens_output, tokens_cache_read, status, ended_at)
        SELECT session_id, min(agent), session_id::text, '00000000-0000-0000-0000-000000000001',
               min(content) FILTER (WHERE kind = 'user_prompt'), min(ts), max(ts), count(*),
               count(*) FILTER (WHERE kind = 'user_prompt'), count(*) FILTER (WHERE kind = 'llm_call'),
               count(*) FILTER (WHERE kind = 'tool_call'),
               count(*) FILTER (WHERE status = 'error'), coalesce(sum(tokens_input), 0),
               coalesce(sum(tokens_output), 0), coalesce(sum(tokens_cache_read), 0),
               CASE WHEN max(ts) < now() - interval '1 day' THEN 'ended' ELSE 'active' END,
               CASE WHEN max(ts) < now() - interval '1 day' THEN max(ts) END
        FROM agent_event GROUP BY session_id;
        ALTER TABLE agent_event SET (autovacuum_enabled = true);""")
    await conn.execute("VACUUM ANALYZE agent_event")
    await conn.execute("VACUUM ANALYZE agent_session")
    print(f"  generated in {time.perf_counter() - t0:.0f}s")
    await conn.close()


async def build_rollups(url: str) -> None:
    """The first rollup refresh over the generated events (the server's job would do it)."""
    from app.db import engine
    from app.jobs import rollups
    from app.settings import load_settings

    engine.configure(url)
    await engine.open_pool(1, 2)
    try:
        t0 = time.perf_counter()
        result = await rollups.refresh(load_settings(database_url=url), wait=True)
        print(f"  rollups built in {time.perf_counter() - t0:.0f}s ({result.describe()})")
    finally:
        await engine.close_pool()


def measure(client: httpx.Client, query: str, variables: dict, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        r = client.post("/graphql", json={"query": query, "variables": variables})
        times.append((time.perf_counter() - t0) * 1000)
        body = r.json()
        assert "errors" not in body, body
    times = times[3:]  # warm-up
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def measure_page(client: httpx.Client, url: str, runs: int,
                 target: str | None = None) -> tuple[float, float]:
    """A page, or with ``target`` the fragment htmx asks for (as the page's own requests do)."""
    headers = {"HX-Request": "true", "HX-Target": target} if target else {}
    times = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    times = times[3:]
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


SESSIONS = """query($f: SessionFilterInput, $after: String) { sessions(filter: $f, first: 50, after: $after) {
  edges { node { id title status lastEventAt eventCount tokens { input output cacheRead } } }
  pageInfo { endCursor } } }"""
DETAIL = """query($id: ID!) { session(id: $id) { id title tokens { input output } children { id }
  events(first: 100) { edges { node { id ts kind toolName status content } } } } }"""
USAGE = """query($since: DateTime!, $bucket: TimeBucket!, $group: [UsageGroup!]) {
  usage(range: {since: $since}, bucket: $bucket, groupBy: $group) {
    points { start agent model events llmCalls tokens { input output cacheRead } costUsd }
    totals { events tokens { total } costUsd } } }"""
TOOL_STATS = """query($since: DateTime!) { toolStats(range: {since: $since}) {
  tool calls errorRate duration { p50Ms p95Ms } topFiles { path touches } } }"""
MODEL_STATS = """query($since: DateTime!) { modelStats(range: {since: $since}) {
  model calls tokens { input output } costUsd latency { p50Ms p95Ms } } }"""
OVERVIEW = """{ overview { activeSessions eventsToday tokensToday { input output } eventsPerMinute { count }
  topTools { name count errors } topModels { name count } } }"""


def ago(days: int) -> str:
    """A range start ``days`` ago, not on the hour (the partial hour is read from raw events)."""
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def add_database_args(parser: argparse.ArgumentParser, database_help: str) -> None:
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--database", metavar="URL", help=database_help)


@contextlib.contextmanager
def events_database(args: argparse.Namespace) -> Iterator[str]:
    """The database to measure: ``--database`` (kept), or a scratch one with ``--events``
    generated events over ``--sessions`` sessions; migrated, with its rollups built."""
    with contextlib.nullcontext(args.database) if args.database else scratch_database() as url:
        asyncio.run(migrate(url))
        if not args.database:
            print(f"generating {args.events:,} events over {args.sessions:,} sessions and 90 days")
            asyncio.run(generate(url, args.events, args.sessions))
        asyncio.run(build_rollups(url))
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_args(parser, "measure a database generated before (kept, not dropped) instead")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with events_database(args) as url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
        env.update(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning")
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
            # TCP_NODELAY: httpx writes headers and body separately; without it Nagle plus the
            # peer's delayed ACK add ~40 ms to every request on a kept-alive connection.
            transport = httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                              transport=transport) as c:
                first = c.post("/graphql", json={"query": SESSIONS, "variables": {}}).json()
                page = first["data"]["sessions"]
                some_id = page["edges"][len(page["edges"]) // 2]["node"]["id"]
                rows = []
                for label, q, v in [
                    ("sessions, first page", SESSIONS, {}),
                    ("sessions, page 2 (cursor)", SESSIONS, {"after": page["pageInfo"]["endCursor"]}),
                    ("sessions, filtered (agent + ended + text)", SESSIONS,
                     {"f": {"agent": ["codex"], "status": "ENDED", "text": "parser"}}),
                    ("session detail + 100 events", DETAIL, {"id": some_id}),
                    ("overview", OVERVIEW, {}),
                    ("usage, 90 days by day and agent", USAGE,
                     {"since": ago(90), "bucket": "DAY", "group": ["AGENT"]}),
                    ("usage, 90 days by week and model", USAGE,
                     {"since": ago(90), "bucket": "WEEK", "group": ["MODEL"]}),
                    ("usage, 7 days by hour", USAGE, {"since": ago(7), "bucket": "HOUR", "group": []}),
                    ("toolStats, 30 days", TOOL_STATS, {"since": ago(30)}),
                    ("modelStats, 90 days", MODEL_STATS, {"since": ago(90)}),
                ]:
                    p50, p95 = measure(c, q, v, args.runs)
                    rows.append([label, f"{p50:.1f} ms", f"{p95:.1f} ms"])
                pages = []
                for label, url in [
                    ("/ (overview page)", "/"),
                    ("/sessions", "/sessions"),
                    ("/sessions filtered (agent + ended + text)", "/sessions?agent=codex&status=ended&q=parser"),
                    ("/sessions/{id} (header + 200 events)", f"/sessions/{some_id}"),
                    ("/projects", "/projects"),
                    ("/usage (7 d by agent)", "/usage"),
                    ("/usage (90 d by model)", "/usage?range=90d&by=model"),
                    ("/usage.csv (90 d by model)", "/usage.csv?range=90d&by=model"),
                    ("/tools (7 d)", "/tools"),
                    ("/tools (90 d, one agent)", "/tools?range=90d&agent=codex"),
                ]:
                    p50, p95 = measure_page(c, url, args.runs)
                    pages.append([label, f"{p50:.1f} ms", f"{p95:.1f} ms"])
                for label, url, target in [
                    ("fragment: overview stats (live nudge)", "/", "stats"),
                    ("fragment: sessions results (filter change)", "/sessions?agent=codex&status=ended", "results"),
                    ("fragment: timeline page (scroll)", f"/sessions/{some_id}/events", None),
                    ("fragment: usage results (range change)", "/usage?range=30d&by=model", "usage-results"),
                    ("fragment: tools results (filter change)", "/tools?range=30d&agent=codex", "tools-results"),
                ]:
                    p50, p95 = measure_page(c, url, args.runs, target)
                    pages.append([label, f"{p50:.1f} ms", f"{p95:.1f} ms"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(table(["query (HTTP GraphQL, sequential)", "p50", "p95"], rows))
    print()
    print(table(["dashboard page (HTML, sequential)", "p50", "p95"], pages))


if __name__ == "__main__":
    main()
