"""Significance and a length hedge for the transfer table (issue 13), from cached scores.

    python -m llmroute.learn.transfer_hedge [--cache out/len13] [--json FILE]

Reads the files `transfer_cache` wrote (outer splits and, for the hedge weight, the nested ones).

* Per held-out set (pair chosen as in `transfer.evaluate_split`): the router's APGR, the length-only
  router's, and a paired bootstrap (`bootstrap.paired_difference`: 1,000 resamples of the prompts, the
  same resample for both, 90% percentile interval) of APGR(router) − APGR(length-only).
* Length hedge: the router's score P(strong good) − P(weak good) blended with log prompt length,
  `(1 − w)·z(router) + w·z(log length)` (z over the routed prompts: inputs only) or the same with
  ranks. w on a grid 0, 0.1, …, 1 is chosen per held-out SOURCE S without S's outcomes: the w with the
  best mean APGR over the nested sets of S (every other source T, whole and each of its tasks, scored by
  a router trained on neither S nor T; `transfer_cache --inner`). The same w serves S as a whole and
  each of S's tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..evaluate import metrics as mx
from .bootstrap import Difference, paired_difference
from .transfer import PREFERRED_PAIRS, TARGET_APGR, Pair, pick_pair, tie_averaged_apgr
from .transfer_cache import Scored, load

F64 = npt.NDArray[np.float64]
Blend = Callable[[F64, F64, float], F64]
GRID: Final = tuple(round(0.1 * k, 1) for k in range(11))


@dataclass(frozen=True)
class PairSet:
    """The prompts of one held-out set on which its pair both have outcomes."""

    name: str
    source: str
    pair: Pair
    log_length: F64
    router: F64            # P(strong good) − P(weak good)
    q_strong: F64
    q_weak: F64

    def apgr(self, scores: F64) -> float:
        """Tie-averaged APGR of `scores` on this set."""
        return tie_averaged_apgr(scores, self.q_strong, self.q_weak)


def pair_set(s: Scored, name: str, rows: npt.NDArray[np.bool_]) -> PairSet | None:
    """`s`'s rows `rows` with the pair `transfer.pick_pair` chooses there; None without a pair or when
    the pair's means are tied on their common rows."""
    q = s.quality[rows]
    means = {m: float(np.nanmean(q[:, j])) for j, m in enumerate(s.models) if (~np.isnan(q[:, j])).any()}
    pair = pick_pair(means, list(s.models), PREFERRED_PAIRS.get(s.source))
    if pair is None:
        return None
    i, j = s.models.index(pair.strong), s.models.index(pair.weak)
    keep = rows & ~np.isnan(s.quality[:, i]) & ~np.isnan(s.quality[:, j])
    qs, qw = s.quality[keep, i], s.quality[keep, j]
    if abs(float(qs.mean() - qw.mean())) <= mx.QUALITY_TOLERANCE:
        return None
    return PairSet(name, s.source, pair, np.log1p(s.lengths[keep]), s.p[keep, i] - s.p[keep, j], qs, qw)


def sets_by_task(s: Scored) -> list[PairSet]:
    """The whole scored set and each of its tasks (where it has ≥ 2), each with its own pair."""
    tasks = np.asarray(s.tasks)
    whole = [pair_set(s, s.name, np.ones(len(tasks), dtype=bool))]
    names = sorted(set(s.tasks))
    parts = [pair_set(s, f"{s.name}/{t}", tasks == t) for t in names] if len(names) > 1 else []
    return [p for p in whole + parts if p is not None]


def _z(x: F64) -> F64:
    sd = float(np.std(x))
    out: F64 = (x - np.mean(x)) / sd if sd > 0 else np.zeros_like(x)
    return out


