"""What migration 0008 (event ids unique whatever their ts) costs an existing plain-PostgreSQL
database: ``devlog db migrate`` on a database generated as ``bench/query.py`` does, put back in
the layout before 0008 (primary key (id, ts), no revision column, rollup tables without their
plain-only counts), with ``--duplicates`` of its events stored a second time with another ts.
Prints the migration's wall time and checks that one row per id is left.

    ./dev bench migration_0008 [--events 1000000] [--sessions 5000] [--duplicates 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench._common import scratch_database  # noqa: E402
from bench.ingest import migrate  # noqa: E402
from bench.query import build_rollups, generate  # noqa: E402


async def as_before_0008(url: str, duplicates: float) -> int:
    from app.db import rollups
    from migrations.devlog_0008_event_id_unique import ID

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("""
            ALTER TABLE agent_event DROP CONSTRAINT agent_event_pkey;
            ALTER TABLE agent_event ADD PRIMARY KEY (id, ts);
            ALTER TABLE agent_event DROP COLUMN revision;""")
        for r in rollups.ROLLUPS:
            for name in (r.name, r.daily):
                for col, _ in r.plain_only:
                    await conn.execute(f"ALTER TABLE {name} DROP COLUMN {col}")
        await conn.execute("DELETE FROM migration WHERE name = $1", ID)
        copies = await conn.execute(
            "INSERT INTO agent_event SELECT e.id, e.ts + INTERVAL '3 hours', e.session_id, e.seq,"
            " e.kind, e.agent, e.model, e.provider, e.tokens_input, e.tokens_output,"
            " e.tokens_cache_read, e.tokens_cache_write, e.tokens_cache_write_5m,"
            " e.tokens_cache_write_1h, e.tokens_reasoning, e.tokens_estimated, e.cost_usd,"
            " e.cost_source, e.duration_ms, e.stop_reason, e.tool_name, e.tool_category,"
            " e.tool_call_id, e.status, e.file_path, e.lines_added, e.lines_removed, e.command,"
            " e.content, e.error, e.payload FROM agent_event e TABLESAMPLE BERNOULLI ($1)",
            duplicates * 100)
        await conn.execute("VACUUM ANALYZE agent_event")
        return int(copies.split()[-1])
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=5_000)
    parser.add_argument("--duplicates", type=float, default=0.01,
                        help="share of the events stored twice (another ts)")
    args = parser.parse_args()
    with scratch_database() as url:
        asyncio.run(migrate(url))
        print(f"generating {args.events:,} events over {args.sessions:,} sessions")
        asyncio.run(generate(url, args.events, args.sessions))
        asyncio.run(build_rollups(url))
        copies = asyncio.run(as_before_0008(url, args.duplicates))
        print(f"  {copies:,} events stored a second time; migrating")
        t0 = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
        subprocess.run([sys.executable, "-m", "app", "db", "migrate"], check=True,
                       env={**env, "DEVLOG_DATABASE_URL": url}, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0

        async def check() -> tuple[int, int]:
            conn = await asyncpg.connect(url)
            try:
                row = await conn.fetchrow("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM agent_event")
                return row["n"], row["ids"]
            finally:
                await conn.close()

        n, ids = asyncio.run(check())
        assert n == ids == args.events, (n, ids)
        print(f"migration 0008: {elapsed:.1f} s for {args.events + copies:,} rows "
              f"({copies:,} duplicates merged), {args.events / elapsed:,.0f} events/s")


if __name__ == "__main__":
    main()
