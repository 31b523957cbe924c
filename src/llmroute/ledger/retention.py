"""Retention: what pruning the ledger is asked to delete (`Cutoffs`) and what it deleted
(`Pruned`), and the cutoffs a retention configuration gives at a moment (`cutoffs_at`).

Pure. Raw rows, their prompt and response text, hour rollups and day rollups each have a clock of
their own; the stores apply cutoffs in `Store.prune`. Pruning raw rows never touches a rollup:
reports read whole hours and days from the rollups, so a window whose raw rows are gone still
answers from them (only its partial edge hours, read from raw rows, are lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .entry import as_utc

#: Rows deleted (or text cleared) per SQLite transaction: the write lock is never held long.
CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Cutoffs:
    """Delete what is older than each time (None: keep that kind of data forever): raw rows with
    ts < `raw`; the prompt and response text of rows with ts < `text`; hour and day rollups with
    start < `hour_rollups` / `day_rollups`."""

    raw: datetime | None = None
    text: datetime | None = None
    hour_rollups: datetime | None = None
    day_rollups: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("raw", "text", "hour_rollups", "day_rollups"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_utc(value, name))

    @property
    def empty(self) -> bool:
        """True when nothing is to be deleted."""
        return self.raw is self.text is self.hour_rollups is self.day_rollups is None

    def rollup_cutoffs(self) -> tuple[tuple[str, datetime], ...]:
        """(grain, cutoff) for each rollup grain that is pruned."""
        pairs = (("hour", self.hour_rollups), ("day", self.day_rollups))
        return tuple((grain, cutoff) for grain, cutoff in pairs if cutoff is not None)


@dataclass(frozen=True)
class Pruned:
    """What a prune deleted (or, for a dry run, would delete): raw rows, rows whose text was
    cleared (rows deleted anyway are not counted twice), rollup rows of each grain, latency
    histogram bins, and (PostgreSQL) the monthly partitions dropped whole."""

    raw_rows: int = 0
    text_rows: int = 0
    hour_rollups: int = 0
    day_rollups: int = 0
    latency_bins: int = 0
    partitions: tuple[str, ...] = ()
    dry_run: bool = False

    def summary(self) -> str:
        """One line for logs and the CLI."""
        verb = "would delete" if self.dry_run else "deleted"
        text = (f"{verb} {self.raw_rows:,} raw row(s), {self.text_rows:,} text(s), "
                f"{self.hour_rollups:,} hour and {self.day_rollups:,} day rollup(s), "
                f"{self.latency_bins:,} latency bin(s)")
        if self.partitions:
            verb = "would drop" if self.dry_run else "dropped"
            text += f"; {verb} partition(s) {', '.join(self.partitions)}"
        return text


def days_ago(now: datetime, days: int | None) -> datetime | None:
    """`now` minus `days` days (None: keep forever)."""
    return None if days is None else as_utc(now, "now") - timedelta(days=days)


def cutoffs_at(now: datetime, *, raw_days: int | None, text_days: int | None,
               hour_rollup_days: int | None, day_rollup_days: int | None) -> Cutoffs:
    """The cutoffs of a retention configuration at `now`."""
    return Cutoffs(raw=days_ago(now, raw_days), text=days_ago(now, text_days),
                   hour_rollups=days_ago(now, hour_rollup_days),
                   day_rollups=days_ago(now, day_rollup_days))


def month_start(ts: datetime) -> datetime:
    """The first instant (UTC) of the month holding `ts`."""
    ts = ts.astimezone(UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one starting at `start`."""
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
