"""`llmroute experiments report NAME`: an A/B experiment's arms compared with its control, read from
the ledger's rollups by arm (`Store.rollups("arm", ...)`: per arm a few sums and a latency sketch,
never the entries), as tables with plain verdicts or as JSON (the dashboard panel's form)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from ..control.experiment_report import (
    ArmComparison,
    ExperimentReport,
    MetricComparison,
    report_dict,
    report_from_rollups,
)
from ..control.experiments import ExperimentConfig, experiments_of, parse_arm_label
from ..control.stats import Estimate, Interval
from ..ledger.entry import LedgerEntry
from ..ledger.rollup_read import RollupWindow
from ..ledger.store import Store
from ..reports.tables import Layout, fit
from .common import (
    EXIT_ERROR,
    MARKUP,
    err,
    json_option,
    ledger_window,
    missing_sqlite_file,
    on_ledger,
    out,
    print_table,
    wide_option,
    write_csv,
)

app = typer.Typer(help="A/B experiments: arms, verdicts and guardrails.", no_args_is_help=True,
                  rich_markup_mode=MARKUP)

Format = Callable[[float], str]
_LABELS = {"success_rate": "success rate", "mean_rating": "mean rating",
           "error_rate": "error rate", "cost_per_request": "cost per request"}


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(EXIT_ERROR)


ArmPolicies = dict[str, Counter[str]]


def _read(url: str, name: str, start: datetime, end: datetime,
          configured: bool) -> tuple[RollupWindow, ArmPolicies]:
    """The window's rollups by arm and, for an experiment that is not configured, the policies
    its arms' requests were served by (streamed in batches)."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        out.print(f"No ledger yet at {missing}: nothing to report.")
        raise typer.Exit(0)

    async def read(store: Store) -> tuple[RollupWindow, ArmPolicies]:
        window = await store.rollups("arm", start, end)
        return window, {} if configured else await arm_policies(store, name, start, end)

    return on_ledger(url, read)


def count_policies(policies: ArmPolicies, name: str, entries: Iterable[LedgerEntry]) -> ArmPolicies:
    """Add each of experiment `name`'s entries to its arm's policy count (in place; returned)."""
    for entry in entries:
        label = parse_arm_label(entry.experiment_arm)
        if label is not None and label[0] == name:
            policies.setdefault(label[1], Counter())[entry.policy or "(unknown)"] += 1
    return policies


async def arm_policies(store: Store, name: str, start: datetime, end: datetime) -> ArmPolicies:
    """Per arm of experiment `name`, how many of its requests in [start, end) each policy served:
    the experiment's entries streamed in batches (`Store.iterate`), one batch in memory at a time."""
    found: ArmPolicies = {}
    async for batch in store.iterate(start, end, experiments=[name]):
        count_policies(found, name, batch)
    return found


def ad_hoc_experiment(name: str, policies: Mapping[str, Counter[str]],
                      control: str | None) -> ExperimentConfig:
    """An experiment that is not (or no longer) configured, from its ledger labels (`policies`:
    per arm seen, its requests per policy): its arms are the ones seen, weighted by their
    requests, each with its most frequent policy."""
    if not policies:
        raise _fail(f"no experiment {name!r} in the configuration and none of its requests in the "
                    "ledger window")
    if control is None:
        raise _fail(f"experiment {name!r} is not configured: name its control arm with --control "
                    f"(arms seen: {', '.join(sorted(policies))})")
    arms = {arm: {"policy": seen.most_common(1)[0][0], "weight": seen.total()}
            for arm, seen in policies.items()}
    return _validated({"name": name, "arms": arms, "control": control})


