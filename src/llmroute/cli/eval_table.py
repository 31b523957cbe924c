"""`llmroute eval`'s table: each strategy's AIQ, the share of the reference's cost at which it
reaches 95% and 100% of the reference's quality, APGR and whether it beats the best single model;
fitting the terminal (see `reports.tables`)."""

from __future__ import annotations

from ..evaluate.report import EvalReport, StrategyResult
from ..reports.tables import Layout, fit
from .common import out, print_table

#: The table's columns (the costs: a share of the reference's cost, as the line above says).
EVAL_LAYOUT = Layout(("strategy", "AIQ", "cost at 95% quality", "cost at 100% quality",
                      "APGR", "beats best single"), drop_first=("APGR",),
                     wrap=("beats best single",), left=("beats best single",))


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def strategy_cells(result: StrategyResult) -> dict[str, str]:
    """One strategy's cells."""
    at = {t.fraction: t.cost_fraction for t in result.targets}
    return dict(zip(EVAL_LAYOUT.columns, (
        result.name, f"{result.aiq:.4f}", _share(at.get(0.95)), _share(at.get(1.0)),
        f"{result.pair.apgr:.3f}" if result.pair else "—",
        "yes" if result.beats_best_single else f"no ({len(result.shortfalls)} budgets)"),
        strict=True))


def print_report(report: EvalReport, wide: bool) -> None:
    """The title line, then the table (every cell on one line when `wide`)."""
    reference = report.reference
    out.print(f"{report.dataset}: {report.records} records; reference {reference.label} "
              f"(quality {reference.quality:.3f}, ${reference.cost * 1000:.3f} per 1k); costs "
              "as % of the reference's", markup=False)
    rows = [strategy_cells(r) for r in report.strategies]
    print_table(fit(EVAL_LAYOUT, None, rows, wide, out.width), wide)


def strategy_record(result: StrategyResult) -> dict[str, object]:
    """One strategy's summary numbers for `--csv` (the curves are in `--json`)."""
    at = {t.fraction: t.cost_fraction for t in result.targets}
    return {"strategy": result.name, "aiq": result.aiq, "cost_share_at_95": at.get(0.95),
            "cost_share_at_100": at.get(1.0), "apgr": result.pair.apgr if result.pair else None,
            "beats_best_single": result.beats_best_single,
            "shortfall_budgets": len(result.shortfalls)}
