"""What an adapter is: where an agent keeps its logs, and how one file of them becomes events.

Adapters only parse. Discovery, tailing, cursors, the outbox, redaction and delivery are shared
(``collector.source``, ``collector.outbox``, ``collector.sender``), so a new agent is one module
here plus sample logs.

Two shapes of log exist:

- **lines** (Claude Code, Codex CLI): append-only JSONL. The tailer feeds each *complete* line
  with its byte offset to a :class:`LineParser`; the parser's state is serialised with the file's
  cursor in the same SQLite transaction, so a restart resumes exactly where it stopped.
- **document** (Copilot): a JSON file rewritten as it grows. The tailer hands the whole file to a
  :class:`DocumentParser` with the state it returned last time; the state says what was already
  emitted, so a rewrite sends only what is new.

Event ids are deterministic (:func:`event_id`): the same record always yields the same id, so a
re-read, a replay or a second backfill never creates a duplicate on the server.
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from collector.wire import Event, ProjectRef

EVENT_NAMESPACE = uuid.UUID("5d6f3a8e-2c41-5e0b-9b7e-6465766c6f67")

# Text fields longer than this are cut (with a marker) before they leave the parser; the whole
# record stays reachable in the agent's own file. The server refuses events over 1 MiB.
MAX_TEXT_CHARS = 32_768
MAX_PAYLOAD_BYTES = 65_536


class SkipLine(Exception):
    """A line that cannot be parsed (malformed JSON, wrong shape). Counted and skipped."""


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
_VERSION_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (0x5000 << 64) | (0x8000 << 48)  # version 5, RFC 4122 variant
_new_object, _set_slot, _UNKNOWN = object.__new__, object.__setattr__, uuid.SafeUUID.unknown


def event_id(agent: str, *parts: object) -> uuid.UUID:
    """The deterministic id of an event: UUIDv5 of the agent and the record's native ids.

    The same value as ``uuid.uuid5(EVENT_NAMESPACE, name)``, built without ``UUID.__init__``'s
    argument checks (ids are a fifth of parsing time otherwise); a test holds it equal."""
    name = "\x1f".join((agent, *map(str, parts)))
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    u = _new_object(uuid.UUID)
    _set_slot(u, "int", (int.from_bytes(digest[:16]) & _VERSION_CLEAR) | _VERSION_5)
    _set_slot(u, "is_safe", _UNKNOWN)
    return u


def clip(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [devlog: {len(text) - limit:,} more characters not sent]"


_payload_encoder = msgspec.json.Encoder()


def clip_payload(value: Any) -> Any:
    """The raw record for the timeline, or a marker when it is too large to send."""
    if value is None:
        return None
    size = len(_payload_encoder.encode(value))
    if size <= MAX_PAYLOAD_BYTES:
        return value
    return {"devlogTruncated": True, "bytes": size}


def clip_raw(raw: msgspec.Raw) -> Any:
    """:func:`clip_payload` of a raw JSON value, sized by its bytes (not encoded again)."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        return {"devlogTruncated": True, "bytes": len(raw)}
    try:
        return _payload_decoder.decode(raw)
    except (ValueError, RecursionError):
        return None


_payload_decoder = msgspec.json.Decoder()


def parse_ts(value: Any) -> datetime | None:
    """ISO 8601 text (``Z`` allowed) or epoch milliseconds -> aware datetime, else None."""
    if isinstance(value, str) and value:
        try:
            ts = datetime.fromisoformat(value)  # "Z" included (Python 3.11+)
        except ValueError:
            return None
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def count_lines(text: str | None) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def folder_project(path: str) -> ProjectRef:
    """A project known only by its folder (the default when git is not looked at)."""
    return ProjectRef(path=path)


@dataclass
class Context:
    """What a parser needs from the collector: who this machine is and what a folder is.
    Picklable (worker processes get a copy) when ``project_of`` is."""

    machine: str  # the machine key (collector.machine)
    project_of: Callable[[str], ProjectRef | None] = folder_project


class LineParser(ABC):
    """Turns the complete lines of one JSONL file into events, keeping resumable state."""

    def __init__(self, path: Path, ctx: Context, state: bytes | None = None) -> None:
        self.path = path
        self.ctx = ctx

    @abstractmethod
    def feed(self, line: bytes, offset: int) -> list[Event]:
        """Events of one complete line (without its newline) that starts at byte ``offset``.
        Raise :class:`SkipLine` for a line that cannot be parsed; return [] for one to ignore."""

    def idle(self) -> list[Event]:
        """The file went quiet (or backfill reached its end): close whatever is still open,
        such as an LLM call whose last content block may not have been written yet."""
        return []

    @abstractmethod
    def snapshot(self) -> bytes:
        """The state to store with the cursor; ``__init__(state=…)`` resumes from it."""


