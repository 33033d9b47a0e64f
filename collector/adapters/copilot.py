"""GitHub Copilot chat in VS Code: ``workspaceStorage/<id>/chatSessions/<session>.json[l]``.

Where. ``<base>/{Code,Code - Insiders,VSCodium}/User/`` with base ``~/.config`` (or
``$XDG_CONFIG_HOME``) on Linux, ``~/Library/Application Support`` on macOS, ``%APPDATA%`` on
Windows, plus ``~/.vscode-server[-insiders]/data/User/`` on remote hosts. Chats of a folder live in
``workspaceStorage/<id>/chatSessions/``, whose ``workspace.json`` names the folder (or the
``.code-workspace`` file of a multi-root workspace); chats of a window without a folder live in
``globalStorage/emptyWindowChatSessions/`` and have no workspace.

Two forms of one session object: version-3 ``.json`` (the whole object, rewritten as the chat
grows) and the newer ``.jsonl`` change log (a first ``{"kind":0,"v":…}`` line, then set / push /
delete entries), replayed by :func:`replay_change_log`.

Mapping, per request (``requests[]``), all ids from :func:`event_id` over the session id, the
request id and what the event is, so a rewritten file never yields a new id:

- the session's first emission is preceded by ``session_start`` (``creationDate``; ``customTitle``
  as content). A session without requests emits nothing.
- ``message.text`` -> ``user_prompt``; attached files (``variableData.variables`` of kind file)
  -> one ``tool_call`` each (tool ``attachment``, file_read, status ok), emitted with the prompt.
- Once the request is done (a ``result``, ``isCanceled``, a final ``modelState``, or a later
  request in the session), its response: markdown chunks -> one ``assistant_message``;
  ``thinking`` -> ``reasoning``; ``toolInvocationSerialized`` -> ``tool_call`` + ``tool_result``
  (the outcome on the result) and a ``decision`` (rejected) when the user denied it;
  ``textEditGroup`` -> a ``tool_call`` (tool ``textEdit``, file_edit) carrying the lines changed;
  one ``llm_call`` with the tokens the file recorded (``result.metadata``, ``result.usage``,
  …: :func:`_reported_tokens`; an estimate flagged ``estimated`` only when it has none); an
  ``error`` for ``result.errorDetails``; a ``decision`` (cancelled) for a cancelled request.
  A request still in progress emits its prompt only.

The parser state lists the requests whose prompt was sent and those fully emitted, so parsing a
rewritten document returns only what is new.

Lines changed by a text edit: ``added`` is the number of lines of the new text; ``removed`` is the
number of lines the replaced range touches (none for an empty range, and a range that ends at
column 1 of a later line does not touch that line).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import msgspec

from collector.adapters.base import (
    Adapter,
    Context,
    DocumentParser,
    SkipLine,
    clip,
    clip_payload,
    count_lines,
    event_id,
    parse_ts,
)
from collector.adapters.vscode import (  # noqa: F401  (re-exported for callers and tests)
    _DRIVE,
    APPS,
    SERVER_DIRS,
    as_dict,
    as_list,
    config_bases,
    load_session,
    replay_change_log,
    uri_to_path,
    workspace_folder,
)
from collector.wire import Event, ProjectRef, Tokens

AGENT = "copilot"
PROVIDER = "github-copilot"

TOOL_CATEGORIES = {
    "copilot_readFile": "file_read", "copilot_readNotebookCellOutput": "file_read",
    "copilot_getNotebookSummary": "file_read",
    "copilot_createFile": "file_write", "copilot_createDirectory": "file_write",
    "copilot_createNewJupyterNotebook": "file_write",
    "copilot_replaceString": "file_edit", "copilot_multiReplaceString": "file_edit",
    "copilot_applyPatch": "file_edit", "copilot_insertEdit": "file_edit",
    "copilot_editNotebook": "file_edit", "copilot_editFiles": "file_edit",
    "run_in_terminal": "shell", "get_terminal_output": "shell", "copilot_runInTerminal": "shell",
    "copilot_getTerminalOutput": "shell", "run_task": "shell", "copilot_runTests": "shell",
    "copilot_findTextInFiles": "search", "copilot_findFiles": "search",
    "copilot_searchCodebase": "search", "copilot_listDirectory": "search",
    "copilot_searchWorkspaceSymbols": "search", "copilot_listCodeUsages": "search",
    "copilot_getErrors": "search", "copilot_getChangedFiles": "search",
    "runSubagent": "subagent", "search_subagent": "subagent",
    "copilot_fetchWebPage": "web", "fetch_webpage": "web", "vscode_fetchWebPage_internal": "web",
    "copilot_githubRepo": "web", "github_repo": "web",
    "manage_todo_list": "todo", "copilot_manageTodoList": "todo",
}
# Heuristics for tools not in the table, tried in order on the lower-cased tool id.
_TOOL_WORDS = (
    (("subagent",), "subagent"), (("terminal", "shell", "command"), "shell"),
    (("fetch", "web", "http"), "web"), (("todo",), "todo"),
    (("edit", "replace", "patch", "insert"), "file_edit"), (("create", "write"), "file_write"),
    (("read",), "file_read"), (("find", "search", "grep", "list", "glob"), "search"),
)
# ToolConfirmKind (VS Code): Denied = 0, …, Skipped = 5. Pre-1.104 builds stored a boolean.
_DENIED, _SKIPPED = 0, 5
# ResponseModelState (VS Code): Pending, Complete, Cancelled, Failed, NeedsInput.
_COMPLETE, _CANCELLED, _FAILED = 1, 2, 3

_MAX_COUNT = 10**12


# -- the format (msgspec structs: unknown fields are skipped while decoding, never built) --------
#
# Only the fields devlog reads, with the types VS Code writes (and their variants across versions).
# What becomes an event's payload as written (response items, ``result``, attached variables) stays
# plain JSON. Each request is read on its own: one of another shape is left out, not the session.

T = TypeVar("T")


class Counts(msgspec.Struct, rename="camel"):
    """Token counts, wherever a build writes them (see :func:`_reported_tokens`)."""

    prompt_tokens: int | float | None = None
    output_tokens: int | float | None = None
    completion_tokens: int | float | None = None


class ResultMetadata(Counts):
    resolved_model: str | None = None


class Timings(msgspec.Struct, rename="camel"):
    total_elapsed: int | float | None = None


class Result(Counts):
    """What devlog reads of a request's ``result`` (which, whole, is the llm_call's payload)."""

    metadata: ResultMetadata | None = None
    usage: Counts | None = None  # {promptTokens, completionTokens, promptTokenDetails}
    timings: Timings | None = None
    error_details: Any = None  # the error event's payload


class ModelState(msgspec.Struct):
    value: int | None = None  # ResponseModelState


class MessagePart(msgspec.Struct):
    text: str | None = None


class Message(msgspec.Struct):
    text: str | None = None
    parts: list[MessagePart] = []


class Agent(msgspec.Struct):
    id: str | None = None


class VariableData(msgspec.Struct):
    variables: list[Any] = []  # attachments: each is its tool_call's payload


class Request(msgspec.Struct, rename="camel"):
    request_id: str | None = None
    timestamp: str | int | float | None = None
    model_id: str | None = None
    agent: Agent | None = None
    mode_info: Any = None
    message: str | Message | None = None  # a string in old builds
    variable_data: VariableData | None = None
    response: list[Any] = []  # items of many kinds: each is its event's payload
    result: Any = None  # see Result
    is_canceled: bool | None = None
    model_state: int | ModelState | None = None  # an int in some builds
    usage: Counts | None = None


class Session(msgspec.Struct, Generic[T], rename="camel"):
    """The chat session; its requests are decoded one by one (:func:`_request`). Its own fields
    are read leniently (another type is ignored, rather than the whole session); those kept in
    session_start's payload as written are UNSET when absent."""

    session_id: Any = None
    creation_date: Any = msgspec.UNSET
    last_message_date: Any = None
    custom_title: Any = msgspec.UNSET
    version: Any = msgspec.UNSET
    initial_location: Any = msgspec.UNSET
    requester_username: Any = msgspec.UNSET
    responder_username: Any = msgspec.UNSET
    requests: list[T] | msgspec.UnsetType = msgspec.UNSET
    kind: Any = None  # {"kind": 0, "v": session}: one change-log line saved as .json
    v: Any = None


