"""Parsing the report window's bounds (`--since`, `--until`): a duration back from now or a time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime) -> datetime:
    """`text` as an aware UTC datetime.

    - a duration `<n><unit>` (units s, m, h, d, w: 30m, 12h, 7d, 4w) means `now` minus it;
    - an ISO 8601 date (`2025-01-31`, midnight UTC) or date-time (naive means UTC).

    Raises ValueError with a message fit for the user otherwise.
    """
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now.astimezone(UTC) - timedelta(**{_UNITS[unit]: amount})
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time: use a duration like 30m, 12h, 7d or 4w, "
                         "or an ISO date/time like 2025-01-31 or 2025-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
