"""Session rollups kept by ingest: what a batch's records add to each session (counts, token
buckets, cost, first/last time, end, title, models, files), as statement arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from app.ingest.records import (I_ADDED, I_CONTENT, I_COST, I_FILE, I_KIND, I_MODEL, I_REMOVED,
                                I_SESSION, I_STATUS, I_T_CR, I_T_CW, I_T_IN, I_T_OUT, I_T_RE, I_TS)

TITLE_MAX = 120
_encode = msgspec.json.encode


@dataclass(slots=True)
class SessionRollup:
    """What one batch adds to one session."""

    events: int
    prompts: int
    llm_calls: int
    tool_calls: int
    tool_errors: int
    tokens_input: int
    tokens_output: int
    tokens_cache_read: int
    tokens_cache_write: int
    tokens_reasoning: int
    cost: float | None
    first_ts: datetime | None
    last_ts: datetime | None
    ended_at: datetime | None
    title: str | None
    title_ts: datetime | None
    models: str  # JSON array, sorted
    new_files: int = 0  # paths new to session_file (set for sessions new to the database)


EMPTY = SessionRollup(events=0, prompts=0, llm_calls=0, tool_calls=0, tool_errors=0,
                      tokens_input=0, tokens_output=0, tokens_cache_read=0, tokens_cache_write=0,
                      tokens_reasoning=0, cost=None, first_ts=None, last_ts=None, ended_at=None,
                      title=None, title_ts=None, models="[]")


def rollup(records: list[tuple], files: dict[tuple[str, str], list]) -> SessionRollup:
    """One session's new records (in id order) → its rollup; adds its files to ``files``."""
    cols = list(zip(*records))
    ts, kinds, status = cols[I_TS], cols[I_KIND], cols[I_STATUS]
    ended = None
    if "session_end" in kinds:
        ended = max(t for t, k in zip(ts, kinds) if k == "session_end")
    title = title_ts = None
    if "user_prompt" in kinds:
        for t, k, content in zip(ts, kinds, cols[I_CONTENT]):
            if k == "user_prompt" and content:
                prompt = content[:500].strip()
                if prompt and (title_ts is None or t < title_ts):
                    title, title_ts = prompt, t
    models: set[str] = set()
    if "llm_call" in kinds:
        models = {m for m, k in zip(cols[I_MODEL], kinds) if m and k == "llm_call"}
    tool_errors = 0
    if "error" in status:
        tool_errors = sum(1 for s, k in zip(status, kinds)
                          if s == "error" and (k == "tool_call" or k == "tool_result"))
    cost = None
    for c in cols[I_COST]:
        if c is not None:
            cost = (cost or 0.0) + float(c)
    paths = cols[I_FILE]
    if paths.count(None) != len(paths):
        sid = records[0][I_SESSION]
        for path, t, added, removed in zip(paths, ts, cols[I_ADDED], cols[I_REMOVED]):
            if path:
                key = (sid, path)
                f = files.get(key)
                if f is None:
                    files[key] = [t, t, 1, added or 0, removed or 0]
                else:
                    f[0] = min(f[0], t)
                    f[1] = max(f[1], t)
                    f[2] += 1
                    f[3] += added or 0
                    f[4] += removed or 0
    return SessionRollup(
        events=len(records), prompts=kinds.count("user_prompt"),
        llm_calls=kinds.count("llm_call"), tool_calls=kinds.count("tool_call"),
        tool_errors=tool_errors,
        tokens_input=sum(filter(None, cols[I_T_IN])), tokens_output=sum(filter(None, cols[I_T_OUT])),
        tokens_cache_read=sum(filter(None, cols[I_T_CR])),
        tokens_cache_write=sum(filter(None, cols[I_T_CW])),
        tokens_reasoning=sum(filter(None, cols[I_T_RE])),
        cost=cost, first_ts=min(ts), last_ts=max(ts), ended_at=ended,
        title=shorten(title) if title else None, title_ts=title_ts,
        models=_encode(sorted(models)).decode(),
    )


def earliest_title(prompts: list[tuple[datetime, str | None]]) -> str | None:
    """The title ``rollup`` takes from these (time, content) prompts: the earliest one with
    text, shortened."""
    title = title_ts = None
    for t, content in prompts:
        if content:
            prompt = content[:500].strip()
            if prompt and (title_ts is None or t < title_ts):
                title, title_ts = prompt, t
    return shorten(title) if title else None


def shorten(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1].rstrip() + "…"


def file_columns(files: dict[tuple[str, str], list]) -> tuple:
    """session_file rows (session, path, first_ts, last_ts, touches, lines added, removed), in
    key order."""
    keys = sorted(files)
    return ([k[0] for k in keys], [k[1] for k in keys],
            *([files[k][i] for k in keys] for i in range(5)))


def rollup_args(rollups: dict[str, SessionRollup]) -> tuple:
    """ROLLUP's $8–$25: the sessions' rollups, in id order."""
    ids = sorted(rollups)
    rs = [rollups[i] for i in ids]
    return (ids, *rollup_columns(rs, with_files=False, with_title_ts=True))


def rollup_columns(rs: list[SessionRollup], *, with_files: bool, with_title_ts: bool) -> list[list]:
    return [
        [r.events for r in rs], [r.prompts for r in rs], [r.llm_calls for r in rs],
        [r.tool_calls for r in rs], [r.tool_errors for r in rs],
        *([[r.new_files for r in rs]] if with_files else []),
        [r.tokens_input for r in rs], [r.tokens_output for r in rs],
        [r.tokens_cache_read for r in rs], [r.tokens_cache_write for r in rs],
        [r.tokens_reasoning for r in rs], [r.cost for r in rs], [r.title for r in rs],
        *([[r.title_ts for r in rs]] if with_title_ts else []),
        [r.first_ts for r in rs], [r.last_ts for r in rs], [r.ended_at for r in rs],
        [r.models for r in rs],
    ]
