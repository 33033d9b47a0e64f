"""Live delivery latency: from an agent appending a line to its log until the event is committed
on the server (`devlog collect` tailing, `devlog serve` on a scratch database). Target: 250 ms.

Each sample appends one Claude Code prompt line, then polls the server's database for the
event's deterministic id every 2 ms. Also measures a whole turn (7 lines, with an LLM call that
closes on the stop reason of its last line).

    ./dev bench collector_latency [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench._common import free_port, scratch_database, stop, table, wait_ready  # noqa: E402
from collector.adapters.base import event_id  # noqa: E402
from tests.agent_logs import claude_turn  # noqa: E402

DEVLOG = [sys.executable, "-m", "app"]


async def wait_for(conn: asyncpg.Connection, eid: uuid.UUID) -> None:
    while not await conn.fetchval("SELECT 1 FROM agent_event WHERE id = $1", eid):
        await asyncio.sleep(0.002)


async def measure(url: str, log: Path, samples: int) -> tuple[list[float], list[float]]:
    conn = await asyncpg.connect(url)
    prompt_ms, turn_ms = [], []
    try:
        for i in range(samples):
            uid = str(uuid.uuid4())
            rec = {"type": "user", "sessionId": "latency", "uuid": uid, "cwd": "/work/latency",
                   "timestamp": datetime.now(timezone.utc).isoformat(),
                   "message": {"role": "user", "content": f"sample {i}"}}
            t0 = time.perf_counter()
            with log.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            await wait_for(conn, event_id("claude-code", "prompt", uid))
            prompt_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.2)
        for i in range(samples // 2):
            lines = claude_turn("latency-turns", i, datetime.now(timezone.utc))
            t0 = time.perf_counter()
            with log.open("ab") as fh:
                fh.write(b"".join(line + b"\n" for line in lines))
            # the turn's last LLM call (stop_reason end_turn on its only line)
            await wait_for(conn, event_id("claude-code", "llm", f"msg_latency-turns_{i}_b:req_latency-turns_{i}_b"))
            turn_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return prompt_ms, turn_ms


def pct(values: list[float], q: float) -> str:
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(q * len(values)))]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, Python {platform.python_version()}")
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        log = home / ".claude" / "projects" / "-work-latency" / "latency.jsonl"
        log.parent.mkdir(parents=True)
        log.write_text("")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
        server = subprocess.Popen([*DEVLOG, "serve", "--port", str(port)],
                                  env={**env, "DEVLOG_DATABASE_URL": url, "DEVLOG_LOG_LEVEL": "warning"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        collector = None
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc=server)
            collector = subprocess.Popen(
                [*DEVLOG, "collect", "--agent", "claude-code"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**env, "HOME": tmp, "DEVLOG_COLLECTOR_STATE_DIR": str(home / "state"),
                     "DEVLOG_COLLECTOR_SERVER_URL": f"http://127.0.0.1:{port}/graphql"})
            time.sleep(3)  # start-up and the (empty) backfill
            prompt_ms, turn_ms = asyncio.run(measure(url, log, args.samples))
        finally:
            for proc in (collector, server):
                stop(proc, 30)
    print(table(["append → committed on the server", "n", "p50", "p95", "max", "mean"], [
        ["one prompt line", len(prompt_ms), pct(prompt_ms, 0.5), pct(prompt_ms, 0.95),
         f"{max(prompt_ms):.0f} ms", f"{statistics.mean(prompt_ms):.0f} ms"],
        ["a 7-line turn (its last LLM call)", len(turn_ms), pct(turn_ms, 0.5), pct(turn_ms, 0.95),
         f"{max(turn_ms):.0f} ms", f"{statistics.mean(turn_ms):.0f} ms"],
    ]))


if __name__ == "__main__":
    main()
