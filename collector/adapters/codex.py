"""OpenAI Codex CLI: ``~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl`` (``CODEX_HOME``).

One ``{timestamp, type, payload}`` record per line. Codex writes most things twice, once as the
model's item (``response_item``) and once as a UI event (``event_msg``); each is counted once:

- prompts come from ``event_msg/user_message`` (the text the human typed). ``response_item``
  messages with role user also carry the injected environment context and instructions, so they
  are never prompts;
- assistant text and reasoning come from the model's items (``response_item`` ``message`` with
  role assistant, ``reasoning`` summaries); ``event_msg`` ``agent_message`` / ``agent_reasoning``
  repeat them and are ignored. A reasoning item without readable text (encrypted only) is no event;
- tool calls and results come from ``response_item`` (``function_call``, ``custom_tool_call``,
  ``local_shell_call``, ``web_search_call`` and their outputs), paired by ``call_id``.
  ``exec_command_end`` / ``patch_apply_end`` only lend their exit code to a result still pending;
- ``turn_context`` updates the model and cwd and emits nothing; ``task_complete`` is a ``system``
  event with the turn's duration; ``turn_aborted`` is a ``decision`` (cancelled);
- the top-level ``compacted`` record is the ``compaction`` (``event_msg/context_compacted`` is not).

Token counting. ``token_count`` repeats the cumulative ``total_token_usage`` whenever only the
rate limits change; a record whose total equals the previous one is not an LLM call. Otherwise
the call's usage is ``last_token_usage`` (else the growth of the total). ``cached_input_tokens``
is part of ``input_tokens`` and ``reasoning_output_tokens`` part of ``output_tokens``, so on the
wire ``input = input_tokens - cached_input_tokens``, ``cacheRead = cached_input_tokens``,
``output = output_tokens``, ``reasoning = reasoning_output_tokens``. Rate-limit snapshots are a
``system`` event when they change.

Ids are ``event_id("codex", <session>, <byte offset of the line>, <kind>)``: a rollout is
append-only, so the offset names the record. Session id: ``session_meta.id``, else the uuid at the
end of the file name, else the file stem. A sub-agent spawn (``collab_agent_spawn_end``) becomes a
``subagent_start`` event of the child thread whose ``parentSession`` is this session; a child's own
rollout names its parent in ``session_meta.source.subagent.thread_spawn.parent_thread_id``.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal

import msgspec

from collector.adapters.base import (
    Adapter,
    Context,
    LineParser,
    SkipLine,
    clip,
    clip_payload,
    event_id,
    parse_ts,
)
from collector.wire import Event, ProjectRef, Tokens

AGENT = "codex"
MAX_PENDING = 512  # tool calls awaiting their output, kept in the state
MAX_COUNT = 10**12  # the wire's largest token count

SHELL_TOOLS = {"exec_command", "shell", "local_shell", "shell_command", "container.exec",
               "write_stdin"}
TOOL_CATEGORIES = {
    "apply_patch": "file_edit",
    "spawn_agent": "subagent",
    "update_plan": "todo",
    "read_file": "file_read", "view_image": "file_read",
    "list_dir": "search", "grep_files": "search",
    "web_search": "web",
}
USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens",
              "total_tokens")

_decoder = msgspec.json.Decoder()
_rate_encoder = msgspec.json.Encoder(order="sorted")
_UUID_TAIL = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12})$")
_PATCH_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: (.+)$")
_EXIT_LINE = re.compile(r"^(?:Exit code:|Process exited with code) (-?\d+)\s*$")
_MS = timedelta(milliseconds=1)


def tool_category(name: str | None) -> str:
    if not name:
        return "other"
    if name in SHELL_TOOLS:
        return "shell"
    if name in TOOL_CATEGORIES:
        return TOOL_CATEGORIES[name]
    if "__" in name or name.startswith("mcp"):
        return "mcp"
    return "other"


class PendingCall(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A tool call whose output has not been read yet."""

    ts: datetime
    name: str | None = None
    category: str | None = None
    file_path: str | None = None
    added: int | None = None
    removed: int | None = None
    exit_code: int | None = None  # from exec_command_end / patch_apply_end, when seen first


