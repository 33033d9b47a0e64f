"""``EventBatch``: a whole batch as one JSON value.

GraphQL input objects are coerced field by field by graphql-core, which for thousands of events
costs more than the database write. The batch is therefore one scalar, decoded and validated by
msgspec (``collector.wire``), event by event, so one bad event is rejected alone. The GraphQL
controller decodes an ingest request's body straight into typed events when they are all valid
(``app.ingest.batch.decode_request``); the scalar then receives that ``DecodedBatch``.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry

from app.ingest.batch import DecodedBatch
from graphql import ValueNode, value_from_ast_untyped

DESCRIPTION = """A batch of agent events, as JSON (validated by devlog, event by event).

{
  "machines": [ { "key": String!, "hostname": String, "username": String, "os": String,
                  "osVersion": String, "arch": String,
                  "kind": "local" | "ssh" | "ci" | "codespaces" | "container" } ],
  "events": [ {
    "id": UUID! (deterministic: the same record always gets the same id),
    "kind": "session_start" | "session_end" | "user_prompt" | "llm_call" | "assistant_message"
          | "reasoning" | "tool_call" | "tool_result" | "subagent_start" | "error"
          | "compaction" | "decision" | "system",
    "ts": ISO-8601 with time zone!, "agent": String! (e.g. "claude-code"),
    "session": String! (the agent's session id), "parentSession": String (sub-agents),
    "machine": String! (machine key), "workspace": String (folder),
    "project": { "remote": git remote URL, "path": folder, "name", "branch", "commit" },
    "seq": Int (order within the source), "agentVersion", "model", "provider",
    "tokens": { "input", "output", "cacheRead", "cacheWrite", "cacheWrite5m", "cacheWrite1h",
                "reasoning", "estimated": Boolean } (input excludes cache reads and writes),
    "costUsd": Float (as reported by the agent), "durationMs", "stopReason",
    "toolName", "toolCategory": "file_read" | "file_write" | "file_edit" | "shell" | "search"
          | "web" | "mcp" | "subagent" | "todo" | "other",
    "toolCallId", "status": "ok" | "error" | "cancelled" | "rejected",
    "filePath", "linesAdded", "linesRemoved", "command", "content", "error",
    "payload": any JSON (the agent's raw record),
    "revision": Int (0 ≤ revision < 2^31, default 0: per id the highest revision is kept;
                a higher one replaces the stored event, kind, agent and session excepted)
  } ]
}

At most DEVLOG_MAX_BATCH_EVENTS events (default 5000); each event at most DEVLOG_MAX_EVENT_BYTES."""


def _parse_value(value: Any) -> Any:
    if isinstance(value, DecodedBatch):  # decoded with the request body (app.asgi), all valid
        return value
    if not isinstance(value, dict) or not isinstance(value.get("events"), list):
        raise ValueError('EventBatch must be a JSON object with an "events" list')
    return value


def _parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return _parse_value(value_from_ast_untyped(node, variables))


EventBatch = NewType("EventBatch", object)

EventBatchDefinition = strawberry.scalar(
    name="EventBatch",
    description=DESCRIPTION,
    serialize=lambda v: v,
    parse_value=_parse_value,
    parse_literal=_parse_literal,
)
