"""`devlog keys create|list|revoke` against a real database: shown once, stored hashed."""

from __future__ import annotations

import hashlib
import subprocess

import asyncpg

from tests.helpers import devlog_cmd, subprocess_env


def _keys(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(devlog_cmd("keys", *args), capture_output=True, text=True, timeout=120,
                          env=subprocess_env(DEVLOG_DATABASE_URL=url), check=False)


async def test_create_list_revoke(fresh_database) -> None:
    url = await fresh_database()
    created = _keys(url, "create", "ci-runner")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("dlk_") and "not shown again" in created.stderr
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchrow("SELECT prefix, secret_hash FROM api_key WHERE name = 'ci-runner'")
        dump = str([dict(r) for r in await conn.fetch("SELECT * FROM api_key")])
    finally:
        await conn.close()
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump
    listed = _keys(url, "list")
    assert "ci-runner" in listed.stdout and secret not in listed.stdout
    assert _keys(url, "revoke", "ci-runner").stdout.startswith(f"revoked {stored['prefix']}")
    again = _keys(url, "revoke", "ci-runner")
    assert again.returncode == 1 and "no active key" in again.stderr