class State(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything the parser knows after a line; stored with the file's cursor."""

    session: str | None = None  # set by the first session_meta
    parent: str | None = None  # the spawning thread, for a sub-agent's rollout
    cwd: str | None = None
    meta_cwd: str | None = None  # the folder the git facts below describe
    remote: str | None = None
    branch: str | None = None
    commit: str | None = None
    version: str | None = None
    provider: str | None = None
    model: str | None = None
    total: dict[str, int] | None = None  # last total_token_usage seen
    rate: str | None = None  # canonical form of the last rate-limit snapshot
    turn_start: datetime | None = None
    calls: dict[str, PendingCall] = {}


class Codex(Adapter):
    name: ClassVar[str] = AGENT
    shape: ClassVar[Literal["lines", "document"]] = "lines"

    def roots(self, env: Mapping[str, str], home: Path) -> list[Path]:
        codex_home = env.get("CODEX_HOME")
        base = Path(codex_home).expanduser() if codex_home else home / ".codex"
        return [base / "sessions"]

    def matches(self, path: Path) -> bool:
        if path.suffix != ".jsonl":
            return False
        return path.name.startswith("rollout-") or "sessions" in path.parts[:-1]

    def parser(self, path: Path, ctx: Context, state: bytes | None) -> CodexParser:
        return CodexParser(path, ctx, state)


class CodexParser(LineParser):
    def __init__(self, path: Path, ctx: Context, state: bytes | None = None) -> None:
        super().__init__(path, ctx, state)
        self.fallback_session = session_from_name(path)
        self.state = State()
        if state:
            try:
                self.state = msgspec.msgpack.decode(state, type=State)
            except msgspec.DecodeError:
                pass  # a state from an incompatible version: start over
        self._projects: dict[str, ProjectRef | None] = {}

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.state)

    @property
    def session(self) -> str:
        return self.state.session or self.fallback_session

    def feed(self, line: bytes, offset: int) -> list[Event]:
        try:
            rec = _decoder.decode(line)
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:
            raise SkipLine(f"malformed JSON: {exc}") from None
        if not isinstance(rec, dict):
            raise SkipLine("not a JSON object")
        ts = parse_ts(rec.get("timestamp"))
        if ts is None:
            raise SkipLine("no timestamp")
        try:
            ts = ts.astimezone(UTC)
        except (OverflowError, ValueError):
            raise SkipLine("timestamp out of range") from None
        payload = rec.get("payload")
        if not isinstance(payload, dict):
            payload = {}
        kind = rec.get("type")
        if kind == "session_meta":
            return self._session_meta(ts, offset, payload)
        if kind == "turn_context":
            self._turn_context(payload)
            return []
        if kind == "response_item":
            return self._response_item(ts, offset, payload)
        if kind == "event_msg":
            return self._event_msg(ts, offset, payload)
        if kind == "compacted":
            text = _str(payload.get("message"))
            return [self._event("compaction", ts, offset, content=clip(text))]
        return []

    # --- records -------------------------------------------------------------------------------

    def _session_meta(self, ts: datetime, offset: int, p: dict[str, Any]) -> list[Event]:
        st = self.state
        if st.session is not None:
            return []  # a resumed or copied history: the file's first session_meta names it
        st.session = _key(p.get("id")) or self.fallback_session
        st.cwd = st.meta_cwd = _text(p.get("cwd"), 4096)
        git = p.get("git") if isinstance(p.get("git"), dict) else {}
        st.remote = _text(git.get("repository_url"), 1024)
        st.branch = _text(git.get("branch"), 255)
        st.commit = _text(git.get("commit_hash"), 64)
        st.version = _text(p.get("cli_version"), 64)
        st.provider = _text(p.get("model_provider"), 64)
        st.model = _text(p.get("model"), 128) or st.model
        source = p.get("source")
        if isinstance(source, dict):
            sub = source.get("subagent")
            spawn = sub.get("thread_spawn") if isinstance(sub, dict) else None
            if isinstance(spawn, dict):
                parent = _key(spawn.get("parent_thread_id"))
                st.parent = parent if parent != st.session else None
        meta = {k: v for k, v in p.items() if k not in ("base_instructions", "instructions")}
        return [self._event("session_start", ts, offset, provider=st.provider,
                            payload=clip_payload(meta))]

    def _turn_context(self, p: dict[str, Any]) -> None:
        st = self.state
        st.model = _text(p.get("model"), 128) or st.model
        st.cwd = _text(p.get("cwd"), 4096) or st.cwd

    def _response_item(self, ts: datetime, offset: int, p: dict[str, Any]) -> list[Event]:
        item = p.get("type")
        if item == "message":
            if p.get("role") != "assistant":
                return []  # user items repeat user_message or are injected context
            text = _content_text(p.get("content"))
            if not text:
                return []
            return [self._event("assistant_message", ts, offset, content=clip(text),
                                payload=_extras(p, ("type", "role", "content")))]
        if item == "reasoning":
            text = _content_text(p.get("summary")) or _content_text(p.get("content"))
            if not text:
                return []
            return [self._event("reasoning", ts, offset, content=clip(text),
                                payload=_extras(p, ("type", "summary", "content",
                                                    "encrypted_content")))]
        if item == "function_call":
            raw = p.get("arguments")
            args: Any = raw
            if isinstance(raw, str):
                try:
                    args = _decoder.decode(raw)
                except (msgspec.DecodeError, ValueError, RecursionError):
                    args = {"arguments": raw}
            return self._tool_call(ts, offset, p.get("name"), p.get("call_id"), args)
        if item == "custom_tool_call":
            text = p.get("input")
            args = {"input": text} if isinstance(text, str) else text
            return self._tool_call(ts, offset, p.get("name"), p.get("call_id"), args)
        if item == "local_shell_call":
            action = p.get("action")
            return self._tool_call(ts, offset, "local_shell", p.get("call_id") or p.get("id"),
                                   action if isinstance(action, dict) else {})
        if item == "web_search_call":
            action = p.get("action")
            return [self._event("tool_call", ts, offset, tool_name="web_search",
                                tool_category="web", tool_call_id=_text(p.get("id"), 255),
                                payload=clip_payload(action))]
        if item in ("function_call_output", "custom_tool_call_output"):
            return self._tool_result(ts, offset, p)
        return []

    def _event_msg(self, ts: datetime, offset: int, p: dict[str, Any]) -> list[Event]:
        st = self.state
        msg = p.get("type")
        if msg == "user_message":
            text = _str(p.get("message"))
            return [self._event("user_prompt", ts, offset, content=clip(text),
                                payload=_extras(p, ("type", "message")))]
        if msg == "token_count":
            return self._token_count(ts, offset, p)
        if msg == "task_started":
            st.turn_start = ts
            return []
        if msg == "task_complete":
            duration = _count(p.get("duration_ms"))
            if duration is None and st.turn_start is not None and ts >= st.turn_start:
                duration = (ts - st.turn_start) // _MS
            st.turn_start = None
            return [self._event("system", ts, offset, content="turn complete",
                                duration_ms=duration,
                                payload=_extras(p, ("last_agent_message",)))]
        if msg == "turn_aborted":
            st.turn_start = None
            return [self._event("decision", ts, offset, status="cancelled",
                                content=_text(p.get("reason"), 255) or "turn aborted",
                                payload=clip_payload(p))]
        if msg in ("error", "stream_error"):
            text = _str(p.get("message")) or msg
            return [self._event("error", ts, offset, error=clip(text),
                                payload=_extras(p, ("message",)))]
        if msg == "collab_agent_spawn_end":
            child = _key(p.get("new_thread_id"))
            if child == self.session:
                child = None
            return [self._event("subagent_start", ts, offset,
                                session=child, parent=self.session if child else None,
                                content=_text(p.get("new_agent_role"), 255),
                                tool_call_id=_text(p.get("call_id"), 255),
                                payload=clip_payload(p))]
        if msg in ("exec_command_end", "patch_apply_end"):
            call = st.calls.get(p.get("call_id")) if isinstance(p.get("call_id"), str) else None
            if call is not None:
                if msg == "exec_command_end":
                    code = p.get("exit_code")
                    call.exit_code = code if _is_int(code) else call.exit_code
                elif isinstance(p.get("success"), bool):
                    call.exit_code = 0 if p["success"] else 1
            return []
        return []

    def _token_count(self, ts: datetime, offset: int, p: dict[str, Any]) -> list[Event]:
        st = self.state
        out: list[Event] = []
        info = p.get("info")
        if isinstance(info, dict):
            total = _usage(info.get("total_token_usage"))
            last = _usage(info.get("last_token_usage"))
            usage: dict[str, int] | None = None
            if total is not None and total == st.total:
                usage = None  # repeated for a rate-limit update: not a new call
            elif last is not None:
                usage = last
            elif total is not None:
                prev = st.total or {}
                usage = {k: max(0, v - prev.get(k, 0)) for k, v in total.items()}
            if total is not None:
                st.total = total
            if usage and any(usage[k] for k in USAGE_KEYS[:4]):
                cached = usage["cached_input_tokens"]
                tokens = Tokens(input=max(0, usage["input_tokens"] - cached), cache_read=cached,
                                output=usage["output_tokens"],
                                reasoning=usage["reasoning_output_tokens"])
                out.append(self._event("llm_call", ts, offset, tokens=tokens,
                                       model=_text(info.get("model"), 128) or st.model,
                                       provider=st.provider, payload=clip_payload(info)))
        limits = p.get("rate_limits")
        if isinstance(limits, dict) and limits:
            key = _rate_key(limits)
            if key != st.rate:
                st.rate = key
                out.append(self._event("system", ts, offset, content=rate_summary(limits),
                                       payload=clip_payload(limits), suffix="rate_limits"))
        return out

    # --- tools ---------------------------------------------------------------------------------

    def _tool_call(self, ts: datetime, offset: int, name: Any, call_id: Any,
                   args: Any) -> list[Event]:
        st = self.state
        name = _text(name, 255)
        call_id = _text(call_id, 255)
        category = tool_category(name)
        command = None
        patch: str | None = None
        if isinstance(args, dict):
            command = command_of(args.get("cmd", args.get("command")))
            if name == "apply_patch":
                patch = _str(args.get("input")) or _str(args.get("patch"))
        elif isinstance(args, str) and name == "apply_patch":
            patch = args
        if patch is None and command and "*** Begin Patch" in command:
            patch, category = command, "file_edit"  # apply_patch run through the shell
        files, added, removed = patch_stats(patch) if patch else ([], None, None)
        file_path = _text(files[0], 4096) if files else None
        if isinstance(args, dict) and file_path is None and category in ("file_read", "search"):
            file_path = _text(args.get("path") or args.get("file_path"), 4096)
        payload = dict(args, files=files) if files and isinstance(args, dict) else args
        if call_id is not None:
            st.calls[call_id] = PendingCall(ts=ts, name=name, category=category,
                                            file_path=file_path, added=added, removed=removed)
            while len(st.calls) > MAX_PENDING:
                del st.calls[next(iter(st.calls))]
        return [self._event("tool_call", ts, offset, tool_name=name, tool_category=category,
                            tool_call_id=call_id, command=clip(command), file_path=file_path,
                            payload=clip_payload(payload))]

    def _tool_result(self, ts: datetime, offset: int, p: dict[str, Any]) -> list[Event]:
        call_id = _text(p.get("call_id"), 255)
        call = self.state.calls.pop(call_id, None) if call_id is not None else None
        text, exit_code, meta, failed = read_output(p.get("output"))
        if exit_code is None and call is not None:
            exit_code = call.exit_code
        if failed or (exit_code is not None and exit_code != 0):
            status = "error"
        elif text is not None and _aborted(text):
            status = "cancelled"
        else:
            status = "ok"
        duration = None
        if call is not None and ts >= call.ts:
            duration = (ts - call.ts) // _MS
        edited = status == "ok" and call is not None
        return [self._event(
            "tool_result", ts, offset, tool_call_id=call_id, status=status,
            tool_name=call.name if call else _text(p.get("name"), 255),
            tool_category=call.category if call else None,
            file_path=call.file_path if call else None,
            lines_added=call.added if edited else None,
            lines_removed=call.removed if edited else None,
            duration_ms=duration, content=clip(text),
            error=f"exit code {exit_code}" if status == "error" and exit_code else None,
            payload=clip_payload(meta))]

    # --- events --------------------------------------------------------------------------------

    def _project(self) -> ProjectRef | None:
        st = self.state
        cwd = st.cwd
        if cwd is None:
            return None
        if cwd not in self._projects:
            self._projects[cwd] = self.ctx.project_of(cwd)
        ref = self._projects[cwd]
        if cwd != st.meta_cwd or not (st.remote or st.branch or st.commit):
            return ref
        base = ref if ref is not None else ProjectRef(path=cwd)
        return msgspec.structs.replace(base, remote=st.remote or base.remote,
                                       branch=st.branch or base.branch,
                                       commit=st.commit or base.commit)

    def _event(self, kind: str, ts: datetime, offset: int, *, suffix: str | None = None,
               session: str | None = None, parent: str | None = None, **fields: Any) -> Event:
        st = self.state
        fields.setdefault("model", st.model)
        return Event(
            id=event_id(AGENT, self.session, offset, suffix or kind),
            kind=kind,  # type: ignore[arg-type]
            ts=ts, agent=AGENT, session=session or self.session,
            parent_session=parent if session else st.parent, machine=self.ctx.machine,
            project=self._project(), workspace=st.cwd, seq=offset, agent_version=st.version,
            **fields)


