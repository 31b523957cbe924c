"""The report's caching numbers as text, a table and JSON: the response cache's hit rate (exact and
semantic apart), prompt tokens read from and written to the provider's cache, and the savings from
caching (response cache + provider prompt caching) beside the savings from routing. The numbers
themselves are `Summary`'s (defined in `reports.aggregate`); this module only shows them."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..ledger.entry import money_text
from .aggregate import Report, Summary
from .fmt import DASH, fmt_usd
from .tables import Layout, fit

#: The "Caching" table's columns (after the group label), in `cache_row` order.
CACHE_COLUMNS = ("hits", "semantic", "misses", "bypass", "hit rate", "cached tok", "written tok",
                 "saved: response cache", "saved: prompt cache", "saved: routing")


def fmt_rate(value: float | None) -> str:
    """`37.5%`; None (no lookups) is `—`."""
    return DASH if value is None else f"{value:.1%}"


def hit_rate_text(summary: Summary) -> str:
    """`40.0%: 20.0% exact, 20.0% semantic` (the split only with semantic hits); `—` without
    lookups."""
    if summary.cache_hit_rate is None:
        return DASH
    if not summary.cache_semantic_hits:
        return fmt_rate(summary.cache_hit_rate)
    return (f"{fmt_rate(summary.cache_hit_rate)}: {fmt_rate(summary.cache_exact_hit_rate)} exact, "
            f"{fmt_rate(summary.cache_semantic_hit_rate)} semantic")


def cache_row(summary: Summary) -> list[str]:
    """One row of the caching table, in `CACHE_COLUMNS` order."""
    return [str(summary.cache_hits), str(summary.cache_semantic_hits), str(summary.cache_misses),
            str(summary.cache_bypasses), fmt_rate(summary.cache_hit_rate),
            f"{summary.cached_tokens:,}", f"{summary.cache_write_tokens:,}",
            fmt_usd(summary.cache_saved_usd), fmt_usd(summary.prompt_cache_saved_usd),
            fmt_usd(summary.savings_usd if summary.compared else None)]


#: The caching table's `--wide`-only columns, in the order a narrower terminal leaves them out.
CACHE_EXTRA = ("written tok", "cached tok", "bypass", "misses")


def cache_layout(by: str) -> Layout:
    """The caching table's columns, its group label (`by`) first."""
    return Layout((by, *CACHE_COLUMNS), extra=CACHE_EXTRA, drop_first=("semantic",))


def cache_table(report: Report, wide: bool = False, width: int | None = None) -> Table | None:
    """A table of the caching numbers per group, then the total, that fits `width` (the wide
    columns first left out; every column when `wide`); None when neither cache shows in the
    window."""
    if not report.total.caching_used:
        return None
    rows = [dict(zip((report.by, *CACHE_COLUMNS), [s.label, *cache_row(s)], strict=True))
            for s in report.groups]
    rows.append(dict(zip((report.by, *CACHE_COLUMNS), ["total", *cache_row(report.total)],
                         strict=True)))
    return fit(cache_layout(report.by), f"caching by {report.by}", rows, wide, width, total=True)


def savings_text(report: Report) -> str | None:
    """E.g. "Savings: $1.70 from routing; $1.00 from caching: $1.00 by the response cache (hit
    rate 40.0%: 20.0% exact, 20.0% semantic) and $0.000516 by provider prompt caching (1,512
    cached tokens read, 2,048 written)."; None when neither cache shows in the window."""
    t = report.total
    if not t.caching_used:
        return None
    routing = (f"{fmt_usd(t.savings_usd)} from routing" if t.compared
               else "routing not compared (no request priced both ways)")
    return (f"Savings: {routing}; {fmt_usd(t.caching_savings_usd)} from caching: "
            f"{fmt_usd(t.cache_saved_usd)} by the response cache (hit rate {hit_rate_text(t)}) "
            f"and {fmt_usd(t.prompt_cache_saved_usd)} by provider prompt caching "
            f"({t.cached_tokens:,} cached tokens read, {t.cache_write_tokens:,} written).")


def cache_dict(summary: Summary) -> dict[str, Any]:
    """The caching numbers of one summary as JSON-ready data (money as exact strings)."""
    return {
        "hits": summary.cache_hits, "semantic_hits": summary.cache_semantic_hits,
        "misses": summary.cache_misses, "bypasses": summary.cache_bypasses,
        "lookups": summary.cache_lookups, "hit_rate": summary.cache_hit_rate,
        "exact_hit_rate": summary.cache_exact_hit_rate,
        "semantic_hit_rate": summary.cache_semantic_hit_rate,
        "cached_tokens": summary.cached_tokens, "cache_write_tokens": summary.cache_write_tokens,
        "response_cache_saved_usd": money_text(summary.cache_saved_usd),
        "prompt_cache_saved_usd": money_text(summary.prompt_cache_saved_usd),
        "caching_saved_usd": money_text(summary.caching_savings_usd),
        "routing_saved_usd": money_text(summary.savings_usd),
    }


def caching_text(report: Report) -> dict[str, Any]:
    """The caching numbers as the dashboard shows them, formatted as `llmroute report` prints them:
    the savings sentence (None when no cache shows), the cards and the table's rows (the groups,
    then the total)."""
    t = report.total
    return {"sentence": savings_text(report),
            "routing_saved": fmt_usd(t.savings_usd if t.compared else None),
            "caching_saved": fmt_usd(t.caching_savings_usd), "hit_rate": fmt_rate(t.cache_hit_rate),
            "exact_hit_rate": fmt_rate(t.cache_exact_hit_rate),
            "semantic_hit_rate": fmt_rate(t.cache_semantic_hit_rate),
            "cached_tokens": f"{t.cached_tokens:,}", "written_tokens": f"{t.cache_write_tokens:,}",
            "rows": [[s.label, *cache_row(s)] for s in report.groups]
            + [["total", *cache_row(t)]]}
