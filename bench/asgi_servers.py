"""Which ASGI server should `devlog serve` embed? uvicorn[standard] vs granian, same app, same run.

Each server runs the real app (`app.asgi:create_app`, 1 worker) against a scratch PostgreSQL
database; `wrk` (Debian package `wrk`) drives it from the other core. Measured: time from
process start to a ready /readyz, and requests/s with latency for GET /healthz and a GraphQL
health query. Prints a table, with granian's figures as ratios of uvicorn's.

    ./dev bench asgi_servers [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_port, scratch_database, table, wait_ready  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.body = '{"query":"%s"}'
wrk.headers["Content-Type"] = "application/json"
"""
QUERIES = {
    "GraphQL {__typename}": "{ __typename }",  # GraphQL overhead, no database
    "GraphQL health": "{ health { version database storage } }",  # two catalogue queries
}


def server_cmd(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--factory", "app.asgi:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--no-access-log", "--workers", "1"]
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "app.asgi:create_app"]


def wrk(url: str, seconds: int, connections: int, script: str | None) -> tuple[float, str, str]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)
    return rps, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    scripts = {}
    for label, query in QUERIES.items():
        scripts[label] = Path(tempfile.mkstemp(suffix=".lua")[1])
        scripts[label].write_text(LUA % query)
    results: dict[str, dict[str, object]] = {}
    with scratch_database() as url:
        env = dict(os.environ, DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning")
        for kind in ("uvicorn", "granian"):
            port = free_port()
            proc = subprocess.Popen(server_cmd(kind, port), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                startup = wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
                base = f"http://127.0.0.1:{port}"
                wrk(f"{base}/healthz", 2, args.connections, None)  # warm-up
                results[kind] = {"startup": startup,
                                 "GET /healthz": wrk(f"{base}/healthz", args.seconds,
                                                     args.connections, None)}
                for label, script in scripts.items():
                    results[kind][label] = wrk(f"{base}/graphql", args.seconds,
                                               args.connections, str(script))
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    base = results["uvicorn"]
    rows = [["start → ready", *(f"{results[k]['startup']:.2f}s" for k in results)]]
    for label in ["GET /healthz", *QUERIES]:
        row = [f"{label} req/s (p50/p99)"]
        for kind, r in results.items():
            rps, p50, p99 = r[label]
            row.append(f"{rps:.0f} = {rps / base[label][0]:.2f}x ({p50}/{p99})")
        rows.append(row)
    print(f"1 worker each, wrk -t1 -c{args.connections} -d{args.seconds}s, {os.cpu_count()} cores;"
          " ratios are against uvicorn in this run")
    print(table(["", *results], rows))


if __name__ == "__main__":
    main()
