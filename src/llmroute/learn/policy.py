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

import math
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..frozen import quick_init

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@quick_init  # one a routing decision (the generated __init__: ~7 k instructions, issue 17)
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


def _row_costs(cost: list[float]) -> list[float]:
    """`_costs` of one row on Python floats (the same values: NaN -> the most expensive known cost,
    1.0 when none is known, ±inf as `np.nan_to_num` makes it: ±the largest float)."""
    known = [c for c in cost if c == c]
    if len(known) == len(cost):
        return cost
    worst = max(known) if known else 1.0
    if math.isinf(worst):
        worst = math.copysign(sys.float_info.max, worst)
    return [c if c == c else worst for c in cost]


def _first_max(values: list[float]) -> int:
    """`np.argmax` of one row: the first NaN if any, else the first maximum."""
    for i, v in enumerate(values):
        if v != v:
            return i
    return values.index(max(values))


def _top_two(scores: list[float]) -> tuple[int, int]:
    """The first two of `np.argsort(-scores, kind="stable")` (-1 when there is one score): the
    first index of the largest score, then the first of the largest among the rest; NaN last."""
    top = second = -1
    for i, v in enumerate(scores):
        if v != v:
            continue
        if top < 0 or v > scores[top]:
            top, second = i, top
        elif second < 0 or v > scores[second]:
            second = i
    if second < 0:                                  # NaN scores, in index order, come last
        rest = [i for i, v in enumerate(scores) if v != v and i != top]
        if top < 0:
            top, rest = (rest[0], rest[1:]) if rest else (0, [])
        second = rest[0] if rest else -1
    return top, second


def _one_row(p: F64, cost: F64) -> tuple[list[float], list[float]] | None:
    """Python floats of one prompt's P(good) and costs, or None for anything but two 1-D float64
    arrays of one non-zero length (then the numpy functions decide)."""
    if (not isinstance(p, np.ndarray) or not isinstance(cost, np.ndarray) or p.ndim != 1 or cost.ndim != 1
            or p.dtype.char != "d" or cost.dtype.char not in "fd" or len(p) != len(cost) or len(p) == 0):
        return None
    return p.tolist(), cost.tolist()


def target_row(ps: list[float], cost: list[float], target: float) -> Choice:
    """`by_target` of one prompt given as Python floats (P(good) and costs of one non-zero length;
    NaN costs are resolved here): the same choice, confidence and margin."""
    cs = _row_costs(cost)
    masked = [c if q >= target else math.inf for q, c in zip(ps, cs, strict=True)]
    i = masked.index(min(masked)) if any(q >= target for q in ps) else _first_max(ps)
    return Choice(i, ps[i], ps[i] - target)


def by_target(p: F64, cost: F64, target: float) -> Choice:
    """`by_target_many` for one prompt, with confidence and margin (on Python floats for one 1-D
    row: the same IEEE operations and ties as numpy's, a fraction of the per-request calls)."""
    row = _one_row(p, cost)
    if row is None:
        i = int(by_target_many(p, cost, target)[0])
        return Choice(i, float(p[i]), float(p[i]) - target)
    return target_row(*row, target)


def by_tradeoff_many(p: F64, cost: F64, lam: float) -> I64:
    """Per row: argmax of P(good) − λ·cost."""
    out: I64 = np.argmax(np.atleast_2d(p) - lam * np.atleast_2d(_costs(cost)), axis=1).astype(np.int64)
    return out


def by_tradeoff(p: F64, cost: F64, lam: float) -> Choice:
    """`by_tradeoff_many` for one prompt; margin = its score minus the runner-up's (on Python floats
    for one 1-D row: the same products, differences and stable order as numpy's)."""
    row = _one_row(p, cost)
    if row is not None:
        return tradeoff_row(*row, lam)
    score = np.asarray(p, dtype=np.float64) - lam * _costs(cost)
    order = np.argsort(-score, kind="stable")
    gap = float(score[order[0]] - score[order[1]]) if len(order) > 1 else float("inf")
    i = int(order[0])
    return Choice(i, float(p[i]), gap)


