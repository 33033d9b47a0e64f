"""`devlog prices recompute` at scale: every LLM call of a 10 M-event database re-priced (its
events, its sessions' costs and the rollups of the whole range), then a second run in which
nothing changes. Baseline in the same run: one UPDATE that touches the same calls without
pricing anything (``SET cost_source = cost_source``), the floor for rewriting those rows.

    ./dev bench prices [--events 10000000] [--sessions 50000] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import table  # noqa: E402
from bench.query import add_database_args, events_database  # noqa: E402


async def run(url: str) -> list[list[str]]:
    from app.db import engine
    from app.services import recompute

    engine.configure(url)
    await engine.open_pool(1, 4)
    try:
        async with engine.pool().acquire() as conn:
            calls = await conn.fetchval("SELECT count(*) FROM agent_event WHERE kind = 'llm_call'")
            # Start from "never priced", so the first recompute rewrites every call.
            await conn.execute("UPDATE agent_event SET cost_usd = NULL, cost_source = NULL"
                               " WHERE kind = 'llm_call'")
            await conn.execute("VACUUM ANALYZE agent_event")
            t0 = time.perf_counter()
            await conn.execute("UPDATE agent_event SET cost_source = cost_source WHERE kind = 'llm_call'")
            baseline = time.perf_counter() - t0
            await conn.execute("VACUUM agent_event")
        t0 = time.perf_counter()
        first = await recompute.recompute()
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = await recompute.recompute()
        nothing = time.perf_counter() - t0
    finally:
        await engine.close_pool()
    return [
        ["UPDATE of every LLM call, no pricing (baseline)", f"{calls:,}", f"{baseline:.1f} s", "1.00"],
        [f"recompute: {first.events:,} calls, {first.sessions:,} sessions, rollups", f"{calls:,}",
         f"{full:.1f} s", f"{full / baseline:.2f}"],
        [f"recompute again ({again.events:,} calls changed)", f"{calls:,}", f"{nothing:.1f} s",
         f"{nothing / baseline:.2f}"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_args(parser, "use a database generated before by bench/query.py (kept; its "
                              "costs are rewritten)")
    args = parser.parse_args()
    with events_database(args) as url:
        rows = asyncio.run(run(url))
    print(table(["prices recompute", "LLM calls", "time", "× baseline"], rows))


if __name__ == "__main__":
    main()
