"""The request ledger: one `LedgerEntry` per request, kept in a `Store` (SQLite or PostgreSQL) and
written off the request path by a `LedgerWriter`. `open_store(url)` builds a store from a URL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .entry import AttemptRecord, LedgerEntry
    from .migrations import MIGRATIONS, Migration
    from .sqlite import SQLiteStore
    from .store import MigrationStatus, Store, StoreError, StoreRejectedError
    from .writer import LedgerWriter, WriterStats

__all__ = [
    "MIGRATIONS",
    "AttemptRecord",
    "LedgerEntry",
    "LedgerWriter",
    "Migration",
    "MigrationStatus",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreRejectedError",
    "WriterStats",
    "open_store",
]

#: Where each public name lives: imported on first use (PEP 562), so that a process importing one
#: module of the ledger (the reader process: the store, not the writer) loads only what it uses.
_EXPORTS: dict[str, str] = {
    "AttemptRecord": "entry", "LedgerEntry": "entry", "MIGRATIONS": "migrations",
    "Migration": "migrations", "SQLiteStore": "sqlite", "MigrationStatus": "store", "Store": "store",
    "StoreError": "store", "StoreRejectedError": "store", "LedgerWriter": "writer",
    "WriterStats": "writer",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(),
                                   {name: (module, name) for name, module in _EXPORTS.items()})


_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(url: str) -> Store:
    """A store for `url` (no I/O yet: it connects on first use).

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`
    - `postgresql://user:pass@host:5432/db` (or `postgres://`); an optional `?schema=name` query
      parameter picks the schema (default `public`); other parameters go to the driver.
    """
    if url.startswith(_SQLITE_PREFIX):
        from .sqlite import MEMORY, SQLiteStore

        path = url[len(_SQLITE_PREFIX):]
        if not path:
            raise ValueError(f"ledger URL {url!r} names no file: use sqlite:///path/to/ledger.db "
                             "or sqlite:///:memory:")
        return SQLiteStore(MEMORY if path == MEMORY else path)
    scheme = urlsplit(url).scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_store(url)
    raise ValueError(f"unsupported ledger URL {_redacted(url)!r}: expected sqlite:///path/to.db, "
                     "sqlite:///:memory: or postgresql://user@host/db")


def _postgres_store(url: str) -> Store:
    try:
        from .postgres import PostgresStore
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("a postgresql:// ledger needs asyncpg: pip install 'llmroute[postgres]'") from exc
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"] or ["public"]
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return PostgresStore(parts._replace(query=rest).geturl(), schema=schemas[-1])


def _redacted(url: str) -> str:
    """`url` without its password, for error messages."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)
