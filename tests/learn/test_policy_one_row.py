"""`by_target` / `by_tradeoff` on one prompt (Python floats) choose exactly as the numpy policies do:
the same index, confidence and margin, bit for bit, with ties, NaN costs (all or some), NaN and
infinite scores, and single-model pools."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.learn.policy import (
    Choice,
    _costs,
    _tradeoff_row,
    by_target,
    by_target_many,
    by_tradeoff,
    tradeoff_row,
)


def _numpy_tradeoff(p: np.ndarray, cost: np.ndarray, lam: float) -> Choice:
    """The numpy formulation `by_tradeoff` had before its one-row path (the reference)."""
    with np.errstate(all="ignore"):  # NaN and infinite inputs are the point of these rows
        score = np.asarray(p, dtype=np.float64) - lam * _costs(cost)
        order = np.argsort(-score, kind="stable")
        gap = float(score[order[0]] - score[order[1]]) if len(order) > 1 else float("inf")
    i = int(order[0])
    return Choice(i, float(p[i]), gap)


def _numpy_target(p: np.ndarray, cost: np.ndarray, target: float) -> Choice:
    i = int(by_target_many(p, cost, target)[0])
    return Choice(i, float(p[i]), float(p[i]) - target)


def _rows() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = random.Random(3)
    rows = []
    for _ in range(3000):
        m = rng.randint(1, 9)
        p = [rng.choice((rng.random(), 0.5, 0.7, 0.9, 0.0, 1.0)) for _ in range(m)]
        c = [rng.choice((rng.random() * 1e-3, 1e-4, 2e-4, 0.0, float("nan"), float("inf"))) for _ in range(m)]
        if rng.random() < 0.05:
            p[rng.randrange(m)] = float("nan")
        if rng.random() < 0.05:
            c = [float("nan")] * m
        rows.append((np.asarray(p, dtype=np.float64), np.asarray(c, dtype=np.float64)))
    return rows


def _same(a: Choice, b: Choice) -> bool:
    return a.index == b.index and repr((a.confidence, a.margin)) == repr((b.confidence, b.margin))


def test_by_tradeoff_one_row_is_the_numpy_choice() -> None:
    for p, c in _rows():
        for lam in (0.0, 1.0, 50.0, 1e4):
            assert _same(by_tradeoff(p, c, lam), _numpy_tradeoff(p, c, lam)), (p, c, lam)


def test_by_target_one_row_is_the_numpy_choice() -> None:
    for p, c in _rows():
        for target in (0.0, 0.5, 0.7, 0.95, 1.0):
            assert _same(by_target(p, c, target), _numpy_target(p, c, target)), (p, c, target)


def test_other_shapes_still_take_the_numpy_path() -> None:
    p32 = np.asarray([0.2, 0.8], dtype=np.float32)
    c = np.asarray([1.0, 2.0])
    assert by_target(p32, c, 0.5).index == 1 and by_tradeoff(p32, c, 0.0).index == 1


_ROW_FLOATS = st.sampled_from([0.0, 0.5, 0.7, 1.0, 1e-4, math.nan, math.inf, -math.inf]) | st.floats()


@given(st.lists(st.tuples(_ROW_FLOATS, _ROW_FLOATS), max_size=9),
       st.sampled_from([0.0, 1.0, 26.64, 1e4]) | st.floats(0, 1e6))
@settings(max_examples=3000, deadline=None)
def test_the_one_pass_tradeoff_is_the_general_pass(row: list[tuple[float, float]], lam: float) -> None:
    ps, cost = [q for q, _ in row], [c for _, c in row]
    try:
        want = _tradeoff_row(ps, cost, lam)
    except IndexError:                      # an empty row: both fail alike
        with pytest.raises(IndexError):
            tradeoff_row(ps, cost, lam)
        return
    assert _same(tradeoff_row(ps, cost, lam), want)
