"""Helpers shared by tests (import from tests.helpers)."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO = Path(__file__).resolve().parent.parent


def traversable_tmpdir(prefix: str) -> Path:
    """A temp dir every account can traverse (the embedded cluster runs as `devlog` under root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None,
              headers: dict | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def devlog_cmd(*args: str) -> list[str]:
    """Run the CLI the way the console script does, with this interpreter."""
    return [sys.executable, "-m", "app", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DEVLOG_") and k != "DEVLOG_CONFIG") and k != "DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def chromium_or_skip() -> str:
    """Path of Debian's Chromium. Missing: skip locally, fail in CI (the test command installs it)."""
    import shutil

    import pytest

    path = os.environ.get("DEVLOG_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (./dev test installs it with apt-get)")
        pytest.skip("chromium is not installed (./dev test installs it with apt-get)")
    return path


def screenshot_path(name: str) -> Path:
    """Where browser tests save screenshots (tests/artifacts/screenshots, not committed)."""
    folder = REPO / "tests" / "artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
