"""Ingest throughput: end-to-end through HTTP GraphQL vs raw asyncpg COPY of the same rows.

Generates realistic events (the kinds and payload sizes of real transcripts: prompts, LLM calls
with usage, tool calls with inputs, tool results with outputs up to a few KB, assistant text,
reasoning), then, in one run and each into its own fresh, migrated database:

1. raw COPY: asyncpg ``copy_records_to_table`` of the very rows ingest would write, straight into
   ``agent_event`` (no dedup, no rollups, no HTTP) — the ceiling;
2. service: ``app.ingest.submit.submit`` called in-process (validation, upserts, COPY +
   ON CONFLICT, rollups, NOTIFY; no HTTP/GraphQL);
3. end-to-end: a real ``devlog serve`` process, ``--clients`` concurrent aiohttp clients posting
   ``ingestEvents`` batches (bodies encoded before the clock starts).

Prints events/s for each, the ratios to raw COPY, and the CPU each used per event (the app —
this process for the first two, the server for the third — and the database backends; on a
shared machine a steadier figure than events/s) (``--repeat N``: N rounds of the three
paths in turn, medians, and each round's ratios — on a shared machine, load that drifts during a
run then weighs on every path alike). ``--event-keys``: the databases get the
TimescaleDB layout of event ids (``agent_event`` keyed by (id, ts), ids unique through the
``event_key`` table, which ingest fills first) on plain PostgreSQL — what that table costs.

    ./dev bench ingest [--events 100000] [--batch 2000] [--clients 4] [--repeat 1] [--event-keys]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import msgspec  # noqa: E402

from bench._common import free_port, scratch_database, table, wait_ready  # noqa: E402

AGENTS = ("claude-code", "codex", "copilot")
TOOLS = (("Read", "file_read"), ("Edit", "file_edit"), ("Bash", "shell"), ("Grep", "search"),
         ("Write", "file_write"), ("WebFetch", "web"))
WORDS = ("the function returns a value when the cache is warm and otherwise falls back to "
         "reading the file from disk then parses it line by line").split()


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def generate(n: int, seed: int = 7) -> list[dict]:
    """n events over n/50 sessions; deterministic for a seed."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    events: list[dict] = []
    sessions = max(1, n // 50)
    per = n // sessions
    for s in range(sessions):
        agent = AGENTS[s % len(AGENTS)]
        native = f"bench-{s}"
        machine = f"machine-{s % 5}"
        project = {"remote": f"git@github.com:bench/repo{s % 20}.git", "branch": "main"}
        ws = f"/home/dev/repo{s % 20}"
        t = start + timedelta(minutes=s)
        for i in range(per):
            t += timedelta(milliseconds=rng.randint(50, 5000))
            roll = rng.random()
            base = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{native}/{i}")), "ts": t.isoformat(),
                    "agent": agent, "session": native, "machine": machine, "seq": i,
                    "project": project, "workspace": ws}
            if i == 0 or roll < 0.08:
                base |= {"kind": "user_prompt", "content": text(rng, rng.randint(10, 80))}
            elif roll < 0.35:
                base |= {"kind": "llm_call", "model": "claude-sonnet-4-5", "durationMs": rng.randint(300, 9000),
                         "stopReason": "tool_use",
                         "tokens": {"input": rng.randint(1, 50), "output": rng.randint(20, 2000),
                                    "cacheRead": rng.randint(1000, 90000), "cacheWrite": rng.randint(0, 5000)},
                         "payload": {"usage": {"input_tokens": 3}, "id": f"msg_{i}"}}
            elif roll < 0.6:
                name, cat = rng.choice(TOOLS)
                base |= {"kind": "tool_call", "toolName": name, "toolCategory": cat, "toolCallId": f"t{i}",
                         "filePath": f"{ws}/src/mod{rng.randint(0, 30)}.py",
                         "payload": {"input": {"file_path": f"{ws}/x.py", "old_string": text(rng, 20),
                                               "new_string": text(rng, 25)}}}
            elif roll < 0.85:
                base |= {"kind": "tool_result", "toolCallId": f"t{i - 1}", "status": "ok" if roll < 0.83 else "error",
                         "durationMs": rng.randint(5, 3000), "content": text(rng, rng.randint(20, 600))}
            elif roll < 0.95:
                base |= {"kind": "assistant_message", "content": text(rng, rng.randint(10, 150))}
            else:
                base |= {"kind": "reasoning", "content": text(rng, rng.randint(30, 300))}
            events.append(base)
    return events


