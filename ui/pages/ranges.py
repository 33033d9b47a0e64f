"""The time-range picker the usage and tools pages share: ``range`` (24h, 7d, 30d, 90d or
custom) with ``since``/``until`` dates for a custom range (inclusive, in the viewer's zone), the
bucket that fits the range, the buckets' starts and their labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PRESETS = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days"}
DEFAULT = "7d"
MAX_DAYS = 731
HOUR = timedelta(hours=1)


class BadParameter(ValueError):
    """A query parameter the page cannot use; the message is shown to the viewer (HTTP 400)."""


FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)  # a day more still fits a datetime


def _date(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadParameter(f"`{name}` must be a date such as 2025-01-31, not {value[:40]!r}.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadParameter(f"`{name}` must be a date between {FIRST_DAY} and {LAST_DAY}, not {day}.")
    return day


def _local_midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), zone).astimezone(UTC)


@dataclass(frozen=True)
class Range:
    key: str  # a preset or "custom"
    since: datetime  # UTC
    until: datetime  # UTC, exclusive
    tz: str
    first_day: date  # the dates a custom range would show (the date inputs' values)
    last_day: date

    @property
    def bucket(self) -> str:
        span = self.until - self.since
        return "hour" if span <= timedelta(days=2) else "day" if span <= timedelta(days=120) else "week"

    @property
    def title(self) -> str:
        if self.key in PRESETS:
            return PRESETS[self.key]
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"

    def query(self) -> dict[str, str]:
        """The URL parameters that name this range."""
        if self.key == "custom":
            return {"range": "custom", "since": self.first_day.isoformat(),
                    "until": self.last_day.isoformat()}
        return {"range": self.key}

    def starts(self) -> list[datetime]:
        """Every bucket's start (UTC) in [since, until), as date_trunc in the zone gives them."""
        zone = ZoneInfo(self.tz)
        out: list[datetime] = []
        if self.bucket == "hour":
            t = self.since.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            while t < self.until:
                out.append(t)
                t += HOUR
            return out
        d = self.since.astimezone(zone).date()
        step = timedelta(days=1)
        if self.bucket == "week":
            d -= timedelta(days=d.weekday())  # ISO weeks start on Monday, as date_trunc's
            step = timedelta(days=7)
        while (t := _local_midnight(d, zone)) < self.until:
            out.append(t)
            d += step
        return out

    def label(self, t: datetime) -> str:
        """A bucket's label in the viewer's zone."""
        local = t.astimezone(ZoneInfo(self.tz))
        if self.bucket == "hour":
            return local.strftime("%H:00") if self.until - self.since <= timedelta(hours=25) \
                else local.strftime("%a %H:00")
        if self.bucket == "week":
            return "wk " + local.strftime("%d %b")
        return local.strftime("%d %b")

    def long_label(self, t: datetime) -> str:
        local = t.astimezone(ZoneInfo(self.tz))
        if self.bucket == "hour":
            return local.strftime("%Y-%m-%d %H:00")
        if self.bucket == "week":
            return "week of " + local.strftime("%Y-%m-%d")
        return local.strftime("%a %Y-%m-%d")


def parse(range_: str, since: str, until: str, tz: str, now: datetime | None = None) -> Range:
    """The range named by the query parameters; ``BadParameter`` with a readable message."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    key = range_ or DEFAULT
    if key == "24h":
        start = now.replace(minute=0, second=0, microsecond=0) - 23 * HOUR
        return Range(key, start, now, tz, start.astimezone(zone).date(), today)
    if key in PRESETS:
        days = int(key[:-1])
        first = today - timedelta(days=days - 1)
        return Range(key, _local_midnight(first, zone), now, tz, first, today)
    if key != "custom":
        raise BadParameter(f"Unknown range {key[:40]!r}: use 24h, 7d, 30d, 90d or custom "
                           "(with since and until dates).")
    first = _date(since, "since") if since else today - timedelta(days=6)
    last = _date(until, "until") if until else max(first, today)
    if last < first:
        raise BadParameter(f"The range ends ({last}) before it starts ({first}).")
    if (last - first).days >= MAX_DAYS:
        raise BadParameter(f"The range is longer than {MAX_DAYS} days.")
    start, end = _local_midnight(first, zone), _local_midnight(last + timedelta(days=1), zone)
    if start < now < end:  # nothing after now: the last bucket ends with the data
        end = now
    return Range("custom", start, end, tz, first, last)
