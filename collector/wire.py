"""The ingest contract: what a collector sends in ``ingestEvents(batch: EventBatch!)``.

This module imports only msgspec (the server imports it; the collector builds it). JSON field
names are camelCase. A batch is::

    {
      "machines": [{"key": "…", "hostname": "…", "username": "…", "os": "linux", …}],
      "events": [{
        "id": "<uuid, deterministic>", "kind": "llm_call", "ts": "2026-11-25T10:00:00.123Z",
        "agent": "claude-code", "session": "<native session id>", "parentSession": null,
        "machine": "<machine key>", "project": {"remote": "git@github.com:acme/app.git",
        "path": "/home/me/app", "branch": "main", "commit": "abc123"}, "workspace": "/home/me/app",
        "model": "claude-sonnet-4-5", "tokens": {"input": 10, "output": 200, "cacheRead": 5000}, …
      }]
    }

Each event is validated on its own: an invalid event is rejected with its index and reason, the
valid ones of the same batch are kept.

An event id is stored once. ``revision`` (default 0, omitted when 0) lets a collector send an event
again when it learnt more of it — an LLM call whose final usage was written after the call was
first sent: for one id the server keeps the version with the highest revision (its tokens, cost,
duration, stop reason and payload), adjusting totals by the difference; a version with a revision
not above the stored one is a duplicate. Collectors choose revisions that grow with what they
know (Claude Code: the call's total tokens, so the most complete of several copies wins).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

EventKind = Literal[
    "session_start",  # a session began (agent version, cwd, git facts)
    "session_end",  # a session ended
    "user_prompt",  # the human's message (content)
    "llm_call",  # one model request/response: model, tokens, duration, stop reason, cost
    "assistant_message",  # text the agent showed (content)
    "reasoning",  # thinking / reasoning text (content)
    "tool_call",  # the agent invoked a tool: name, category, input (payload), file path, command
    "tool_result",  # the tool's outcome: status, output (content), duration, lines changed
    "subagent_start",  # a sub-agent session was spawned (parentSession links the child)
    "error",  # an API or agent error (error)
    "compaction",  # context compaction / summary
    "decision",  # a human decision: accept / reject / interrupt (status, content)
    "system",  # other agent bookkeeping worth keeping (turn durations, rate limits, …)
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]

ToolCategory = Literal[
    "file_read", "file_write", "file_edit", "shell", "search", "web", "mcp", "subagent",
    "todo", "other",
]
Status = Literal["ok", "error", "cancelled", "rejected"]

# Bounds the server enforces on decode (the rest — timestamps, payload depth and numbers, NUL
# and lone surrogates — in app/ingest/bounds.py; ARCHITECTURE.md has the whole table). Each one
# fits its column and keeps the sums built from it (session totals, rollups) in theirs.
MAX_INT32 = 2**31 - 1  # integer columns (lines added / removed)
MAX_INT64 = 2**63 - 1  # bigint columns (seq)
MAX_COUNT = 10**12  # token counts and durations (ms): millions of them still sum in a bigint
MAX_COST_USD = 1e10  # numeric(18, 8) holds less than 10^10

Short = Annotated[str, msgspec.Meta(max_length=255)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class Tokens(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Token buckets of one LLM call. ``input`` excludes cache reads and writes."""

    input: Count = 0
    output: Count = 0
    cache_read: Count = 0
    cache_write: Count = 0  # total cache creation (= 5m + 1h when those are known)
    cache_write_5m: Count | None = None
    cache_write_1h: Count | None = None
    reasoning: Count = 0  # part of output for providers that report it separately
    estimated: bool = False  # true when the agent reported no counts and these are estimates


class ProjectRef(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Where the session worked: the git remote (preferred identity) and/or the folder."""

    remote: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    path: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    name: Short | None = None
    branch: Short | None = None
    commit: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class MachineInfo(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    key: Key
    hostname: Short = ""
    username: Short | None = None
    os: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    os_version: Short | None = None
    arch: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    kind: Literal["local", "ssh", "ci", "codespaces", "container"] = "local"


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    id: uuid.UUID
    kind: EventKind
    ts: Annotated[datetime, msgspec.Meta(tz=True)]
    agent: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    session: Key  # the agent's native session id
    machine: Key
    parent_session: Key | None = None
    project: ProjectRef | None = None
    workspace: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] = 0  # order within the source
    agent_version: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    model: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    provider: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    tokens: Tokens | None = None
    cost_usd: Annotated[float, msgspec.Meta(ge=0, lt=MAX_COST_USD)] | None = None  # as reported
    duration_ms: Count | None = None
    stop_reason: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    tool_name: Short | None = None
    tool_category: ToolCategory | None = None
    tool_call_id: Short | None = None
    status: Status | None = None
    file_path: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    lines_added: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT32)] | None = None
    lines_removed: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT32)] | None = None
    command: str | None = None
    content: str | None = None
    error: str | None = None
    payload: Any = None  # the agent's raw record, kept for the timeline
    revision: Annotated[int, msgspec.Meta(ge=0, lt=2**31)] = 0  # see the module doc


class Batch(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """What a collector sends. ``events`` are decoded one by one (see module doc)."""

    events: list[Any]
    machines: list[MachineInfo] = []


class Rejection(msgspec.Struct, kw_only=True):
    index: int
    id: str | None
    reason: str


class IngestResult(msgspec.Struct, kw_only=True):
    accepted: int  # new events stored
    duplicates: int  # already stored with the same or a higher revision: nothing changed
    rejected: list[Rejection]
    revised: int = 0  # stored events replaced by a higher revision


def event_from_obj(obj: Any) -> Event:
    """Validate one decoded JSON event (raises msgspec.ValidationError with a path)."""
    return msgspec.convert(obj, Event)
