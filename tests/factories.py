"""Build wire events for tests (plain dicts, as a collector would send them)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

BASE_TS = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def event(session: str, n: int, kind: str = "assistant_message", *, agent: str = "claude-code",
          machine: str = "test-machine", ts: datetime | None = None, **fields: Any) -> dict:
    """A deterministic event: the same (session, n, kind) always gets the same id."""
    when = ts or BASE_TS + timedelta(seconds=n)
    body: dict[str, Any] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{agent}/{session}/{n}/{kind}")),
        "kind": kind, "ts": when.isoformat(), "agent": agent, "session": session,
        "machine": machine, "seq": n,
    }
    body.update(fields)
    return body


def conversation(session: str, *, turns: int = 3, project: dict | None = None,
                 workspace: str | None = "/home/dev/acme", **common: Any) -> list[dict]:
    """session_start, then per turn: prompt, llm_call, tool_call + tool_result (Edit), message."""
    project = project if project is not None else {
        "remote": "git@github.com:acme/app.git", "path": "/home/dev/acme", "branch": "main"}
    ctx = {"project": project, "workspace": workspace, **common}
    out = [event(session, 0, "session_start", agentVersion="2.0.64", **ctx)]
    n = 1
    for turn in range(turns):
        out.append(event(session, n, "user_prompt", content=f"turn {turn}: please fix the bug", **ctx))
        out.append(event(session, n + 1, "llm_call", model="claude-sonnet-4-5", durationMs=1200,
                         tokens={"input": 10, "output": 100, "cacheRead": 1000, "cacheWrite": 50},
                         stopReason="tool_use", **ctx))
        out.append(event(session, n + 2, "tool_call", toolName="Edit", toolCategory="file_edit",
                         toolCallId=f"t{turn}", filePath=f"/home/dev/acme/f{turn % 2}.py",
                         payload={"input": {"old": "a", "new": "b"}}, **ctx))
        out.append(event(session, n + 3, "tool_result", toolName="Edit", toolCallId=f"t{turn}",
                         status="error" if turn == 1 else "ok", linesAdded=2, linesRemoved=1,
                         **ctx))
        out.append(event(session, n + 4, "assistant_message", content=f"done {turn}", **ctx))
        n += 5
    return out


MACHINE = {"key": "test-machine", "hostname": "devbox", "username": "dev", "os": "linux",
           "arch": "x86_64", "kind": "local"}

INGEST = """mutation Ingest($batch: EventBatch!) {
  ingestEvents(batch: $batch) { accepted duplicates rejected { index id reason } }
}"""
