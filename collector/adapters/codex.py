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
    clip_raw,
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

_decoder = msgspec.json.Decoder()  # plain JSON values: payloads that become event payloads
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


# -- the format (msgspec structs: unknown fields are skipped while decoding, never built) --------
#
# A line is decoded once, straight into the record of its ``type``; the structs declare only the
# fields devlog reads, with the types Codex writes (and their variants across versions). A line of
# a type devlog does not know is ignored; one whose fields have other types is skipped. Events that
# carry the record itself as their payload (session_meta, prompts, answers, reasoning text, turn
# ends, errors, spawns) read the line's payload a second time, as plain JSON (:func:`_payload`).

_NULL = msgspec.Raw(b"null")


class ThreadSpawn(msgspec.Struct):
    parent_thread_id: str | None = None


class SubAgent(msgspec.Struct):
    thread_spawn: ThreadSpawn | None = None


class Source(msgspec.Struct):
    subagent: str | SubAgent | None = None  # "review", "compact", … or {"thread_spawn": …}


class Git(msgspec.Struct):
    commit_hash: str | None = None
    branch: str | None = None
    repository_url: str | None = None


class SessionMeta(msgspec.Struct):
    id: str | None = None
    cwd: str | None = None
    cli_version: str | None = None
    model_provider: str | None = None
    model: str | None = None
    git: Git | None = None
    source: str | Source | None = None  # "cli", "vscode", "exec", … or {"subagent": …}


class TurnContext(msgspec.Struct):
    model: str | None = None
    cwd: str | None = None


class Compacted(msgspec.Struct):
    message: str | None = None  # not its replacement_history (the whole new context)


class ResponseItem(msgspec.Struct):
    """A model item: the union of the fields devlog reads from its variants (``type``)."""

    type: str | None = None
    role: str | None = None  # message
    name: str | None = None  # function_call, custom_tool_call (and outputs, in some versions)
    call_id: str | None = None
    id: str | None = None  # local_shell_call (older versions), web_search_call
    arguments: Any = None  # function_call: JSON text (or already an object)
    input: Any = None  # custom_tool_call: free-form text (apply_patch's patch)
    action: Any = None  # local_shell_call, web_search_call
    output: Any = None  # *_output: text, content items or {content, success}
    summary: Any = None  # reasoning: summary_text parts
    # message, reasoning. Raw: the instructions and context of user items are never decoded;
    # reasoning's is read when its summary has no text, an answer's with its whole record.
    content: msgspec.Raw = _NULL


class EventMsg(msgspec.Struct):
    """A UI event: the union of the fields devlog reads from its variants (``type``)."""

    type: str | None = None
    call_id: str | None = None  # exec_command_end, patch_apply_end
    exit_code: int | None = None  # exec_command_end
    success: bool | None = None  # patch_apply_end
    info: msgspec.Raw = _NULL  # token_count: a TokenInfo, kept whole as the llm_call's payload
    rate_limits: msgspec.Raw = _NULL  # token_count: decoded when it differs from the last one


class TokenUsage(msgspec.Struct):
    input_tokens: int | float | None = None
    cached_input_tokens: int | float | None = None
    output_tokens: int | float | None = None
    reasoning_output_tokens: int | float | None = None
    total_tokens: int | float | None = None


class TokenInfo(msgspec.Struct):
    total_token_usage: TokenUsage | None = None
    last_token_usage: TokenUsage | None = None
    model: str | None = None


class Record(msgspec.Struct, tag_field="type"):
    """One line of a rollout, ``{timestamp, type, payload}``: ``type`` picks the payload's
    shape (a line of another type is read as :class:`_Other`)."""

    timestamp: str | int | float | None = None


class SessionMetaRecord(Record, tag="session_meta"):
    payload: SessionMeta | None = None


class TurnContextRecord(Record, tag="turn_context"):
    payload: TurnContext | None = None


class ResponseItemRecord(Record, tag="response_item"):
    payload: ResponseItem | None = None


class EventMsgRecord(Record, tag="event_msg"):
    payload: EventMsg | None = None


class CompactedRecord(Record, tag="compacted"):
    payload: Compacted | None = None


class _Other(msgspec.Struct):
    """A line that is none of the records above: another type, or a payload of another shape."""

    timestamp: Any = None
    type: Any = None


class _Payload(msgspec.Struct):
    """A line's payload as plain JSON, for the events whose payload is the record itself
    (session_meta, prompts, answers, reasoning text, turn ends, errors, spawns)."""

    payload: Any = None


_record_decoder = msgspec.json.Decoder(SessionMetaRecord | TurnContextRecord | ResponseItemRecord
                                       | EventMsgRecord | CompactedRecord)
_other_decoder = msgspec.json.Decoder(_Other)
_payload_decoder = msgspec.json.Decoder(_Payload)
_info_decoder = msgspec.json.Decoder(TokenInfo | None)
_KINDS = ("session_meta", "turn_context", "response_item", "event_msg", "compacted")


