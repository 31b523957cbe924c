"""The offline evaluation lab: replay outcome records through routing strategies (no live calls) and
turn each strategy's choices into points on a cost–quality plane.

A strategy maps every record to the model it would send it to, for each setting of its knob; the point
of a setting is the mean quality and mean cost of the chosen models' recorded outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..learn.data import OutcomeTable
from .metrics import CurvePoint

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Table:
    """Complete records as matrices over a fixed model list: quality Q[i, m] and cost C[i, m] (USD
    per request), with the prompts (no missing values: see `OutcomeTable.complete`)."""

    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray
    texts: tuple[str, ...]

    @classmethod
    def of(cls, table: OutcomeTable) -> Table:
        """From a complete OutcomeTable."""
        if np.isnan(table.quality).any() or np.isnan(table.cost).any():
            raise ValueError("the table has missing outcomes or costs: use .complete() first")
        if not table.prompts:
            raise ValueError("no record has an outcome and a cost for every model asked for")
        return cls(table.models, table.quality, table.cost, table.prompts)

    @property
    def n(self) -> int:
        """Number of records."""
        return len(self.texts)

    def point(self, choice: NDArray[np.int_], label: str,
              strong_share: float | None = None) -> CurvePoint:
        """Mean quality and cost when record i goes to model choice[i]."""
        rows = np.arange(self.n)
        return CurvePoint(float(self.cost[rows, choice].mean()),
                          float(self.quality[rows, choice].mean()), label, strong_share)

    def single(self, model: str) -> CurvePoint:
        """Always `model`."""
        j = self.models.index(model)
        return CurvePoint(float(self.cost[:, j].mean()), float(self.quality[:, j].mean()), model)


def oracle_choice(table: Table) -> NDArray[np.int_]:
    """Per record, the cheapest model with the best recorded quality (hindsight)."""
    best = table.quality.max(axis=1, keepdims=True)
    cost = np.where(table.quality >= best, table.cost, np.inf)
    return np.asarray(cost.argmin(axis=1), dtype=np.int_)


def tier_choice(table: Table, tiers: Sequence[str], tier_models: Mapping[str, str]
                ) -> NDArray[np.int_]:
    """Record i goes to the model standing for tier tiers[i]."""
    index = {m: j for j, m in enumerate(table.models)}
    return np.array([index[tier_models[t]] for t in tiers], dtype=np.int_)


def default_tier_models(table: Table, ladder: Sequence[str]) -> dict[str, str]:
    """Stand-ins for a tier ladder among the dataset's models, by mean cost: the cheapest for the
    first tier, the highest-quality model for the last, evenly spaced cost ranks in between."""
    by_cost = sorted(table.models, key=lambda m: float(table.cost[:, table.models.index(m)].mean()))
    top = max(table.models, key=lambda m: float(table.quality[:, table.models.index(m)].mean()))
    picks = {}
    for i, tier in enumerate(ladder):
        rank = round(i * (len(by_cost) - 1) / max(1, len(ladder) - 1))
        picks[tier] = top if i == len(ladder) - 1 else by_cost[rank]
    return picks