# --- helpers -----------------------------------------------------------------------------------


def session_from_name(path: PurePath) -> str:
    """The rollout's uuid (``rollout-<ts>-<uuid>.jsonl``), else the file's stem."""
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.stem
    found = _UUID_TAIL.search(stem)
    return (found.group(1) if found else stem)[:255] or "unknown"


def command_of(value: Any) -> str | None:
    """A shell command from ``cmd``/``command``: a string, or an argv (``bash -lc X`` -> ``X``)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if (len(value) == 3 and PurePath(value[0]).name in ("bash", "sh", "zsh")
                and value[1] in ("-lc", "-c")):
            return value[2]
        return shlex.join(value)
    return None


def patch_stats(text: str) -> tuple[list[str], int | None, int | None]:
    """Files named by an apply_patch envelope and the lines it adds and removes."""
    if "*** Begin Patch" not in text:
        return [], None, None
    files: list[str] = []
    added = removed = 0
    inside = False
    for line in text.splitlines():
        if line.startswith("*** Begin Patch"):
            inside = True
        elif line.startswith("*** End Patch"):
            inside = False
        elif inside:
            found = _PATCH_FILE.match(line)
            if found:
                files.append(found.group(1).strip())
            elif line.startswith("***"):
                continue  # "*** Move to:", "*** End of File"
            elif line.startswith("+"):
                added += 1
            elif line.startswith("-"):
                removed += 1
    return files, added, removed


def read_output(output: Any) -> tuple[str | None, int | None, Any, bool]:
    """(text, exit code, metadata, failed) of a tool output.

    Codex writes a plain string, a list of content items, or (older versions, apply_patch) a
    JSON string ``{"output": …, "metadata": {"exit_code": …}}``; shell outputs start with
    ``Exit code: N`` or ``Process exited with code N`` before ``Output:``.
    """
    failed = False
    if isinstance(output, dict):  # {"content": …, "success": …} in some versions
        failed = output.get("success") is False
        output = output.get("content")
    text: str | None = None
    if isinstance(output, str):
        text = output
    elif isinstance(output, list):
        text = _content_text(output)
    if text is None:
        return None, None, None, failed
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}") and '"metadata"' in stripped:
        try:
            obj = _decoder.decode(stripped)
        except (msgspec.DecodeError, ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            meta = obj["metadata"]
            code = meta.get("exit_code")
            inner = obj.get("output")
            return (inner if isinstance(inner, str) else text, code if _is_int(code) else None,
                    meta, failed)
    for head in text.split("\n", 8)[:8]:
        if head.strip() == "Output:":
            break
        found = _EXIT_LINE.match(head.strip())
        if found:
            code = int(found.group(1))
            return text, code, {"exit_code": code}, failed
    return text, None, None, failed


def rate_summary(limits: dict[str, Any]) -> str:
    parts = []
    for name in ("primary", "secondary"):
        window = limits.get(name)
        if not isinstance(window, dict):
            continue
        used = window.get("used_percent")
        if not isinstance(used, (int, float)) or isinstance(used, bool):
            continue
        part = f"{name} {used:g}% used"
        minutes = window.get("window_minutes")
        if _is_int(minutes) and minutes > 0:
            part += f" ({_span(minutes)} window)"
        parts.append(part)
    return "rate limits: " + ", ".join(parts) if parts else "rate limits"


def _span(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _rate_key(limits: dict[str, Any]) -> str:
    """The snapshot without its countdowns (``resets_in_seconds`` changes on every record)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "resets_in_seconds"}
        return value
    try:
        return _rate_encoder.encode(strip(limits)).decode()
    except (TypeError, ValueError, OverflowError):
        return repr(limits)


def _usage(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {k: _count(value.get(k)) or 0 for k in USAGE_KEYS}


def _count(value: Any) -> int | None:
    """A non-negative count within the wire's range, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value < 0:
        return None
    return int(min(value, MAX_COUNT))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def _aborted(text: str) -> bool:
    stripped = text.strip()
    return stripped == "aborted" or stripped.endswith("aborted by user")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _key(value: Any) -> str | None:
    text = _text(value, 255)
    return text if text and text.strip() else None


def _content_text(content: Any) -> str | None:
    """Text of a content list (``input_text``/``output_text``/``summary_text`` parts) or string."""
    if isinstance(content, str):
        return content or None
    if not isinstance(content, list):
        return None
    parts = [c["text"] for c in content
             if isinstance(c, dict) and isinstance(c.get("text"), str) and c["text"]]
    return "\n\n".join(parts) or None


def _extras(payload: dict[str, Any], drop: tuple[str, ...]) -> Any:
    """The record's remaining fields (the text went to ``content``), or None when empty."""
    rest = {k: v for k, v in payload.items()
            if k not in drop and k != "type" and v not in (None, "", [], {})}
    return clip_payload(rest) if rest else None
