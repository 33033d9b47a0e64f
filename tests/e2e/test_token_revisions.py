"""Every Claude Code token stored as billed: `devlog collect` against `devlog serve`, with a
message's last line written after the quiet period and after a SIGKILLed collector, and a
sub-agent call found both in its own transcript and in its parent's progress echo.

These need the server to apply revisions (for one event id, the version with the highest
``revision`` wins, session totals adjusted by the difference).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from collector.adapters.base import event_id
from tests.e2e.test_collector import Server, collect, server_db, stop  # noqa: F401 (fixture)

SHOP = Path(__file__).parent.parent / "fixtures" / "agent-logs" / "claude-code" / "devlog" / "-work-shop"
SPLIT_SID = "7d1c2a90-5b6e-4f3a-9c8d-1e2f3a4b5c6d"
A = str(event_id("claude-code", "llm", "msg_01A7fVq2interleave:req_01A7fVq2interleave"))
SUB_FIRST = str(event_id("claude-code", "llm", "msg_02S13e9b7c:req_02S13e9b7c"))
pytestmark = pytest.mark.slow


async def calls(url: str) -> dict[str, int]:
    """Output tokens of each stored LLM call."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, tokens_output FROM agent_event WHERE kind = 'llm_call'")
    except asyncpg.UndefinedTableError:
        return {}
    finally:
        await conn.close()
    return {str(r["id"]): r["tokens_output"] for r in rows}


async def session_output(url: str, native: str) -> int | None:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT tokens_output FROM agent_session WHERE native_id = $1", native)
    finally:
        await conn.close()


async def until(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_last_line_after_the_quiet_period_and_a_killed_collector(server_db: Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    path = home / ".claude" / "projects" / "-work-shop" / f"{SPLIT_SID}.jsonl"
    path.parent.mkdir(parents=True)
    rows = (SHOP / path.name).read_bytes().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(rows) if b'"tool_result"' in line and b"toolu_01ReadA" in line)
    path.write_bytes(b"".join(rows[:cut + 1]))
    proc = collect(home, server_db.port)  # live, quiet period 0.5 s
    try:
        # the file went quiet: the call was closed and stored with the usage known so far
        assert await until(lambda: _output_is(server_db.url, A, 64)), "the call was not stored"
        proc.send_signal(signal.SIGKILL)  # the collector dies before the message's last line
        proc.communicate(timeout=30)
        with path.open("ab") as fh:
            fh.write(b"".join(rows[cut + 1:]))
        proc = collect(home, server_db.port)
        assert await until(lambda: _output_is(server_db.url, A, 212)), await calls(server_db.url)
        # the file's other call closes after its own quiet period
        assert await until(lambda: _count_is(server_db.url, 2)), await calls(server_db.url)
    finally:
        stop(proc)
    stored = await calls(server_db.url)
    assert len(stored) == 2 and stored[A] == 212
    assert await session_output(server_db.url, SPLIT_SID) == 212 + 187  # adjusted by +148


async def _count_is(url: str, n: int) -> bool:
    return len(await calls(url)) == n


async def _output_is(url: str, call: str, output: int) -> bool:
    return (await calls(url)).get(call) == output


async def test_a_subagent_call_in_its_file_and_its_parents_echo_is_stored_once_as_billed(
        server_db: Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    shutil.copytree(SHOP, home / ".claude" / "projects" / "-work-shop")
    proc = collect(home, server_db.port, "backfill")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    stored = await calls(server_db.url)
    assert len(stored) == 12  # each call once, whichever files hold it
    assert stored[SUB_FIRST] == 21  # the echo's final count, not the sub-agent file's 1
    child = "3e9b7c1d-2a4f-4e6b-8c0d-9f1e2d3c4b5a/a1b2c3d4e5f6a7b8c"
    assert await session_output(server_db.url, child) == 21 + 31
    # the sub-agent whose file is gone: its calls, in its own session under its parent
    orphan = "c5a80f3e-6d7b-4c9a-b1e2-f3a4b5c6d7e8/a9f8e7d6c5b4a3928"
    assert await session_output(server_db.url, orphan) == 21 + 31
