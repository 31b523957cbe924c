"""The request explorer's read in SQL (`Store.latest`), for SQLite and PostgreSQL: the newest entries
of a window that pass the explorer's filters, newest first, after a keyset cursor.

One query: the window and the filters are equality tests in the WHERE clause, the cursor
`(ts, request_id)` a keyset bound (`ts <= t AND (ts < t OR request_id < id)`), then `ORDER BY ts
DESC, request_id DESC LIMIT n`. The database walks an index backwards from the page's end and stops
after n matches: (model, ts), (key_name, ts), (policy, ts), (status, ts) and (cache, ts) (the last
three from migration 0009) or (ts) unfiltered, so a filter that matches nothing costs an index probe,
not a scan of the window. The indexes give ts order; only entries tied on ts are sorted by request_id
(SQLite: "TEMP B-TREE FOR RIGHT PART OF ORDER BY"; PostgreSQL: an incremental sort once the table
has statistics; before its first ANALYZE the planner may sort the window's matches instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .aggregate_sql import SqlDialect, where_clause
from .entry import LedgerEntry, as_utc

#: A page's position: the (ts, request_id) of the last entry shown.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class Filters:
    """What a listed request must match (None: anything). `key`: the gateway key's name."""

    model: str | None = None
    policy: str | None = None
    status: str | None = None
    key: str | None = None
    cache: str | None = None

    def match(self, entry: LedgerEntry) -> bool:
        """Whether `entry` passes (what the SQL tests, over an entry)."""
        return all(want is None or want == have for want, have in (
            (self.model, entry.model), (self.policy, entry.policy), (self.status, entry.status),
            (self.key, entry.key_name), (self.cache, entry.cache)))


#: Each filter's column.
FILTER_COLUMNS: tuple[tuple[str, str], ...] = (("model", "model"), ("policy", "policy"),
                                               ("status", "status"), ("key", "key_name"),
                                               ("cache", "cache"))


def latest_sql(dialect: SqlDialect, select: str, since: datetime, until: datetime, filters: Filters,
               limit: int, before: Cursor | None = None) -> tuple[str, list[Any]]:
    """The SQL and parameters of up to `limit` entries of [since, until) passing `filters`, older
    than `before` when given, newest first (`select`: the store's `SELECT ... FROM`)."""
    params: list[Any] = []
    tests = [where_clause(dialect, since, until, params).removeprefix(" WHERE ")]
    for field, column in FILTER_COLUMNS:
        value = getattr(filters, field)
        if value is not None:
            params.append(value)
            tests.append(f"{column} = {dialect.placeholder(len(params))}")
    if before is not None:
        at = dialect.time_param(as_utc(before[0], "before"))
        params += [at, at, before[1]]  # each once per placeholder: SQLite's are positional
        last, older, tie = (dialect.placeholder(len(params) - i) for i in (2, 1, 0))
        tests.append(f"ts <= {last} AND (ts < {older} OR request_id < {tie})")
    return (f"{select} WHERE {' AND '.join(tests)} ORDER BY ts DESC, request_id DESC "
            f"LIMIT {int(limit)}", params)
