"""Paired bootstrap of an APGR difference (issue 13), vectorised over resamples.

APGR with tied scores averaged (`transfer.tie_averaged_apgr`) is, with d = q_strong − q_weak in
descending score order and the records grouped by equal score,

    APGR = Σ_g D_g · (n − before_g − C_g / 2) / (n · Σ_g D_g)

where C_g is the group's record count, D_g the sum of its d, and before_g the count of records in
higher-scoring groups (the area under PGR_k = G_k / G_n over k/n by trapezoids, each tie group's gain
spread evenly over its positions). A bootstrap resample is a count per record (how often it was
drawn), so every resample's APGR is a few array sums over a B × n count matrix; the two routers of a
paired comparison see the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Verdict = Literal["significantly below", "below, within noise", "above, within noise",
                  "significantly above"]
RESAMPLES: Final = 1000
LEVEL: Final = 0.90


@dataclass(frozen=True)
class Difference:
    """APGR(a) − APGR(b) on the full set and its bootstrap percentile interval."""

    diff: float
    low: float
    high: float
    resamples: int          # resamples with a defined APGR (strong and weak totals differ)

    @property
    def verdict(self) -> Verdict:
        """Where a stands against b: the interval wholly below or above 0, else the point's side."""
        if self.high < 0:
            return "significantly below"
        if self.low > 0:
            return "significantly above"
        return "below, within noise" if self.diff < 0 else "above, within noise"


def resample_counts(n: int, resamples: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """A resamples × n matrix: how often each of n records is drawn in each resample of size n."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    counts: npt.NDArray[np.int64] = np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n)
    return counts


def apgr_weighted(scores: F64, q_strong: F64, q_weak: F64, counts: npt.NDArray[np.int64]) -> F64:
    """Tie-averaged APGR of `scores` for each row of `counts` (record multiplicities); NaN where the
    resample's strong and weak totals are equal."""
    s = np.asarray(scores, dtype=np.float64)
    d = np.asarray(q_strong, dtype=np.float64) - np.asarray(q_weak, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    c = np.asarray(counts, dtype=np.float64)[:, order]
    groups_c = np.add.reduceat(c, starts, axis=1)
    groups_d = np.add.reduceat(c * d[order][None, :], starts, axis=1)
    n = c.sum(axis=1)
    before = np.cumsum(groups_c, axis=1) - groups_c
    total = groups_d.sum(axis=1)
    area = (groups_d * (n[:, None] - before - groups_c / 2)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.where(np.abs(total) > 1e-12, area / (n * total), np.nan)
    return out


def paired_difference(a: F64, b: F64, q_strong: F64, q_weak: F64, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> Difference:
    """APGR(a) − APGR(b) on the same prompts, with a paired percentile bootstrap interval."""
    n = len(q_strong)
    full = apgr_weighted(a, q_strong, q_weak, np.ones((1, n), dtype=np.int64))[0] - \
        apgr_weighted(b, q_strong, q_weak, np.ones((1, n), dtype=np.int64))[0]
    counts = resample_counts(n, resamples, seed)
    diffs = apgr_weighted(a, q_strong, q_weak, counts) - apgr_weighted(b, q_strong, q_weak, counts)
    diffs = diffs[~np.isnan(diffs)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail]) if len(diffs) else (np.nan, np.nan)
    return Difference(float(full), float(low), float(high), len(diffs))