class CpuMeter:
    """CPU seconds spent during a run by the app (this process, or a server's) and by the
    database backends of one database (PostgreSQL on this host: read from /proc). Unlike
    events/s, barely moved by other work on a shared machine."""

    _TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, url: str, pid: int | None = None) -> None:
        self.url, self.pid = url, pid
        self._app = 0.0
        self._db: dict[int, float] = {}

    @classmethod
    def _of(cls, pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / cls._TICK

    async def _backends(self) -> dict[int, float]:
        conn = await asyncpg.connect(self.url)
        try:
            pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                    " AND pid <> pg_backend_pid()")
        finally:
            await conn.close()
        return {r["pid"]: self._of(r["pid"]) for r in pids}

    def _app_now(self) -> float:
        return self._of(self.pid) if self.pid else time.process_time()

    async def start(self) -> None:
        self._db = await self._backends()
        self._app = self._app_now()

    async def stop(self, n: int) -> tuple[float, float]:
        """(app, database) CPU µs per event since start."""
        app = self._app_now() - self._app
        db = sum(t - self._db.get(pid, 0.0) for pid, t in (await self._backends()).items())
        return app / n * 1e6, db / n * 1e6


MACHINES = [{"key": f"machine-{i}", "hostname": f"host{i}", "os": "linux"} for i in range(5)]
MUTATION = ("mutation($batch: EventBatch!) { ingestEvents(batch: $batch) "
            "{ accepted duplicates rejected { index reason } } }")


async def migrate(url: str, event_keys: bool = False) -> None:
    from app.db import engine
    from app.db.migrate import migrate as run

    engine.configure(url)
    await run()
    await engine.close_pool()
    if event_keys:
        from migrations.devlog_0008_event_id_unique import EVENT_KEY_DDL

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ALTER TABLE agent_event DROP CONSTRAINT agent_event_pkey;"
                               "ALTER TABLE agent_event ADD PRIMARY KEY (id, ts);" + EVENT_KEY_DDL)
        finally:
            await conn.close()


async def raw_copy(url: str, events: list[dict], batch: int, clients: int) -> float:
    from app.ingest.batch import validate
    from app.ingest.writer import EVENT_COLUMNS, event_records

    chunks = []  # per batch, the very records ingest COPies (sorted by id within the batch)
    for i in range(0, len(events), batch):
        _, prepared, _, _ = validate({"events": events[i:i + batch]}, max_events=batch,
                                     max_event_bytes=1 << 20)
        chunks.append(event_records(prepared)[0])
    n = sum(len(c) for c in chunks)
    pool = await asyncpg.create_pool(url, min_size=clients, max_size=clients)
    queue: asyncio.Queue = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)

    async def worker() -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            async with pool.acquire() as conn:
                await conn.copy_records_to_table("agent_event", records=chunk, columns=EVENT_COLUMNS)

    cpu = CpuMeter(url)
    await cpu.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    used = await cpu.stop(n)
    await pool.close()
    return n / elapsed, used