# -- parser state ----------------------------------------------------------------------------------


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
            except ValueError:  # msgspec.DecodeError, or UnicodeDecodeError on bad UTF-8
                pass  # a state from an incompatible version: start over
        self._projects: dict[str, ProjectRef | None] = {}
        self._merged: tuple[tuple, ProjectRef | None, ProjectRef] | None = None
        self._rate_seen = _NULL  # the last rate-limit snapshot read, as written

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.state)

    @property
    def session(self) -> str:
        return self.state.session or self.fallback_session

    def feed(self, line: bytes, offset: int) -> list[Event]:
        try:
            rec = _record_decoder.decode(line)
        except msgspec.ValidationError:
            return self._other(line)
        except (ValueError, RecursionError) as exc:
            raise SkipLine(f"malformed JSON: {exc}") from None
        ts = parse_ts(rec.timestamp)
        if ts is None:
            raise SkipLine("no timestamp")
        try:
            ts = ts.astimezone(UTC)
        except (OverflowError, ValueError):
            raise SkipLine("timestamp out of range") from None
        if isinstance(rec, ResponseItemRecord):
            return self._response_item(ts, offset, rec.payload or ResponseItem(), line)
        if isinstance(rec, EventMsgRecord):
            return self._event_msg(ts, offset, rec.payload or EventMsg(), line)
        if isinstance(rec, TurnContextRecord):
            self._turn_context(rec.payload or TurnContext())
            return []
        if isinstance(rec, SessionMetaRecord):
            return self._session_meta(ts, offset, rec.payload or SessionMeta(), line)
        text = rec.payload.message if rec.payload is not None else None  # a CompactedRecord
        return [self._event("compaction", ts, offset, content=clip(text or None))]

    def _other(self, line: bytes) -> list[Event]:
        try:
            rec = _other_decoder.decode(line)
        except (ValueError, RecursionError) as exc:
            raise SkipLine(f"not a JSON object: {exc}") from None
        if rec.type in _KINDS:
            raise SkipLine(f"{rec.type} of an unexpected shape")
        if parse_ts(rec.timestamp) is None:
            raise SkipLine("no timestamp")
        return []  # a record type of a newer version

    # --- records -------------------------------------------------------------------------------

    def _session_meta(self, ts: datetime, offset: int, m: SessionMeta, line: bytes) -> list[Event]:
        st = self.state
        if st.session is not None:
            return []  # a resumed or copied history: the file's first session_meta names it
        st.session = _key(m.id) or self.fallback_session
        st.cwd = st.meta_cwd = _text(m.cwd, 4096)
        git = m.git or Git()
        st.remote = _text(git.repository_url, 1024)
        st.branch = _text(git.branch, 255)
        st.commit = _text(git.commit_hash, 64)
        st.version = _text(m.cli_version, 64)
        st.provider = _text(m.model_provider, 64)
        st.model = _text(m.model, 128) or st.model
        sub = m.source.subagent if isinstance(m.source, Source) else None
        if isinstance(sub, SubAgent) and sub.thread_spawn is not None:
            parent = _key(sub.thread_spawn.parent_thread_id)
            st.parent = parent if parent != st.session else None
        meta = {k: v for k, v in _payload(line).items()
                if k not in ("base_instructions", "instructions")}
        return [self._event("session_start", ts, offset, provider=st.provider,
                            payload=clip_payload(meta))]

    def _turn_context(self, p: TurnContext) -> None:
        st = self.state
        st.model = _text(p.model, 128) or st.model
        st.cwd = _text(p.cwd, 4096) or st.cwd

    def _response_item(self, ts: datetime, offset: int, p: ResponseItem,
                       line: bytes) -> list[Event]:
        item = p.type
        if item == "message":
            if p.role != "assistant":
                return []  # user items repeat user_message or are injected context
            whole = _payload(line)
            text = _content_text(whole.get("content"))
            if not text:
                return []
            return [self._event("assistant_message", ts, offset, content=clip(text),
                                payload=_extras(whole, ("type", "role", "content")))]
        if item == "reasoning":
            text = _content_text(p.summary) or _content_text(_value(p.content))
            if not text:
                return []  # encrypted only
            return [self._event("reasoning", ts, offset, content=clip(text),
                                payload=_extras(_payload(line), ("type", "summary", "content",
                                                                 "encrypted_content")))]
        if item == "function_call":
            raw = p.arguments
            args: Any = raw
            if isinstance(raw, str):
                try:
                    args = _decoder.decode(raw)
                except (ValueError, RecursionError):
                    args = {"arguments": raw}
            return self._tool_call(ts, offset, p.name, p.call_id, args)
        if item == "custom_tool_call":
            text = p.input
            args = {"input": text} if isinstance(text, str) else text
            return self._tool_call(ts, offset, p.name, p.call_id, args)
        if item == "local_shell_call":
            action = p.action
            return self._tool_call(ts, offset, "local_shell", p.call_id or p.id,
                                   action if isinstance(action, dict) else {})
        if item == "web_search_call":
            return [self._event("tool_call", ts, offset, tool_name="web_search",
                                tool_category="web", tool_call_id=_text(p.id, 255),
                                payload=clip_payload(p.action))]
        if item in ("function_call_output", "custom_tool_call_output"):
            return self._tool_result(ts, offset, p)
        return []

    def _event_msg(self, ts: datetime, offset: int, p: EventMsg, line: bytes) -> list[Event]:
        st = self.state
        msg = p.type
        if msg == "token_count":
            return self._token_count(ts, offset, p)
        if msg in ("exec_command_end", "patch_apply_end"):
            call = st.calls.get(p.call_id) if p.call_id is not None else None
            if call is not None:
                if msg == "exec_command_end":
                    call.exit_code = p.exit_code if _is_int(p.exit_code) else call.exit_code
                elif p.success is not None:
                    call.exit_code = 0 if p.success else 1
            return []
        if msg == "task_started":
            st.turn_start = ts
            return []
        if msg not in ("user_message", "task_complete", "turn_aborted", "error", "stream_error",
                       "collab_agent_spawn_end"):
            return []  # agent_message, agent_reasoning repeat response items; others are noise
        whole = _payload(line)  # these events carry the record itself as their payload
        if msg == "user_message":
            text = _str(whole.get("message"))
            return [self._event("user_prompt", ts, offset, content=clip(text),
                                payload=_extras(whole, ("type", "message")))]
        if msg == "task_complete":
            duration = _count(whole.get("duration_ms"))
            if duration is None and st.turn_start is not None and ts >= st.turn_start:
                duration = (ts - st.turn_start) // _MS
            st.turn_start = None
            return [self._event("system", ts, offset, content="turn complete",
                                duration_ms=duration,
                                payload=_extras(whole, ("last_agent_message",)))]
        if msg == "turn_aborted":
            st.turn_start = None
            return [self._event("decision", ts, offset, status="cancelled",
                                content=_text(whole.get("reason"), 255) or "turn aborted",
                                payload=clip_payload(whole))]
        if msg == "collab_agent_spawn_end":
            child = _key(whole.get("new_thread_id"))
            if child == self.session:
                child = None
            return [self._event("subagent_start", ts, offset,
                                session=child, parent=self.session if child else None,
                                content=_text(whole.get("new_agent_role"), 255),
                                tool_call_id=_text(whole.get("call_id"), 255),
                                payload=clip_payload(whole))]
        text = _str(whole.get("message")) or msg  # error, stream_error
        return [self._event("error", ts, offset, error=clip(text),
                            payload=_extras(whole, ("message",)))]

    def _token_count(self, ts: datetime, offset: int, p: EventMsg) -> list[Event]:
        st = self.state
        out: list[Event] = []
        try:
            info = _info_decoder.decode(p.info)
        except (ValueError, RecursionError):
            info = None  # not the shape devlog knows; the rate limits may still be
        if info is not None:
            total = _usage(info.total_token_usage)
            last = _usage(info.last_token_usage)
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
                                       model=_text(info.model, 128) or st.model,
                                       provider=st.provider, payload=clip_raw(p.info)))
        # Codex repeats the snapshot on most records: the same bytes have the same key.
        if p.rate_limits != self._rate_seen:
            limits = _value(p.rate_limits)
            if isinstance(limits, dict) and limits:
                self._rate_seen = p.rate_limits.copy()
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

    def _tool_result(self, ts: datetime, offset: int, p: ResponseItem) -> list[Event]:
        call_id = _text(p.call_id, 255)
        call = self.state.calls.pop(call_id, None) if call_id is not None else None
        text, exit_code, meta, failed = read_output(p.output)
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
            tool_name=call.name if call else _text(p.name, 255),
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
        key = (cwd, st.remote, st.branch, st.commit)
        hit = self._merged
        if hit is None or hit[0] != key or hit[1] is not ref:  # once per session, not per event
            base = ref if ref is not None else ProjectRef(path=cwd)
            hit = self._merged = (key, ref, msgspec.structs.replace(
                base, remote=st.remote or base.remote, branch=st.branch or base.branch,
                commit=st.commit or base.commit))
        return hit[2]

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


def _value(raw: msgspec.Raw) -> Any:
    """A raw field as plain JSON (it was checked to be JSON when its line was decoded)."""
    try:
        return _decoder.decode(raw)
    except RecursionError:
        return None


def _payload(line: bytes) -> dict[str, Any]:
    """A line's payload as plain JSON: for the events whose payload is the record itself."""
    try:
        payload = _payload_decoder.decode(line).payload
    except (ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}


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
        except (ValueError, RecursionError):
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


def _usage(u: TokenUsage | None) -> dict[str, int] | None:
    if u is None:
        return None
    return {"input_tokens": _count(u.input_tokens) or 0,
            "cached_input_tokens": _count(u.cached_input_tokens) or 0,
            "output_tokens": _count(u.output_tokens) or 0,
            "reasoning_output_tokens": _count(u.reasoning_output_tokens) or 0,
            "total_tokens": _count(u.total_tokens) or 0}


def _count(value: Any) -> int | None:
    """A non-negative count within the wire's range, or None."""
    if type(value) is int:  # the usual case, first
        return None if value < 0 else min(value, MAX_COUNT)
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
