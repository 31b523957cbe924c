"""Report text: money and percentages, the headline sentence, the rich table and the JSON view."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rich.table import Table

from ..ledger.entry import money_text
from .aggregate import Report, Summary
from .caching import cache_dict
from .fmt import DASH, fmt_pct, fmt_usd
from .tables import LABEL_MIN, fitting, grid

__all__ = ["COLUMNS", "DASH", "NARROW_COLUMNS", "csv_text", "fmt_pct", "fmt_usd", "headline",
           "mix_text", "report_dict", "row", "summary_dict", "table"]


def _float(value: float | None, spec: str) -> str:
    return DASH if value is None else format(value, spec)


def _comparison(report: Report) -> str:
    total = report.total
    if total.compared == 0:
        return "; no baseline price was recorded to compare with."
    pct = total.savings_pct
    verdict = (f"{fmt_pct(pct)} saved" if pct is None or pct >= 0 else f"{fmt_pct(-pct)} more")
    would = f"always using {report.baseline} would have cost {fmt_usd(total.baseline_cost_usd)}"
    if total.compared == total.priced:
        return f"; {would} ({verdict})."
    served = (" and not served by the response cache"
              if total.cache_hits or total.cache_semantic_hits else "")
    return (f"; on the {total.compared} requests priced both ways{served} "
            f"({fmt_usd(total.compared_cost_usd)}), {would} ({verdict}).")


def headline(report: Report) -> str:
    """E.g. "This traffic cost $4,500.00; always using X would have cost $15,000.00 (70% saved)."."""
    total = report.total
    if total.priced == 0:
        noun = "request" if total.requests == 1 else "requests"
        return f"This traffic ({total.requests} {noun}) is unpriced: no cost was recorded."
    unpriced = _unpriced(total)
    routing = (f", {fmt_usd(total.routing_cost_usd)} of it routing (the LLM router's calls)"
               if total.routing_cost_usd else "")
    return f"This traffic cost {fmt_usd(total.cost_usd)}{routing}{unpriced}{_comparison(report)}"


def _unpriced(total: Summary) -> str:
    """The requests without a cost, told apart: a failure is not billed, it is not "unpriced"."""
    if not total.unpriced:
        return ""
    noun = "request" if total.unpriced == 1 else "requests"
    if not total.errors:
        return f" (plus {total.unpriced} unpriced {noun})"
    return (f" (plus {total.unpriced} {noun} without a cost; {total.errors} failed, and failures "
            "are not billed)")


def mix_text(summary: Summary, top: int = 3) -> str:
    """The largest shares of the model mix: `a 60%, b 40%`."""
    shares = list(summary.model_shares().items())
    parts = [f"{model} {share:.0%}" for model, share in shares[:top]]
    if len(shares) > top:
        parts.append(f"+{len(shares) - top} more")
    return ", ".join(parts)


COLUMNS = ("requests", "errors", "success", "cost", "unpriced", "baseline", "saved", "p50 s",
           "p95 s", "rating", "$/quality pt", "$/success", "model mix")
#: The columns that fit 80 terminal columns (`--wide`: all of `COLUMNS`; the model mix is the
#: line above the table).
NARROW_COLUMNS = ("requests", "errors", "success", "cost", "baseline", "saved", "rating",
                  "$/quality pt")


def row(summary: Summary) -> list[str]:
    """One table row's cells (after the group label), in `COLUMNS` order."""
    return [str(summary.requests), str(summary.errors), _float(summary.success_rate, ".1%"),
            fmt_usd(summary.cost_usd if summary.priced else None), str(summary.unpriced),
            fmt_usd(summary.baseline_cost_usd if summary.compared else None),
            fmt_pct(summary.savings_pct), _float(summary.latency_p50_s, ".3f"),
            _float(summary.latency_p95_s, ".3f"), _float(summary.mean_rating, ".2f"),
            fmt_usd(summary.cost_per_quality_point_usd), fmt_usd(summary.cost_per_success_usd),
            mix_text(summary)]


#: The narrow table's columns to leave out first when the terminal is narrower still.
DROP_FIRST = ("success", "errors", "$/quality pt", "rating")
def table(report: Report, wide: bool = False, width: int | None = None) -> Table:
    """A rich table: one row per group, then the total. Narrow (the default): `NARROW_COLUMNS`,
    less `DROP_FIRST` ones until it fits `width`, every number whole and the group's name folded
    onto more lines when needed (never cut to `mo…`); wide: every column of `COLUMNS`."""
    summaries = (*report.groups, report.total)
    cells = [dict(zip(COLUMNS, row(s), strict=True)) for s in summaries]
    widths = {c: max(*(len(r[c]) for r in cells), *map(len, c.split())) for c in NARROW_COLUMNS}
    label = min(LABEL_MIN, max(len(s.label) for s in summaries))
    columns = COLUMNS if wide else fitting(widths, DROP_FIRST, label, width)
    rows = [[s.label, *(r[c] for c in columns)] for s, r in zip(summaries, cells, strict=True)]
    rows[-1][0] = "total"
    return grid(f"by {report.by}", [report.by, *columns], rows, ("model mix",), wide, total=True,
                width=width)


def csv_text(report: Report) -> str:
    """The report as CSV for scripts: one line per group then `total`, plain numbers (money as
    exact decimal strings, empty when unknown), the same fields as the JSON view (but the model
    mix)."""
    import csv
    import io

    fields = list(_csv_fields(report.total))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([report.by if k == "label" else k for k in fields])
    for summary in (*report.groups, report.total):
        data = _csv_fields(summary)
        writer.writerow(["" if data[k] is None else data[k] for k in fields])
    return buffer.getvalue()


def _csv_fields(summary: Summary) -> dict[str, Any]:
    """A summary's plain fields, the caching numbers as `caching.<name>`."""
    data = summary_dict(summary)
    plain = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    return {**plain, **{f"caching.{k}": v for k, v in data["caching"].items()}}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else money_text(value)


def summary_dict(summary: Summary) -> dict[str, Any]:
    """A JSON-ready view of one summary: Decimals as exact strings."""
    return {
        "label": summary.label, "requests": summary.requests, "errors": summary.errors,
        "judged": summary.judged, "successes": summary.successes,
        "success_rate": summary.success_rate,
        "cost_usd": money_text(summary.cost_usd), "priced": summary.priced,
        "routing_cost_usd": money_text(summary.routing_cost_usd),
        "unpriced": summary.unpriced, "compared": summary.compared,
        "compared_cost_usd": money_text(summary.compared_cost_usd),
        "baseline_cost_usd": money_text(summary.baseline_cost_usd),
        "savings_usd": money_text(summary.savings_usd), "savings_pct": _money(summary.savings_pct),
        "latency_p50_s": summary.latency_p50_s, "latency_p95_s": summary.latency_p95_s,
        "rated": summary.rated, "mean_rating": summary.mean_rating,
        "cost_per_quality_point_usd": _money(summary.cost_per_quality_point_usd),
        "cost_per_success_usd": _money(summary.cost_per_success_usd),
        "model_mix": [{"model": m, "requests": n, "share": n / summary.requests}
                      for m, n in summary.model_mix],
        "caching": cache_dict(summary),
    }


def report_dict(report: Report, window: Mapping[str, str | None]) -> dict[str, Any]:
    """The whole report as JSON-ready data (same numbers as the table)."""
    return {**window, "by": report.by, "baseline": report.baseline, "headline": headline(report),
            "total": summary_dict(report.total),
            "groups": [summary_dict(s) for s in report.groups]}