_session_decoder = msgspec.json.Decoder(Session[msgspec.Raw])
_request_decoder = msgspec.json.Decoder(Request)


class Copilot(Adapter):
    name: ClassVar[str] = AGENT
    shape: ClassVar[Literal["document"]] = "document"

    def roots(self, env: Mapping[str, str], home: Path) -> list[Path]:
        users = [base / app / "User" for base in config_bases(env, home, sys.platform)
                 for app in APPS]
        users += [home / d / "data" / "User" for d in SERVER_DIRS]
        return [root for user in users for root in
                (user / "workspaceStorage", user / "globalStorage" / "emptyWindowChatSessions")]

    def matches(self, path: Path) -> bool:
        if path.suffix not in (".json", ".jsonl"):
            return False
        if path.parent.name == "emptyWindowChatSessions":
            return True
        return path.parent.name == "chatSessions" and path.parent.parent.parent.name == "workspaceStorage"

    def parser(self, path: Path, ctx: Context, state: bytes | None) -> CopilotParser:
        return CopilotParser(path, ctx, state)


class CopilotState(msgspec.Struct, omit_defaults=True):
    started: bool = False  # session_start was emitted
    prompted: list[str] = []  # requests whose prompt was emitted, response not yet
    done: list[str] = []  # requests fully emitted