def tradeoff_row(ps: list[float], cost: list[float], lam: float) -> Choice:
    """`by_tradeoff` of one prompt given as Python floats (P(good) and costs of one non-zero length;
    NaN costs are resolved here): the same choice, confidence and margin. One pass when no score is
    NaN (`_top_two`'s order then), else `_tradeoff_row`."""
    if len(ps) == len(cost):
        top = second = -1
        best = runner = 0.0
        for i, (q, c) in enumerate(zip(ps, cost, strict=True)):
            s = q - lam * c
            if s != s:                     # a NaN cost or P(good), or 0 × inf: the general pass
                return _tradeoff_row(ps, cost, lam)
            if top < 0 or s > best:
                top, second, best, runner = i, top, s, best
            elif second < 0 or s > runner:
                second, runner = i, s
        if top >= 0:
            return Choice(top, ps[top], best - runner if second >= 0 else math.inf)
    return _tradeoff_row(ps, cost, lam)


def _tradeoff_row(ps: list[float], cost: list[float], lam: float) -> Choice:
    """`tradeoff_row` on any row: NaN costs resolved, NaN scores ordered last (`_top_two`)."""
    cs = _row_costs(cost)
    scores = [q - lam * c for q, c in zip(ps, cs, strict=True)]
    top, second = _top_two(scores)
    margin = scores[top] - scores[second] if second >= 0 else float("inf")
    return Choice(top, ps[top], margin)


