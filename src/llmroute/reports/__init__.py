"""Spend-and-quality reports over the request ledger: `aggregate` (the numbers, from a store's
aggregates or, as the reference, over entries), `window` (parsing --since/--until), `render`
(terminal, JSON, headline), `caching` (the caching numbers shown: hit rate, tokens, savings from
caching beside routing's), `cache_hits` (the semantic cache's answers to judge) and `page` (HTML +
plots)."""

from __future__ import annotations

from .aggregate import (
    GROUP_KEYS,
    Report,
    Summary,
    build_report,
    group_by,
    nearest_rank,
    report_from,
    summarise,
)
from .window import parse_when

__all__ = ["GROUP_KEYS", "Report", "Summary", "build_report", "group_by", "nearest_rank",
           "parse_when", "report_from", "summarise"]