class CopilotParser(DocumentParser):
    def __init__(self, path: Path, ctx: Context, state: bytes | None = None) -> None:
        super().__init__(path, ctx, state)
        try:
            st = msgspec.msgpack.decode(state, type=CopilotState) if state else CopilotState()
        except msgspec.DecodeError:
            st = CopilotState()
        self._started = st.started
        self._prompted = dict.fromkeys(st.prompted)
        self._done = dict.fromkeys(st.done)
        self._where: tuple[str | None, ProjectRef | None] | None = None

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(CopilotState(
            started=self._started, prompted=list(self._prompted), done=list(self._done)))

    def parse(self, data: bytes) -> list[Event]:
        session = _load(data, self.path.suffix == ".jsonl")
        sid = (_str(session.session_id) or self.path.stem or "unknown")[:255]
        requests = [(i, r) for i, value in enumerate(session.requests or ())
                    if (r := _request(value)) is not None]
        first_ts = next((t for _, r in requests if (t := parse_ts(r.timestamp))), None)
        session_ts = (parse_ts(session.creation_date) or first_ts
                      or parse_ts(session.last_message_date) or self._mtime())
        out: list[Event] = []
        ts = session_ts
        for n, (i, req) in enumerate(requests):
            ts = parse_ts(req.timestamp) or ts
            rid = _str(req.request_id) or f"#{i}"
            if rid in self._done:
                continue
            b = _Request(self, sid, rid, i, ts, req)
            if rid not in self._prompted:
                b.prompt()
            if _is_done(req, later=n < len(requests) - 1):
                b.response()
                self._prompted.pop(rid, None)
                self._done[rid] = None
            else:
                self._prompted[rid] = None
            if b.events and not self._started:
                self._started = True
                out.append(self._session_start(session, sid, session_ts))
            out.extend(sorted(b.events, key=lambda e: e.seq))
        return out

    def _session_start(self, session: Session[Any], sid: str, ts: datetime) -> Event:
        kept = (("version", session.version), ("initialLocation", session.initial_location),
                ("customTitle", session.custom_title),
                ("requesterUsername", session.requester_username),
                ("responderUsername", session.responder_username),
                ("creationDate", session.creation_date))
        return self.event(sid, (sid, "session_start"), "session_start", ts, 0,
                          content=clip(_str(session.custom_title)),
                          payload=clip_payload({k: v for k, v in kept if v is not msgspec.UNSET}))

    def event(self, sid: str, ident: tuple, kind: str, ts: datetime, seq: int,
              **fields: Any) -> Event:
        workspace, project = self._location()
        return Event(id=event_id(AGENT, *ident), kind=kind, ts=ts, agent=AGENT, session=sid,
                     machine=self.ctx.machine, project=project, workspace=workspace, seq=seq,
                     **fields)

    def _location(self) -> tuple[str | None, ProjectRef | None]:
        if self._where is None:
            folder = None
            if self.path.parent.name == "chatSessions":
                folder = workspace_folder(self.path.parent.parent)
            folder = folder[:4096] if folder else None
            self._where = (folder, self.ctx.project_of(folder) if folder else None)
        return self._where

    def _mtime(self) -> datetime:
        """The time of a session that records none: the file's modification time."""
        try:
            return datetime.fromtimestamp(self.path.stat().st_mtime, tz=UTC)
        except (OSError, OverflowError, ValueError):
            return datetime.now(UTC)