def blend_point(text: str) -> float:
    """A prompt's stable position in [0, 1) for splitting traffic between two knob settings: CRC-32 of
    its UTF-8 bytes (the same in every process and run, unlike `hash`)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) / 2**32


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


@dataclass(frozen=True)
class Events:
    """Where a one-parameter policy's choices change on a set of prompts: `first` is every row's
    choice at the sweep's start (0); event k says row `row[k]` switches to `new[k]` just above
    `value[k]` (each row's events are adjacent and in increasing value). `top` bounds the parameter
    (1 for a target; 0 when unbounded, as λ)."""

    first: I64
    value: F64
    row: I64
    new: I64
    top: float


def policy_events(knob: str, p: F64, est_cost: F64) -> Events:
    """The events of the `target` or `tradeoff` policy over these predictions (see `exact_curve`)."""
    p2, e2 = np.atleast_2d(np.asarray(p, dtype=np.float64)), np.atleast_2d(_costs(est_cost))
    if knob == "target":
        return Events(*_target_events(p2, e2), top=1.0)
    if knob == "tradeoff":
        return Events(*_tradeoff_events(p2, e2), top=0.0)
    raise ValueError(f"unknown knob {knob!r} (target or tradeoff)")


def exact_curve(events: Events, quality: F64, cost: F64) -> list[CurvePoint]:
    """The exact curve of a policy from its events, realised on `quality` and `cost` (any per-row,
    per-model matrices: the same events serve every measure). One point at 0, then one per distinct
    event value, whose parameter lies strictly inside the interval where that point's choices hold."""
    first, value, row, new, top = events.first, events.value, events.row, events.new, events.top
    n = len(first)
    rows = np.arange(n)
    q0, c0 = float(quality[rows, first].sum()), float(cost[rows, first].sum())
    if len(value) == 0:
        return [CurvePoint(0.0, c0 / n, q0 / n)]
    same = np.r_[False, row[1:] == row[:-1]]                  # events come grouped by row, in order
    old = np.where(same, np.r_[0, new[:-1]], first[row])      # each row's choice before the event
    order = np.lexsort((np.arange(len(value)), value))
    value, row, new, old = value[order], row[order], new[order], old[order]
    dq = np.cumsum(quality[row, new] - quality[row, old])
    dc = np.cumsum(cost[row, new] - cost[row, old])
    # Values equal up to rounding are one breakpoint (else a parameter between them would be decided
    # by rounding): a group ends where the next value is clearly larger.
    gap = value[1:] > value[:-1] * (1 + 1e-9) + 1e-12
    ends = np.flatnonzero(np.r_[gap, True])                  # last event of each group
    starts = np.r_[0, ends[:-1] + 1]
    nxt = np.r_[value[starts[1:]], max(top, float(value[-1]) * 2, float(value[-1]) + 1e-6)]
    params = (value[ends] + nxt) / 2
    points = [CurvePoint(0.0, c0 / n, q0 / n)]
    points += [CurvePoint(float(t), (c0 + float(dc[e])) / n, (q0 + float(dq[e])) / n)
               for t, e in zip(params, ends, strict=True)]
    return points


def _tradeoff_events(p: F64, est: F64) -> tuple[I64, F64, I64, I64]:
    """Per row, the upper envelope of P(good) − λ·cost as λ grows from 0: the choice at 0 and each
    λ where it passes to a cheaper model."""
    first = by_tradeoff_many(p, est, 0.0)
    values: list[float] = []
    rows: list[int] = []
    news: list[int] = []
    for i in range(p.shape[0]):
        cur, lam = int(first[i]), 0.0
        while True:
            cheaper = est[i] < est[i, cur]
            if not cheaper.any():
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = np.where(cheaper, (p[i, cur] - p[i]) / (est[i, cur] - est[i]), np.inf)
            cross = np.maximum(cross, lam)
            at = float(cross.min())
            if not np.isfinite(at):
                break
            tied = np.flatnonzero(cross == at)
            # Just above `at`, the tied model that falls slowest (cheapest; first index on a tie) leads.
            nxt = int(tied[np.lexsort((tied, est[i, tied]))[0]])
            values.append(at)
            rows.append(i)
            news.append(nxt)
            cur, lam = nxt, at
    return (first, np.asarray(values, dtype=np.float64), np.asarray(rows, dtype=np.int64),
            np.asarray(news, dtype=np.int64))


def _target_events(p: F64, est: F64) -> tuple[I64, F64, I64, I64]:
    """Per row, the cheapest model with P(good) ≥ t as t grows from 0 (the most likely one once no
    model reaches t): the choice at 0 and each t just above which it changes."""
    n, m = p.shape
    order = np.argsort(p, axis=1, kind="stable")               # ascending P(good)
    ps = np.take_along_axis(p, order, axis=1)
    cs = np.take_along_axis(est, order, axis=1)
    best = np.empty((n, m), dtype=np.int64)                    # cheapest among positions ≥ i
    best_c = np.full(n, np.inf)
    best_j = np.full(n, m, dtype=np.int64)
    for k in range(m - 1, -1, -1):
        take = (cs[:, k] < best_c) | ((cs[:, k] == best_c) & (order[:, k] < best_j))
        best_c = np.where(take, cs[:, k], best_c)
        best_j = np.where(take, order[:, k], best_j)
        best[:, k] = best_j
    # A threshold t in (ps[i-1], ps[i]] admits positions ≥ the first holding ps[i]'s value.
    starts = np.ones((n, m), dtype=bool)
    starts[:, 1:] = ps[:, 1:] != ps[:, :-1]
    first_pos = np.maximum.accumulate(np.where(starts, np.arange(m), 0), axis=1)
    first = best[np.arange(n), first_pos[:, 0]] if m else np.zeros(n, dtype=np.int64)
    r, at = np.nonzero(starts[:, 1:])
    values = np.r_[ps[r, at], ps[:, m - 1]]                    # ps[r, at] is the value below at + 1
    rows = np.r_[r, np.arange(n)]
    news = np.r_[best[r, at + 1], np.argmax(p, axis=1)]
    keep = np.lexsort((values, rows))                          # each row's events in value order
    return first.astype(np.int64), values[keep], rows[keep].astype(np.int64), news[keep].astype(np.int64)


def sweep_tradeoff(p: F64, est_cost: F64, quality: F64, cost: F64,
                   lambdas: Sequence[float] | None = None) -> list[CurvePoint]:
    """The λ policy realised on data: at the given `lambdas`, or (default) exactly — at λ = 0 and
    once for every distinct set of choices λ can make, found from each prompt's upper envelope."""
    if lambdas is not None:
        return _grid(lambda lam: by_tradeoff_many(p, est_cost, lam), lambdas, quality, cost)
    return exact_curve(policy_events("tradeoff", p, est_cost), quality, cost)


def sweep_target(p: F64, est_cost: F64, quality: F64, cost: F64,
                 targets: Sequence[float] | None = None) -> list[CurvePoint]:
    """The target policy realised on data: at the given `targets`, or (default) exactly — at 0 and
    just above every predicted P(good), where a choice can change."""
    if targets is not None:
        return _grid(lambda t: by_target_many(p, est_cost, t), targets, quality, cost)
    return exact_curve(policy_events("target", p, est_cost), quality, cost)


def _grid(choose: Callable[[float], I64], params: Sequence[float], quality: F64, cost: F64
          ) -> list[CurvePoint]:
    points = []
    for value in params:
        c, q = realised(choose(value), quality, cost)
        points.append(CurvePoint(float(value), c, q))
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