def _validated(fields: dict[str, Any]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise _fail(f"experiment {fields.get('name')!r}: {problems}") from None


def _configured(settings: object, name: str) -> ExperimentConfig | None:
    try:
        return experiments_of(settings).get(name)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _experiment(configured: ExperimentConfig | None, name: str, policies: ArmPolicies,
                control: str | None, margin: float | None) -> ExperimentConfig:
    experiment = configured or ad_hoc_experiment(name, policies, control)
    changes = {k: v for k, v in (("control", control), ("non_inferiority_margin", margin))
               if v is not None}
    return _validated({**experiment.model_dump(), **changes}) if changes else experiment


@app.command("report")
def report(
    name: str = typer.Argument(..., help="The experiment's name."),
    since: str = typer.Option("30d", "--since", help="Start: a duration back from now (12h, 7d, "
                              "4w) or an ISO date/time (UTC when no zone is given)."),
    until: str | None = typer.Option(None, "--until", help="End (exclusive); default: now."),
    control: str | None = typer.Option(None, "--control", help="Compare with this arm (default: "
                                       "the configured control; required if not configured)."),
    margin: float | None = typer.Option(None, "--margin", help="Non-inferiority margin on the "
                                        "success rate, absolute (0.02 = 2 points)."),
    as_json: bool = json_option(),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV for scripts: a line per arm, "
                                "each estimate as value, low, high and n."),
    wide: bool = wide_option("policy, cost per quality point, p-values"),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (experiments, ledger)."),
) -> None:
    """Each arm's requests, success rate, rating, errors, cost and latency with always-valid
    intervals (safe to check as often as you like), compared with the control: better / worse /
    not different / not enough data yet, and about how many more requests would decide it."""
    from ..config import load
    from .common import friendly_errors

    start, end = ledger_window(since, until)
    with friendly_errors():
        settings = load(config)
    configured = _configured(settings, name)
    arms, policies = _read(settings.ledger.url, name, start, end, configured is not None)
    experiment = _experiment(configured, name, policies, control, margin)
    result = report_from_rollups(experiment, arms, datetime.now(UTC))
    if as_json:
        window = {"since": start.isoformat(), "until": end.isoformat()}
        out.print_json(json.dumps(report_dict(result, window)))
        return
    if as_csv:
        write_csv(report_dict(result)["arms"])
        return
    show(result, f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC", wide)


def show(result: ExperimentReport, span: str, wide: bool = False) -> None:
    """The report as text: a headline, the arms' tables (fitting the terminal; every column when
    `wide`), the comparisons and plain verdicts."""
    experiment = result.experiment
    total = sum(a.requests for a in result.arms)
    out.print(f"Experiment {experiment.name} ({result.status}): {total} requests, {span}. "
              f"Control: {experiment.control}. Intervals: always-valid, "
              f"{1 - experiment.alpha:.0%}.", markup=False)
    for title, layout, cells in _tables(result):
        print_table(_fitted(layout, f"{title}", cells, wide), wide)
    for comparison in result.comparisons:
        out.print(headline(comparison, experiment.control), markup=False)
    for stop in result.stops:
        out.print(f"[bold red]guardrail:[/] stop {stop.arm}: its {_LABELS[stop.metric]} is "
                  f"significantly worse than {experiment.control}'s "
                  f"(p = {stop.difference.p_value:.2g})")
    for arm, count in result.unknown_arms:
        out.print(f"[yellow]note:[/] {count} request(s) labelled with arm {arm!r}, which the "
                  "configuration does not have, are left out.")


def _pct(estimate: Estimate | None, sep: str = " ") -> str:
    return _with_interval(estimate, lambda x: f"{x:.1%}", sep)


def _num(estimate: Estimate | None, sep: str = " ") -> str:
    return _with_interval(estimate, lambda x: f"{x:.2f}", sep)


def _usd(estimate: Estimate | None, sep: str = " ") -> str:
    return _with_interval(estimate, lambda x: "$" + format(Decimal(f"{x:.3g}"), "f"), sep)


def _secs(estimate: Estimate | None, sep: str = " ") -> str:
    return _with_interval(estimate, lambda x: f"{x:.3f}s", sep)


def _with_interval(estimate: Estimate | None, fmt: Format, sep: str = " ") -> str:
    """`value [low, high]` (`…`: unbounded on that side); `sep` between value and interval."""
    if estimate is None:
        return "—"
    return f"{fmt(estimate.value)}{sep}{_bounds(estimate.interval, fmt)}"


def _bounds(interval: Interval, fmt: Format) -> str:
    low = "…" if interval.low is None else fmt(interval.low)
    high = "…" if interval.high is None else fmt(interval.high)
    return f"[{low}, {high}]"


Cells = Callable[[str], list[dict[str, str]]]
#: The report's tables: each arm's quality, its cost and latency, each metric against the control.
QUALITY = Layout(("arm", "policy", "share", "requests", "success rate", "mean rating",
                  "error rate"), extra=("policy",), drop_first=("share",), left=("policy",))
COST = Layout(("arm", "cost per request", "latency p50", "latency p95", "cost per quality pt"),
              extra=("cost per quality pt",))
AGAINST = Layout(("arm", "metric", "difference", "p (always valid)", "verdict",
                  "more requests to decide"), extra=("p (always valid)",),
                 wrap=("metric", "verdict"), left=("metric", "difference", "verdict"))


def _fitted(layout: Layout, title: str, cells: Cells, wide: bool) -> Table:
    """The table with each value and its interval on one line when that fits the terminal (or
    `wide`), else on two."""
    rows = cells(" ")
    if not wide and not layout.fits(rows, out.width):
        rows = cells("\n")
    table = fit(layout, title, rows, wide, out.width)
    table.title_justify = "left"
    return table


def _tables(result: ExperimentReport) -> list[tuple[str, Layout, Cells]]:
    tables = [("Quality", QUALITY, lambda sep: _quality_rows(result, sep)),
              ("Cost and latency", COST, lambda sep: _cost_rows(result, sep))]
    if result.comparisons:
        tables.append((f"Against {result.experiment.control}", AGAINST,
                       lambda sep: _comparison_rows(result, sep)))
    return tables


def _quality_rows(result: ExperimentReport, sep: str) -> list[dict[str, str]]:
    return [dict(zip(QUALITY.columns, (
        arm.arm, arm.policy, f"{arm.share:.0%}", str(arm.requests),
        f"{_pct(arm.success_rate, sep)} ({arm.judged})",
        f"{_num(arm.mean_rating, sep)} ({arm.rated})", _pct(arm.error_rate, sep)), strict=True))
        for arm in result.arms]


def _cost_rows(result: ExperimentReport, sep: str) -> list[dict[str, str]]:
    return [dict(zip(COST.columns, (
        arm.arm, _usd(arm.cost_per_request, sep), _secs(arm.latency_p50, sep),
        _secs(arm.latency_p95, sep), _usd(arm.cost_per_quality_point, sep)), strict=True))
        for arm in result.arms]


def _points(x: float) -> str:
    return f"{x * 100:+.1f}"


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def _signed_usd(x: float) -> str:
    return ("-$" if x < 0 else "+$") + format(Decimal(f"{abs(x):.3g}"), "f")


def _difference_text(metric: MetricComparison, sep: str = " ") -> str:
    diff = metric.comparison.difference
    if metric.metric in ("success_rate", "error_rate"):
        return f"{_points(diff.estimate)}{sep}{_bounds(diff.interval, _points)} pts"
    fmt = _signed if metric.metric == "mean_rating" else _signed_usd
    return f"{fmt(diff.estimate)}{sep}{_bounds(diff.interval, fmt)}"


def _more(requests: int | None) -> str:
    return "out of reach" if requests is None else "—" if requests == 0 else f"~{requests:,}"


def _comparison_rows(result: ExperimentReport, sep: str) -> list[dict[str, str]]:
    return [dict(zip(AGAINST.columns, (
        comparison.arm, _LABELS[metric.metric], _difference_text(metric, sep),
        f"{metric.comparison.difference.p_value:.3g}", metric.comparison.verdict,
        _more(metric.more_requests)), strict=True))
        for comparison in result.comparisons for metric in comparison.metrics]


def headline(comparison: ArmComparison, control: str) -> str:
    """The operator's question in one line: is this arm no worse than the control on quality, and
    what does it cost?"""
    parts = []
    for metric in comparison.metrics:
        if metric.non_inferiority is None:
            continue
        margin = metric.non_inferiority_margin or 0.0
        size = f"{margin * 100:g} pts" if metric.metric == "success_rate" else f"{margin:g}"
        answer = {"no worse": "yes", "worse": "no, worse by more than that"}.get(
            metric.non_inferiority, f"not yet ({_more(metric.non_inferiority_more_requests)} "
                                    "more requests)")
        parts.append(f"no worse on {_LABELS[metric.metric]} (margin {size})? {answer}")
    cost = comparison.get("cost_per_request")
    if cost is not None:
        parts.append(f"cost per request: {cost.comparison.verdict}")
    return f"{comparison.arm} vs {control}: " + "; ".join(parts or ["nothing to compare yet"])
