"""Turn a business goal into the classifier's policy knob, measured on data with known outcomes.

Both knobs (`quality_target`, `willingness_to_pay`) are swept exactly on the data (every distinct
set of choices, see `policy.sweep_*`). A goal usually falls between two operating points; blending
the two settings over a share of prompts reaches any point on the segment between them, so the goal
is met on the curve's convex hull (RouterBench's R̃) rather than at the nearest point below it:

- `for_quality(goal)`: the least expected cost whose expected quality reaches `goal`;
- `for_top_share(share)`: the best expected quality with at most `share` of calls to the top model.

The classifier router applies a blend by a hash of the prompt (`policy.blend_point`), so
`Calibration.realised` also reports what that split gives on the calibration prompts themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..evaluate.metrics import CurvePoint, non_decreasing_convex_hull
from . import policy
from .policy import F64

Knob = Literal["quality_target", "willingness_to_pay"]


@dataclass(frozen=True)
class Setting:
    """One knob setting and what it gives on the data: mean cost, quality, share of top-model calls."""

    knob: Knob
    value: float
    cost: float
    quality: float
    top_share: float

    def choose(self, p: F64, est: F64) -> policy.I64:
        """The setting's picks for every prompt."""
        if self.knob == "willingness_to_pay":
            return policy.by_tradeoff_many(p, est, self.value)
        return policy.by_target_many(p, est, self.value)


@dataclass(frozen=True)
class Calibration:
    """`main` for `1 − share` of prompts and `blend` (when not None) for `share` of them."""

    main: Setting
    blend: Setting | None = None
    share: float = 0.0

    def _mix(self, of: Callable[[Setting], float]) -> float:
        if self.blend is None:
            return of(self.main)
        return (1 - self.share) * of(self.main) + self.share * of(self.blend)

    @property
    def cost(self) -> float:
        """Expected mean cost per request."""
        return self._mix(lambda s: s.cost)

    @property
    def quality(self) -> float:
        """Expected mean quality."""
        return self._mix(lambda s: s.quality)

    @property
    def top_share(self) -> float:
        """Expected share of calls to the top model."""
        return self._mix(lambda s: s.top_share)

    def params(self) -> dict[str, Any]:
        """The classifier router's parameters for this calibration."""
        out: dict[str, Any] = {self.main.knob: float(self.main.value)}
        if self.blend is not None:
            out["blend"] = {"share": float(self.share), self.blend.knob: float(self.blend.value)}
        return out

    def realised(self, p: F64, est: F64, quality: F64, cost: F64, texts: Sequence[str]
                 ) -> tuple[float, float]:
        """Mean cost and quality on these prompts when the blend is split by prompt hash, as the
        router does (close to the expectation on large data; exact without a blend)."""
        choice = self.main.choose(p, est)
        if self.blend is not None:
            on_blend = np.asarray([policy.blend_point(t) < self.share for t in texts])
            choice = np.where(on_blend, self.blend.choose(p, est), choice)
        return policy.realised(choice, quality, cost)


def settings(p: F64, est: F64, quality: F64, cost: F64, top: int) -> list[Setting]:
    """Every distinct operating point of both knobs on the data, with its share of calls to `top`."""
    is_top = np.zeros_like(np.asarray(cost, dtype=np.float64))
    is_top[:, top] = 1.0
    out: list[Setting] = []
    knobs: tuple[tuple[Knob, str], ...] = (("quality_target", "target"), ("willingness_to_pay", "tradeoff"))
    for knob, kind in knobs:
        events = policy.policy_events(kind, p, est)         # found once, measured twice
        by_cost = policy.exact_curve(events, quality, cost)
        by_top = policy.exact_curve(events, quality, is_top)
        for a, b in zip(by_cost, by_top, strict=True):
            out.append(Setting(knob, a.param, a.cost, a.quality, b.cost))
    return out


