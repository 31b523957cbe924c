"""Alert history in the ledger database (table `llmroute_alerts`, migration `0003_alerts`): record
an alert with whether it was delivered, list alerts of a time window newest first, and the
dashboard's JSON view (`recent_alerts`). Works on the SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..ledger.entry import as_utc
from ..ledger.migrations import ALERTS_TABLE
from ..ledger.rows import SQLITE, sqlite_time
from ..ledger.sqlite import SQLiteStore
from ..ledger.store import Store, check_limit
from .alerts import Alert

if TYPE_CHECKING:
    from ..ledger.postgres import PostgresStore

_FIELDS = ("id", "ts", "rule", "kind", "severity", "subject", "message", "data", "dedup_key",
           "delivered")
_COLUMNS = ", ".join(_FIELDS)


@dataclass(frozen=True)
class AlertRecord:
    """An alert as the history keeps it."""

    alert: Alert
    delivered: bool

    def to_dict(self) -> dict[str, object]:
        return {**self.alert.to_dict(), "delivered": self.delivered}


def _data_json(alert: Alert) -> str:
    return json.dumps(dict(alert.data), default=str, ensure_ascii=False)


def _alert(row: Sequence[Any], ts: datetime) -> AlertRecord:
    data = json.loads(row[7] or "{}")
    alert = Alert(rule=row[2], kind=row[3], severity=row[4], subject=row[5], message=row[6],
                  data=data if isinstance(data, dict) else {"value": data}, ts=ts,
                  dedup_key=row[8], id=row[0])
    return AlertRecord(alert, bool(row[9]))


def _postgres(store: Store) -> PostgresStore | None:
    """The store as a `PostgresStore`, or None (asyncpg may not be installed)."""
    try:
        from ..ledger.postgres import PostgresStore
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return store if isinstance(store, PostgresStore) else None


def _unsupported(store: Store) -> TypeError:
    return TypeError(f"alert history needs a SQLite or PostgreSQL ledger store, not {store!r}")


async def record_alert(store: Store, alert: Alert, delivered: bool) -> None:
    """Keep `alert` (an alert already kept under the same id is left as it is)."""
    if isinstance(store, SQLiteStore):
        row = (alert.id, sqlite_time(alert.ts), alert.rule, alert.kind, alert.severity,
               alert.subject, alert.message, _data_json(alert), alert.dedup_key, int(delivered))
        sql = (f"INSERT INTO {ALERTS_TABLE} ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))}) "
               "ON CONFLICT (id) DO NOTHING")
        await store.run(lambda conn: _execute(conn, sql, row))
        return
    pg = _postgres(store)
    if pg is None:
        raise _unsupported(store)
    texts = [_no_nul(t) for t in (alert.rule, alert.kind, alert.severity, alert.subject,
                                  alert.message, _data_json(alert).replace("\\u0000", "\\ufffd"),
                                  alert.dedup_key)]
    sql = (f"INSERT INTO {ALERTS_TABLE} ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, "
           "$9, $10) ON CONFLICT (id) DO NOTHING")
    async with pg.connection() as conn:
        await conn.execute(sql, alert.id, alert.ts, *texts, delivered)


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    with contextlib.closing(conn.execute(sql, params)) as cursor:
        return cursor.fetchall()


async def list_alerts(store: Store, since: datetime | None = None, until: datetime | None = None,
                      limit: int | None = None) -> list[AlertRecord]:
    """Alerts with since <= ts < until, newest first, at most `limit`."""
    check_limit(limit)
    bounds = [(as_utc(v, name), test) for v, name, test in
              ((since, "since", "ts >="), (until, "until", "ts <")) if v is not None]
    tail = " ORDER BY ts DESC, id" + (f" LIMIT {int(limit)}" if limit is not None else "")
    if isinstance(store, SQLiteStore):
        where = " AND ".join(f"{test} ?" for _, test in bounds)
        sql = f"SELECT {_COLUMNS} FROM {ALERTS_TABLE}" + (f" WHERE {where}" if where else "") + tail
        params = [sqlite_time(value) for value, _ in bounds]
        rows = await store.run(lambda conn: _execute(conn, sql, params))
        return [_alert(row, SQLITE.time_in(row[1])) for row in rows]
    pg = _postgres(store)
    if pg is None:
        raise _unsupported(store)
    where = " AND ".join(f"{test} ${i}" for i, (_, test) in enumerate(bounds, 1))
    columns = ", ".join("data::text" if name == "data" else name for name in _FIELDS)
    sql = f"SELECT {columns} FROM {ALERTS_TABLE}" + (f" WHERE {where}" if where else "") + tail
    async with pg.connection() as conn:
        rows = await conn.fetch(sql, *(value for value, _ in bounds))
    return [_alert(row, row[1].astimezone(UTC)) for row in rows]


async def recent_alerts(store: Store, since: datetime, limit: int = 100) -> list[dict[str, object]]:
    """The dashboard's view: alerts since `since`, newest first, as JSON-ready dicts."""
    return [record.to_dict() for record in await list_alerts(store, since=since, limit=limit)]