class _Request:
    """The events of one request: its prompt group, then (once done) its response group."""

    def __init__(self, parser: CopilotParser, sid: str, rid: str, index: int, ts: datetime,
                 req: Request) -> None:
        self.p, self.sid, self.rid, self.ts, self.req = parser, sid, rid, ts, req
        self.base = (index + 1) * 1_000_000
        self.events: list[Event] = []
        self.result = _result(req.result)
        self.model = _model(req, self.result)

    def add(self, kind: str, what: str, index: object, seq: int, **fields: Any) -> None:
        self.events.append(self.p.event(self.sid, (self.sid, self.rid, what, index), kind,
                                        self.ts, self.base + seq, **fields))

    def prompt(self) -> None:
        req = self.req
        text = _message_text(req.message)
        if text:
            payload = {"requestId": req.request_id, "modelId": req.model_id,
                       "agent": req.agent.id if req.agent else None, "mode": req.mode_info}
            self.add("user_prompt", "prompt", 0, 0, content=clip(text), model=self.model,
                     payload=clip_payload({k: v for k, v in payload.items() if v is not None}))
        variables = req.variable_data.variables if req.variable_data else []
        for j, var in enumerate(variables[:999]):
            var = as_dict(var)
            if var.get("kind") != "file":
                continue
            self.add("tool_call", "attachment", j, 1 + j, tool_name="attachment",
                     tool_category="file_read", status="ok", file_path=_uri_path(var.get("value")),
                     content=clip(_str(var.get("name"))), payload=clip_payload(var))

    def response(self) -> None:
        req, result = self.req, self.result
        state = _model_state(req)
        cancelled = req.is_canceled is True or state == _CANCELLED
        items = req.response
        texts: list[str] = []
        text_at: int | None = None
        thinking = 0
        for i, item in enumerate(items):
            item = as_dict(item)
            kind = item.get("kind")
            seq = 1000 + 2 * i
            if kind in (None, "markdownContent", "inlineReference"):
                text = _markdown(item)
                if text:
                    texts.append(text)
                    text_at = seq if text_at is None else text_at
            elif kind == "thinking":
                text = _text(item.get("value"))
                if text.strip():
                    thinking += len(text)
                    self.add("reasoning", "reasoning", i, seq, content=clip(text),
                             model=self.model)
            elif kind == "toolInvocationSerialized":
                self.tool(item, i, seq, cancelled)
            elif kind == "textEditGroup":
                added, removed = edit_line_counts(item.get("edits"))
                self.add("tool_call", "text_edit", i, seq, tool_name="textEdit",
                         tool_category="file_edit", status="ok",
                         file_path=_uri_path(item.get("uri")), lines_added=added,
                         lines_removed=removed, payload=clip_payload(item))
        text = "".join(texts)
        if text.strip():
            self.add("assistant_message", "assistant_message", 0, text_at or 1000,
                     content=clip(text), model=self.model)
        end = 1000 + 2 * len(items)
        err = as_dict(result.error_details)
        err_text = _str(err.get("message")) or (_str(err.get("code")) if err else None)
        if cancelled:
            status, stop = "cancelled", "cancelled"
        elif err or state == _FAILED:
            status = "error"
            stop = "content_filter" if err.get("responseIsFiltered") is True else "error"
        else:
            status, stop = "ok", None
        tokens = _reported_tokens(req, result) or _estimate(
            _message_text(req.message), len(text), thinking)
        self.add("llm_call", "llm_call", 0, end + 1, model=self.model, provider=PROVIDER,
                 tokens=tokens,
                 duration_ms=_count(result.timings.total_elapsed if result.timings else None),
                 stop_reason=stop, status=status, payload=clip_payload(as_dict(req.result) or None))
        if status == "error":
            self.add("error", "error", 0, end + 2, model=self.model,
                     error=clip(err_text or "request failed"), payload=clip_payload(err or None))
        if cancelled:
            self.add("decision", "decision", 0, end + 3, status="cancelled",
                     content="request cancelled")

    def tool(self, item: dict, i: int, seq: int, cancelled: bool) -> None:
        name = (_str(item.get("toolId")) or "unknown")[:255]
        call_id = _str(item.get("toolCallId"))
        call_id = call_id[:255] if call_id else None
        ident = call_id or i
        data = as_dict(item.get("toolSpecificData"))
        source = as_dict(item.get("source"))
        category = tool_category(name, _str(source.get("type")), _str(data.get("kind")))
        invocation, past = item.get("invocationMessage"), item.get("pastTenseMessage")
        path = (_message_uri(invocation) or _message_uri(past)
                or _first_path(data.get("values")) or _first_path(item.get("resultDetails")))
        status = _tool_status(item, data, cancelled)
        terminal = as_dict(data.get("terminalCommandState"))
        output = _text(as_dict(data.get("terminalCommandOutput")).get("text")) or _text(
            data.get("result"))
        self.add("tool_call", "tool_call", ident, seq, tool_name=name, tool_category=category,
                 tool_call_id=call_id, file_path=path, command=clip(_command(data)),
                 content=clip(_text(invocation) or None), payload=clip_payload(item))
        self.add("tool_result", "tool_result", ident, seq + 1, tool_name=name,
                 tool_category=category, tool_call_id=call_id, status=status, file_path=path,
                 duration_ms=_count(terminal.get("duration")),
                 content=clip(output or _text(past) or None),
                 payload=clip_payload(item.get("resultDetails")))
        if status == "rejected":
            self.add("decision", "reject", ident, seq + 1, status="rejected", tool_name=name,
                     tool_call_id=call_id, content=f"tool {name} rejected")


