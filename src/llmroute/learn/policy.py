"""Routing policies over predictions, as pure functions, and the cost–quality sweeps built on them.

Given P(good) and expected cost per candidate model (arrays over models, or N × M over prompts):
`by_target` picks the cheapest model whose P(good) reaches a target (else the most likely one);
`by_tradeoff` maximises P(good) − λ·cost (λ = quality points one would pay a dollar for);
`strong_share` sends a given share of prompts to the strong model of a strong/weak pair. Every
choice carries its confidence (P(good) of the chosen model) and margin, so a cascade can fall back.
`sweep_*` evaluate a policy over its parameter on data with known outcomes and costs (APGR and
the other evaluation metrics live in `llmroute.evaluate.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Choice:
    """A policy's pick for one prompt: model index, its P(good), and the margin behind the pick
    (by target: P − target, negative when no model reached it; by trade-off: score gap to the
    runner-up)."""

    index: int
    confidence: float
    margin: float


def _costs(cost: F64) -> F64:
    """Unknown (NaN) costs are treated as the most expensive known cost, so they never win on price."""
    c = np.asarray(cost, dtype=np.float64)
    if np.isnan(c).any():
        worst = np.nanmax(c, axis=-1, keepdims=True) if not np.isnan(c).all() else np.ones_like(c)
        c = np.where(np.isnan(c), np.nan_to_num(worst, nan=1.0), c)
    return c


def by_target_many(p: F64, cost: F64, target: float) -> I64:
    """Per row: the cheapest model with P(good) ≥ target, else the argmax of P(good)."""
    p2, c2 = np.atleast_2d(p), np.atleast_2d(_costs(cost))
    ok = p2 >= target
    cheapest = np.argmin(np.where(ok, c2, np.inf), axis=1)
    out: I64 = np.where(ok.any(axis=1), cheapest, np.argmax(p2, axis=1)).astype(np.int64)
    return out


def by_target(p: F64, cost: F64, target: float) -> Choice:
    """`by_target_many` for one prompt, with confidence and margin."""
    i = int(by_target_many(p, cost, target)[0])
    return Choice(i, float(p[i]), float(p[i]) - target)


def by_tradeoff_many(p: F64, cost: F64, lam: float) -> I64:
    """Per row: argmax of P(good) − λ·cost."""
    out: I64 = np.argmax(np.atleast_2d(p) - lam * np.atleast_2d(_costs(cost)), axis=1).astype(np.int64)
    return out


def by_tradeoff(p: F64, cost: F64, lam: float) -> Choice:
    """`by_tradeoff_many` for one prompt; margin = its score minus the runner-up's."""
    score = np.asarray(p, dtype=np.float64) - lam * _costs(cost)
    order = np.argsort(-score, kind="stable")
    gap = float(score[order[0]] - score[order[1]]) if len(order) > 1 else float("inf")
    i = int(order[0])
    return Choice(i, float(p[i]), gap)


def strong_scores(p_strong: F64, p_weak: F64) -> F64:
    """How much sending a prompt to the strong model is expected to gain."""
    return np.asarray(p_strong, dtype=np.float64) - np.asarray(p_weak, dtype=np.float64)


def threshold_for_share(scores: F64, share: float) -> float:
    """The score threshold that sends about `share` of these (calibration) prompts to the strong
    model: route strong when score > threshold."""
    if share <= 0:
        return float("inf")
    if share >= 1:
        return float("-inf")
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1.0 - share))


@dataclass(frozen=True)
class CurvePoint:
    """One operating point of a sweep: the parameter, mean realised cost and quality."""

    param: float
    cost: float
    quality: float


def realised(choice: I64, quality: F64, cost: F64) -> tuple[float, float]:
    """Mean real cost and quality of choosing `choice[i]` for prompt i."""
    rows = np.arange(len(choice))
    return float(cost[rows, choice].mean()), float(quality[rows, choice].mean())


def sweep_tradeoff(p: F64, est_cost: F64, quality: F64, cost: F64,
                   lambdas: Sequence[float] | None = None) -> list[CurvePoint]:
    """The λ policy over a grid of λ (default: 0 and 2,000 log-spaced values), realised on data."""
    grid = list(lambdas) if lambdas is not None else [0.0, *np.logspace(-2, 6, 2000).tolist()]
    points = []
    for lam in grid:
        c, q = realised(by_tradeoff_many(p, est_cost, lam), quality, cost)
        points.append(CurvePoint(float(lam), c, q))
    return points


def sweep_target(p: F64, est_cost: F64, quality: F64, cost: F64,
                 targets: Sequence[float] | None = None) -> list[CurvePoint]:
    """The target policy over a grid of targets (default 0..1 by 0.001), realised on data."""
    grid = list(targets) if targets is not None else np.linspace(0, 1, 1001).tolist()
    points = []
    for t in grid:
        c, q = realised(by_target_many(p, est_cost, t), quality, cost)
        points.append(CurvePoint(float(t), c, q))
    return points


def frontier(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    """The Pareto-efficient points (no other point is cheaper and at least as good), by cost."""
    best: list[CurvePoint] = []
    for pt in sorted(points, key=lambda x: (x.cost, -x.quality)):
        if not best or pt.quality > best[-1].quality:
            best.append(pt)
    return best


def quality_within(points: Sequence[CurvePoint], budget: float) -> float:
    """Best quality among points costing at most `budget` (NaN when none does)."""
    ok = [p.quality for p in points if p.cost <= budget]
    return max(ok) if ok else float("nan")


def cost_for(points: Sequence[CurvePoint], quality: float) -> float:
    """Least cost among points reaching `quality` (NaN when none does)."""
    ok = [p.cost for p in points if p.quality >= quality]
    return min(ok) if ok else float("nan")
