"""`llmroute export`: the ledger's entries over a window, streamed to JSON Lines or Parquet for offline
analysis (DuckDB, pandas, a warehouse), in constant memory: one store batch at a time."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..ledger.export import BatchWriter, ExportError, ExportOptions, atomic_file, export, writer_for
from ..ledger.paging import DEFAULT_BATCH_SIZE
from ..ledger.store import Store
from .common import EXIT_ERROR, err, ledger_window, missing_sqlite_file, on_ledger

STDOUT = "-"
#: Turns an open binary file into a writer of the chosen format.
WriterFactory = Callable[[BinaryIO], BatchWriter]


def _fail(message: str) -> typer.Exit:
    """Print `message` as an error; the exit to raise."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_ERROR)


def _ledger_url(config: Path | None) -> str:
    """The configured ledger's URL; a clear error exit when it names a SQLite file that is missing
    (rather than exporting an empty ledger created on the spot)."""
    from ..config import load
    from .common import friendly_errors

    with friendly_errors():
        url = load(config).ledger.url
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise _fail(f"no ledger at {missing} (ledger.url is {url}): nothing to export; pass the "
                    "configuration the gateway runs with (-c)")
    return url


def _stream(url: str, sink: BinaryIO, make_writer: WriterFactory, window: tuple[datetime, datetime],
            batch_size: int, progress: Callable[[int], None] | None = None) -> int:
    """Every entry of the window written into `sink`; how many."""

    def work(store: Store) -> Awaitable[int]:
        batches = store.iterate(window[0], window[1], batch_size=batch_size)
        return export(batches, make_writer(sink), progress)

    return on_ledger(url, work)


def _to_stdout(url: str, make_writer: WriterFactory, options: ExportOptions,
               window: tuple[datetime, datetime], batch_size: int) -> None:
    """Into stdout (a pipe, for Parquet), saying nothing else."""
    if options.format == "parquet" and sys.stdout.isatty():
        raise _fail("Parquet is binary: write it to a file (--output FILE) or a pipe")
    try:
        _stream(url, sys.stdout.buffer, make_writer, window, batch_size)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_ERROR) from None


def _to_file(url: str, path: Path, make_writer: WriterFactory, window: tuple[datetime, datetime],
             batch_size: int) -> None:
    """Into `path` (complete or not at all), with a running count on stderr, then a summary."""
    if not path.parent.is_dir():
        raise _fail(f"cannot write {path}: no directory {path.parent}")
    columns = (SpinnerColumn(), TextColumn("exporting {task.completed:,.0f} entries"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar, atomic_file(path) as sink:
        task = bar.add_task("export", total=None)
        count = _stream(url, sink, make_writer, window, batch_size,
                        lambda done: bar.update(task, completed=done))
    start, end = window
    err.print(f"[green]✓[/] {count:,} entries from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
              f"UTC → {escape(str(path))} ({path.stat().st_size:,} bytes)", highlight=False)


def export_command(
    since: str = typer.Option("30d", "--since", help="Start: a duration back from now (30m, 12h, 7d, "
                              "4w) or an ISO date/time (UTC when no zone is given)."),
    until: str | None = typer.Option(None, "--until", help="End (exclusive), same forms; default: now."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl (one entry per line, exact "
                            "money strings) or parquet (the `export` extra: pyarrow)."),
    output: str = typer.Option(STDOUT, "--output", "-o", help="File to write (replaced only once "
                               "complete), or - for stdout."),
    no_text: bool = typer.Option(False, "--no-text", help="Export prompt and response text as null."),
    money: str = typer.Option("decimal", "--money", help="Parquet money columns: decimal "
                              "(decimal128(38, 28)) or text (exact decimal strings)."),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1, help="Entries read "
                                   "from the ledger (and Parquet rows per row group) at a time."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (the ledger's URL)."),
) -> None:
    """Stream the ledger's entries over a window to JSON Lines or Parquet (DuckDB, pandas, a
    warehouse), oldest first, in constant memory."""
    try:
        options = ExportOptions(fmt, text=not no_text, money=money)
        make_writer = writer_for(options)
    except ExportError as exc:
        raise _fail(str(exc)) from None
    window = ledger_window(since, until)
    url = _ledger_url(config)
    try:
        if output == STDOUT:
            _to_stdout(url, make_writer, options, window, batch_size)
        else:
            _to_file(url, Path(output), make_writer, window, batch_size)
    except ExportError as exc:
        raise _fail(str(exc)) from None

