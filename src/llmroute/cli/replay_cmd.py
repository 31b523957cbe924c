"""`llmroute replay`: re-decide logged traffic through candidate policies and show, beside what was
served, each one's estimated cost and expected quality (side by side, or as JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..control.replay import Replayer, ReplayReport, replay_batches
from ..control.replay_offline import estimator_for
from ..engine import Engine
from ..ledger.paging import DEFAULT_BATCH_SIZE
from ..ledger.store import Store
from ..reports.tables import Layout, fit
from .common import (
    EXIT_ERROR,
    csv_option,
    engine_from,
    err,
    friendly_errors,
    ledger_window,
    missing_sqlite_file,
    on_ledger,
    out,
    print_table,
    usd,
    wide_option,
    write_csv,
)

NOTES = ("cost: the candidate's model at catalog prices on the logged input and output tokens (the "
         "answer assumed as long as the logged one), plus its router-LLM calls (estimated prompt, "
         "full max_tokens out, answered with the logged tier); quality: observed feedback where the "
         "candidate picked the model that answered, else the learned router's P(good) (estimated)")


def _replayers(engine: Engine, policies: Sequence[str], artifact: Path | None) -> list[Replayer]:
    """One replayer per policy (each loads its learned router now), or a clear error exit."""
    from ..learn.artifact import ArtifactError

    try:
        return [Replayer(engine, name, estimate=estimator_for(engine, name, artifact))
                for name in policies]
    except (ArtifactError, OSError) as exc:
        err.print(f"[red]error:[/] cannot load the learned router: {exc}")
        raise typer.Exit(EXIT_ERROR) from None


def _replay_window(url: str, replayers: Sequence[Replayer], start: datetime, end: datetime,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> list[ReplayReport]:
    """Every policy's replay of the window's entries, streamed from the ledger in batches (one
    batch of entries alive at a time), with a progress bar per policy (on stderr); a clear error
    exit when the ledger cannot be read."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        err.print(f"[red]error:[/] no ledger at {missing}: nothing to replay")
        raise typer.Exit(EXIT_ERROR)
    columns = (TextColumn("replaying {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())

    async def work(store: Store) -> list[ReplayReport]:
        # The store's rollups count the window cheaply (a few rows): the bars' total.
        total = (await store.rollups("model", start, end)).total.tally.requests
        with Progress(*columns, console=err) as bar:
            tasks = [bar.add_task(r.policy, total=total) for r in replayers]

            def advance(done: int) -> None:
                for task in tasks:
                    bar.update(task, completed=done)

            batches = store.iterate(start, end, batch_size=batch_size)
            return await replay_batches(batches, replayers, advance)

    return on_ledger(url, work)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _mix(counts: dict[str, int], top: int = 3) -> str:
    total = sum(counts.values())
    shown = [f"{model} {n / total:.0%}" for model, n in list(counts.items())[:top]]
    rest = len(counts) - top
    return ", ".join(shown) + (f", +{rest} more" if rest > 0 else "") if total else "-"


def _calls(report: ReplayReport) -> str:
    calls = report.router_calls
    made = calls["answered"] + calls["unanswered"]
    unpriced = f", {calls['unpriced']} unpriced" if calls["unpriced"] else ""
    return f"{made} ({usd(report.router_cost_usd)}{unpriced})" if made else "0"


#: The first column: what each row measures.
METRIC = "metric"
SERVED = "served (logged)"


def _rows(reports: Sequence[ReplayReport]) -> list[dict[str, str]]:
    """Metrics down, the served traffic and each candidate across."""
    first = reports[0]
    rows: list[dict[str, str]] = []

    def row(label: str, served: str, each: Callable[[ReplayReport], str]) -> None:
        rows.append({METRIC: label, SERVED: served, **{r.policy: each(r) for r in reports}})

    row("requests replayed", str(first.replayed), lambda r: str(r.replayed))
    row("priced on both sides", str(first.compared_count), lambda r: str(r.compared_count))
    row("cost", usd(first.actual_cost_usd), lambda r: usd(r.cost_usd))
    row("  savings", "", lambda r: "-" if r.savings_pct is None else f"{r.savings_pct:.1f}%")
    row("  router-LLM calls", "", _calls)
    row("    answered from log", "", lambda r: str(r.router_calls["answered"]))
    row("quality (mean)", _pct(first.served_quality.mean), lambda r: _pct(r.quality.mean))
    row("  observed", _split(first.served_quality.observed, first.served_quality.observed_mean),
        lambda r: _split(r.quality.observed, r.quality.observed_mean))
    row("  estimated", _split(first.served_quality.estimated, first.served_quality.estimated_mean),
        lambda r: _split(r.quality.estimated, r.quality.estimated_mean))
    row("  unknown", str(first.served_quality.unknown), lambda r: str(r.quality.unknown))
    row("model mix", _mix(first.mix(served=True)), lambda r: _mix(r.mix()))
    return rows


def _table(reports: Sequence[ReplayReport], wide: bool = False) -> Table:
    """Every policy side by side: the cells wrap at words to fit the terminal (one line each when
    `wide`)."""
    values = (SERVED, *(r.policy for r in reports))
    layout = Layout((METRIC, *values), wrap=values)
    return fit(layout, None, _rows(reports), wide, out.width)


def _split(count: int, mean: float | None) -> str:
    return f"{count} ({_pct(mean)})" if count else "0"


def _print(reports: Sequence[ReplayReport], span: str, wide: bool = False) -> None:
    first = reports[0]
    skipped = ", ".join(f"{reason} {n}" for reason, n in first.skipped.items())
    out.print(f"{first.read} logged requests, {span}; replayed {first.replayed}"
              + (f"; skipped: {skipped}" if skipped else ""), markup=False)
    print_table(_table(reports, wide), wide)
    if any(r.compared_count != first.compared_count for r in reports):
        out.print(f"[dim]the served column covers {first.policy}'s requests; each policy's cost "
                  "and savings cover its own[/]")
    out.print(f"[dim]{NOTES}[/]")


def replay_command(
    policies: list[str] = typer.Option(..., "--policy", "-p", help="Candidate policy (repeatable: "
                                       "several are replayed and shown side by side)."),
    since: str = typer.Option("7d", "--since", help="Start: a duration back from now (30m, 12h, "
                              "7d, 4w) or an ISO date/time (UTC when no zone is given)."),
    until: str | None = typer.Option(None, "--until", help="End (exclusive), same forms; "
                                     "default: now."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Learned router for the quality "
                                         "estimates (default: the policy's classifier, else the "
                                         "bundled one)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (money as exact strings)."),
    as_csv: bool = csv_option(),
    wide: bool = wide_option("every cell on one line; the columns are always the served "
                             "traffic and each policy"),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (policies, catalog, "
                                       "the ledger's URL)."),
) -> None:
    """Test a routing change before it ships: re-decide logged requests with each candidate policy
    and compare its estimated cost and expected quality with what was actually served."""
    with friendly_errors():
        engine = engine_from(config)
        for name in policies:
            engine.router(name)
    start, end = ledger_window(since, until)
    replayers = _replayers(engine, list(dict.fromkeys(policies)), artifact)
    reports = _replay_window(engine.settings.ledger.url, replayers, start, end)
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if not reports[0].read:
        err.print(f"[red]error:[/] no logged requests from {span}: nothing to replay")
        raise typer.Exit(EXIT_ERROR)
    if as_json:
        payload = {"since": start.isoformat(), "until": end.isoformat(),
                   "policies": [r.to_dict() for r in reports]}
        out.print_json(json.dumps(payload))
        return
    if as_csv:
        write_csv([r.to_dict() for r in reports])
        return
    _print(reports, span, wide)