class DocumentParser(ABC):
    """Turns a whole JSON document (rewritten as it grows) into the events not yet emitted."""

    def __init__(self, path: Path, ctx: Context, state: bytes | None = None) -> None:
        self.path = path
        self.ctx = ctx

    @abstractmethod
    def parse(self, data: bytes) -> list[Event]:
        """Events of the document that earlier calls (and earlier runs, via the state) did not
        emit. Raise :class:`SkipLine` when the document cannot be parsed at all."""

    @abstractmethod
    def snapshot(self) -> bytes: ...


class Adapter(ABC):
    name: ClassVar[str]  # the agent's name on the wire: claude-code, codex, copilot
    shape: ClassVar[Literal["lines", "document"]]

    @abstractmethod
    def roots(self, env: Mapping[str, str], home: Path) -> list[Path]:
        """Folders that hold (or will hold) this agent's logs on this machine, existing or not."""

    @abstractmethod
    def matches(self, path: Path) -> bool:
        """Whether ``path`` (a file under one of the roots) is a log this adapter reads."""

    @abstractmethod
    def parser(self, path: Path, ctx: Context, state: bytes | None) -> LineParser | DocumentParser:
        """A parser for one file, resumed from ``state`` when given."""


TALLY_WINDOW = 4096  # LLM calls a Tally remembers, to count a call sent again (or copied) once


@dataclass
class Tally:
    """Counts of parsed events, for backfill summaries and tests.

    An LLM call sent again with a higher revision (its usage grew), or found in two files (a
    sub-agent's transcript and its parent's progress echo), is counted once with its most
    complete usage when its versions come within the last ``TALLY_WINDOW`` calls counted."""

    sessions: set[str] = field(default_factory=set)
    kinds: dict[str, int] = field(default_factory=dict)
    llm_calls: int = 0
    tokens: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("input", "output", "cache_read", "cache_write", "reasoning"), 0))
    # id -> (revision, tokens by bucket) of the LLM calls counted last
    calls: OrderedDict[uuid.UUID, tuple[int, tuple[int, ...]]] = field(
        default_factory=OrderedDict, repr=False, compare=False)

    @classmethod
    def of(cls, events: list[Event]) -> Tally:
        tally = cls()
        tally.add(events)
        return tally

    def merge(self, other: Tally) -> None:
        self.sessions |= other.sessions
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        self.llm_calls += other.llm_calls
        for bucket, n in other.tokens.items():
            self.tokens[bucket] += n
        for eid, (revision, tokens) in other.calls.items():
            mine = self.calls.get(eid)
            if mine is not None:  # counted by both: once, with the higher revision's tokens
                self.llm_calls -= 1
                self.kinds["llm_call"] -= 1
                self._count(mine[1] if mine[0] <= revision else tokens, -1)
                if revision < mine[0]:
                    revision, tokens = mine
            self._remember(eid, revision, tokens)

    def add(self, events: list[Event]) -> None:
        for e in events:
            self.sessions.add(e.session)
            if e.kind == "llm_call":
                tokens = tuple(getattr(e.tokens, b) for b in self.tokens) if e.tokens \
                    else (0,) * len(self.tokens)
                seen = self.calls.get(e.id)
                if seen is None:
                    self.llm_calls += 1
                    self.kinds["llm_call"] = self.kinds.get("llm_call", 0) + 1
                    self._count(tokens, 1)
                elif e.revision > seen[0]:  # the same call with more usage: the difference
                    self._count(seen[1], -1)
                    self._count(tokens, 1)
                else:
                    continue  # a copy counted already
                self._remember(e.id, e.revision, tokens)
                continue
            self.kinds[e.kind] = self.kinds.get(e.kind, 0) + 1

    def _count(self, tokens: tuple[int, ...], sign: int) -> None:
        for bucket, n in zip(self.tokens, tokens):
            self.tokens[bucket] += sign * n

    def _remember(self, eid: uuid.UUID, revision: int, tokens: tuple[int, ...]) -> None:
        self.calls[eid] = (revision, tokens)
        self.calls.move_to_end(eid)
        while len(self.calls) > TALLY_WINDOW:
            self.calls.popitem(last=False)


def parse_file(adapter: Adapter, path: Path, ctx: Context) -> list[Event]:
    """All events of one file read start to end (backfill of a finished file; tests)."""
    data = path.read_bytes()
    parser = adapter.parser(path, ctx, None)
    if isinstance(parser, DocumentParser):
        return parser.parse(data)
    events: list[Event] = []
    offset = 0
    while True:
        end = data.find(b"\n", offset)
        if end < 0:
            break  # an unfinished last line waits for its newline
        line = data[offset:end]
        if line.strip():
            try:
                events.extend(parser.feed(line, offset))
            except SkipLine:
                pass
        offset = end + 1
    events.extend(parser.idle())
    return events