async def service(url: str, events: list[dict], batch: int, clients: int) -> float:
    from app.db import engine
    from app.ingest.submit import submit

    engine.configure(url)
    await engine.open_pool(clients, clients)
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    queue: asyncio.Queue = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while not queue.empty():
            chunk = queue.get_nowait()
            result = await submit({"events": chunk, "machines": MACHINES}, None,
                                  max_events=batch, max_event_bytes=1 << 20)
            accepted += result.accepted

    cpu = CpuMeter(url)
    await cpu.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    used = await cpu.stop(len(events))
    await engine.close_pool()
    assert accepted == len(events), accepted
    return len(events) / elapsed, used


async def end_to_end(base: str, events: list[dict], batch: int, clients: int,
                     cpu: CpuMeter) -> tuple[float, tuple[float, float]]:
    bodies = [msgspec.json.encode({"query": MUTATION, "variables": {
        "batch": {"events": events[i:i + batch], "machines": MACHINES}}})
        for i in range(0, len(events), batch)]
    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(f"{base}/graphql", data=body,
                                    headers={"content-type": "application/json"}) as resp:
                data = msgspec.json.decode(await resp.read())
                accepted += data["data"]["ingestEvents"]["accepted"]

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await cpu.start()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
        used = await cpu.stop(len(events))
    assert accepted == len(events), accepted
    return len(events) / elapsed, used


Run = tuple[float, tuple[float, float]]  # events/s, (app, database) CPU µs per event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the three paths, in turn; medians are printed")
    parser.add_argument("--event-keys", action="store_true",
                        help="the TimescaleDB layout of event ids (event_key table)")
    args = parser.parse_args()
    events = generate(args.events)
    size = len(msgspec.json.encode(events))
    # The generated events stay alive for the whole run: move them out of the collector's sight,
    # or every full collection in the in-process paths re-scans them (a cost a server does not
    # have).
    gc.collect()
    gc.freeze()
    print(f"{len(events)} events, {size / len(events):.0f} bytes/event on the wire, "
          f"batches of {args.batch}, {args.clients} concurrent clients, {os.cpu_count()} cores"
          + (", event_key layout" if args.event_keys else ""))
    paths = {"raw COPY into agent_event": _raw, "ingest service (in-process)": _service,
             "end-to-end HTTP GraphQL": _end_to_end}
    results: dict[str, list[Run]] = {name: [] for name in paths}
    for _ in range(args.repeat):  # round-robin: load that drifts hits every path alike
        for name, run in paths.items():
            results[name].append(run(events, args))
    raw = [rate for rate, _ in results["raw COPY into agent_event"]]
    median = statistics.median
    rows = []
    for name, runs in results.items():
        rates = [rate for rate, _ in runs]
        app, db = median(c[0] for _, c in runs), median(c[1] for _, c in runs)
        rows.append([name, f"{median(rates):,.0f}", f"{median(x / r for x, r in zip(rates, raw)):.2f}",
                     f"{app:.1f} + {db:.1f}"]
                    + ([" ".join(f"{x / r:.2f}" for x, r in zip(rates, raw))] if args.repeat > 1 else []))
    print(table(["path", "events/s", "ratio to raw COPY", "CPU µs/event (app + database)",
                 *(["each round's ratio"] if args.repeat > 1 else [])], rows))


def _raw(events: list[dict], args: argparse.Namespace) -> Run:
    with scratch_database() as url:
        asyncio.run(migrate(url, args.event_keys))
        return asyncio.run(raw_copy(url, events, args.batch, args.clients))


def _service(events: list[dict], args: argparse.Namespace) -> Run:
    with scratch_database() as url:
        asyncio.run(migrate(url, args.event_keys))
        return asyncio.run(service(url, events, args.batch, args.clients))


def _end_to_end(events: list[dict], args: argparse.Namespace) -> Run:
    with scratch_database() as url:
        if args.event_keys:
            asyncio.run(migrate(url, True))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
        env.update(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning",
                   DEVLOG_DB_POOL_MAX=str(max(10, args.clients * 2)))
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
            return asyncio.run(end_to_end(f"http://127.0.0.1:{port}", events, args.batch,
                                          args.clients, CpuMeter(url, proc.pid)))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
