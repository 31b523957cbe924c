"""Shared CLI plumbing: consoles, loading the engine, and printing llmroute errors without tracebacks."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final, TypeVar

import typer
from rich.console import Console

from ..config import load
from ..engine import Engine
from ..errors import ConfigError, LLMRouteError
from ..ledger.store import Store
from ..reports.window import parse_when

#: Piped output is not cut to 80 columns (tables stay readable in files and CI logs), unless
#: COLUMNS says how wide to be.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

#: Help texts as Markdown: a docstring's single line breaks join (no sentence cut mid-line).
MARKUP: Final = "markdown"

T = TypeVar("T")
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

