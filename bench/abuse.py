"""Abuse: a small query's p50/p95 while one client sends the worst allowed operations in a loop.

The worst operations are the heaviest the limits still allow; the target is a p95 of at most 3×
the same small query on the idle server, measured in the same run.

Each abusive operation is checked to pass the limits first (its own duration is printed). The
abusive client runs in a process of its own (its JSON parsing does not steal the measuring
client's interpreter) and sends one operation after another until the measurement is done
(at most ``--seconds`` per operation); the measuring client sends the small query ``--runs``
times, one after another. Idle figures are taken before and after the abuse.

The database is the one ``bench/query.py`` generates (sessions over 90 days with prompts,
LLM calls and tool calls; rollups built), smaller by default.

    ./dev bench abuse [--events 2000000] [--sessions 20000] [--runs 200] [--seconds 120]
                      [--database URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import socket
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import free_port, table, wait_ready  # noqa: E402
from bench.query import add_database_args, ago, events_database  # noqa: E402

SMALL = "{ sessions(first: 10) { edges { node { id title status lastEventAt eventCount } } } }"


def _aliases(n: int, template: str) -> str:
    return "{ " + " ".join(template.format(i=i) for i in range(n)) + " }"


def candidates() -> list[tuple[str, str, dict]]:
    """The heaviest operations within the default limits (10 root fields, cost 100,000, texts of
    200 characters), each stressing something else: aggregates, text search, a statement per
    object, big answers."""
    rng = random.Random(7)
    texts = {f"t{i}": "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(200))
             for i in range(10)}
    since30, since90, since7 = ago(30), ago(90), ago(7)
    return [
        ("10 usage series, 30 d by day, agent × model",
         _aliases(10, 'u{i}: usage(range: {{since: "%s"}}, bucket: DAY, groupBy: [AGENT, MODEL]) '
                      '{{ points {{ start agent model events llmCalls tokens {{ input output }} costUsd }} }}'
                  % since30), {}),
        ("usage 7 d by hour, agent × model × tool",
         '{ usage(range: {since: "%s"}, bucket: HOUR, groupBy: [AGENT, MODEL, TOOL]) '
         '{ points { start events } } }' % since7, {}),
        ("5 toolStats + 5 modelStats, 90 d",
         "{ " + " ".join(f'a{i}: toolStats(range: {{since: "{since90}"}}, topFiles: 50) '
                         "{ tool calls duration { p95Ms } topFiles { path touches } }" for i in range(5))
         + " " + " ".join(f'b{i}: modelStats(range: {{since: "{since90}"}}) '
                          "{ model calls latency { p95Ms } }" for i in range(5)) + " }", {}),
        ("10 text searches of 200 characters",
         "query(" + ", ".join(f"${k}: String" for k in texts) + ") { "
         + " ".join(f"s{i}: sessions(first: 50, filter: {{text: $t{i}}}) {{ edges {{ node {{ id title }} }} }}"
                    for i in range(10)) + " }", texts),
        ("90 sessions × 20 events each (a statement per session)",
         "{ sessions(first: 90) { edges { node { id events(first: 20) "
         "{ edges { node { id kind ts } } } } } } }", {}),
        ("930 events with their content (2 pages)",
         "{ e0: events(first: 500) { edges { node { id ts kind toolName status content } } } "
         "e1: events(first: 430) { edges { node { id ts kind toolName status content } } } }", {}),
    ]


def _client(base: str) -> httpx.Client:
    # TCP_NODELAY: httpx writes headers and body separately (see bench/query.py)
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=base, timeout=300, transport=transport)


def _abuse(base: str, query: str, variables: dict, stop, seconds: float, out) -> None:  # noqa: ANN001
    """The abusive client: one request after another until told to stop (or time is up)."""
    durations = []
    deadline = time.monotonic() + seconds
    with _client(base) as c:
        while not stop.is_set() and time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = c.post("/graphql", json={"query": query, "variables": variables})
            r.read()
            durations.append(time.perf_counter() - t0)
    out.put(durations)


def small_query(c: httpx.Client, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        body = c.post("/graphql", json={"query": SMALL}).json()
        times.append((time.perf_counter() - t0) * 1000)
        assert "errors" not in body, body
    return times


def p50_p95(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_args(parser, "measure a database generated before (kept, not dropped) instead")
    parser.set_defaults(events=2_000_000, sessions=20_000)
    parser.add_argument("--runs", type=int, default=200, help="small queries per measurement")
    parser.add_argument("--seconds", type=float, default=120, help="longest abuse per operation")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    with events_database(args) as url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_")}
        env.update(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning")
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rows = []
        try:
            wait_ready(f"{base}/readyz", proc=proc)
            with _client(base) as c:
                small_query(c, 20)  # warm-up
                idle_p50, idle_p95 = p50_p95(small_query(c, args.runs))
                rows.append(["idle server", "", "", f"{idle_p50:.1f} ms", f"{idle_p95:.1f} ms", "1.00"])
                for label, query, variables in candidates():
                    t0 = time.perf_counter()
                    body = c.post("/graphql", json={"query": query, "variables": variables}).json()
                    alone = time.perf_counter() - t0
                    assert "errors" not in body, (label, body.get("errors"))
                    stop, out = ctx.Event(), ctx.Queue()
                    abuser = ctx.Process(target=_abuse, args=(base, query, variables, stop, args.seconds, out))
                    abuser.start()
                    time.sleep(max(1.0, 2 * alone))  # the abuse is under way
                    p50, p95 = p50_p95(small_query(c, args.runs))
                    stop.set()
                    durations = out.get(timeout=args.seconds + 300)
                    abuser.join(60)
                    rows.append([label, f"{alone * 1000:.0f} ms",
                                 f"{len(durations)} × {statistics.median(durations) * 1000:.0f} ms",
                                 f"{p50:.1f} ms", f"{p95:.1f} ms", f"{p95 / idle_p95:.2f}"])
                    print(f"  {label}: small query p95 {p95:.1f} ms ({p95 / idle_p95:.2f}× idle)", flush=True)
                after_p50, after_p95 = p50_p95(small_query(c, args.runs))
                rows.append(["idle server, after", "", "", f"{after_p50:.1f} ms", f"{after_p95:.1f} ms",
                             f"{after_p95 / idle_p95:.2f}"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    print()
    print(table(["abusive client's operation (in a loop)", "alone", "sent during the measure",
                 "small p50", "small p95", "p95 / idle"], rows))
    worst = max(float(r[5]) for r in rows[1:-1])
    print(f"\nworst p95 ratio {worst:.2f} (target ≤ 3.00: {'met' if worst <= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
