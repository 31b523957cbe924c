"""Pure cost–quality metrics for comparing routers offline (numpy only, no I/O).

Two families, each with its paper's definition and our choices where the paper leaves room:

* RouterBench (Hu et al. 2024, arXiv 2403.12031): a router is a set of `CurvePoint`s (average USD per
  request, average quality). Its non-decreasing convex hull R̃ is the cost–quality curve, and AIQ is the
  mean of R̃ over a cost range. Savings, shortfalls and "keeps X% of the reference's quality at Y% of its
  cost" are all read off that hull.
* RouteLLM (Ong et al. 2024, arXiv 2406.18665): a strong/weak pair, a per-record router score (higher =
  more need of the strong model), PGR (performance gap recovered), APGR (its area over the strong-call
  share) and CPT (the least strong-call share reaching a PGR target).

Quality comparisons ("reaches", "falls short") allow `QUALITY_TOLERANCE` so that averages of the same
numbers summed in a different order compare equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

#: Absolute slack when comparing qualities (and PGRs): differences below it count as equal.
QUALITY_TOLERANCE: Final = 1e-9
#: Slack in ⌈s·n⌉ so that a share like 0.3 of 10 records gives 3, not 4 (0.3 * 10 == 3.0000000000000004).
_COUNT_SLACK: Final = 1e-9

FloatArray: TypeAlias = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CurvePoint:
    """One operating point: `cost` = average USD per request, `quality` = average quality.

    `label` names the model or router setting; `strong_share` is the fraction of requests sent to the
    strong model when the point comes from a strong/weak router (None otherwise).
    """

    cost: float
    quality: float
    label: str = ""
    strong_share: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cost) and self.cost >= 0):
            raise ValueError(f"cost must be finite and >= 0, got {self.cost!r}")
        if not math.isfinite(self.quality):
            raise ValueError(f"quality must be finite, got {self.quality!r}")
        if self.strong_share is not None and not 0.0 <= self.strong_share <= 1.0:
            raise ValueError(f"strong_share must lie in [0, 1], got {self.strong_share!r}")


#: A cost–quality curve: points in any order (a hull is sorted by cost, see `non_decreasing_convex_hull`).
Curve: TypeAlias = Sequence[CurvePoint]


@dataclass(frozen=True)
class Saving:
    """What the router saves against one single model at that model's quality.

    `router_cost` is the router hull's least cost reaching `model_quality` (None: unreachable);
    `saving` = 1 − router_cost / model_cost (negative when the router costs more; None when unreachable
    or the model is free).
    """

    model: str
    model_cost: float
    model_quality: float
    router_cost: float | None
    saving: float | None


@dataclass(frozen=True)
class TargetSummary:
    """The router's least cost reaching `fraction` × the reference's quality, absolute and relative."""

    fraction: float
    quality: float
    cost: float | None
    cost_fraction: float | None


# ---------------------------------------------------------------------------------------------- hulls


def pareto_points(points: Iterable[CurvePoint]) -> list[CurvePoint]:
    """The points no other point dominates, by cost ascending (so quality strictly ascending too).

    p dominates r when p.cost <= r.cost and p.quality >= r.quality; of exact duplicates the first given
    is kept. Raises ValueError on no points.
    """
    ordered = sorted(_nonempty(points), key=lambda p: (p.cost, -p.quality))
    front: list[CurvePoint] = []
    for point in ordered:
        if not front or point.quality > front[-1].quality:
            front.append(point)
    return front


def non_decreasing_convex_hull(points: Iterable[CurvePoint]) -> list[CurvePoint]:
    """RouterBench's non-decreasing convex hull R̃: its vertices, by cost ascending.

    The upper convex hull of the points, made non-decreasing in quality as cost grows: a point with more
    cost but less quality than an earlier hull point is dropped, and the hull extends flat to the right
    of its best point. It starts at the cheapest point (the best one among equally cheap points).
    Points on a hull segment (collinear) are not vertices and are dropped. Computed as the upper hull
    (Andrew's monotone chain) of the Pareto points, which gives the same curve. ValueError on no points.
    """
    hull: list[CurvePoint] = []
    for point in pareto_points(points):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def quality_at_cost(hull: Curve, cost: float) -> float | None:
    """R̃(cost): linear interpolation between hull vertices, flat beyond the last one.

    None below the cheapest vertex (the router cannot operate on that budget). `hull` must come from
    `non_decreasing_convex_hull` (ValueError otherwise).
    """
    costs, qualities = _hull_arrays(hull)
    if math.isnan(cost):
        raise ValueError("cost is NaN")
    if cost < costs[0]:
        return None
    return float(np.interp(cost, costs, qualities))


def cost_for_quality(hull: Curve, quality: float) -> float | None:
    """The least cost c with R̃(c) >= quality, by linear interpolation on the hull; None if unreachable.

    Any quality up to the cheapest vertex's costs that vertex's cost (the hull starts there).
    Reachable means quality <= the best vertex's quality + QUALITY_TOLERANCE.
    """
    costs, qualities = _hull_arrays(hull)
    if math.isnan(quality):
        raise ValueError("quality is NaN")
    if quality > qualities[-1] + QUALITY_TOLERANCE:
        return None
    j = int(np.searchsorted(qualities, quality - QUALITY_TOLERANCE, side="left"))
    if j == 0:
        return float(costs[0])
    # qualities[j-1] < quality - tol <= qualities[j], so the segment rises and the division is safe.
    t = (quality - qualities[j - 1]) / (qualities[j] - qualities[j - 1])
    t = min(max(float(t), 0.0), 1.0)
    return float(costs[j - 1] + t * (costs[j] - costs[j - 1]))


def aiq(points: Iterable[CurvePoint], cost_min: float, cost_max: float) -> float:
    """RouterBench's Average Improvement in Quality: (1/(cost_max − cost_min)) ∫ R̃(c) dc over the range.

    R̃ is the non-decreasing convex hull of `points`. Our choice where the paper is silent: for costs below
    the hull's cheapest vertex R̃ takes that vertex's quality (flat extension to the left, as to the
    right). The integral is exact: R̃ is piecewise linear, so trapezoids over the range's ends plus the
    vertices inside it are exact. Compare routers over one common range, e.g. [min, max] of all their
    costs. ValueError on no points or unless cost_min < cost_max (both finite).
    """
    if not (math.isfinite(cost_min) and math.isfinite(cost_max) and cost_min < cost_max):
        raise ValueError(f"need finite cost_min < cost_max, got [{cost_min!r}, {cost_max!r}]")
    costs, qualities = _hull_arrays(non_decreasing_convex_hull(points))
    inside = costs[(costs > cost_min) & (costs < cost_max)]
    xs = np.concatenate(([cost_min], inside, [cost_max]))
    ys = np.interp(xs, costs, qualities)  # np.interp holds the end values flat on both sides
    return _trapezoid(xs, ys) / (cost_max - cost_min)


# ---------------------------------------------------------------------------------- RouteLLM metrics


def strong_share_curve(
    scores: npt.ArrayLike, q_strong: npt.ArrayLike, q_weak: npt.ArrayLike, shares: Iterable[float]
) -> list[tuple[float, float]]:
    """Average quality when a share of the records goes to the strong model, one pair per share given.

    For share s in [0, 1] the top k = ⌈s·n⌉ records by score go to strong (ties: lower index first) and
    the rest to weak. Returns (k/n, average quality): the share actually realised, which differs from s
    when s·n is not whole. ValueError on bad input (see `quality_by_count`) or s outside [0, 1].
    """
    by_count = quality_by_count(scores, q_strong, q_weak)
    n = len(by_count) - 1
    result: list[tuple[float, float]] = []
    for share in shares:
        k = _count_for_share(share, n)
        result.append((k / n, float(by_count[k])))
    return result


def quality_by_count(scores: npt.ArrayLike, q_strong: npt.ArrayLike, q_weak: npt.ArrayLike) -> FloatArray:
    """Q[k], k = 0..n: the average quality when the k highest-scored records go to the strong model.

    Ties in score are broken stably: the lower record index goes to strong first. Q[0] is all-weak and
    Q[n] all-strong. ValueError unless the three inputs are 1-D, equally long, non-empty and finite.
    """
    score, strong, weak = _routing_arrays(scores, q_strong, q_weak)
    order = np.argsort(-score, kind="stable")
    gains = np.cumsum((strong - weak)[order])
    totals = weak.sum() + np.concatenate(([0.0], gains))
    result: FloatArray = totals / len(score)
    return result


def pgr(quality: float, q_weak_mean: float, q_strong_mean: float) -> float:
    """Performance gap recovered: (quality − weak) / (strong − weak).

    0 at the weak model's quality, 1 at the strong model's; it may exceed 1 (a router beating the strong
    model) or drop below 0. Undefined when the two means are equal (within QUALITY_TOLERANCE):
    ValueError, never nan.
    """
    if not math.isfinite(quality):
        raise ValueError(f"quality must be finite, got {quality!r}")
    return (quality - q_weak_mean) / _quality_gap(q_weak_mean, q_strong_mean)


def pgr_by_count(scores: npt.ArrayLike, q_strong: npt.ArrayLike, q_weak: npt.ArrayLike) -> FloatArray:
    """PGR_k = pgr(Q[k], Q[0], Q[n]) for k = 0..n, so PGR_0 = 0 and PGR_n = 1 exactly.

    The weak and strong means are the all-weak and all-strong routings Q[0] and Q[n] from
    `quality_by_count`. ValueError when they are equal (PGR undefined).
    """
    by_count = quality_by_count(scores, q_strong, q_weak)
    weak = float(by_count[0])
    result: FloatArray = (by_count - weak) / _quality_gap(weak, float(by_count[-1]))
    return result


def apgr(
    scores: npt.ArrayLike, q_strong: npt.ArrayLike, q_weak: npt.ArrayLike, *, steps: int | None = None
) -> float:
    """Average PGR: the area under PGR versus the strong-call share s over [0, 1].

    The curve is piecewise linear through the points (k/n, PGR_k), k = 0..n (`pgr_by_count`): between two
    whole counts it is the expected PGR of sending the next record to strong with probability s·n − k,
    so a random router's expected APGR is exactly 0.5. With `steps=None` (default) the area is exact:
    trapezoids on the grid of every k/n, the finest grid that matters (extra points on a straight piece
    add nothing). With `steps=m` the same curve is sampled at the m + 1 even shares j/m only and
    integrated by trapezoids: the coarse estimate papers plot (e.g. RouteLLM's evenly spaced shares).
    ValueError when PGR is undefined (strong and weak means equal) or steps < 1.
    """
    pgrs = pgr_by_count(scores, q_strong, q_weak)
    count_shares = np.linspace(0.0, 1.0, len(pgrs))
    if steps is None:
        return _trapezoid(count_shares, pgrs)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    grid = np.linspace(0.0, 1.0, steps + 1)
    return _trapezoid(grid, np.interp(grid, count_shares, pgrs))


def cpt(
    scores: npt.ArrayLike, q_strong: npt.ArrayLike, q_weak: npt.ArrayLike, target_pgr: float
) -> float | None:
    """Call-performance threshold: the least strong-call share k/n with PGR_k >= target_pgr.

    Only whole counts k are considered (no interpolation), with QUALITY_TOLERANCE slack on the
    comparison. None when no count reaches the target. Typical targets: 0.5, 0.8, 0.95 (CPT(50%) ...).
    ValueError when PGR is undefined or the target is not finite.
    """
    if not math.isfinite(target_pgr):
        raise ValueError(f"target_pgr must be finite, got {target_pgr!r}")
    pgrs = pgr_by_count(scores, q_strong, q_weak)
    reached = np.flatnonzero(pgrs >= target_pgr - QUALITY_TOLERANCE)
    if reached.size == 0:
        return None
    return int(reached[0]) / (len(pgrs) - 1)


# ------------------------------------------------------------------------------ against single models


def best_single(singles: Mapping[str, CurvePoint]) -> tuple[str, CurvePoint]:
    """The single model with the highest quality; ties go to the cheaper, then to the first name A–Z."""
    if not singles:
        raise ValueError("no single models given")
    return min(singles.items(), key=lambda item: (-item[1].quality, item[1].cost, item[0]))


def savings_vs_best_single(router_hull: Curve, singles: Mapping[str, CurvePoint]) -> list[Saving]:
    """For each single model (in the mapping's order): the router's least cost at that model's quality.

    router_cost = cost_for_quality(router_hull, model quality) (None: the router never gets there) and
    saving = 1 − router_cost / model_cost. Read the row of `best_single(singles)` for the headline.
    """
    _hull_arrays(router_hull)
    rows: list[Saving] = []
    for model, point in singles.items():
        router_cost = cost_for_quality(router_hull, point.quality)
        saving = None if router_cost is None or point.cost == 0 else 1.0 - router_cost / point.cost
        rows.append(Saving(model, point.cost, point.quality, router_cost, saving))
    return rows


def shortfall_budgets(router_hull: Curve, singles: Mapping[str, CurvePoint]) -> list[float]:
    """The budgets where the router does worse than simply picking the best single model for them.

    Budgets are the single models' costs (ascending, each once). At budget b the router falls short when
    R̃_router(b) < R̃_singles(b) − QUALITY_TOLERANCE, R̃_singles being the singles' own non-decreasing hull,
    or when b is below the router's cheapest point (it cannot serve that budget). Because R̃_router is
    concave and non-decreasing and R̃_singles is linear between these budgets and flat after the last,
    checking these budgets alone covers every budget from the cheapest single model upwards.
    """
    singles_hull = non_decreasing_convex_hull(_nonempty(singles.values()))
    short: list[float] = []
    for budget in sorted({p.cost for p in singles.values()}):
        mine = quality_at_cost(router_hull, budget)
        theirs = quality_at_cost(singles_hull, budget)
        assert theirs is not None  # every single's cost is >= the singles hull's cheapest vertex
        if mine is None or mine < theirs - QUALITY_TOLERANCE:
            short.append(budget)
    return short


def beats_best_single_everywhere(router_hull: Curve, singles: Mapping[str, CurvePoint]) -> bool:
    """True when the router matches or beats the singles' hull at every budget (no `shortfall_budgets`)."""
    return not shortfall_budgets(router_hull, singles)


def summary_at_targets(
    hull: Curve, reference: CurvePoint, fractions: Sequence[float] = (0.95, 1.0)
) -> list[TargetSummary]:
    """For each fraction f: the least cost on `hull` reaching f × reference.quality, and that cost as a
    fraction of reference.cost — "keeps 95% of the reference's quality at <= 15% of its cost".

    cost / cost_fraction are None where the hull never reaches the quality. ValueError when the
    reference is free (cost 0: no fraction of it is defined).
    """
    if reference.cost == 0:
        raise ValueError(f"reference {reference.label!r} costs 0: cost fractions are undefined")
    rows: list[TargetSummary] = []
    for fraction in fractions:
        quality = fraction * reference.quality
        cost = cost_for_quality(hull, quality)
        share = None if cost is None else cost / reference.cost
        rows.append(TargetSummary(fraction, quality, cost, share))
    return rows


# ------------------------------------------------------------------------------------------- helpers


def _quality_gap(q_weak_mean: float, q_strong_mean: float) -> float:
    """strong − weak; ValueError when not finite or within QUALITY_TOLERANCE of 0 (PGR undefined)."""
    gap = q_strong_mean - q_weak_mean
    if not math.isfinite(gap) or abs(gap) <= QUALITY_TOLERANCE:
        raise ValueError(f"PGR is undefined: strong mean {q_strong_mean!r} vs weak mean {q_weak_mean!r}")
    return gap


def _nonempty(points: Iterable[CurvePoint]) -> list[CurvePoint]:
    """The points as a list; ValueError when there are none."""
    result = list(points)
    if not result:
        raise ValueError("no points given")
    return result


def _cross(o: CurvePoint, a: CurvePoint, b: CurvePoint) -> float:
    """z of (a − o) × (b − o): >= 0 when a lies on or below the line from o to b (o, b by cost)."""
    return (a.cost - o.cost) * (b.quality - o.quality) - (a.quality - o.quality) * (b.cost - o.cost)


def _hull_arrays(hull: Curve) -> tuple[FloatArray, FloatArray]:
    """A hull's costs and qualities; ValueError unless non-empty, cost strictly up and quality not down."""
    costs = np.array([p.cost for p in _nonempty(hull)], dtype=np.float64)
    qualities = np.array([p.quality for p in hull], dtype=np.float64)
    if np.any(np.diff(costs) <= 0) or np.any(np.diff(qualities) < 0):
        raise ValueError("not a non-decreasing hull: build it with non_decreasing_convex_hull()")
    return costs, qualities


def _routing_arrays(*arrays: npt.ArrayLike) -> tuple[FloatArray, ...]:
    """The inputs as float arrays; ValueError unless 1-D, equally long, non-empty and all finite."""
    result = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    shapes = {a.shape for a in result}
    if len(shapes) != 1 or result[0].ndim != 1 or result[0].size == 0:
        raise ValueError(f"need non-empty 1-D arrays of one length, got shapes {sorted(shapes)}")
    if not all(np.all(np.isfinite(a)) for a in result):
        raise ValueError("scores and qualities must be finite")
    return result


def _count_for_share(share: float, n: int) -> int:
    """k = ⌈share·n⌉ (with _COUNT_SLACK), clipped to [0, n]; ValueError for a share outside [0, 1]."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {share!r}")
    return min(max(math.ceil(share * n - _COUNT_SLACK), 0), n)


def _trapezoid(xs: FloatArray, ys: FloatArray) -> float:
    """The trapezoid rule over the points (xs[i], ys[i]): exact for a piecewise-linear function."""
    return float(np.sum((ys[1:] + ys[:-1]) * np.diff(xs)) / 2.0)
