"""Claude Code: ``~/.claude/projects/<encoded cwd>/<session>.jsonl`` (``CLAUDE_CONFIG_DIR``).

One JSON record per line. Sub-agent transcripts live beside the session (``agent-<id>.jsonl``,
older) or under ``<session>/subagents/agent-<id>.jsonl`` (newer); their records carry the parent's
``sessionId`` and their own ``agentId``, and become child sessions ``<sessionId>/<agentId>``.

Token counting. Claude Code writes one line per content block of an assistant message and repeats
the message's ``usage`` on each, as it stands when the line is written: lines written before the
response ended hold the usage of its start (``output_tokens`` of a few tokens), and the line
written after it (with the stop reason) the final one. That line may come *after* other records —
the ``user`` record of a tool result is often written while the message is still streaming. One
LLM call is emitted per ``message.id`` + ``requestId``, with the largest usage its lines carried
(usage only grows), when the message is complete: a line with a stop reason, the next message of
the same session, or the file going quiet (:meth:`ClaudeParser.idle`) — records of other types
in between do not close it, so a message read in one go is emitted once. A line of a message
already emitted (it came after the quiet period, or after a stop reason) reopens it, and the call
is emitted again with the same id and a higher ``revision`` (the server keeps the highest). Open
and recently emitted calls are part of the parser state stored with the cursor, so a restart
between two lines of one message neither loses nor repeats it.

``revision`` is the call's total tokens (input + output + cache reads + cache writes), not a
counter: the same call can be written in several files (the sub-agent's transcript and the progress
echo in its parent's, a resumed session's copy), each read by its own parser, and whichever copy
holds the most complete usage wins whatever order the copies are read in.

Sub-agents seen in progress records. Claude Code 2.1.x echoes a running sub-agent's records in the
parent's transcript (``{"type": "progress", "data": {"type": "agent_progress", "agentId": …,
"message": {<the sub-agent's record>}}}``); the sub-agent's own file may be gone (cleaned up, not
synced). Echoed assistant messages are counted as LLM calls of the sub-agent's session
(``<sessionId>/<agentId>``, as its file's records make it) with the same ids as the file's lines,
so a call found in both is stored once.

Ids of LLM calls, prompts and tool calls derive from Claude's own ids (message, record uuid,
tool_use id), so records that a resumed session copies into a new file are not counted twice.

``input`` excludes cache: Anthropic reports ``input_tokens``, ``cache_read_input_tokens`` and
``cache_creation_input_tokens`` separately, and devlog keeps them in separate buckets.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from collector.adapters.base import (
    Adapter,
    Context,
    LineParser,
    SkipLine,
    clip,
    clip_payload,
    count_lines,
    event_id,
    parse_ts,
)
from collector.wire import Event, ProjectRef, Tokens

AGENT = "claude-code"

TOOL_CATEGORIES = {
    "Read": "file_read", "NotebookRead": "file_read",
    "Write": "file_write",
    "Edit": "file_edit", "MultiEdit": "file_edit", "NotebookEdit": "file_edit",
    "Bash": "shell", "BashOutput": "shell", "KillShell": "shell", "KillBash": "shell",
    "Grep": "search", "Glob": "search", "LS": "search", "ToolSearch": "search",
    "WebFetch": "web", "WebSearch": "web",
    "Task": "subagent", "Agent": "subagent",
    "TodoWrite": "todo", "TodoRead": "todo",
}
INTERRUPTED = "[Request interrupted by user"
REJECTED = "The user doesn't want to proceed with this tool use"
MAX_PENDING = 512  # tool calls awaiting their result, kept in the state
MAX_REMEMBERED = 256  # LLM calls already emitted / sessions already started
MAX_REVISABLE = 32  # emitted LLM calls kept whole in the state: a later line can revise them
MAX_REVISION = 2**31 - 1



def tool_category(name: str) -> str:
    if name.startswith("mcp__"):
        return "mcp"
    return TOOL_CATEGORIES.get(name, "other")


# -- the format (msgspec structs: unknown fields are skipped while decoding, never built) --------


class CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class Usage(msgspec.Struct, omit_defaults=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None
    service_tier: str | None = None


class Message(msgspec.Struct):
    """An Anthropic Message (one content block per line in Claude Code's files)."""

    id: str | None = None
    model: str | None = None
    role: str | None = None
    content: Any = None  # a string, or blocks: text | thinking | tool_use | tool_result | image
    stop_reason: str | None = None
    usage: Usage | None = None


class Record(msgspec.Struct, rename="camel"):
    """One line of a transcript. Only the fields devlog uses; ``toolUseResult`` (often a whole
    file's content) stays raw and is decoded only for edits."""

    type: str | None = None
    timestamp: str | int | float | None = None
    session_id: str | None = None
    uuid: str | None = None
    cwd: str | None = None
    version: str | None = None
    git_branch: str | None = None
    agent_id: str | None = None
    is_sidechain: bool | None = None
    is_meta: bool | None = None
    is_api_error_message: bool | None = None
    is_compact_summary: bool | None = None
    request_id: str | None = None
    cost_usd: float | None = msgspec.field(default=None, name="costUSD")
    message: Message | None = None
    tool_use_result: msgspec.Raw = msgspec.Raw(b"null")
    subtype: str | None = None
    duration_ms: float | None = None
    summary: str | None = None
    leaf_uuid: str | None = None
    level: str | None = None
    content: Any = None
    error: Any = None
    entrypoint: str | None = None
    user_type: str | None = None
    compact_metadata: Any = None
    data: msgspec.Raw = msgspec.Raw(b"null")  # of a progress record; decoded when it is one


class EchoedRecord(msgspec.Struct, rename="camel"):
    """A sub-agent's record as a progress record of its parent echoes it (``data.message``)."""

    type: str | None = None
    timestamp: str | int | float | None = None
    uuid: str | None = None
    request_id: str | None = None
    message: Message | None = None
    is_api_error_message: bool | None = None


class ProgressData(msgspec.Struct, rename="camel"):
    type: str | None = None
    agent_id: str | None = None
    message: EchoedRecord | None = None


_decoder = msgspec.json.Decoder(Record)
_progress_decoder = msgspec.json.Decoder(ProgressData)


# -- parser state ----------------------------------------------------------------------------------


class PendingTool(msgspec.Struct, array_like=True):
    ts: datetime
    name: str
    category: str
    file_path: str | None = None
    added: int | None = None
    removed: int | None = None


class OpenCall(msgspec.Struct):
    """An assistant message whose lines are still arriving."""

    key: str
    session: str
    parent: str | None
    ts: datetime  # first line
    last_ts: datetime
    started: datetime | None  # the record that prompted it (prompt or tool result)
    seq: int
    model: str | None
    usage: Usage
    stop_reason: str | None = None
    cost: float | None = None
    version: str | None = None
    cwd: str | None = None
    branch: str | None = None
    sent: int | None = None  # the revision last emitted (None: not emitted yet)


class State(msgspec.Struct):
    last_ts: datetime | None = None  # of the last record that had one
    input_ts: datetime | None = None  # of the last non-assistant record (an LLM call's start)
    open: list[OpenCall] = []  # calls whose message may still get lines (emitted or not)
    emitted: list[OpenCall] = []  # recently emitted calls (MAX_REVISABLE): a late line revises one
    done: list[str] = []  # keys of LLM calls emitted longer ago: their late lines are ignored
    started: list[str] = []  # sessions whose start was emitted (recent)
    echo_input: dict[str, datetime] = {}  # sub-agent session -> its last echoed non-assistant record
    pending: dict[str, PendingTool] = {}
    session: str | None = None  # of the last record that named one
    summaries: list[tuple[int, str, str | None]] = []  # (offset, text, leafUuid) seen before it


class ClaudeCode(Adapter):
    name: ClassVar[str] = AGENT
    shape: ClassVar[Literal["lines"]] = "lines"

    def roots(self, env: Mapping[str, str], home: Path) -> list[Path]:
        roots = [Path(p).expanduser() / "projects"
                 for p in env.get("CLAUDE_CONFIG_DIR", "").split(",") if p.strip()]
        if not roots:
            roots = [home / ".claude" / "projects", home / ".config" / "claude" / "projects"]
        return roots

    def matches(self, path: Path) -> bool:
        return path.suffix == ".jsonl"

    def parser(self, path: Path, ctx: Context, state: bytes | None) -> ClaudeParser:
        return ClaudeParser(path, ctx, state)


class ClaudeParser(LineParser):
    def __init__(self, path: Path, ctx: Context, state: bytes | None = None) -> None:
        super().__init__(path, ctx, state)
        self.state = msgspec.msgpack.decode(state, type=State) if state else State()
        # agent-<id>.jsonl (either layout) is a sub-agent transcript.
        self._file_agent = path.stem[len("agent-"):] if path.stem.startswith("agent-") else None
        self._refs: dict[tuple[str, str], tuple[ProjectRef, ProjectRef]] = {}
        self._memo: tuple[Record, str, str | None, ProjectRef | None] | None = None

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.state)

    # -- lines ---------------------------------------------------------------------------------

    def feed(self, line: bytes, offset: int) -> list[Event]:
        try:
            rec = _decoder.decode(line)
        except ValueError as exc:  # DecodeError, wrong shapes (ValidationError), bad UTF-8
            raise SkipLine(f"not a transcript record: {exc}") from None
        kind = rec.type
        message = rec.message
        ts = parse_ts(rec.timestamp)
        if ts is None and kind not in ("summary", "progress"):
            if kind in (None, "user", "assistant", "system"):
                raise SkipLine("no timestamp")
            return []  # bookkeeping written without a time (last-prompt, file-history-snapshot…)
        st = self.state
        if ts is not None:
            st.last_ts = ts
        out: list[Event] = []
        is_assistant = kind == "assistant" or (
            kind is None and message is not None and message.role == "assistant")
        if kind == "progress":
            self._progress(rec, offset, ts, out)  # a sub-agent's messages, echoed
            return out
        if kind in ("file-history-snapshot", "queue-operation"):
            return out  # bookkeeping: may sit between two lines of one message
        if not is_assistant and kind not in ("user", "system", "summary"):
            return out  # a record type of a newer version: nothing we know to take from it
        # A user or system record does not close an open LLM call: the last line of a message
        # (with its final usage) is often written after the tool result it asked for.
        if kind == "summary":
            # Titles Claude Code generated; they carry neither a time nor a session, and often
            # come first in the file: held in the state until a record names both.
            if rec.summary is not None:
                st.summaries.append((offset, rec.summary, rec.leaf_uuid))
                if st.session is not None:
                    self._flush_summaries(rec, out)
            return out
        assert ts is not None
        session, parent = self._session_of(rec)
        st.session = session
        if st.summaries:
            self._flush_summaries(rec, out)
        k = self._start(rec, offset, ts, session, parent, out)
        if is_assistant:
            self._assistant(rec, offset, ts, session, parent, out, k)
        elif kind == "user":
            st.input_ts = ts
            self._user(rec, offset, ts, out, k)
        elif kind == "system":
            st.input_ts = ts
            self._system(rec, offset, ts, out, k)
        return out

    def idle(self) -> list[Event]:
        out: list[Event] = []
        self._close_open(out)
        return out

    # -- records -------------------------------------------------------------------------------

    def _rid(self, rec: Record, offset: int) -> str:
        """The record's own uuid, or its place in this session's file when it has none."""
        uid = rec.uuid
        return uid if uid else f"{self._session_of(rec)[0]}@{offset}"

    def _flush_summaries(self, rec: Record, out: list[Event]) -> None:
        st = self.state
        assert st.last_ts is not None
        for offset, text, leaf in st.summaries[-MAX_REMEMBERED:]:
            out.append(self._event(rec, offset, 0, "system", st.last_ts, ident=("summary", st.session, offset),
                                   content=clip(text), payload={"type": "summary", "leafUuid": leaf}))
        st.summaries = []

    def _session_of(self, rec: Record) -> tuple[str, str | None]:
        session = rec.session_id
        if not session:
            session = self.state.session or self.path.stem
        agent_id = rec.agent_id or (self._file_agent if rec.is_sidechain else None)
        if self._file_agent and not agent_id:
            agent_id = self._file_agent
        if agent_id:
            return f"{session}/{agent_id}", session
        return session, None

    def _start(self, rec: Record, offset: int, ts: datetime, session: str, parent: str | None,
               out: list[Event]) -> int:
        st = self.state
        if session in st.started:
            return 0
        st.started.append(session)
        del st.started[:-MAX_REMEMBERED]
        kind = "subagent_start" if parent else "session_start"
        out.append(self._event(rec, offset, 0, kind, ts, ident=(kind, session),
                               payload={"entrypoint": rec.entrypoint, "userType": rec.user_type}))
        return 1

    def _assistant(self, rec: Record, offset: int, ts: datetime, session: str, parent: str | None,
                   out: list[Event], k: int) -> None:
        st = self.state
        message = rec.message
        if message is None:
            raise SkipLine("assistant record without a message")
        if rec.is_api_error_message or message.model == "<synthetic>":
            text = _text_of(message.content)
            if rec.is_api_error_message or text:
                out.append(self._event(rec, offset, k, "error", ts, error=clip(text or "API error"),
                                       ident=("error", self._rid(rec, offset))))
            return
        msg_id = message.id
        key = f"{msg_id}:{rec.request_id or ''}" if msg_id else f"line:{self._rid(rec, offset)}"
        self._call_line(key, session, parent, ts, offset * 16, message, rec.cost_usd, rec, st.input_ts,
                        out)
        content = message.content
        if isinstance(content, str) and content:
            content = [{"type": "text", "text": content}]
        for i, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict):
                continue
            ident = self._rid(rec, offset)
            btype = block.get("type")
            if btype == "text" and block.get("text"):
                out.append(self._event(rec, offset, k + i, "assistant_message", ts,
                                       ident=("text", ident, i), content=clip(block["text"]),
                                       model=message.model))
            elif btype == "thinking" and block.get("thinking"):
                out.append(self._event(rec, offset, k + i, "reasoning", ts,
                                       ident=("thinking", ident, i), content=clip(block["thinking"]),
                                       model=message.model))
            elif btype in ("tool_use", "server_tool_use") and block.get("id"):
                out.append(self._tool_use(rec, offset, k + i, ts, block))
        if message.stop_reason:
            self._close_open(out, only=key)

    def _progress(self, rec: Record, offset: int, ts: datetime | None, out: list[Event]) -> None:
        """A progress record: the LLM calls of a sub-agent that it echoes (see the module doc)."""
        try:
            data = _progress_decoder.decode(rec.data)
        except ValueError:  # progress of another kind and shape (bash output, hooks, …)
            return
        inner = data.message
        agent_id = data.agent_id
        if data.type != "agent_progress" or inner is None or not isinstance(agent_id, str) \
                or not agent_id:
            return
        its = parse_ts(inner.timestamp) or ts
        if its is None:
            return
        session, parent = self._session_of(rec)
        root = parent or session  # sub-agents of sub-agents are children of the root, as in files
        child = f"{root}/{agent_id}"
        st = self.state
        message = inner.message
        if inner.type in ("user", "system"):
            st.echo_input[child] = its  # the start of the sub-agent's next call
            if len(st.echo_input) > MAX_REMEMBERED:
                del st.echo_input[next(iter(st.echo_input))]
            return
        if message is None or (inner.type != "assistant" and message.role != "assistant"):
            return
        if inner.is_api_error_message or message.model == "<synthetic>":
            return
        if message.id:
            key = f"{message.id}:{inner.request_id or ''}"  # as the sub-agent's file makes it
        elif inner.uuid:
            key = f"line:{inner.uuid}"
        else:
            return
        self._call_line(key, child, root, its, offset * 16, message, None, rec,
                        st.echo_input.get(child), out)
        if message.stop_reason:
            self._close_open(out, only=key)

    def _call_line(self, key: str, session: str, parent: str | None, ts: datetime, seq: int,
                   message: Message, cost: float | None, rec: Record, started: datetime | None,
                   out: list[Event]) -> None:
        """One line of the LLM call ``key``: opens it, or adds to it (reopening it when it was
        emitted already and is still remembered)."""
        st = self.state
        # Another message of this session starts: the session's open one is complete (a session
        # makes one request at a time; echoed sub-agents are sessions of their own).
        if any(c.session == session and c.key != key for c in st.open):
            self._close_open(out, session=session, keep=key)
        if key in st.done:
            return  # emitted long ago and forgotten: a line this late is not counted again
        usage = message.usage
        call = next((c for c in st.open if c.key == key), None)
        if call is None:
            call = next((c for c in st.emitted if c.key == key), None)
            if call is not None:  # a later line of a message emitted already
                st.emitted.remove(call)
                st.open.append(call)
            elif usage is None and not message.model:
                return
            else:
                call = OpenCall(key=key, session=session, parent=parent, ts=ts, last_ts=ts,
                                started=started, seq=seq, model=message.model,
                                usage=usage or Usage(), version=rec.version, cwd=rec.cwd,
                                branch=rec.git_branch)
                st.open.append(call)
        call.last_ts = ts
        if usage is not None and _total(usage) >= _total(call.usage):
            call.usage = usage  # usage only grows: a copy with less (an earlier one) never wins
        if message.model:
            call.model = message.model
        if cost is not None and cost >= 0:
            call.cost = cost
        if message.stop_reason:
            call.stop_reason = message.stop_reason

    def _tool_use(self, rec: Record, offset: int, k: int, ts: datetime, block: dict) -> Event:
        name = str(block.get("name") or "unknown")
        category = tool_category(name)
        inp = block.get("input") if isinstance(block.get("input"), dict) else {}
        path = next((inp[f] for f in ("file_path", "notebook_path", "path")
                     if isinstance(inp.get(f), str)), None)
        added, removed = _lines_from_input(name, inp)
        command = inp.get("command") if category == "shell" and isinstance(inp.get("command"), str) else None
        st = self.state
        st.pending[block["id"]] = PendingTool(ts=ts, name=name, category=category,
                                              file_path=path, added=added, removed=removed)
        if len(st.pending) > MAX_PENDING:
            for old in list(st.pending)[: len(st.pending) - MAX_PENDING]:
                del st.pending[old]
        content = inp.get("description") or inp.get("prompt") if category == "subagent" else None
        return self._event(rec, offset, k, "tool_call", ts, ident=("tool_use", block["id"]),
                           tool_name=name, tool_category=category, tool_call_id=block["id"],
                           file_path=path, command=clip(command), content=clip(content),
                           payload=clip_payload(inp))

    def _user(self, rec: Record, offset: int, ts: datetime, out: list[Event], k: int) -> None:
        content = rec.message.content if rec.message is not None else None
        if rec.is_meta:
            return
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            return
        ident = self._rid(rec, offset)
        texts: list[str] = []
        for i, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                out.extend(self._tool_result(rec, offset, k + i, ts, block))
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
        text = "\n".join(t for t in texts if t)
        if not text:
            return
        if text.startswith(INTERRUPTED):
            out.append(self._event(rec, offset, k, "decision", ts, ident=("interrupt", ident),
                                   status="cancelled", content="interrupted by the user"))
        elif rec.is_compact_summary:
            out.append(self._event(rec, offset, k, "compaction", ts, ident=("compact", ident),
                                   content=clip(text)))
        elif text.startswith(("<local-command-stdout>", "<local-command-stderr>")):
            out.append(self._event(rec, offset, k, "system", ts, ident=("local", ident),
                                   content=clip(text), payload={"type": "local-command"}))
        else:
            out.append(self._event(rec, offset, k, "user_prompt", ts, ident=("prompt", ident),
                                   content=clip(text)))

    def _tool_result(self, rec: Record, offset: int, k: int, ts: datetime, block: dict) -> list[Event]:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str):
            return []
        call = self.state.pending.pop(call_id, None)
        text = _text_of(block.get("content"))
        status = "error" if block.get("is_error") else "ok"
        if status == "error" and text and text.startswith(REJECTED):
            status = "rejected"
        elif status == "error" and text and INTERRUPTED in text:
            status = "cancelled"
        added = removed = None
        if call is not None and status == "ok":
            added, removed = call.added, call.removed
            patch = _patch_counts(rec.tool_use_result) if call.category in ("file_edit", "file_write") else None
            if patch is not None:
                added, removed = patch
        events = [self._event(
            rec, offset, k, "tool_result", ts, ident=("tool_result", call_id),
            tool_call_id=call_id, tool_name=call.name if call else None,
            tool_category=call.category if call else None, status=status,
            file_path=call.file_path if call else None, lines_added=added, lines_removed=removed,
            duration_ms=_ms(ts - call.ts) if call else None, content=clip(text))]
        if status == "rejected":
            events.append(self._event(rec, offset, k + 1, "decision", ts, ident=("reject", call_id),
                                      status="rejected", tool_call_id=call_id,
                                      tool_name=call.name if call else None))
        return events

    def _system(self, rec: Record, offset: int, ts: datetime, out: list[Event], k: int) -> None:
        subtype = rec.subtype
        ident = ("system", self._rid(rec, offset))
        if subtype == "compact_boundary":
            out.append(self._event(rec, offset, k, "compaction", ts, ident=ident,
                                   payload=clip_payload(rec.compact_metadata)))
        elif rec.level == "error" or subtype == "api_error":
            out.append(self._event(rec, offset, k, "error", ts, ident=ident,
                                   error=clip(str(rec.content or rec.error or subtype))))
        else:
            duration = rec.duration_ms
            out.append(self._event(
                rec, offset, k, "system", ts, ident=ident,
                duration_ms=int(duration) if isinstance(duration, (int, float)) and duration >= 0 else None,
                content=clip(rec.content) if isinstance(rec.content, str) else None,
                payload={"type": "system", "subtype": subtype}))

    # -- LLM calls -----------------------------------------------------------------------------

    def _close_open(self, out: list[Event], keep: str | None = None, only: str | None = None,
                    session: str | None = None) -> None:
        """Emit the open calls (all, ``only`` one, those of one ``session`` but ``keep``): a call
        emitted before is emitted again, with a higher revision, only when its usage grew."""
        st = self.state
        still: list[OpenCall] = []
        for call in st.open:
            if (keep is not None and call.key == keep) or (only is not None and call.key != only) \
                    or (session is not None and call.session != session):
                still.append(call)
                continue
            revision = min(_total(call.usage), MAX_REVISION)
            if call.sent is None or revision > call.sent:
                out.append(self._llm_call(call, revision))
                call.sent = revision
            st.emitted.append(call)
        if len(st.emitted) > MAX_REVISABLE:
            st.done.extend(c.key for c in st.emitted[:-MAX_REVISABLE])
            del st.emitted[:-MAX_REVISABLE]
            del st.done[:-MAX_REMEMBERED]
        st.open = still

    def _llm_call(self, c: OpenCall, revision: int) -> Event:
        u = c.usage
        cache = u.cache_creation or CacheCreation()
        tokens = Tokens(
            input=_int(u.input_tokens), output=_int(u.output_tokens),
            cache_read=_int(u.cache_read_input_tokens),
            cache_write=_int(u.cache_creation_input_tokens),
            cache_write_5m=_opt_int(cache.ephemeral_5m_input_tokens),
            cache_write_1h=_opt_int(cache.ephemeral_1h_input_tokens),
        )
        started = c.started if c.started is not None and c.started <= c.ts else None
        return Event(
            id=event_id(AGENT, "llm", c.key), kind="llm_call", ts=c.ts, agent=AGENT,
            session=c.session, parent_session=c.parent, machine=self.ctx.machine,
            project=self._project(c.cwd, c.branch), workspace=c.cwd, seq=c.seq,
            agent_version=c.version, model=c.model, provider="anthropic", tokens=tokens,
            cost_usd=c.cost, stop_reason=c.stop_reason, revision=revision,
            duration_ms=_ms(c.last_ts - started) if started else None,
            payload={"messageId": c.key.split(":", 1)[0], "serviceTier": u.service_tier},
        )

    # -- helpers -------------------------------------------------------------------------------

    def _project(self, cwd: str | None, branch: str | None) -> ProjectRef | None:
        if not cwd:
            return None
        ref = self.ctx.project_of(cwd)
        if ref is None:
            return None
        if branch and branch != ref.branch:
            # The record knows the branch of its time; the repository's HEAD commit is of now.
            # One copy per folder and branch (this runs for every event).
            hit = self._refs.get((cwd, branch))
            if hit is None or hit[0] is not ref:
                if len(self._refs) > 256:
                    self._refs.clear()
                hit = self._refs[(cwd, branch)] = (
                    ref, msgspec.structs.replace(ref, branch=branch[:255], commit=None))
            ref = hit[1]
        return ref

    def _event(self, rec: Record, offset: int, k: int, kind: str, ts: datetime, *,
               ident: tuple | None = None, **fields: Any) -> Event:
        # A line yields up to a dozen events: its session and project are worked out once.
        memo = self._memo
        if memo is None or memo[0] is not rec:
            session, parent = self._session_of(rec)
            memo = self._memo = (rec, session, parent, self._project(rec.cwd, rec.git_branch))
        _rec, session, parent, project = memo
        if ident is None:
            ident = (kind, self._rid(rec, offset))
        return Event(
            id=event_id(AGENT, *ident), kind=kind, ts=ts, agent=AGENT, session=session,
            parent_session=parent, machine=self.ctx.machine, project=project,
            workspace=rec.cwd, seq=offset * 16 + min(k, 15), agent_version=rec.version,
            **fields,
        )


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def _lines_from_input(name: str, inp: dict) -> tuple[int | None, int | None]:
    if name == "Write" and isinstance(inp.get("content"), str):
        return count_lines(inp["content"]), 0
    if name == "Edit":
        return _diff_counts(inp.get("old_string"), inp.get("new_string"))
    if name == "MultiEdit" and isinstance(inp.get("edits"), list):
        added = removed = 0
        for edit in inp["edits"]:
            if isinstance(edit, dict):
                a, r = _diff_counts(edit.get("old_string"), edit.get("new_string"))
                added += a or 0
                removed += r or 0
        return added, removed
    return None, None


