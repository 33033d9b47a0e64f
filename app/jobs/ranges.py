"""Time ranges of whole hours and days, merged: the units the rollup job replaces."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def floor(t: datetime, unit: timedelta) -> datetime:
    t = t.astimezone(UTC)
    if unit == DAY:
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t.replace(minute=0, second=0, microsecond=0)


def ceil(t: datetime, unit: timedelta) -> datetime:
    f = floor(t, unit)
    return f if f == t else f + unit


def merge(starts: Iterable[datetime], unit: timedelta) -> tuple[list[datetime], list[datetime]]:
    """Unit-aligned starts (any order, repeats allowed) → merged ranges as (starts, ends)."""
    out_a: list[datetime] = []
    out_b: list[datetime] = []
    for s in sorted({floor(t, unit) for t in starts}):
        if out_b and out_b[-1] == s:
            out_b[-1] = s + unit
        else:
            out_a.append(s)
            out_b.append(s + unit)
    return out_a, out_b


def days_of(starts: list[datetime], ends: list[datetime]) -> tuple[list[datetime], list[datetime]]:
    """The whole UTC days covering hour ranges, merged."""
    days: list[datetime] = []
    for a, b in zip(starts, ends, strict=True):
        d = floor(a, DAY)
        while d < b:
            days.append(d)
            d += DAY
    return merge(days, DAY)
