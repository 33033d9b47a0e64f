"""A batch's events as COPY records (``EVENT_COLUMNS`` order), LLM calls priced on the way.

A record is a tuple; the ``I_*`` constants are the positions the other ingest modules read.
"""

from __future__ import annotations

from operator import itemgetter

import msgspec

from app.ingest.statements import EVENT_COLUMNS
from app.pricing.book import EMPTY as _NO_PRICES
from app.pricing.book import PriceBook
from app.pricing.cost import call_cost
from collector.wire import Event

(I_ID, I_TS, I_SESSION, I_KIND, I_AGENT, I_MODEL, I_T_IN, I_T_OUT, I_T_CR, I_T_CW, I_T_RE, I_COST,
 I_STATUS, I_FILE, I_ADDED, I_REMOVED, I_CONTENT, I_REVISION) = (EVENT_COLUMNS.index(c) for c in (
    "id", "ts", "session_id", "kind", "agent", "model", "tokens_input", "tokens_output",
    "tokens_cache_read", "tokens_cache_write", "tokens_reasoning", "cost_usd", "status",
    "file_path", "lines_added", "lines_removed", "content", "revision"))


class PreparedEvent(msgspec.Struct, gc=False):
    """A validated event with its id as 32 lowercase hex digits, its session id (text,
    ``identity.session_key``) and its payload already encoded as JSON text.

    Like the event structs it is untracked by the garbage collector (a tuple holding a struct
    stays tracked): a batch's thousands of them would otherwise survive into the oldest
    generation and bring on full collections.
    """

    event: Event
    id: str
    session_id: str
    payload_json: str | None


_by_id = itemgetter(I_ID)
_NO_TOKENS = (None, None, None, None, None, None, None, False)


def event_records(events: list[PreparedEvent], book: PriceBook = _NO_PRICES,
                  ) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """The COPY records (``EVENT_COLUMNS`` order) sorted by id, and the same records grouped
    by session (each group in id order). LLM calls without a reported cost are priced with
    ``book``.

    UUIDs are given as text (asyncpg parses it in C; a ``uuid.UUID`` costs it a Python-level
    ``.bytes`` call): 32 hex digits for the id, whose order is the id's order.
    """
    records = []
    append = records.append
    resolve = book.resolve
    for p in events:
        e, payload_json = p.event, p.payload_json
        t = e.tokens
        fp, cmd, content, err = e.file_path, e.command, e.content, e.error
        cost = e.cost_usd
        if cost is not None:
            source: str | None = "reported"
        elif e.kind == "llm_call":
            m = resolve(e.model, e.provider)
            price = m.price_at(e.ts) if m is not None else None
            if price is None:
                source = "unpriced"
            else:
                source = "computed"
                cost = (call_cost(price, t.input, t.output, t.cache_read, t.cache_write,
                                  t.cache_write_1h, t.reasoning) if t is not None else 0.0)
        else:
            source = None
        append((
            p.id, e.ts, p.session_id, e.seq, e.kind, e.agent, e.model, e.provider,
            *((t.input, t.output, t.cache_read, t.cache_write, t.cache_write_5m, t.cache_write_1h,
               t.reasoning, t.estimated) if t is not None else _NO_TOKENS),
            cost, source, e.duration_ms,
            e.stop_reason, e.tool_name, e.tool_category, e.tool_call_id, e.status,
            fp,
            e.lines_added, e.lines_removed,
            cmd, content, err,  # NUL-free: app.ingest.bounds cleaned every text field
            payload_json, e.revision,
        ))
    records.sort(key=_by_id)
    return records, group(records)


def group(records: list[tuple]) -> dict[str, list[tuple]]:
    """Records by session (each group in the records' order)."""
    groups: dict[str, list[tuple]] = {}
    for r in records:
        key = r[I_SESSION]
        g = groups.get(key)
        if g is None:
            groups[key] = [r]
        else:
            g.append(r)
    return groups
