"""Paired bootstrap of APGR differences (issue 13): the vectorised APGR and the verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn import bootstrap, transfer


def _case(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    if ties:
        s = np.round(s)
    qs = rng.integers(0, 2, n).astype(float)
    qw = (rng.random(n) < 0.3).astype(float)
    return s, qs, qw


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_apgr_equals_the_tie_averaged_apgr_of_the_repeated_records(ties: bool) -> None:
    s, qs, qw = _case(80, 1, ties)
    whole = bootstrap.apgr_weighted(s, qs, qw, np.ones((1, 80), dtype=np.int64))[0]
    assert whole == pytest.approx(transfer.tie_averaged_apgr(s, qs, qw), abs=1e-12)
    counts = bootstrap.resample_counts(80, 5, seed=2)
    assert (counts.sum(axis=1) == 80).all() and (counts == 0).any()
    got = bootstrap.apgr_weighted(s, qs, qw, counts)
    for row, value in zip(counts, got, strict=True):
        idx = np.repeat(np.arange(80), row)
        assert value == pytest.approx(transfer.tie_averaged_apgr(s[idx], qs[idx], qw[idx]), abs=1e-12)


def test_an_undefined_resample_is_nan_not_an_error() -> None:
    qs, qw = np.array([1.0, 0.0]), np.array([0.0, 0.0])
    counts = np.array([[0, 2], [1, 1]])
    got = bootstrap.apgr_weighted(np.array([1.0, 0.0]), qs, qw, counts)
    assert np.isnan(got[0])
    assert got[1] == pytest.approx(transfer.tie_averaged_apgr(np.array([1.0, 0.0]), qs, qw))  # 0.75


def test_a_clearly_worse_router_is_significantly_below() -> None:
    """The strong model wins exactly on long prompts; a router that prefers short ones loses for sure."""
    rng = np.random.default_rng(0)
    length = rng.integers(20, 4000, 400).astype(float)
    qs = (length > np.median(length)).astype(float)
    qw = np.zeros(400)
    d = bootstrap.paired_difference(-length + rng.normal(0, 300, 400), length, qs, qw)
    assert d.diff < -0.3 and d.high < 0
    assert d.verdict == "significantly below"
    assert d.resamples == bootstrap.RESAMPLES


def test_two_uninformative_routers_on_a_small_set_are_within_noise() -> None:
    rng = np.random.default_rng(3)
    qs = (rng.random(60) < 0.7).astype(float)
    qw = (rng.random(60) < 0.5).astype(float)
    d = bootstrap.paired_difference(rng.normal(size=60), rng.normal(size=60), qs, qw)
    assert d.low < 0 < d.high
    assert d.verdict in ("below, within noise", "above, within noise")
    assert d.verdict.startswith("below") == (d.diff < 0)
    # the same comparison on 30x more prompts is far tighter
    big_qs = (rng.random(1800) < 0.7).astype(float)
    big_qw = (rng.random(1800) < 0.5).astype(float)
    wide = bootstrap.paired_difference(rng.normal(size=1800), rng.normal(size=1800), big_qs, big_qw)
    assert wide.high - wide.low < (d.high - d.low) / 2


def test_identical_routers_differ_by_exactly_zero() -> None:
    s, qs, qw = _case(50, 4, ties=True)
    d = bootstrap.paired_difference(s, s.copy(), qs, qw)
    assert d.diff == 0 and d.low == 0 and d.high == 0


@pytest.mark.parametrize(("diff", "low", "high", "verdict"), [
    (-0.2, -0.3, -0.1, "significantly below"), (-0.05, -0.2, 0.1, "below, within noise"),
    (0.05, -0.1, 0.2, "above, within noise"), (0.2, 0.1, 0.3, "significantly above")])
def test_verdicts(diff: float, low: float, high: float, verdict: str) -> None:
    assert bootstrap.Difference(diff, low, high, 1000).verdict == verdict