# -- fields ----------------------------------------------------------------------------------------


def tool_category(tool_id: str, source_type: str | None = None, data_kind: str | None = None) -> str:
    if source_type == "mcp" or tool_id.startswith("mcp_"):
        return "mcp"
    if tool_id in TOOL_CATEGORIES:
        return TOOL_CATEGORIES[tool_id]
    if data_kind == "terminal":
        return "shell"
    if data_kind == "subagent":
        return "subagent"
    lowered = tool_id.lower()
    for words, category in _TOOL_WORDS:
        if any(w in lowered for w in words):
            return category
    return "other"


def edit_line_counts(edits: Any) -> tuple[int, int]:
    """(added, removed) lines of a ``textEditGroup``'s ``edits`` (a list of edits, or of lists of
    edits as VS Code writes them); see the module doc for the rule."""
    added = removed = 0
    flat = [e for group in as_list(edits) for e in (group if isinstance(group, list) else [group])]
    for edit in flat:
        edit = as_dict(edit)
        added += count_lines(_str(edit.get("text")))
        rng = as_dict(edit.get("range"))
        start, end = _count(rng.get("startLineNumber")), _count(rng.get("endLineNumber"))
        if start is None or end is None or end < start:
            continue
        start_col, end_col = _count(rng.get("startColumn")), _count(rng.get("endColumn"))
        if end == start and start_col is not None and start_col == end_col:
            continue  # an empty range: a pure insertion
        removed += end - start + (0 if end > start and end_col == 1 else 1)
    return min(added, _MAX_COUNT), min(removed, _MAX_COUNT)


def _load(data: bytes, jsonl: bool) -> Session[Any]:
    """The session of a file's bytes; :class:`SkipLine` when there is none. A ``.jsonl`` change
    log is replayed on plain JSON values (its entries patch any path), then converted."""
    try:
        if jsonl:
            return msgspec.convert(load_session(data, jsonl=True), Session[Any])
        session: Session[Any] = _session_decoder.decode(data)
        if session.kind == 0 and session.requests is msgspec.UNSET:
            return msgspec.convert(session.v, Session[Any])  # one change-log line saved as .json
    except (msgspec.DecodeError, RecursionError) as exc:  # also wrong shapes (ValidationError)
        raise SkipLine(f"not a chat session: {exc}") from None
    return session


def _request(value: Any) -> Request | None:
    """A request (raw JSON, or plain JSON from a change log), or None when of another shape."""
    try:
        if isinstance(value, msgspec.Raw):
            return _request_decoder.decode(value)
        return msgspec.convert(value, Request)
    except (msgspec.DecodeError, RecursionError):
        return None


def _result(value: Any) -> Result:
    if not isinstance(value, dict):
        return Result()
    try:
        return msgspec.convert(value, Result)
    except msgspec.ValidationError:  # still done, still its payload; an error still an error
        return Result(error_details=value.get("errorDetails"))


def _is_done(req: Request, later: bool) -> bool:
    state = _model_state(req)
    if state in (_COMPLETE, _CANCELLED, _FAILED):
        return True
    if state is not None:
        return False  # explicitly pending or waiting for input
    return isinstance(req.result, dict) or req.is_canceled is True or later


