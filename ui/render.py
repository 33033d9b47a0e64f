"""The Jinja environment of the dashboard and the filters its templates use.

Everything that comes from an agent's log is untrusted text: templates autoescape, and the only
filters that return markup build it themselves from escaped parts (``when``, ``diff``) or from
markdown rendered with raw HTML disabled (``markdown``: markdown-it in CommonMark mode with
``html=False``; link targets other than http(s)/mailto/relative are dropped).
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ui import TEMPLATES_DIR

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable("table").enable("strikethrough")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _validate_link(url: str) -> bool:
    lowered = url.strip().lower()
    return ":" not in lowered.split("/", 1)[0] or lowered.startswith(_SAFE_SCHEMES)


_md.validateLink = _validate_link


def markdown(text: str | None) -> Markup:
    if not text:
        return Markup("")
    return Markup(_md.render(text))


def num(value: float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def compact(value: float | None) -> str:
    """1,234 → 1.2k; 3,400,000 → 3.4M (exact value belongs in a title)."""
    if value is None:
        return "–"
    n = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            scaled = n / limit
            return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{int(n):,}"


def duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


def span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "–"
    return duration((end - start).total_seconds() * 1000)


def when(value: datetime | None, relative: bool = True) -> Markup:
    """A <time> element: UTC text without JavaScript; app.js shows it relative ("3 min ago")
    with the exact time in the viewer's zone on hover."""
    if value is None:
        return Markup("–")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        utc.isoformat(), text, Markup(' data-relative') if relative else Markup(""), text)


def clock(value: datetime | None) -> Markup:
    """Time of day, for timelines (app.js: the viewer's zone)."""
    if value is None:
        return Markup("–")
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}" data-clock>{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC", utc.strftime("%H:%M:%S"))


def pretty_json(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def payload(value: str | None) -> dict:
    """The stored payload (JSON text) as a dict for templates; {} when it is not an object."""
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def diff(old: str | None, new: str | None, context: int = 3) -> Markup:
    """A unified diff of an edit as escaped, classed lines."""
    lines = difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(),
                                 lineterm="", n=context)
    out = []
    for line in list(lines)[2:]:  # skip the ---/+++ header
        cls = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
        out.append(Markup('<span class="d-{}">{}</span>').format(cls, line))
    return Markup("\n").join(out)


def short(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(value: float | None) -> Markup:
    """US dollars; None (no price known for some call) is a dash with a tooltip."""
    if value is None:
        return Markup('<span class="unpriced" title="no price known">—</span>')
    exact = f"${value:,.6f}".rstrip("0").rstrip(".")
    if value == 0 or abs(value) >= 0.01:
        text = f"${value:,.2f}"
    else:
        text = "<$0.01"
    return Markup('<span title="{}">{}</span>').format(exact, text)


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(markdown=markdown, num=num, compact=compact, duration=duration,
                       when=when, clock=clock, pretty_json=pretty_json, payload=payload,
                       diff=diff, short=short, span=span, percent=percent, money=money)
    env.globals.update(escape=escape, priced_as=_priced_as)
    return env


def _priced_as(model: object) -> str | None:
    """The model a user's price alias prices ``model`` as (the book the page's handler
    refreshed), or None."""
    from app.services.prices import priced_as

    return priced_as(model) if isinstance(model, str) else None
