"""The Jinja environment of the dashboard and the filters its templates use.

Everything that comes from an agent's log is untrusted text: templates autoescape, and the only
filters that return markup build it themselves from escaped parts (``when``, ``diff``) or from
markdown rendered with raw HTML disabled (``markdown``: markdown-it in CommonMark mode with
``html=False``; link targets other than http(s)/mailto/relative are dropped).

Every filter accepts whatever the database holds, never raising: any JSON where a payload field
is expected (``{"old_string": 5}``), numbers at the ends of their columns, non-finite floats,
timestamps from year 1 to 9999 and PostgreSQL's ``±infinity`` (asyncpg returns those as naive
``datetime.min``/``max``; :func:`aware` treats them as UTC). Texts too long to render as markdown
quickly are shown as plain text.
"""

from __future__ import annotations

import difflib
import json
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ui import TEMPLATES_DIR

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable("table").enable("strikethrough")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
MARKDOWN_MAX_CHARS = 32_768  # beyond this, plain text (markdown-it takes ~1 s per 100 KB of some inputs)
DIFF_MAX_LINES = 5_000  # per side; longer edits are cut (with a note)


def _validate_link(url: str) -> bool:
    lowered = url.strip().lower()
    return ":" not in lowered.split("/", 1)[0] or lowered.startswith(_SAFE_SCHEMES)


_md.validateLink = _validate_link


def text_of(value: Any) -> str:
    """A value as text: strings as they are, anything else (a JSON number, list, object where
    text was expected) as its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)


def markdown(text: Any) -> Markup:
    text = text_of(text)
    if not text:
        return Markup("")
    if len(text) > MARKDOWN_MAX_CHARS:
        return Markup('<pre class="md-plain">{}</pre>').format(text)
    try:
        return Markup(_md.render(text))
    except RecursionError:  # pathological nesting
        return Markup('<pre class="md-plain">{}</pre>').format(text)


def _finite(value: Any) -> float | None:
    """The value as a finite float, or None."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return f"{value:,}"
        except ValueError:  # more digits than Python converts
            return "–"
    f = _finite(value)
    if f is None:
        return "–"
    return f"{f:,.0f}" if f.is_integer() else f"{f:,.2f}"


def compact(value: Any) -> str:
    """1,234 → 1.2k; 3,400,000 → 3.4M (exact value belongs in a title)."""
    if value is None:
        return "–"
    n = _finite(value)
    if n is None:
        return "–"
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            scaled = n / limit
            return f"{scaled:.1f}{suffix}" if abs(scaled) < 100 else f"{scaled:,.0f}{suffix}"
    return f"{n:,.0f}"


def duration(ms: Any) -> str:
    if ms is None:
        return "–"
    value = _finite(ms)
    if value is None:
        return "–"
    if value < 0:
        return "−" + duration(-value)
    if value < 1000:
        return f"{value:.0f} ms"
    s = value / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d:,} d {h} h"


def aware(value: datetime) -> datetime:
    """A stored time with its zone: asyncpg returns PostgreSQL's -infinity/infinity as naive
    ``datetime.min``/``datetime.max``, every other timestamptz in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _utc(value: datetime) -> datetime:
    value = aware(value)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # an offset at the end of the range
        return value


def _iso(value: datetime, sep: str = "T", timespec: str = "auto") -> str:
    """ISO text with a four-digit year (strftime's %Y writes year 1 as "1")."""
    return value.replace(tzinfo=None).isoformat(sep=sep, timespec=timespec)


def span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "–"
    return duration((aware(end) - aware(start)).total_seconds() * 1000)


def when(value: datetime | None, relative: bool = True) -> Markup:
    """A <time> element: UTC text without JavaScript; app.js shows it relative ("3 min ago")
    with the exact time in the viewer's zone on hover."""
    if value is None:
        return Markup("–")
    utc = _utc(value)
    text = _iso(utc, " ", "seconds") + " UTC"
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        _iso(utc) + "+00:00", text, Markup(' data-relative') if relative else Markup(""), text)


def clock(value: datetime | None) -> Markup:
    """Time of day, for timelines (app.js: the viewer's zone)."""
    if value is None:
        return Markup("–")
    utc = _utc(value)
    return Markup('<time datetime="{}" title="{}" data-clock>{}</time>').format(
        _iso(utc) + "+00:00", _iso(utc, " ", "milliseconds") + " UTC", _iso(utc, timespec="seconds")[11:])


