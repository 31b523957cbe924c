"""The numbers a report or the dashboard shows for a window, read the cheapest exact-enough way.

`window_numbers` asks the store's rollups first (a few thousand rows whatever the window holds).
When the window holds at most `EXACT_BELOW` requests, it then aggregates the raw rows instead, which
is cheap at that size and gives exact nearest-rank latency percentiles; above, the percentiles come
from the rollups' latency sketch, within 1 % (`sketch`). Every other number is exact either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .aggregates import NONE_LABEL, WindowAggregate
from .rollup_read import RollupWindow, regroup
from .store import Store

#: Windows of up to this many requests are aggregated from their raw rows (exact percentiles).
EXACT_BELOW = 20_000


@dataclass(frozen=True)
class WindowNumbers:
    """A window's aggregate and whether its latency percentiles are exact (else within 1 %)."""

    aggregate: WindowAggregate
    exact_percentiles: bool

    @property
    def percentiles_note(self) -> str:
        return "exact" if self.exact_percentiles else "within 1%"


#: Groupings only the rollups answer: "arm" (the experiment arm) and "team" (each key's team).
ROLLUP_ONLY = ("arm", "team")


async def numbers_with(store: Store, by: str, since: datetime | None, until: datetime | None,
                       also: Sequence[str] = ()) -> tuple[WindowNumbers, dict[str, RollupWindow]]:
    """`window_numbers(by)` and, read with it in one pass over the rollups, the rollup windows of
    the groupings `also` (the dashboard's report by model and its experiments' arms)."""
    extra = tuple(dict.fromkeys(g for g in also if g != by))
    rolled = await store.rollups_by((by, *extra), since, until)
    numbers = await _chosen(store, rolled[by], since, until, EXACT_BELOW)
    return numbers, {g: rolled[g] for g in also}


async def key_numbers(store: Store, key: str, since: datetime | None, until: datetime | None
                      ) -> tuple[WindowNumbers, WindowAggregate]:
    """One gateway key's own numbers (an application key's dashboard): by model, exact, and by
    policy, both from its raw rows only (the rollups keep no key x model grouping; the
    (key_name, ts) index keeps the read to that key's rows)."""
    by_model = await store.aggregate("model", since, until, key=key)
    return WindowNumbers(by_model, True), await store.aggregate("policy", since, until, key=key)


async def _chosen(store: Store, rolled: RollupWindow, since: datetime | None,
                  until: datetime | None, exact_below: int) -> WindowNumbers:
    """The rollups' numbers, or the raw rows' exact ones when the window holds at most
    `exact_below` requests."""
    if rolled.total.tally.requests > exact_below:
        return WindowNumbers(rolled.aggregate(), False)
    return WindowNumbers(await store.aggregate(rolled.by, since, until), True)


async def window_numbers(store: Store, by: str, since: datetime | None, until: datetime | None, *,
                         exact: bool = False, exact_below: int = EXACT_BELOW,
                         teams: Mapping[str, str | None] | None = None) -> WindowNumbers:
    """The window's numbers grouped `by` (see the module docstring); `exact`: always from the raw
    rows (a full scan of the window on a large ledger). By "team", the keys' groups merged by
    `teams` (key name -> team; a key without one, or unknown, is "(none)"); by "arm" or "team" the
    percentiles always come from the rollups."""
    if by == "team":
        mapping = dict(teams or {})
        rolled = regroup(await store.rollups("key", since, until), "team",
                         lambda key: mapping.get(key) or NONE_LABEL)
        return WindowNumbers(rolled.aggregate(), False)
    if by == "arm":
        return WindowNumbers((await store.rollups("arm", since, until)).aggregate(), False)
    if exact or by == "explored":  # no rollup keeps the exploration mark: always the raw rows
        return WindowNumbers(await store.aggregate(by, since, until), True)
    return await _chosen(store, await store.rollups(by, since, until), since, until, exact_below)