def _ranks(x: F64) -> F64:
    """Average ranks in [0, 1] (ties share their mean rank)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts + 1) / 2
    out: F64 = mean_rank[inverse] / max(len(x) - 1, 1)
    return out


def z_blend(router: F64, log_length: F64, w: float) -> F64:
    """(1 − w)·z(router) + w·z(log length)."""
    out: F64 = (1 - w) * _z(router) + w * _z(log_length)
    return out


def rank_blend(router: F64, log_length: F64, w: float) -> F64:
    """(1 − w)·rank(router) + w·rank(log length)."""
    out: F64 = (1 - w) * _ranks(router) + w * _ranks(log_length)
    return out


BLENDS: Final[dict[str, Blend]] = {"z": z_blend, "rank": rank_blend}


def hedged_apgr(ps: PairSet, blend: Blend, w: float) -> float:
    """APGR of the blended score on `ps`."""
    return ps.apgr(blend(ps.router, ps.log_length, w))


def choose_weight(sets: Sequence[PairSet], blend: Blend, grid: Sequence[float] = GRID) -> float:
    """The w of `grid` with the best mean hedged APGR over `sets` (the smaller w on a tie)."""
    if not sets:
        return 0.0
    means = [float(np.mean([hedged_apgr(ps, blend, w) for ps in sets])) for w in grid]
    return grid[int(np.argmax(np.round(means, 12)))]


@dataclass(frozen=True)
class Row:
    """One held-out set of the table."""

    name: str
    source: str
    n: int
    n_train: int
    pair: Pair
    router: float
    length: float
    router_vs_length: Difference
    weights: dict[str, float]
    hedged: dict[str, float]
    hedged_vs_length: dict[str, Difference]


def nested_sets(inner: Sequence[Scored], source: str) -> list[PairSet]:
    """The nested sets for outer source `source`: every other source's sets (whole and by task) as
    scored by routers trained on neither."""
    return [ps for s in inner if s.name.split(">")[0] == source for ps in sets_by_task(s)]


def selection_lines(inner: Sequence[Scored], sources: Sequence[str]) -> list[str]:
    """For each outer source: how many nested sets chose its weights, and their mean APGR per w."""
    lines = []
    for source in sources:
        nested = nested_sets(inner, source)
        for k, b in BLENDS.items():
            means = [float(np.mean([hedged_apgr(ps, b, w) for ps in nested])) if nested else float("nan")
                     for w in GRID]
            chosen = choose_weight(nested, b)
            lines.append(f"{source} ({len(nested)} nested sets), {k}: chosen w={chosen:.1f}; "
                         "mean nested APGR by w: " + " ".join(f"{m:.3f}" for m in means))
    return lines


def evaluate(outer: Sequence[Scored], inner: Sequence[Scored], seed: int = 0) -> list[Row]:
    """The table's rows: every outer set with a pair, the hedge's w chosen on `inner` per source."""
    weights: dict[str, dict[str, float]] = {}
    for source in sorted({s.name.split("/")[0] for s in outer}):
        nested = nested_sets(inner, source)
        weights[source] = {k: choose_weight(nested, b) for k, b in BLENDS.items()}
    rows = []
    for s in outer:
        ps = pair_set(s, s.name, np.ones(len(s.tasks), dtype=bool))
        if ps is None:
            continue
        outer_source = s.name.split("/")[0]
        w = weights[outer_source]
        length = np.exp(ps.log_length)
        hedged = {k: b(ps.router, ps.log_length, w[k]) for k, b in BLENDS.items()}
        rows.append(Row(
            s.name, outer_source, len(ps.q_strong), s.n_train, ps.pair, ps.apgr(ps.router), ps.apgr(length),
            paired_difference(ps.router, length, ps.q_strong, ps.q_weak, seed=seed), w,
            {k: ps.apgr(h) for k, h in hedged.items()},
            {k: paired_difference(h, length, ps.q_strong, ps.q_weak, seed=seed) for k, h in hedged.items()}))
    return rows


def sweep(outer: Sequence[Scored], blend: Blend, grid: Sequence[float] = GRID
          ) -> list[tuple[float, int, int, float]]:
    """POST-HOC, on the held-out sets themselves (not a valid selection): for each fixed w, the sets
    with hedged APGR ≥ length-only, ≥ 0.60, and the mean hedged APGR."""
    sets = [ps for s in outer if (ps := pair_set(s, s.name, np.ones(len(s.tasks), dtype=bool)))]
    out = []
    for w in grid:
        h = [hedged_apgr(ps, blend, w) for ps in sets]
        ln = [ps.apgr(np.exp(ps.log_length)) for ps in sets]
        out.append((w, sum(a >= b for a, b in zip(h, ln, strict=True)), sum(a >= TARGET_APGR for a in h),
                    float(np.mean(h))))
    return out


def _ci(d: Difference) -> str:
    return f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def table_lines(rows: Sequence[Row]) -> list[str]:
    """The rows as a markdown table."""
    lines = ["| held out | trained on (records) | pair strong / weak | n | router | length-only "
             "| router − length, 90% CI | verdict | w (z / rank) | hedged z | hedged z − length, 90% CI "
             "| hedged rank |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        trained = ("other 4 sources" if "/" not in r.name else f"other 4 sources + {r.source}'s other tasks")
        lines.append(
            f"| {r.name} | {trained} ({r.n_train}) | {r.pair.strong} / {r.pair.weak} | {r.n} "
            f"| {r.router:.3f} | {r.length:.3f} | {_ci(r.router_vs_length)} | {r.router_vs_length.verdict} "
            f"| {r.weights['z']:.1f} / {r.weights['rank']:.1f} | {r.hedged['z']:.3f} "
            f"| {_ci(r.hedged_vs_length['z'])} | {r.hedged['rank']:.3f} |")
    return lines


def summary_lines(rows: Sequence[Row]) -> list[str]:
    """Counts against the target, for the router and each hedge."""
    lines = []
    verdicts = [r.router_vs_length.verdict for r in rows]
    lines.append("router vs length-only: " + ", ".join(
        f"{v} {verdicts.count(v)}" for v in ("significantly below", "below, within noise",
                                              "above, within noise", "significantly above")))
    columns = [("router", [r.router for r in rows])] + [
        (f"hedged {k}", [r.hedged[k] for r in rows]) for k in BLENDS]
    for label, values in columns:
        ge_len = sum(v >= r.length for v, r in zip(values, rows, strict=True))
        ge_t = sum(v >= TARGET_APGR for v in values)
        both = sum(v >= r.length and v >= TARGET_APGR for v, r in zip(values, rows, strict=True))
        lines.append(f"{label}: ≥ length-only {ge_len}/{len(rows)}, ≥ 0.60 {ge_t}/{len(rows)}, "
                     f"both {both}/{len(rows)}, mean APGR {np.mean(values):.3f}")
    for k in BLENDS:
        sig = [r.hedged_vs_length[k].verdict for r in rows].count("significantly below")
        lines.append(f"hedged {k}: significantly below length-only on {sig}/{len(rows)}")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("out/len13"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    outer = [load(p) for p in sorted(args.cache.glob("outer__*.npz"))]
    inner = [load(p) for p in sorted(args.cache.glob("inner__*.npz"))]
    rows = evaluate(outer, inner)
    print(f"{len(outer)} outer splits, {len(inner)} nested splits, {len(rows)} sets with a pair")
    print("\n".join(table_lines(rows)))
    print("\n".join(summary_lines(rows)))
    print("\n".join(selection_lines(inner, sorted({s.name.split("/")[0] for s in outer}))))
    for k, b in BLENDS.items():
        print(f"POST-HOC sweep ({k}; w fixed for all sets, chosen looking at them — not a valid selection):")
        for w, ge_len, ge_t, mean in sweep(outer, b):
            print(f"  w={w:.1f}: ≥ length {ge_len}, ≥ 0.60 {ge_t}, mean {mean:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