def _model_state(req: Request) -> int | None:
    state = req.model_state
    return state.value if isinstance(state, ModelState) else state


def _model(req: Request, result: Result) -> str | None:
    model = _str(result.metadata.resolved_model if result.metadata else None) or _str(req.model_id)
    if model and model.startswith("copilot/"):
        model = model[len("copilot/"):]
    return model[:128] if model else None


def _reported_tokens(req: Request, result: Result) -> Tokens | None:
    """Counts Copilot recorded, from the first place that has them: ``result.metadata``
    (``promptTokens``/``outputTokens``), ``result.usage`` (``promptTokens``/``completionTokens``),
    ``result`` itself, or the request's ``usage`` — builds differ in where they write them.
    None when no place has any (the call is then estimated)."""
    for src in (result.metadata, result.usage, result, req.usage):
        if src is None:
            continue
        prompt = _count(src.prompt_tokens)
        output = _count(src.output_tokens)
        if output is None:
            output = _count(src.completion_tokens)
        if prompt is not None or output is not None:
            return Tokens(input=min(prompt or 0, _MAX_COUNT), output=min(output or 0, _MAX_COUNT))
    return None


def _estimate(prompt: str, text_chars: int, thinking_chars: int) -> Tokens:
    """About four characters a token, for requests whose file records no counts."""
    reasoning = -(-thinking_chars // 4)
    return Tokens(input=-(-len(prompt) // 4), output=-(-text_chars // 4) + reasoning,
                  reasoning=reasoning, estimated=True)


def _tool_status(item: dict, data: dict, cancelled: bool) -> str:
    confirmed = item.get("isConfirmed")
    if confirmed is False:
        return "rejected"
    kind = as_dict(confirmed).get("type")
    if kind == _DENIED and not isinstance(kind, bool):
        return "rejected"
    if kind == _SKIPPED:
        return "cancelled"
    if as_dict(item.get("resultDetails")).get("isError") is True:
        return "error"
    exit_code = as_dict(data.get("terminalCommandState")).get("exitCode")
    if isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code != 0:
        return "error"
    if item.get("isComplete") is False:
        return "cancelled" if cancelled else "error"
    return "ok"


def _command(data: dict) -> str | None:
    line = as_dict(data.get("commandLine"))
    for value in (line.get("userEdited"), line.get("toolEdited"), line.get("original"),
                  data.get("command")):
        if isinstance(value, str) and value:
            return value
    return None


def _message_text(message: str | Message | None) -> str:
    if isinstance(message, str):
        return message
    if message is None:
        return ""
    if message.text is not None:
        return message.text
    return "".join(p.text or "" for p in message.parts)


def _markdown(item: dict) -> str:
    kind = item.get("kind")
    if kind == "markdownContent":
        return _text(item.get("content"))
    if kind == "inlineReference":
        name = _str(item.get("name"))
        if not name and (path := _uri_path(item.get("inlineReference"))):
            name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return f"`{name}`" if name else ""
    return _text(item.get("value"))


def _text(value: Any, depth: int = 0) -> str:
    """Text of a string, a markdown string ``{value}``, or a list of those."""
    if isinstance(value, str):
        return value
    if depth > 4:
        return ""
    if isinstance(value, dict):
        return _text(value.get("value"), depth + 1)
    if isinstance(value, list):
        return "".join(_text(v, depth + 1) for v in value)
    return ""


def _uri_path(value: Any, depth: int = 0) -> str | None:
    """The file path of a URI string, a serialized URI (``fsPath``/``path``) or a location."""
    path: str | None = None
    if isinstance(value, str):
        path = uri_to_path(value)
    elif isinstance(value, dict) and depth < 3:
        path = _str(value.get("fsPath")) or _str(value.get("path"))
        if path is not None and _DRIVE.match(path):
            path = path[1:]  # a URI's path of a Windows file: /c:/Users/…
        if path is None:
            path = _uri_path(value.get("uri") or value.get("location") or value.get("external"),
                             depth + 1)
    return path[:4096] if path else None


def _message_uri(message: Any) -> str | None:
    uris = as_dict(message).get("uris")
    if isinstance(uris, dict):
        return _first_path(list(uris.values())) or _first_path(list(uris))
    return _first_path(uris)


def _first_path(values: Any) -> str | None:
    for value in as_list(values)[:100]:
        if path := _uri_path(value):
            return path
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or value < 0 or value > _MAX_COUNT:  # negative or absurd
        return None
    return int(value)
