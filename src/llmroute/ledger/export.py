"""Streaming ledger entries into a file for offline analysis (DuckDB, pandas, a warehouse): JSON Lines
or Parquet, one store batch at a time (`Store.iterate`), so memory stays flat however long the window.

JSON Lines: one `LedgerEntry.to_json` per line (money as exact strings, times ISO 8601 UTC), read back
with `LedgerEntry.from_json`. Parquet: see `parquet` (pyarrow, the `export` extra). Files are written
under a temporary name and renamed when complete, so a failed export never leaves a file that looks
whole (a truncated JSON Lines file would).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .entry import LedgerEntry

FORMATS = ("jsonl", "parquet")
MONEY_TYPES = ("decimal", "text")
EXPORT_EXTRA = "pip install 'llmroute[export]'"


class ExportError(Exception):
    """An export that cannot be done: an unknown format, pyarrow missing, a value the format
    cannot hold exactly."""


class BatchWriter(Protocol):
    """Writes batches of entries to one open binary file."""

    def write(self, batch: Sequence[LedgerEntry]) -> None:
        """Append the batch (Parquet: as one row group)."""
        ...

    def close(self) -> None:
        """Finish the file (Parquet: its footer); the file object itself stays open."""
        ...


@dataclass(frozen=True)
class ExportOptions:
    """What to write: the format, whether prompt and response text are kept (else exported as
    null), and Parquet's money columns as decimal128(38, 28) or exact text."""

    format: str = "jsonl"
    text: bool = True
    money: str = "decimal"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"unknown format {self.format!r}: use {' or '.join(FORMATS)}")
        if self.money not in MONEY_TYPES:
            raise ExportError(f"unknown money type {self.money!r}: use {' or '.join(MONEY_TYPES)}")


def without_text(entry: LedgerEntry) -> LedgerEntry:
    """`entry` with its prompt and response text dropped."""
    if entry.prompt_text is None and entry.response_text is None:
        return entry
    return dataclasses.replace(entry, prompt_text=None, response_text=None)


class JsonlWriter:
    """One JSON object per line, UTF-8."""

    def __init__(self, sink: BinaryIO, *, text: bool = True) -> None:
        self._sink = sink
        self._text = text

    def write(self, batch: Sequence[LedgerEntry]) -> None:
        entries = batch if self._text else [without_text(e) for e in batch]
        self._sink.write("".join(e.to_json() + "\n" for e in entries).encode("utf-8"))

    def close(self) -> None:
        self._sink.flush()


def writer_for(options: ExportOptions) -> Callable[[BinaryIO], BatchWriter]:
    """The factory of writers in the chosen format; ExportError now when Parquet is asked for and
    pyarrow is not installed (before any file is opened)."""
    if options.format == "jsonl":
        return lambda sink: JsonlWriter(sink, text=options.text)
    try:
        from .parquet import ParquetWriter
    except ImportError as exc:
        raise ExportError(f"Parquet export needs pyarrow ({exc}): {EXPORT_EXTRA}") from None
    return lambda sink: ParquetWriter(sink, text=options.text, money=options.money)


async def export(batches: AsyncIterator[list[LedgerEntry]], writer: BatchWriter,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write every batch, then finish the file; how many entries were written. `progress` is told
    the running count after each batch."""
    count = 0
    try:
        async for batch in batches:
            writer.write(batch)
            count += len(batch)
            if progress is not None:
                progress(count)
    finally:
        writer.close()
    return count


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file written as `<path>.partial`, renamed to `path` when the block ends without an
    error (and fsync'd first); removed when it raises."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
