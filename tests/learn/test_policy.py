"""Policies and sweeps."""

from __future__ import annotations

import itertools

import numpy as np

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
