"""Rollup refresh cost: one hour of events at 1,000 events/s (3.6 million events in one hour).

Measured in one run, on a fresh database:
- baseline: a plain GROUP BY of that hour's events (what any rollup must at least read);
- the first refresh, which builds the hour's rollups (hourly + daily, usage, latency, files);
- an incremental refresh after one more minute of events (60,000) arrives in the same hour —
  the job's steady state at that rate (it adds what was ingested since its last run);
- a refresh with nothing new (the cost of an idle tick).

    ./dev bench rollups [--rate 1000] [--minutes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench._common import scratch_database, table
from bench.ingest import migrate

KINDS = ["user_prompt", "llm_call", "llm_call", "tool_call", "tool_result", "tool_call",
         "tool_result", "assistant_message", "reasoning"]
TOOLS = ["Read", "Edit", "Bash", "Grep", "Write"]
AGENTS = ["claude-code", "codex", "copilot"]
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "gpt-5-codex"]
COLUMNS = ("id", "ts", "session_id", "seq", "kind", "agent", "model", "tokens_input",
           "tokens_output", "tokens_cache_read", "duration_ms", "tool_name", "status", "file_path")


def events(rng: random.Random, sessions: list[tuple[uuid.UUID, str]], start: datetime,
           seconds: int, rate: int):
    for n in range(seconds * rate):
        sid, agent = sessions[rng.randrange(len(sessions))]
        kind = KINDS[n % len(KINDS)]
        llm, tool = kind == "llm_call", kind.startswith("tool")
        yield (uuid.uuid4(), start + timedelta(microseconds=n * 1_000_000 // rate), sid, n, kind,
               agent, MODELS[n % 3] if llm else None, 10 if llm else None, 300 if llm else None,
               20_000 if llm else None, rng.randrange(10, 60_000) if llm or kind == "tool_result" else None,
               TOOLS[n % 5] if tool else None,
               ("error" if n % 17 == 0 else "ok") if kind == "tool_result" else None,
               f"/src/file{n % 200}.py" if tool else None)


async def copy(conn: asyncpg.Connection, rows) -> int:
    batch, total = [], 0
    for row in rows:
        batch.append(row)
        if len(batch) == 100_000:
            await conn.copy_records_to_table("agent_event", records=batch, columns=COLUMNS)
            total += len(batch)
            batch = []
    if batch:
        await conn.copy_records_to_table("agent_event", records=batch, columns=COLUMNS)
        total += len(batch)
    return total


async def run(url: str, rate: int, minutes: int) -> list[list[str]]:
    from app.db import engine
    from app.jobs import rollups
    from app.settings import load_settings

    rng = random.Random(1)
    conn = await asyncpg.connect(url)
    machine = uuid.uuid4()
    await conn.execute("INSERT INTO machine (id, key, hostname) VALUES ($1, 'bench', 'bench')", machine)
    sessions = [(uuid.uuid4(), AGENTS[i % 3]) for i in range(200)]
    await conn.executemany(
        "INSERT INTO agent_session (id, agent, native_id, machine) VALUES ($1, $2, $4, $3)",
        [(s, a, machine, str(s)) for s, a in sessions])
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    t0 = time.perf_counter()
    n = await copy(conn, events(rng, sessions, hour, (minutes - 1) * 60, rate))
    print(f"  {n:,} events copied in {time.perf_counter() - t0:.0f}s")
    await conn.execute("VACUUM ANALYZE agent_event")

    t0 = time.perf_counter()
    await conn.fetch("""SELECT date_trunc('hour', e.ts, 'UTC'), e.agent, s.project, s.machine, e.kind,
                               coalesce(e.model, ''), coalesce(e.tool_name, ''), count(*),
                               sum(e.tokens_input), sum(e.tokens_output), sum(e.cost_usd)
                        FROM agent_event e JOIN agent_session s ON s.id = e.session_id
                        GROUP BY 1, 2, 3, 4, 5, 6, 7""")
    baseline = time.perf_counter() - t0

    engine.configure(url)
    await engine.open_pool(1, 4)
    settings = load_settings(database_url=url)
    try:
        t0 = time.perf_counter()
        first = await rollups.refresh(settings, wait=True)
        full = time.perf_counter() - t0
        rows = await conn.fetchval("SELECT (SELECT count(*) FROM usage_hourly) + (SELECT count(*) FROM"
                                   " latency_hourly) + (SELECT count(*) FROM tool_file_hourly)")
        more = await copy(conn, events(rng, sessions, hour + timedelta(minutes=minutes - 1), 60, rate))
        t0 = time.perf_counter()
        await rollups.refresh(settings, wait=True)
        incremental = time.perf_counter() - t0
        # Nothing new: an idle tick.
        t0 = time.perf_counter()
        idle_result = await rollups.refresh(settings, wait=True)
        idle = time.perf_counter() - t0
    finally:
        await engine.close_pool()
        await conn.close()
    assert first.events == n and idle_result.events == 0
    return [
        ["GROUP BY of the hour (baseline)", f"{n:,}", f"{baseline:.2f} s", "1.00"],
        [f"first refresh ({rows:,} hourly rows)", f"{n:,}", f"{full:.2f} s",
         f"{full / baseline:.2f}"],
        ["refresh after +1 min of events", f"{more:,}", f"{incremental:.2f} s",
         f"{incremental / baseline:.2f}"],
        ["refresh with nothing new", "0", f"{idle * 1000:.1f} ms", f"{idle / baseline:.4f}"],
        ["share of one core at one refresh a minute", "", f"{incremental / 60:.1%}", ""],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--minutes", type=int, default=60, help="minutes of events in the hour")
    args = parser.parse_args()
    with scratch_database("devlog_bench_rollups") as url:
        asyncio.run(migrate(url))
        print(f"{args.rate:,} events/s for {args.minutes} minutes")
        rows = asyncio.run(run(url, args.rate, args.minutes))
    print(table(["rollup refresh", "events", "time", "× baseline"], rows))


if __name__ == "__main__":
    main()
