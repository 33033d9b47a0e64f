"""Charts as server-rendered SVG: no chart library, no script, nothing to load. Colours come
from CSS classes (``series-0`` …), so light and dark themes style them; every bar has a
``<title>`` (the browser's tooltip) with its exact value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

from markupsafe import Markup, escape


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def stacked_columns(columns: Sequence[tuple[datetime, dict[str, float]]], series: Sequence[str], *,
                    label: Callable[[datetime], str], unit: str = "", height: int = 160,
                    width: int = 720, title: str = "", fmt: Callable[[float], str] = _fmt,
                    axis: Callable[[float], str] | None = None,
                    tooltip: Callable[[datetime], str] | None = None) -> Markup:
    """One column per time bucket, stacked by series; x labels every few columns. ``fmt``
    formats a value in a tooltip, ``axis`` a grid line's value, ``tooltip`` a bucket's time
    (default: ``label``)."""
    axis = axis or _short
    tooltip = tooltip or label
    n = max(len(columns), 1)
    top = max((sum(v.values()) for _t, v in columns), default=0) or 1
    pad_left, pad_bottom, pad_top = 44, 18, 10
    plot_w, plot_h = width - pad_left, height - pad_bottom - pad_top
    step = plot_w / n
    bar = max(step * 0.72, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for frac in (0.5, 1.0):  # grid lines with their values
        y = pad_top + plot_h - plot_h * frac
        parts.append(f'<line class="grid" x1="{pad_left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(axis(top * frac))}</text>')
    every = max(1, n // 8)
    for i, (t, values) in enumerate(columns):
        x = pad_left + i * step + (step - bar) / 2
        y = float(pad_top + plot_h)
        for s, name in enumerate(series):
            v = values.get(name, 0)
            if not v:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(
                f'<rect class="series-{s % 8}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0.5):.1f}"><title>{escape(tooltip(t))} · {escape(name)}: '
                f'{escape(fmt(v))}{escape(unit)}</title></rect>')
        if i % every == 0:
            parts.append(f'<text class="axis" x="{x + bar / 2:.1f}" y="{height - 4}" '
                         f'text-anchor="middle">{escape(label(t))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[str]) -> Markup:
    """The key to a chart's series, in the chart's colours (``k0`` … ``k7``)."""
    items = "".join(f'<span><i class="k{i % 8}"></i>{escape(name)}</span>'
                    for i, name in enumerate(series))
    return Markup(f'<div class="legend">{items}</div>')


def line(points: Sequence[tuple[datetime, float | None]], *, label: Callable[[datetime], str],
         tooltip: Callable[[datetime], str] | None = None, height: int = 120, width: int = 720,
         title: str = "", percent: bool = True) -> Markup:
    """A line over time buckets (None: no value, a gap), with a dot and tooltip per value; y
    from 0 to 100 % (``percent``) or to the largest value."""
    tooltip = tooltip or label
    n = max(len(points), 1)
    values = [v for _t, v in points if v is not None]
    top = 1.0 if percent else (max(values, default=0) or 1)
    pad_left, pad_bottom, pad_top = 44, 18, 8
    plot_w, plot_h = width - pad_left, height - pad_bottom - pad_top
    step = plot_w / n

    def show(v: float) -> str:
        return f"{100 * v:.0f} %" if percent else _short(v)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for frac in (0.0, 0.5, 1.0):
        y = pad_top + plot_h - plot_h * frac
        parts.append(f'<line class="grid" x1="{pad_left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(show(top * frac))}</text>')
    segments: list[list[str]] = [[]]
    dots = []
    every = max(1, n // 8)
    for i, (t, v) in enumerate(points):
        x = pad_left + i * step + step / 2
        if v is None:
            segments.append([])
        else:
            y = pad_top + plot_h - plot_h * min(v / top, 1.0)
            segments[-1].append(f"{x:.1f},{y:.1f}")
            dots.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                        f'<title>{escape(tooltip(t))}: {escape(show(v))}</title></circle>')
        if i % every == 0:
            parts.append(f'<text class="axis" x="{x:.1f}" y="{height - 4}" '
                         f'text-anchor="middle">{escape(label(t))}</text>')
    parts += [f'<polyline class="line" points="{" ".join(seg)}"/>' for seg in segments if len(seg) > 1]
    parts += dots
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[float], *, height: int = 40, width: int = 240, title: str = "",
              labels: Sequence[str] | None = None) -> Markup:
    n = max(len(values), 1)
    top = max(values, default=0) or 1
    step = width / n
    head = (f'<svg class="spark" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
            f'role="img" aria-label="{escape(title)}">')
    parts = [head]
    for i, v in enumerate(values):
        h = (height - 2) * v / top
        tip = f"{labels[i]}: {_fmt(v)}" if labels else _fmt(v)
        parts.append(f'<rect class="series-0" x="{i * step:.1f}" y="{height - max(h, 1):.1f}" '
                     f'width="{max(step - 1, 0.5):.1f}" height="{max(h, 1):.1f}">'
                     f'<title>{escape(tip)}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(v: float) -> str:
    """An axis value in a few characters: 1.2k, 3.4M, 5.6B, 7.8T (beyond: 1.2e+15)."""
    if not math.isfinite(v):
        return "–"
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= limit:
            scaled = v / limit
            return f"{scaled:.1f}{suffix}" if scaled < 1000 else f"{v:.1e}"
    return f"{v:.0f}"
