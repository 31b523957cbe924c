"""Policies and sweeps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmroute.evaluate.metrics import apgr
from llmroute.learn import policy

P = np.array([0.6, 0.8, 0.95])
COST = np.array([1.0, 2.0, 10.0])


def test_by_target_picks_cheapest_good_enough() -> None:
    assert policy.by_target(P, COST, 0.7).index == 1
    assert policy.by_target(P, COST, 0.5).index == 0
    fallback = policy.by_target(P, COST, 0.99)
    assert fallback.index == 2 and fallback.margin < 0 and fallback.confidence == 0.95


def test_by_tradeoff_and_unknown_costs() -> None:
    assert policy.by_tradeoff(P, COST, 0.0).index == 2
    assert policy.by_tradeoff(P, COST, 1.0).index == 0
    assert policy.by_tradeoff(P, COST, 0.0).margin > 0
    unknown = np.array([np.nan, 2.0, 10.0])   # unknown price is treated as the most expensive
    assert policy.by_target(P, unknown, 0.5).index == 1
    many = policy.by_tradeoff_many(np.vstack([P, P]), np.vstack([COST, COST]), 1.0)
    assert many.tolist() == [0, 0]


def test_sweeps_frontier_and_lookups() -> None:
    rng = np.random.default_rng(0)
    quality = (rng.random((200, 3)) < np.array([0.5, 0.7, 0.9])).astype(float)
    cost = np.tile(COST, (200, 1))
    p = np.tile(P, (200, 1))
    points = policy.sweep_tradeoff(p, cost, quality, cost) + policy.sweep_target(p, cost, quality, cost)
    front = policy.frontier(points)
    assert all(a.cost < b.cost and a.quality < b.quality for a, b in itertools.pairwise(front))
    assert policy.quality_within(front, 1.0) == quality[:, 0].mean()
    assert policy.cost_for(front, quality[:, 2].mean()) == 10.0
    assert np.isnan(policy.quality_within(front, 0.5))


def test_apgr_and_share() -> None:
    rng = np.random.default_rng(1)
    strong = (rng.random(2000) < 0.9).astype(float)
    weak = (rng.random(2000) < 0.6).astype(float)
    gain = strong - weak
    assert apgr(gain, strong, weak) > 0.8
    assert apgr(-gain, strong, weak) < 0.2
    assert abs(apgr(rng.random(2000), strong, weak) - 0.5) < 0.08
    scores = np.arange(100.0)
    assert np.mean(scores > policy.threshold_for_share(scores, 0.3)) == 0.3
    assert policy.threshold_for_share(scores, 0.0) == float("inf")


def _choices_on_a_fine_grid(p: np.ndarray, est: np.ndarray, quality: np.ndarray, cost: np.ndarray,
                            target_knob: bool) -> set[tuple[float, float]]:
    grid = np.linspace(0, 1.0001, 4000) if target_knob else np.r_[0, np.geomspace(1e-4, 1e4, 4000)]
    choose = policy.by_target_many if target_knob else policy.by_tradeoff_many
    return {tuple(np.round(policy.realised(choose(p, est, g), quality, cost), 9)) for g in grid}


def test_exact_sweeps_reproduce_every_operating_point_and_miss_none() -> None:
    # Rounded predictions and costs make ties, the hard case for breakpoints.
    rng = np.random.default_rng(1)
    for _ in range(60):
        n, m = int(rng.integers(1, 25)), int(rng.integers(1, 6))
        p = rng.random((n, m)).round(int(rng.integers(1, 3)))
        est = rng.random((n, m)).round(int(rng.integers(1, 3))) + 0.01
        quality, cost = rng.random((n, m)), rng.random((n, m))
        for target_knob, sweep, choose in ((True, policy.sweep_target, policy.by_target_many),
                                           (False, policy.sweep_tradeoff, policy.by_tradeoff_many)):
            points = sweep(p, est, quality, cost)
            exact = set()
            for pt in points:  # each point's parameter, set as the knob, gives exactly that point
                c, q = policy.realised(choose(p, est, pt.param), quality, cost)
                assert (c, q) == (pytest.approx(pt.cost, abs=1e-12), pytest.approx(pt.quality, abs=1e-12))
                exact.add((round(pt.cost, 9), round(pt.quality, 9)))
            assert _choices_on_a_fine_grid(p, est, quality, cost, target_knob) <= exact


def test_exact_tradeoff_sweep_finds_a_point_a_coarse_grid_misses() -> None:
    # Two prompts whose choices flip at λ = 0.5 and λ = 0.52: a grid stepping over both misses the
    # operating point between them.
    p = np.array([[0.5, 1.0], [0.5, 1.02]])
    est = np.array([[0.0, 1.0], [0.0, 1.0]])
    quality = np.array([[0.0, 1.0], [0.0, 1.0]])
    points = policy.sweep_tradeoff(p, est, quality, est)
    assert [(pt.cost, pt.quality) for pt in points] == [(1.0, 1.0), (0.5, 0.5), (0.0, 0.0)]
    assert 0.5 < points[1].param < 0.52
    coarse = policy.sweep_tradeoff(p, est, quality, est, lambdas=[0.0, 0.4, 0.6])
    assert (0.5, 0.5) not in {(pt.cost, pt.quality) for pt in coarse}


def test_the_unknown_cost_rule_holds_in_exact_sweeps() -> None:
    p = np.array([[0.9, 0.6, 0.95]])
    est = np.array([[np.nan, 1.0, 2.0]])            # unknown: priced as the dearest known (2.0)
    quality = np.array([[1.0, 0.0, 1.0]])
    for sweep, choose in ((policy.sweep_target, policy.by_target_many),
                          (policy.sweep_tradeoff, policy.by_tradeoff_many)):
        for pt in sweep(p, est, quality, quality):
            assert policy.realised(choose(p, est, pt.param), quality, quality) == (pt.cost, pt.quality)
