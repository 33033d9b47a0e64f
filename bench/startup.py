"""Start-up time of `devlog serve` on the embedded PostgreSQL, cold and warm.

cold: empty data directory (initdb, first start, CREATE DATABASE, migrations);
warm: the same directory again (cluster exists, stopped; migrations up to date).
Measured from process start until GET /readyz answers 200; each case repeated --runs times.

    ./dev bench startup [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_port, table, wait_ready  # noqa: E402


def start_once(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOG_") and k != "DATABASE_URL"}
    env.update(DEVLOG_DATA_DIR=str(data_dir), DEVLOG_CONFIG=str(data_dir / "none.toml"),
               DEVLOG_LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.runs):
        data_dir = Path(tempfile.mkdtemp(prefix="devlog-bench-startup-"))
        data_dir.chmod(0o755)
        try:
            cold.append(start_once(data_dir))
            warm.append(start_once(data_dir))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    rows = [[name, f"{statistics.median(v):.2f}s", f"{min(v):.2f}s", f"{max(v):.2f}s", len(v)]
            for name, v in (("cold (initdb + migrate)", cold), ("warm (existing cluster)", warm))]
    print(table(["devlog serve → /readyz 200", "median", "min", "max", "runs"], rows))


if __name__ == "__main__":
    main()
