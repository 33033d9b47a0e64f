"""Live updates under load: ingest throughput and small-query latency with 0, 200 and 500 subscribers.

One run, one scratch database. For each configuration — no subscribers, then ``--counts`` SSE
streams, then ``--counts`` GraphQL WebSocket subscriptions — a fresh ``devlog serve`` process
(so one configuration's memory does not hide the next one's):

1. warms up (an ingest round, a few queries);
2. measures its RSS, opens the subscribers from a separate client process (so reading them
   does not slow the measuring clients), measures RSS again once they are idle: memory per idle
   subscriber;
3. throughput: ``--rounds`` times, ingests ``--events`` new events (batches of ``--batch``,
   ``--clients`` concurrent clients) into the sessions the subscribers watch, as fast as it
   can; ingest events/s (median), and when the last live message arrived (no message for 0.5 s
   after it);
4. latency: a steady ingest of ``--rate`` events/s (a batch every 0.1 s) for ``--seconds``,
   the same load in every configuration, while one client sends a small query (the first page
   of sessions) back to back: its p50/p95, and how far the live messages lagged behind;
5. prints it all with the ratios to the no-subscriber runs (one first, one last, pooled: the
   machine's speed drifts; targets: ingest ≥ 0.8×, query p95 ≤ 2×), the server's and the
   subscriber clients' CPU seconds per round, messages delivered and subscriptions closed (a
   closed one fell behind).

What the subscribers watch (a mix of what real pages and clients ask for; 80 sessions exist, the
ingest writes to 40 of them, so about half of the filtered subscribers stay idle):

- SSE: half the overview stream (every batch's feed), a quarter one session page's stream, a
  quarter a sessions list's stream (20 visible rows). Requests say ``Accept-Encoding: gzip`` as
  browsers do.
- WebSocket (one connection each, permessage-deflate as browsers negotiate it): eventAdded of
  one session (40 %), sessionUpdated of one project (20 %), eventAdded of failed tool results
  (10 %), LLM calls of one agent (10 %), sessionUpdated of everything (10 %), eventAdded of one
  session's prompts and messages (8 %), every event unfiltered (2 %).

Loopback only; bounded (``--rounds`` × ``--events`` + ``--rate`` × ``--seconds`` events per
configuration; every wait has a timeout).

    ./dev bench live [--events 2000] [--batch 200] [--clients 2] [--rounds 9] [--rate 500]
                     [--seconds 5] [--counts 200,500] [--kinds sse,ws]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import msgspec  # noqa: E402

from bench._common import free_port, scratch_database, stop, table, wait_ready  # noqa: E402
from bench.ingest import MACHINES, MUTATION, generate  # noqa: E402

SMALL_QUERY = "{ sessions(first: 10) { edges { node { id eventCount } } } }"
DRAIN_QUIET = 0.5  # seconds without a live message: the subscribers have everything
DRAIN_MAX = 120.0  # give up waiting for a drain after this long (reported)
SESSIONS_ALL = 80  # seeded sessions; the rounds write to the first 40
EVENT_FIELDS = "id kind seq ts content toolName status session { nativeId }"
SESSION_FIELDS = "id nativeId eventCount promptCount costUsd lastEventAt"


# ------------------------------------------------------------------------- events


def round_events(n: int, round_no: int, base: datetime) -> list[dict]:
    """n new events in the first n/50 bench sessions (ids and seqs unique to the round)."""
    events = generate(n, seed=round_no)
    shift = base - datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=45 * round_no)
    for e in events:
        e["seq"] += round_no * 100_000
        e["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"live/{e['session']}/{e['seq']}"))
        e["ts"] = (datetime.fromisoformat(e["ts"]) + shift).isoformat()
    return events


async def ingest(base: str, events: list[dict], batch: int, clients: int) -> float:
    """Posts the events; returns the seconds until the last batch was answered."""
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

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    assert accepted == len(events), (accepted, len(events))
    return elapsed


# ------------------------------------------------------------------------- subscribers (child)


def subscriber_specs(kind: str, n: int, sessions: list[dict]) -> list[tuple]:
    """What each of n subscribers watches (deterministic): ("sse", path) or ("ws", query, vars)."""
    active = [s for s in sessions if s["active"]]
    idle = [s for s in sessions if not s["active"]]
    projects = sorted({s["project"] for s in sessions if s["project"]})
    specs: list[tuple] = []
    for i in range(n):
        pick = (active if (i // 4) % 2 == 0 else idle) or active
        one = pick[(i // 8) % len(pick)]["id"]
        if kind == "sse":
            if i % 4 in (0, 1):
                specs.append(("sse", "/live/overview"))
            elif i % 4 == 2:
                specs.append(("sse", f"/live/sessions/{one}"))
            else:
                rows = [s["id"] for s in (active[i % 30:i % 30 + 10] + idle[i % 30:i % 30 + 10])]
                specs.append(("sse", "/live/sessions?ids=" + ",".join(rows)))
            continue
        slot = i % 50
        if slot == 49:
            specs.append(("ws", f"subscription {{ eventAdded {{ {EVENT_FIELDS} }} }}", {}))
        elif slot < 20:
            specs.append(("ws", f"subscription($f: EventFilterInput) {{ eventAdded(filter: $f) {{ {EVENT_FIELDS} }} }}",
                          {"f": {"session": one}}))
        elif slot < 30:
            specs.append(("ws", f"subscription($p: ID) {{ sessionUpdated(filter: {{project: $p}}) {{ {SESSION_FIELDS} }} }}",
                          {"p": projects[i % len(projects)]}))
        elif slot < 35:
            specs.append(("ws", f"subscription {{ eventAdded(filter: {{kinds: [\"tool_result\"], status: \"error\"}}) {{ {EVENT_FIELDS} }} }}", {}))
        elif slot < 40:
            agent = ("claude-code", "codex", "copilot")[i % 3]
            specs.append(("ws", f"subscription($a: [String!]) {{ eventAdded(filter: {{agent: $a, kinds: [\"llm_call\"]}}) {{ {EVENT_FIELDS} }} }}",
                          {"a": [agent]}))
        elif slot < 45:
            specs.append(("ws", f"subscription {{ sessionUpdated {{ {SESSION_FIELDS} }} }}", {}))
        else:
            specs.append(("ws", f"subscription($f: EventFilterInput) {{ eventAdded(filter: $f) {{ {EVENT_FIELDS} }} }}",
                          {"f": {"session": one, "kinds": ["user_prompt", "assistant_message"]}}))
    return specs


class Tally:
    def __init__(self) -> None:
        self.messages = 0
        self.last = 0.0
        self.open = 0
        self.ended = 0
        self.errors: dict[str, int] = {}

    def got(self, count: int = 1) -> None:
        self.messages += count
        self.last = time.monotonic()

    def end(self, why: str) -> None:
        self.ended += 1
        self.errors[why[:120]] = self.errors.get(why[:120], 0) + 1


async def sse_client(http: aiohttp.ClientSession, base: str, path: str, tally: Tally) -> None:
    try:
        async with http.get(base + path, headers={"accept": "text/event-stream",
                                                  "accept-encoding": "gzip"}) as resp:
            if resp.status != 200:
                tally.end(f"HTTP {resp.status}")
                return
            tally.open += 1
            tail = b"\n"  # the stream starts at a line start
            async for chunk in resp.content.iter_any():  # count messages, don't parse them
                data = tail + chunk
                tally.got(data.count(b"\nevent:"))
                tail = data[-6:]  # shorter than the marker: none is counted twice
            tally.end("stream ended")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        tally.end(type(exc).__name__)


async def ws_client(base: str, query: str, variables: dict, tally: Tally) -> None:
    import websockets

    try:
        async with websockets.connect(base.replace("http://", "ws://") + "/graphql",
                                      subprotocols=["graphql-transport-ws"], max_size=None,
                                      open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            if json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "connection_ack":
                tally.end("no connection_ack")
                return
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": query, "variables": variables}}))
            tally.open += 1
            async for raw in ws:  # our server writes compact JSON: count without decoding
                if '"type":"next"' in raw:
                    tally.got()
                elif '"type":"ping"' in raw:
                    await ws.send('{"type":"pong"}')
                elif '"type":"error"' in raw or '"type":"complete"' in raw:
                    tally.end(raw[:200])
                    return
            tally.end("socket closed")
    except Exception as exc:  # noqa: BLE001 - counted and reported
        tally.end(f"{type(exc).__name__}: {exc}")


async def child_main(base: str, specs: list[tuple]) -> None:
    """Opens every subscriber, then answers the parent's commands on stdin: status, quit."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=60)) as http:
        tasks = []
        for i, spec in enumerate(specs):
            if spec[0] == "sse":
                tasks.append(asyncio.create_task(sse_client(http, base, spec[1], tally)))
            else:
                tasks.append(asyncio.create_task(ws_client(base, spec[1], spec[2], tally)))
            if i % 25 == 24:  # no connect storm
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 60
        while tally.open + tally.ended < len(specs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the last subscriptions register with the bus
        print(json.dumps({"ready": tally.open, "ended": tally.ended, "errors": tally.errors}), flush=True)
        while True:
            command = await commands.get()
            if command == "status":
                print(json.dumps({"messages": tally.messages, "last": tally.last, "open": tally.open,
                                  "ended": tally.ended, "errors": tally.errors}), flush=True)
            elif command == "quit":
                break
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Subscribers:
    """The client process holding the subscribers."""

    def __init__(self, base: str, specs: list[tuple]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", base], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(specs) + "\n")
        self.ready = json.loads(self.proc.stdout.readline())

    def status(self) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("status\n")
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            with _suppress():
                assert self.proc.stdin
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# ------------------------------------------------------------------------- measuring


async def query_loop(base: str, stop_when: asyncio.Event, samples: list[float]) -> None:
    body = msgspec.json.encode({"query": SMALL_QUERY})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        while not stop_when.is_set():
            t0 = time.perf_counter()
            async with http.post(f"{base}/graphql", data=body,
                                 headers={"content-type": "application/json"}) as resp:
                data = msgspec.json.decode(await resp.read())
                assert "errors" not in data, data
            samples.append(time.perf_counter() - t0)


async def drained(subs: Subscribers | None, before: dict | None, t0: float, busy_until: float) -> dict:
    """Waits until the subscribers have had no message for DRAIN_QUIET after ``busy_until``
    (bounded by DRAIN_MAX); returns when the last message arrived (seconds after t0)."""
    if subs is None or before is None:
        return {"last_s": busy_until - t0, "drained": True, "messages": 0, "ended": 0}
    while True:
        await asyncio.sleep(0.1)
        status = await asyncio.to_thread(subs.status)
        last = max(status["last"], busy_until)
        now = time.monotonic()
        if now - last >= DRAIN_QUIET or now - t0 > DRAIN_MAX:
            return {"last_s": (last if now - last >= DRAIN_QUIET else now) - t0,
                    "drained": now - last >= DRAIN_QUIET,
                    "messages": status["messages"] - before["messages"],
                    "ended": status["ended"] - before["ended"]}


async def throughput_round(base: str, events: list[dict], args: argparse.Namespace,
                           subs: Subscribers | None) -> dict:
    """Ingest as fast as the clients can; then wait for the subscribers to have everything."""
    before = await asyncio.to_thread(subs.status) if subs else None
    t0 = time.monotonic()
    ingest_s = await ingest(base, events, args.batch, args.clients)
    return {"ingest_s": ingest_s, **await drained(subs, before, t0, t0 + ingest_s)}


async def latency_phase(base: str, events: list[dict], args: argparse.Namespace,
                        subs: Subscribers | None) -> dict:
    """A steady ingest of ``--rate`` events/s (a batch every 0.1 s) for ``--seconds``, while one
    client sends the small query back to back: the same load in every configuration."""
    before = await asyncio.to_thread(subs.status) if subs else None
    per_tick = max(1, args.rate // 10)
    ticks = [events[i:i + per_tick] for i in range(0, len(events), per_tick)]
    done = asyncio.Event()
    samples: list[float] = []
    late = 0
    t0 = time.monotonic()
    queries = asyncio.create_task(query_loop(base, done, samples))
    pending: set[asyncio.Task] = set()
    for n, chunk in enumerate(ticks):
        delay = t0 + n * 0.1 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late += 1
        task = asyncio.create_task(ingest(base, chunk, len(chunk), 1))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    busy_until = time.monotonic()
    result = await drained(subs, before, t0, busy_until)
    done.set()
    await queries
    return {"samples": samples, "ingest_end_s": busy_until - t0, **result}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux: /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def seeded_sessions(base: str) -> list[dict]:
    query = "{ sessions(first: 100) { edges { node { id nativeId project { id } } } } }"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/graphql", json={"query": query}) as resp:
            data = await resp.json()
    out = []
    for edge in data["data"]["sessions"]["edges"]:
        node = edge["node"]
        number = int(node["nativeId"].rsplit("-", 1)[1])
        out.append({"id": node["id"], "active": number < SESSIONS_ALL // 2,
                    "project": (node["project"] or {}).get("id")})
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run_config(url: str, kind: str, count: int, args: argparse.Namespace, round_base: list[int],
               base_time: datetime) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
    env.update(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning", DEVLOG_JOBS="false",
               DEVLOG_DB_POOL_MAX="10")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"devlog-bench-live-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    subs = None
    try:
        wait_ready(f"{base}/readyz", proc=proc)
        if round_base[0] == 0:  # the first server seeds the sessions (all 80 of them)
            asyncio.run(ingest(base, round_events(50 * SESSIONS_ALL, 0, base_time), args.batch, args.clients))
            round_base[0] = 1
        # warm-up, unmeasured: one ingest round, some queries
        asyncio.run(throughput_round(base, round_events(args.events, round_base[0], base_time), args, None))
        round_base[0] += 1
        asyncio.run(latency_phase(base, round_events(args.rate, round_base[0], base_time), args, None))
        round_base[0] += 1
        sessions = asyncio.run(seeded_sessions(base))
        rss_before = rss(proc.pid)
        if count:
            subs = Subscribers(base, subscriber_specs(kind, count, sessions))
            time.sleep(2.0)
        rss_after = rss(proc.pid)
        rounds = []
        profiler = None
        if args.profile:  # py-spy samples the server during the throughput rounds
            out = Path(args.profile) / f"{kind}-{count}.txt"
            profiler = subprocess.Popen(["py-spy", "record", "-p", str(proc.pid), "-r", "100",
                                         "-f", "raw", "-o", str(out)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        cpu0 = cpu_seconds(proc.pid), cpu_seconds(subs.proc.pid) if subs else 0.0
        for _ in range(args.rounds):
            rounds.append(asyncio.run(throughput_round(
                base, round_events(args.events, round_base[0], base_time), args, subs)))
            round_base[0] += 1
        cpu = ((cpu_seconds(proc.pid) - cpu0[0]) / args.rounds,
               (cpu_seconds(subs.proc.pid) - cpu0[1]) / args.rounds if subs else 0.0)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        steady = asyncio.run(latency_phase(
            base, round_events(args.rate * args.seconds, round_base[0], base_time), args, subs))
        round_base[0] += 1
        samples = steady["samples"]
        return {
            "name": f"{count} {kind} subscribers" if count else "no subscribers",
            "open": subs.ready["ready"] if subs else 0,
            "server_cpu": cpu[0], "client_cpu": cpu[1],
            "events_s": args.events / statistics.median(r["ingest_s"] for r in rounds),
            "ingest_times": [r["ingest_s"] for r in rounds], "samples": samples,
            "last_s": statistics.median(r["last_s"] for r in rounds),
            "drained": all(r["drained"] for r in rounds) and steady["drained"],
            "p50": p(samples, 50), "p95": p(samples, 95), "queries": len(samples),
            "steady_lag_s": steady["last_s"] - steady["ingest_end_s"],
            "messages": statistics.median(r["messages"] for r in rounds),
            "steady_messages": steady["messages"],
            "ended": sum(r["ended"] for r in rounds) + steady["ended"],
            "per_sub_kb": (rss_after - rss_before) / count / 1024 if count else None,
            "errors": subs.status()["errors"] if subs else {},
        }
    finally:
        if subs is not None:
            subs.close()
        stop(proc)
        log.close()
        Path(log.name).unlink()


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        specs = [tuple(s) for s in json.loads(sys.stdin.readline())]
        asyncio.run(child_main(sys.argv[2], specs))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per ingest round")
    parser.add_argument("--batch", type=int, default=200, help="events per ingestEvents call")
    parser.add_argument("--clients", type=int, default=2, help="concurrent ingest clients")
    parser.add_argument("--rounds", type=int, default=9, help="measured ingest rounds per configuration")
    parser.add_argument("--rate", type=int, default=500, help="events/s of the steady load")
    parser.add_argument("--seconds", type=int, default=5, help="seconds of the steady load")
    parser.add_argument("--counts", default="200,500", help="subscriber counts, comma-separated")
    parser.add_argument("--profile", metavar="DIR",
                        help="record py-spy profiles of the server (raw format) into DIR")
    parser.add_argument("--kinds", default="sse,ws", help="subscriber kinds: sse, ws")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    kinds = [k for k in args.kinds.split(",") if k]
    print(f"{args.events} events per round in batches of {args.batch} ({args.clients} clients), "
          f"{args.rounds} rounds per configuration, {os.cpu_count()} cores")
    base_time = datetime.now(timezone.utc) - timedelta(days=2)
    results = []
    round_base = [0]
    with scratch_database("devlog_bench_live") as url:
        from bench.ingest import migrate

        asyncio.run(migrate(url))
        results.append(run_config(url, "none", 0, args, round_base, base_time))
        for kind in kinds:
            for count in counts:
                results.append(run_config(url, kind, count, args, round_base, base_time))
                print(f"  done: {results[-1]['name']}", flush=True)
        # the machine's speed drifts (other work on it): measure the baseline again at the end,
        # and compare with both runs pooled
        results.append(run_config(url, "none", 0, args, round_base, base_time))
        results[-1]["name"] = "no subscribers (again)"
    bases = [results[0], results[-1]]
    pooled = [s for b in bases for s in b["samples"]]
    idle = {"events_s": args.events / statistics.median(t for b in bases for t in b["ingest_times"]),
            "p95": p(pooled, 95)}
    print(f"reference (both no-subscriber runs): {idle['events_s']:,.0f} events/s, "
          f"query p95 {idle['p95'] * 1000:.1f} ms")
    rows = []
    for r in results:
        rows.append([
            r["name"], f"{r['open']}", f"{r['events_s']:,.0f}", f"{r['events_s'] / idle['events_s']:.2f}",
            f"{r['last_s']:.2f} s", f"{r['messages']:,.0f}",
            f"{r['server_cpu']:.2f} s", f"{r['client_cpu']:.2f} s",
            f"{r['p50'] * 1000:.1f} ms", f"{r['p95'] * 1000:.1f} ms", f"{r['p95'] / idle['p95']:.2f}",
            f"{r['queries']}", f"{r['steady_lag_s']:.2f} s", f"{r['steady_messages']:,}",
            f"{r['ended']}" + ("" if r["drained"] else " (not drained)"),
            f"{r['per_sub_kb']:.0f} KB" if r["per_sub_kb"] is not None else "",
        ])
    print(f"throughput: {args.rounds} rounds of {args.events} events as fast as {args.clients} clients "
          f"can (median; CPU seconds per round); steady: {args.rate} events/s for {args.seconds} s with the small query "
          "back to back")
    print(table(["configuration", "open", "ingest ev/s", "× none", "last message", "messages",
                 "server CPU", "clients CPU",
                 "query p50", "query p95", "p95 × none", "queries", "steady lag", "messages",
                 "closed", "RSS/subscriber"], rows))
    for r in results:
        if r["errors"]:
            print(f"{r['name']}: subscriptions ended: {r['errors']}")


if __name__ == "__main__":
    main()
