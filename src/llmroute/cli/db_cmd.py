"""`llmroute db migrate|status` (the ledger's schema), `llmroute db prune` (its retention, by
hand) and `llmroute feedback` (from the shell)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from ..ledger.pruner import cutoffs_of
from ..ledger.store import Store
from .common import EXIT_ERROR, MARKUP, engine_from, err, friendly_errors, on_ledger, out

app = typer.Typer(help="The request ledger's database.", no_args_is_help=True,
                  rich_markup_mode=MARKUP)
T = TypeVar("T")


def with_store(config: Path | None, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured ledger store, run `work`, close it; store failures exit 1 cleanly."""
    with friendly_errors():
        url = engine_from(config).settings.ledger.url
    return on_ledger(url, work)


@app.command("migrate")
def migrate(config: Path | None = typer.Option(None, "--config", "-c", help="Config file.")) -> None:
    """Apply pending named migrations (the gateway also does this at start)."""
    applied = with_store(config, lambda store: store.migrate())
    out.print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else
                                                         " (up to date)"))


@app.command("status")
def status(config: Path | None = typer.Option(None, "--config", "-c", help="Config file.")) -> None:
    """Each named migration and when it was applied."""
    rows = with_store(config, lambda store: store.migration_status())
    for row in rows:
        when = row.applied_at.isoformat() if row.applied_at else "pending"
        out.print(f"{row.name:40} {when}", markup=False)


@app.command("prune")
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
) -> None:
    """Delete what `ledger.retention` says is too old (the gateway also does this every
    `interval_s`): raw rows, then text, then hour and day rollups. Rollups are never decremented."""
    with friendly_errors():
        ledger = engine_from(config).settings.ledger
    cutoffs = cutoffs_of(ledger.retention)
    if cutoffs.empty:
        out.print("no retention configured (ledger.retention): nothing is ever deleted")
        return
    for name, cutoff in (("raw rows", cutoffs.raw), ("text", cutoffs.text),
                         ("hour rollups", cutoffs.hour_rollups), ("day rollups", cutoffs.day_rollups)):
        out.print(f"{name:13} {'kept forever' if cutoff is None else 'before ' + cutoff.isoformat()}",
                  markup=False)
    pruned = on_ledger(ledger.url, lambda store: store.prune(cutoffs, dry_run=dry_run))
    out.print(pruned.summary(), markup=False)


def feedback(
    request_id: str = typer.Argument(..., help="The x-llmroute-request-id of the request."),
    rating: int | None = typer.Option(None, "--rating", min=1, max=5, help="1 (bad) to 5 (good)."),
    success: bool | None = typer.Option(None, "--success/--failure", help="Did the task succeed?"),
    comment: str | None = typer.Option(None, "--comment"),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
) -> None:
    """Record feedback for a logged request (same effect as POST /v1/feedback)."""
    if rating is None and success is None and comment is None:
        err.print("[red]error:[/] give --rating, --success/--failure or --comment")
        raise typer.Exit(EXIT_ERROR)
    found = with_store(config, lambda store: store.feedback(request_id, rating, success, comment))
    if not found:
        err.print(f"[red]error:[/] no request {request_id!r} in the ledger")
        raise typer.Exit(EXIT_ERROR)
    out.print(f"feedback recorded for {request_id}")