def _hull(found: Sequence[Setting], x: Callable[[Setting], float]) -> list[Setting]:
    """The settings at the vertices of the non-decreasing convex hull of (x, quality)."""
    points = [CurvePoint(x(s), s.quality, str(i)) for i, s in enumerate(found)]
    return [found[int(v.label)] for v in non_decreasing_convex_hull(points)]


def _between(low: Setting, high: Setting, weight: float) -> Calibration:
    if weight <= 1e-9:
        return Calibration(low)
    if weight >= 1 - 1e-9:
        return Calibration(high)
    return Calibration(low, high, weight)


def for_quality(found: Sequence[Setting], goal: float) -> Calibration | None:
    """The least expected cost reaching expected quality `goal` (None when no setting reaches it)."""
    hull = _hull(found, lambda s: s.cost)
    for k, vertex in enumerate(hull):
        if vertex.quality >= goal - 1e-12:
            if k == 0:
                return Calibration(vertex)
            low = hull[k - 1]
            return _between(low, vertex, (goal - low.quality) / (vertex.quality - low.quality))
    return None


def for_top_share(found: Sequence[Setting], max_share: float) -> Calibration | None:
    """The best expected quality with at most `max_share` of calls to the top model (None when
    every setting sends more)."""
    hull = _hull(found, lambda s: s.top_share)
    below = [k for k, v in enumerate(hull) if v.top_share <= max_share + 1e-12]
    if not below:
        return None
    k = below[-1]
    if k == len(hull) - 1:
        return Calibration(hull[k])
    low, high = hull[k], hull[k + 1]
    return _between(low, high, (max_share - low.top_share) / (high.top_share - low.top_share))


@dataclass(frozen=True)
class PairSetting:
    """A strong/weak threshold and what it gives on the data."""

    threshold: float
    share: float      # of prompts sent to the strong model
    cost: float
    quality: float


def for_pair(gain: F64, quality: F64, cost: F64, *, max_share: float | None = None,
             quality_goal: float | None = None) -> PairSetting | None:
    """The strong/weak threshold for a goal: the most strong calls within `max_share`, or the fewest
    reaching mean quality `quality_goal`. `gain` is P(strong good) − P(weak good) per prompt;
    `quality` and `cost` are N × 2 (strong, weak). A prompt goes strong when its gain > threshold.
    None when the goal cannot be met."""
    if (max_share is None) == (quality_goal is None):
        raise ValueError("give exactly one of max_share and quality_goal")
    g = np.asarray(gain, dtype=np.float64)
    n = len(g)
    order = np.argsort(-g, kind="stable")
    g = g[order]
    q, c = np.asarray(quality, dtype=np.float64)[order], np.asarray(cost, dtype=np.float64)[order]
    # Option k sends the k highest gains to strong; only whole groups of tied gains can be split off.
    k = np.arange(n + 1)
    ok = np.r_[True, g[:-1] > g[1:], True] if n else np.asarray([True])
    mean_q = (q[:, 1].sum() + np.r_[0.0, np.cumsum(q[:, 0] - q[:, 1])]) / max(n, 1)
    mean_c = (c[:, 1].sum() + np.r_[0.0, np.cumsum(c[:, 0] - c[:, 1])]) / max(n, 1)
    share = k / max(n, 1)
    if max_share is not None:
        fits = np.flatnonzero(ok & (share <= max_share + 1e-12))
        pick = int(fits[-1]) if len(fits) else -1
    else:
        assert quality_goal is not None
        reach = np.flatnonzero(ok & (mean_q >= quality_goal - 1e-12))
        pick = int(reach[0]) if len(reach) else -1
    if pick < 0:
        return None
    if pick == 0:
        threshold = 1.0
    elif pick == n:
        threshold = max(-1.0, float(g[-1]) - 1e-6)
    else:
        threshold = float(g[pick - 1] + g[pick]) / 2
    return PairSetting(threshold, float(share[pick]), float(mean_c[pick]), float(mean_q[pick]))