def _diff_counts(old: Any, new: Any) -> tuple[int | None, int | None]:
    if not isinstance(old, str) or not isinstance(new, str):
        return None, None
    a, b = old.splitlines(), new.splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


def _patch_counts(raw: msgspec.Raw) -> tuple[int, int] | None:
    """Lines added/removed from Claude's ``toolUseResult.structuredPatch`` hunks, when present."""
    try:
        result = msgspec.json.decode(raw)
    except ValueError:
        return None
    if not isinstance(result, dict) or not isinstance(result.get("structuredPatch"), list):
        return None
    added = removed = 0
    for hunk in result["structuredPatch"]:
        for line in hunk.get("lines", []) if isinstance(hunk, dict) else []:
            if isinstance(line, str) and line.startswith("+"):
                added += 1
            elif isinstance(line, str) and line.startswith("-"):
                removed += 1
    if added == removed == 0 and result.get("type") == "create" and isinstance(result.get("content"), str):
        return count_lines(result["content"]), 0
    return added, removed


def _total(u: Usage) -> int:
    """All tokens of a usage: input, output, cache reads and writes (it grows as a message
    streams: the call's revision)."""
    return (_int(u.input_tokens) + _int(u.output_tokens) + _int(u.cache_read_input_tokens)
            + _int(u.cache_creation_input_tokens))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ms(delta: Any) -> int | None:
    ms = int(delta.total_seconds() * 1000)
    return ms if ms >= 0 else None
