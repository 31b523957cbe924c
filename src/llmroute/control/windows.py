"""Calendar windows of limits: the minute, hour, day, ISO week (from Monday) or month that contains
an instant, in the configured time zone, so a daily budget resets at local midnight and a monthly
one on the 1st, daylight-saving changes included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..settings import Window


@dataclass(frozen=True)
class Span:
    """One window: [start, end) as aware UTC datetimes."""

    start: datetime
    end: datetime

    @property
    def tag(self) -> str:
        """A short, unique id of the window (its start, UTC, to the second)."""
        return self.start.strftime("%Y%m%dT%H%M%S")

    def left_s(self, now: datetime) -> float:
        """Seconds from `now` until the window ends."""
        return max(0.0, (self.end - now).total_seconds())


def span(window: Window, now: datetime, zone: ZoneInfo) -> Span:
    """The window of kind `window` that contains `now` (aware), in time zone `zone`."""
    if window == "minute":
        start = now.astimezone(UTC).replace(second=0, microsecond=0)
        return Span(start, start + timedelta(minutes=1))
    if window == "hour":  # local hours (a zone offset by :30 or :45 starts them there)
        start = now.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return Span(start, start + timedelta(hours=1))
    today = now.astimezone(zone).date()
    if window == "day":
        first, after = today, today + timedelta(days=1)
    elif window == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return Span(_midnight(first, zone), _midnight(after, zone))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
