"""Shared CLI plumbing: consoles, loading the engine, and printing llmroute errors without tracebacks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..config import load
from ..engine import Engine
from ..errors import ConfigError, LLMRouteError
from ..ledger.store import Store
from ..reports.window import parse_when

#: Piped output is not cut to 80 columns (tables stay readable in files and CI logs) and its
#: sentences are not wrapped, unless COLUMNS says how wide to be; on a terminal (or with COLUMNS)
#: sentences wrap at words to its width.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=_WIDTH is not None, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=_WIDTH is not None, width=_WIDTH)

#: Help texts as Markdown: a docstring's single line breaks join (no sentence cut mid-line).
MARKUP: Final = "markdown"

T = TypeVar("T")

#: `--wide` lays the tables out this wide at most (each at its natural width, never cut).
WIDE = 1_000
EXIT_ERROR = 1
EXIT_CONFIG = 2


def usd(value: Decimal | None, digits: int = 6) -> str:
    """Format a dollar amount; unknown (unpriced) amounts say so instead of showing $0."""
    if value is None:
        return "unpriced"
    return f"${value:.{digits}f}"


def print_config_error(exc: ConfigError) -> None:
    """Every problem of an invalid configuration, one per line, with key path and hint."""
    err.print(f"[bold red]error:[/] {exc.source} is invalid ({len(exc.problems)} problem(s)):")
    for problem in exc.problems:
        hint = f" [dim](hint: {problem.hint})[/]" if problem.hint else ""
        err.print(f"  [red]✗[/] [bold]{problem.path or '<root>'}[/]: {problem.message}{hint}",
                  markup=True)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn llmroute's errors into a clear message and an exit code, never a traceback."""
    try:
        yield
    except ConfigError as exc:
        print_config_error(exc)
        raise typer.Exit(EXIT_CONFIG) from None
    except LLMRouteError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(EXIT_ERROR) from None


def engine_from(config: Path | None) -> Engine:
    """Load and validate the configuration, then build the engine."""
    return Engine(load(config))


def ledger_window(since: str, until: str | None) -> tuple[datetime, datetime]:
    """The [since, until) window a command reads from the ledger (`until` defaults to now), or a
    clear error exit when a bound does not parse or the window is empty."""
    now = datetime.now(UTC)
    try:
        start, end = parse_when(since, now), parse_when(until, now) if until else now
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True)
        raise typer.Exit(EXIT_ERROR) from None
    if start >= end:
        err.print(f"[red]error:[/] --since ({start.isoformat()}) must be before --until "
                  f"({end.isoformat()})")
        raise typer.Exit(EXIT_ERROR)
    return start, end


_SQLITE = "sqlite:///"


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file a ledger URL names when it does not exist (None: it exists, or the URL is
    not a SQLite file), so a command can say so instead of creating an empty ledger."""
    if not url.startswith(_SQLITE) or url == f"{_SQLITE}:memory:":
        return None
    path = Path(url[len(_SQLITE):])
    return None if path.exists() else path


def on_ledger(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """`work` done on the ledger's store (closed afterwards), or a clear error exit when the ledger
    cannot be read."""
    import asyncio

    from ..ledger import StoreError, open_store

    async def run() -> T:
        store = open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (StoreError, OSError, ValueError) as exc:
        err.print(f"[red]error:[/] ledger store: {exc}")
        raise typer.Exit(EXIT_ERROR) from None



def wide_option(columns: str) -> Any:
    """The `--wide` flag every table-printing command takes; `columns`: the ones it adds."""
    return typer.Option(False, "--wide", help=f"Every column ({columns}), wider than 80 columns. "
                        "By default the table fits the terminal.")


def csv_option() -> Any:
    """The `--csv` flag of the commands that print data: plain CSV for scripts."""
    return typer.Option(False, "--csv", help="Print CSV for scripts (a line per row, plain "
                        "numbers; money as exact strings).")


def json_option() -> Any:
    """The `--json` flag of the commands that print data."""
    return typer.Option(False, "--json", help="Print JSON instead of a table.")


def print_table(table: Table, wide: bool) -> None:
    """A table that fits the terminal (the default), or at its natural width (`wide`), never cut."""
    out.print(table, width=WIDE if wide else None, crop=not wide, soft_wrap=True)


def flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JSON-ready record as one CSV line's fields: nested mappings as `outer.inner`, lists of
    plain values joined with `;`, other lists as JSON, None as empty."""
    fields: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            fields.update(flat(value, f"{name}."))
        elif isinstance(value, list):
            plain = all(isinstance(v, str | int | float) for v in value)
            fields[name] = ";".join(map(str, value)) if plain else json.dumps(value)
        else:
            fields[name] = "" if value is None else value
    return fields


def csv_text(records: Sequence[Mapping[str, Any]]) -> str:
    """Records (JSON-ready dicts) as CSV: a header, then a line per record (`flat`)."""
    import csv
    import io

    rows = [flat(r) for r in records]
    header = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(records: Sequence[Mapping[str, Any]]) -> None:
    """Print `csv_text(records)` as is (no console markup or wrapping)."""
    out.file.write(csv_text(records))
