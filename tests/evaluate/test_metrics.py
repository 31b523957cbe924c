"""Hand-computed cases for the evaluation lab's metrics (hulls, AIQ, PGR/APGR/CPT, savings, targets)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmroute.evaluate import metrics as m
from llmroute.evaluate.metrics import CurvePoint as P

# A(1, .5) and C(3, .9) span the hull; B(2, .6) lies under the chord A–C (which is .7 at cost 2);
# D(4, .7) costs more than C for less quality (non-monotone); E(2.5, .55) is dominated by B.
A, B, C, D, E = P(1, 0.5, "A"), P(2, 0.6, "B"), P(3, 0.9, "C"), P(4, 0.7, "D"), P(2.5, 0.55, "E")


# ----------------------------------------------------------------------------------------- hulls


def test_pareto_drops_dominated_points() -> None:
    # D is dominated by C (3 <= 4, .9 >= .7); E by B (2 <= 2.5, .6 >= .55).
    assert m.pareto_points([D, C, E, B, A]) == [A, B, C]


def test_hull_drops_dominated_under_chord_and_non_monotone_points() -> None:
    assert m.non_decreasing_convex_hull([D, C, E, B, A]) == [A, C]


def test_hull_keeps_a_point_above_the_chord() -> None:
    # G(2, .8): slope A→G = .3/1 = .3 > slope G→C = .1/1 = .1, so the hull bends at G (concave).
    g = P(2, 0.8, "G")
    assert m.non_decreasing_convex_hull([A, g, C, D]) == [A, g, C]


def test_hull_drops_collinear_points() -> None:
    # M(2, .7) lies exactly on A–C: .5 + (2 − 1) · (.9 − .5)/(3 − 1) = .7.
    assert m.non_decreasing_convex_hull([A, P(2, 0.7, "M"), C]) == [A, C]


def test_hull_of_one_point_and_of_equal_costs() -> None:
    assert m.non_decreasing_convex_hull([A]) == [A]
    # All at cost 1: only the best (quality .8) remains.
    same = [P(1, 0.2, "x"), P(1, 0.8, "y"), P(1, 0.5, "z")]
    assert m.non_decreasing_convex_hull(same) == [same[1]]


def test_a_cheap_best_point_is_the_whole_hull() -> None:
    # The cheapest point is also the best: everything dearer is non-monotone.
    best = P(0.5, 0.95, "best")
    assert m.non_decreasing_convex_hull([A, B, C, best]) == [best]


def test_hull_is_concave_non_decreasing_and_above_every_point() -> None:
    rng = np.random.default_rng(7)
    points = [P(float(c), float(q)) for c, q in rng.random((200, 2))]
    hull = m.non_decreasing_convex_hull(points)
    costs = np.array([p.cost for p in hull])
    quals = np.array([p.quality for p in hull])
    assert np.all(np.diff(costs) > 0) and np.all(np.diff(quals) > 0)
    slopes = np.diff(quals) / np.diff(costs)
    assert np.all(np.diff(slopes) < 0)
    for p in points:
        on_hull = m.quality_at_cost(hull, p.cost)
        assert on_hull is None or on_hull >= p.quality - 1e-12


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError):
        m.pareto_points([])
    with pytest.raises(ValueError):
        m.non_decreasing_convex_hull([])
    with pytest.raises(ValueError):
        m.quality_at_cost([], 1.0)
    with pytest.raises(ValueError):
        m.aiq([], 0.0, 1.0)


def test_curve_point_validates() -> None:
    with pytest.raises(ValueError):
        P(-1, 0.5)
    with pytest.raises(ValueError):
        P(1, math.nan)
    with pytest.raises(ValueError):
        P(1, 0.5, strong_share=1.5)


# ---------------------------------------------------------------------------------- interpolation


def test_quality_at_cost_interpolates_and_extends_flat() -> None:
    hull = [A, C]
    assert m.quality_at_cost(hull, 0.5) is None  # below the cheapest point
    assert m.quality_at_cost(hull, 1) == pytest.approx(0.5)
    assert m.quality_at_cost(hull, 2.5) == pytest.approx(0.8)  # .5 + 1.5 · .2
    assert m.quality_at_cost(hull, 10) == pytest.approx(0.9)  # flat to the right


def test_cost_for_quality_interpolates() -> None:
    hull = [A, C]
    assert m.cost_for_quality(hull, 0.3) == pytest.approx(1.0)  # the hull starts at A
    assert m.cost_for_quality(hull, 0.5) == pytest.approx(1.0)
    assert m.cost_for_quality(hull, 0.8) == pytest.approx(2.5)  # 1 + (.8 − .5)/.2
    assert m.cost_for_quality(hull, 0.9) == pytest.approx(3.0)
    assert m.cost_for_quality(hull, 0.9 + 1e-12) == pytest.approx(3.0)  # within the tolerance
    assert m.cost_for_quality(hull, 0.91) is None


def test_a_non_hull_is_rejected() -> None:
    with pytest.raises(ValueError):
        m.quality_at_cost([C, A], 2.0)  # cost goes down
    with pytest.raises(ValueError):
        m.cost_for_quality([A, P(2, 0.4)], 0.45)  # quality goes down


# ------------------------------------------------------------------------------------------- AIQ


def test_aiq_of_a_flat_line_is_its_quality() -> None:
    # One point: R̃ = .7 everywhere (flat left by our choice, flat right by definition).
    assert m.aiq([P(2, 0.7)], 0.0, 5.0) == pytest.approx(0.7)
    assert m.aiq([P(1, 0.6), P(3, 0.6)], 1.0, 3.0) == pytest.approx(0.6)


def test_aiq_of_a_two_point_hull_is_trapezoid_over_width() -> None:
    hull = [P(1, 0.4), P(3, 0.8)]
    # Over [1, 3]: 2 · (.4 + .8)/2 = 1.2; / 2 = .6
    assert m.aiq(hull, 1.0, 3.0) == pytest.approx(0.6)
    # Over [0, 5]: [0, 1] at .4 (left extension) = .4, [1, 3] = 1.2, [3, 5] at .8 = 1.6; 3.2 / 5 = .64
    assert m.aiq(hull, 0.0, 5.0) == pytest.approx(0.64)
    # Over [2, 4]: R̃(2) = .6; [2, 3]: (.6 + .8)/2 = .7, [3, 4]: .8; 1.5 / 2 = .75
    assert m.aiq(hull, 2.0, 4.0) == pytest.approx(0.75)


def test_aiq_ignores_points_under_the_hull() -> None:
    # Adding B, D, E (all under A–C) changes nothing: [1, 3] → (.5 + .9)/2 = .7
    assert m.aiq([A, B, C, D, E], 1.0, 3.0) == pytest.approx(0.7)


def test_aiq_needs_a_range() -> None:
    with pytest.raises(ValueError):
        m.aiq([A], 1.0, 1.0)
    with pytest.raises(ValueError):
        m.aiq([A], 0.0, math.inf)


# -------------------------------------------------------------------------------------- RouteLLM

# 4 records: strong = [1, 1, 0, 1], weak = [0, 1, 1, 0], so strong − weak = [1, 0, −1, 1].
# weak mean = 2/4 = .5, strong mean = 3/4 = .75, gap .25. The oracle's score is the gain itself:
# order 0, 3 (tie at 1: lower index first), 1, 2.
# Q[k] = (2 + cumulative gain)/4: Q = [.5, .75, 1, 1, .75]; PGR = (Q − .5)/.25 = [0, 1, 2, 2, 1].
STRONG = [1.0, 1.0, 0.0, 1.0]
WEAK = [0.0, 1.0, 1.0, 0.0]
ORACLE = [1.0, 0.0, -1.0, 1.0]


def test_quality_and_pgr_by_count_for_the_oracle() -> None:
    np.testing.assert_allclose(m.quality_by_count(ORACLE, STRONG, WEAK), [0.5, 0.75, 1.0, 1.0, 0.75])
    np.testing.assert_allclose(m.pgr_by_count(ORACLE, STRONG, WEAK), [0, 1, 2, 2, 1])


def test_strong_share_curve_rounds_up_and_reports_the_realised_share() -> None:
    # s = .3 → ⌈1.2⌉ = 2 records → share .5, quality 1.0
    curve = m.strong_share_curve(ORACLE, STRONG, WEAK, [0.0, 0.3, 0.5, 1.0])
    assert curve == [(0.0, 0.5), (0.5, 1.0), (0.5, 1.0), (1.0, 0.75)]


def test_strong_share_curve_is_not_fooled_by_float_shares() -> None:
    # .3 · 10 = 3.0000000000000004 in floats, yet ⌈.3 · 10⌉ = 3.
    scores = np.arange(10.0)[::-1]  # record i has score 9 − i: records 0, 1, 2 go first
    curve = m.strong_share_curve(scores, np.ones(10), np.zeros(10), [0.3])
    assert curve == [(0.3, 0.3)]


def test_strong_share_curve_breaks_ties_by_index() -> None:
    # All scores equal: the first record goes to strong first (gain 1 there, 0 elsewhere).
    curve = m.strong_share_curve([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1 / 3])
    assert curve[0][1] == pytest.approx(1 / 3)


def test_pgr() -> None:
    assert m.pgr(0.6, 0.5, 0.75) == pytest.approx(0.4)  # .1 / .25
    assert m.pgr(0.8, 0.5, 0.75) == pytest.approx(1.2)  # a router may beat the strong model
    with pytest.raises(ValueError):
        m.pgr(0.6, 0.5, 0.5)


def test_apgr_of_the_oracle_by_hand() -> None:
    # Trapezoids of width 1/4 over PGR [0, 1, 2, 2, 1]:
    # ((0+1) + (1+2) + (2+2) + (2+1)) / 2 / 4 = 11 / 8 = 1.375
    assert m.apgr(ORACLE, STRONG, WEAK) == pytest.approx(1.375)
    # steps=2: the curve at shares 0, .5, 1 is [0, 2, 1]: ((0+2) + (2+1)) / 2 / 2 = 1.25
    assert m.apgr(ORACLE, STRONG, WEAK, steps=2) == pytest.approx(1.25)
    # steps=8 only adds points on straight pieces: exact again.
    assert m.apgr(ORACLE, STRONG, WEAK, steps=8) == pytest.approx(1.375)


def test_apgr_of_the_anti_oracle_is_below_a_half() -> None:
    # Reversed order 2, 1, 0, 3 (ties: 0 before 3): Q = [.5, .25, .25, .5, .75], PGR = [0, −1, −1, 0, 1]
    # → ((0−1) + (−1−1) + (−1+0) + (0+1)) / 2 / 4 = −3/8
    anti = [-s for s in ORACLE]
    assert m.apgr(anti, STRONG, WEAK) == pytest.approx(-0.375)


def test_apgr_of_a_random_router_is_about_a_half() -> None:
    rng = np.random.default_rng(2024)
    n = 10_000
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.5).astype(float)
    value = m.apgr(rng.random(n), strong, weak)
    assert value == pytest.approx(0.5, abs=0.05)


def test_apgr_of_a_real_oracle_beats_random() -> None:
    rng = np.random.default_rng(11)
    n = 2_000
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.5).astype(float)
    assert m.apgr(strong - weak, strong, weak) > 0.9


def test_cpt() -> None:
    # PGR by count [0, 1, 2, 2, 1]: PGR ≥ .5, .8 and 1 first at k = 1 (share .25), ≥ 1.5 at k = 2.
    assert m.cpt(ORACLE, STRONG, WEAK, 0.5) == pytest.approx(0.25)
    assert m.cpt(ORACLE, STRONG, WEAK, 0.95) == pytest.approx(0.25)
    assert m.cpt(ORACLE, STRONG, WEAK, 1.5) == pytest.approx(0.5)
    assert m.cpt(ORACLE, STRONG, WEAK, 0.0) == 0.0
    assert m.cpt(ORACLE, STRONG, WEAK, 2.5) is None
    # Anti-oracle PGR [0, −1, −1, 0, 1]: .8 is reached only by sending everything to strong.
    assert m.cpt([-s for s in ORACLE], STRONG, WEAK, 0.8) == 1.0


def test_pgr_is_undefined_when_strong_equals_weak() -> None:
    same = [0.5, 0.5]
    with pytest.raises(ValueError):
        m.apgr([1.0, 0.0], same, same)
    with pytest.raises(ValueError):
        m.cpt([1.0, 0.0], same, same, 0.5)
    # The quality curve itself is still defined.
    assert m.strong_share_curve([1.0, 0.0], same, same, [0.5]) == [(0.5, 0.5)]


def test_routing_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        m.quality_by_count([], [], [])
    with pytest.raises(ValueError):
        m.quality_by_count([1.0, 2.0], [1.0], [0.0, 1.0])
    with pytest.raises(ValueError):
        m.quality_by_count([math.nan], [1.0], [0.0])
    with pytest.raises(ValueError):
        m.strong_share_curve(ORACLE, STRONG, WEAK, [1.5])
    with pytest.raises(ValueError):
        m.apgr(ORACLE, STRONG, WEAK, steps=0)


# ---------------------------------------------------------------------- against single models

# Router hull: (1, .6) → (3, .9). Singles: small (2, .6), big (10, .9), huge (20, .95).
ROUTER = [P(1, 0.6, "t=0.2"), P(3, 0.9, "t=0.8")]
SINGLES = {"small": P(2, 0.6, "small"), "big": P(10, 0.9, "big"), "huge": P(20, 0.95, "huge")}


def test_best_single_prefers_quality_then_cost() -> None:
    assert m.best_single(SINGLES) == ("huge", SINGLES["huge"])
    tied = {"dear": P(5, 0.9), "cheap": P(2, 0.9)}
    assert m.best_single(tied)[0] == "cheap"
    with pytest.raises(ValueError):
        m.best_single({})


def test_savings() -> None:
    rows = {row.model: row for row in m.savings_vs_best_single(ROUTER, SINGLES)}
    # small: the router reaches .6 at cost 1 → 1 − 1/2 = .5
    assert rows["small"].router_cost == pytest.approx(1.0)
    assert rows["small"].saving == pytest.approx(0.5)
    # big: .9 at cost 3 → 1 − 3/10 = .7
    assert rows["big"].saving == pytest.approx(0.7)
    # huge: .95 is above the router's best (.9)
    assert rows["huge"].router_cost is None and rows["huge"].saving is None
    assert list(rows) == ["small", "big", "huge"]


def test_savings_can_be_negative_or_undefined() -> None:
    # A free model at .6: the router pays 1 for it, no fraction of 0 → None.
    # A model at (0.5, .6): the router pays 1 → 1 − 1/.5 = −1.
    singles = {"free": P(0, 0.6), "cheap": P(0.5, 0.6)}
    rows = m.savings_vs_best_single(ROUTER, singles)
    assert rows[0].router_cost == pytest.approx(1.0) and rows[0].saving is None
    assert rows[1].saving == pytest.approx(-1.0)


# Router hull (.5, .4) → (2, .75) → (4, .9): slopes .35/1.5 ≈ .233 then .15/2 = .075 (concave).
WIDE_ROUTER = [P(0.5, 0.4), P(2, 0.75), P(4, 0.9)]


def test_beats_every_single_model() -> None:
    # Router at .5: .4 ≥ .3; at 2: .75 ≥ .7; at 5: .9 (flat) ≥ .85.
    singles = {"c": P(0.5, 0.3), "a": P(2, 0.7), "b": P(5, 0.85)}
    assert m.shortfall_budgets(WIDE_ROUTER, singles) == []
    assert m.beats_best_single_everywhere(WIDE_ROUTER, singles)


def test_shortfalls_are_listed_by_budget() -> None:
    # Singles' hull: e(.2, .1) → c(.5, .3) → a(2, .7) → d(3, .9); b(5, .85) is non-monotone (hull .9 there).
    # .2: below the router's cheapest point (.5) → short.  .5: .4 ≥ .3 ok.  2: .75 ≥ .7 ok.
    # 3: router .75 + (3 − 2) · .075 = .825 < .9 → short.  5: router .9 ≥ hull .9 → ok (a tie is not short).
    singles = {"c": P(0.5, 0.3), "a": P(2, 0.7), "b": P(5, 0.85), "d": P(3, 0.9), "e": P(0.2, 0.1)}
    assert m.shortfall_budgets(WIDE_ROUTER, singles) == [0.2, 3.0]
    assert not m.beats_best_single_everywhere(WIDE_ROUTER, singles)


def test_summary_at_targets() -> None:
    hull = [P(1, 0.5), P(5, 0.9)]
    reference = P(10, 0.8, "gpt-4")
    low, full = m.summary_at_targets(hull, reference)
    # 95% of .8 = .76: 1 + (.76 − .5)/.4 · 4 = 3.6 → 3.6/10 = .36
    assert low.fraction == 0.95 and low.quality == pytest.approx(0.76)
    assert low.cost == pytest.approx(3.6) and low.cost_fraction == pytest.approx(0.36)
    # 100% of .8: 1 + .3/.4 · 4 = 4 → .4
    assert full.cost_fraction == pytest.approx(0.4)
    # 120% of .8 = .96 > .9: unreachable
    (beyond,) = m.summary_at_targets(hull, reference, fractions=(1.2,))
    assert beyond.cost is None and beyond.cost_fraction is None
    with pytest.raises(ValueError):
        m.summary_at_targets(hull, P(0, 0.8))