def pretty_json(value: Any) -> str:
    """Stored JSON text (or a value), indented; the text as it is when it cannot be parsed."""
    if value is None:
        return ""
    if not isinstance(value, str | bytes):
        value = text_of(value)
    try:
        out = msgspec.json.format(value, indent=2)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested deeper than msgspec goes
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return out if isinstance(out, str) else out.decode()


def payload(value: Any) -> dict:
    """The stored payload (JSON text) as a dict for templates; {} when it is not an object
    (or cannot be read back: nested too deep, or numbers longer than Python converts)."""
    if isinstance(value, dict):
        return value
    if not value or not isinstance(value, str | bytes):
        return {}
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _lines(value: Any) -> tuple[list[str], int]:
    lines = (value if isinstance(value, str) else pretty_json(text_of(value))).splitlines()
    return lines[:DIFF_MAX_LINES], max(0, len(lines) - DIFF_MAX_LINES)


def diff(old: Any, new: Any, context: int = 3) -> Markup:
    """A unified diff of an edit as escaped, classed lines. Either side may be any JSON value
    (shown as its JSON) or missing."""
    (a, cut_a), (b, cut_b) = _lines(old), _lines(new)
    lines = difflib.unified_diff(a, b, lineterm="", n=context)
    out = []
    for line in list(lines)[2:]:  # skip the ---/+++ header
        cls = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
        out.append(Markup('<span class="d-{}">{}</span>').format(cls, line))
    if cut_a or cut_b:
        out.append(Markup('<span class="d-hunk">… {} more lines before and {} after the edit '
                          'not compared</span>').format(num(cut_a), num(cut_b)))
    return Markup("\n").join(out)


def short(text: Any, limit: int = 120) -> str:
    text = text_of(text)
    if not text:
        return ""
    text = " ".join(text[: limit * 4].split())  # bounded work for a huge text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(value: Any) -> Markup:
    """US dollars; None (no price known for some call) is a dash with a tooltip."""
    if value is None:
        return Markup('<span class="unpriced" title="no price known">—</span>')
    f = _finite(value)
    if f is None:
        return Markup('<span class="unpriced" title="not a number">—</span>')
    exact = f"${f:,.6f}".rstrip("0").rstrip(".")
    if f == 0 or abs(f) >= 0.01:
        text = f"${f:,.2f}"
    else:
        text = "<$0.01"
    return Markup('<span title="{}">{}</span>').format(exact, text)


def dollars(value: Any, places: int = 2) -> str:
    """``$1.23`` (``–`` when unknown or not a number): a cost without the tooltip markup."""
    f = _finite(value)
    return "–" if f is None else f"${f:,.{places}f}"


def percent(part: Any, whole: Any) -> str:
    p, w = _finite(part), _finite(whole)
    if p is None or not w:
        return "–"
    ratio = _finite(100 * p / w)
    return "–" if ratio is None else f"{ratio:.0f} %"


_ITEM_FALLBACK = ('<li id="{}-{}" class="ev render-error"><div class="body err">This event could not '
                  'be shown (reference {}; the details are in the server’s log).</div></li>')


def render_item(env: Environment, name: str, prefix: str, e: Any, **context: Any) -> Markup:
    """One timeline or feed item (``e`` an event); if it cannot be rendered, a placeholder
    with a log reference instead, so one event never costs the page its neighbours."""
    try:
        return Markup(env.get_template(name).render(e=e, **context))
    except Exception as exc:  # noqa: BLE001 - any failure of one item
        from app.http_errors import log_error

        ref = log_error(f"rendering event {getattr(e, 'id', '?')} ({name})", exc)
        return Markup(_ITEM_FALLBACK).format(prefix, getattr(e, "id", ""), ref)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(markdown=markdown, num=num, compact=compact, duration=duration,
                       when=when, clock=clock, pretty_json=pretty_json, payload=payload,
                       diff=diff, short=short, span=span, percent=percent, money=money,
                       dollars=dollars, text=text_of)
    env.globals.update(escape=escape, priced_as=_priced_as)
    env.globals.update(render_event=lambda name, prefix, e, **ctx: render_item(env, name, prefix, e, **ctx))
    return env


def _priced_as(model: object) -> str | None:
    """The model a user's price alias prices ``model`` as (the book the page's handler
    refreshed), or None."""
    from app.services.prices import priced_as

    return priced_as(model) if isinstance(model, str) else None
