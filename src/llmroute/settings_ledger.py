"""Settings of the request ledger: where entries go, how they are written (batches, the
write-ahead log, reads and writes in child processes) and how long each kind of data is kept.
Part of `settings.Settings`."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from .settings_base import Frozen as _Frozen


def _forever(days: int | None) -> float:
    return float("inf") if days is None else float(days)


class RetentionConfig(_Frozen):
    """How long the ledger keeps each kind of data, in days (null: forever, the default: nothing
    is deleted unless configured; text_days null: text goes with its row). Reports read rollups
    for whole hours and days, so rollups must outlive the raw rows they summarise: text_days <=
    raw_days <= hour_rollup_days <= day_rollup_days."""

    raw_days: int | None = Field(None, gt=0, description="raw rows (one per request)")
    text_days: int | None = Field(None, gt=0, description="prompt and response text of raw rows")
    hour_rollup_days: int | None = Field(None, gt=0, description="hour rollups")
    day_rollup_days: int | None = Field(None, gt=0, description="day rollups")
    interval_s: float = Field(3600.0, gt=0, description="how often the gateway prunes")

    @model_validator(mode="after")
    def _ordered(self) -> RetentionConfig:
        clocks = (("text_days", self.text_days or self.raw_days), ("raw_days", self.raw_days),
                  ("hour_rollup_days", self.hour_rollup_days),
                  ("day_rollup_days", self.day_rollup_days))
        for (short, short_days), (long, long_days) in itertools.pairwise(clocks):
            if _forever(short_days) > _forever(long_days):
                kept = "forever" if short_days is None else f"{short_days} days"
                raise ValueError(
                    f"{short} ({kept}) must not exceed {long} ({long_days} days): "
                    + ("text is kept on raw rows, so it cannot outlive them" if short == "text_days"
                       else "reports read rollups, so they must outlive what they summarise"))
        return self

    @property
    def configured(self) -> bool:
        """True when anything is ever deleted."""
        return any(days is not None for days in (self.raw_days, self.text_days,
                                                  self.hour_rollup_days, self.day_rollup_days))


class WalConfig(_Frozen):
    """The ledger's write-ahead log (docs/ledger.md): each entry is appended to a local log before
    its answer completes, so a crash of the process loses none; `fsync` says whether a crash of
    the machine may lose the last `fsync_interval_ms` (interval), nothing (always: each answer
    waits for an fsync, shared by the requests of that moment) or what the kernel had not yet
    written back (never)."""

    enabled: bool = True
    fsync: Literal["never", "interval", "always"] = "interval"
    fsync_interval_ms: int = Field(1000, ge=1, le=60_000)


class LedgerConfig(_Frozen):
    """The request ledger: where entries go and how they are written."""

    enabled: bool = True
    url: str = Field("sqlite:///llmroute-ledger.db",
                     description="sqlite:///path.db, sqlite:///:memory: or postgresql://…")
    spool_path: str = "llmroute-ledger.spool.jsonl"
    batch_size: int = Field(256, ge=1)
    flush_interval_s: float = Field(0.5, ge=0)
    max_queue: int = Field(10_000, ge=1)
    close_timeout_s: float = Field(10.0, ge=0)
    store_text: bool = Field(False, description="keep prompt and response text")
    redact: str | None = Field(None, description="`module:function` applied to stored text")
    retention: RetentionConfig = RetentionConfig()
    reads: Literal["process", "inline"] = Field(
        "process", description="where the dashboard's windows and the alert evaluator's ledger "
                               "reads run: a child process at the lowest CPU priority, so they never "
                               "hold up requests (an in-memory ledger is always read inline), or "
                               "inline in the gateway's process")
    writes: Literal["inline", "process"] = Field(
        "inline", description="where the writer's batches are written to the store: inline (this "
                              "process: the store's thread and the writer's task, sharing the GIL "
                              "with requests) or process (a child process of its own; a prototype, "
                              "issue 17; an in-memory ledger always writes inline)")
    idle_writes: bool = Field(
        True, description="pace the writer's batches by its backlog: while it keeps up (less than a "
                          "batch queued behind the one it writes) by a store thread at the lowest "
                          "CPU priority, so a request is not queued behind a batch on its core; "
                          "while it is behind at normal priority with the rows built in one go, so "
                          "it catches up under load (SQLite, inline writes; nice is Linux's)")
    wal: WalConfig = WalConfig()
