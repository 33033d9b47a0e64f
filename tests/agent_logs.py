"""Generated agent logs for collector tests and benchmarks (bench/collector_*.py import it).

``claude_session`` writes a Claude Code transcript the way Claude Code does: one line per
content block, each repeating the message's usage (the last line has the final one), tool
results as user records. Each turn yields, by construction: 1 prompt, 1 reasoning, 2 assistant
messages, 1 tool call, 1 tool result and 2 LLM calls; the first turn also starts the session.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "agent-logs"

PER_TURN = {"user_prompt": 1, "reasoning": 1, "assistant_message": 2, "tool_call": 1,
            "tool_result": 1, "llm_call": 2}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def claude_turn(session: str, turn: int, start: datetime, *, cwd: str = "/work/demo",
                text_bytes: int = 200, rng: random.Random | None = None) -> list[bytes]:
    rng = rng or random.Random(hash((session, turn)))
    base = {"sessionId": session, "cwd": cwd, "version": "2.0.64", "gitBranch": "main",
            "isSidechain": False, "userType": "external"}
    t = start
    filler = ("lorem ipsum dolor sit amet " * (text_bytes // 27 + 1))[:text_bytes]
    lines = []

    def rec(**fields) -> None:
        nonlocal t
        t += timedelta(milliseconds=rng.randint(50, 900))
        # compact, as Claude Code writes it (ccusage, for one, misses spaced JSON)
        lines.append(json.dumps({**base, **fields, "timestamp": _ts(t)}, separators=(",", ":")).encode())

    rec(type="user", uuid=f"{session}-u{turn}", message={"role": "user", "content": f"turn {turn}: {filler}"})
    usage = {"input_tokens": 3 + turn, "cache_read_input_tokens": 1000 * turn,
             "cache_creation_input_tokens": 50, "output_tokens": 1}
    msg = {"id": f"msg_{session}_{turn}_a", "model": "claude-sonnet-4-5-20250929", "type": "message",
           "role": "assistant", "stop_reason": None}
    tool_id = f"toolu_{session}_{turn}"
    blocks = [{"type": "thinking", "thinking": f"think {filler}"},
              {"type": "text", "text": f"answer {filler}"},
              {"type": "tool_use", "id": tool_id, "name": "Bash",
               "input": {"command": f"echo {turn}", "description": "echo"}}]
    for i, block in enumerate(blocks):
        final = i == len(blocks) - 1
        rec(type="assistant", uuid=f"{session}-a{turn}-{i}", requestId=f"req_{session}_{turn}_a",
            message={**msg, "content": [block],
                     "usage": {**usage, "output_tokens": 100 + turn if final else 1}})
    rec(type="user", uuid=f"{session}-r{turn}",
        message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id,
                                              "content": str(turn), "is_error": False}]})
    rec(type="assistant", uuid=f"{session}-b{turn}", requestId=f"req_{session}_{turn}_b",
        message={"id": f"msg_{session}_{turn}_b", "model": "claude-sonnet-4-5-20250929",
                 "type": "message", "role": "assistant", "stop_reason": "end_turn",
                 "content": [{"type": "text", "text": "done"}],
                 "usage": {"input_tokens": 2, "output_tokens": 7, "cache_read_input_tokens": 10}})
    return lines


def claude_session(session: str, turns: int, *, start: datetime | None = None,
                   cwd: str = "/work/demo", text_bytes: int = 200) -> bytes:
    t = start or datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(session)
    out = []
    for turn in range(turns):
        out.extend(claude_turn(session, turn, t + timedelta(minutes=turn), cwd=cwd,
                               text_bytes=text_bytes, rng=rng))
    return b"".join(line + b"\n" for line in out)


def expected_claude(sessions: int, turns: int) -> dict[str, int]:
    """Events by kind of ``sessions`` generated sessions of ``turns`` turns each."""
    kinds = {k: v * turns * sessions for k, v in PER_TURN.items()}
    kinds["session_start"] = sessions
    return kinds


def make_home(root: Path) -> Path:
    """A home with Claude Code, Codex and Copilot logs where the agents keep them."""
    home = root / "home"
    claude = home / ".claude" / "projects"
    shutil.copytree(FIXTURES / "claude-code" / "codemie-code" / "-tmp-private", claude / "-tmp-private")
    shutil.copytree(FIXTURES / "claude-code" / "codemie-code" / "incremental-subagents",
                    claude / "-incremental")
    codex = home / ".codex" / "sessions" / "2026" / "05" / "12"
    codex.mkdir(parents=True)
    for name in ("turn-1.jsonl", "turn-2.jsonl", "turn-spawn-skill.jsonl"):
        shutil.copy(FIXTURES / "codex" / "codemie-code" / name, codex / f"rollout-2026-05-12T10-00-00-{name}")
    storage = home / ".config" / "Code" / "User" / "workspaceStorage"
    shutil.copytree(FIXTURES / "copilot" / "synthetic" / "workspaceStorage", storage)
    (home / "state").mkdir()
    return home
