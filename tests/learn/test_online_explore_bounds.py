"""Exploration's bounds (issue 13, 5% exploration at ≤ 1 point): a gap cap on P(good), a floor on
the posterior probability of beating the means' choice, a share that decays with learnt feedback,
and explored feedback kept off the shared term. Off by default, where decisions are unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llmroute.learn.online import Exploration, OnlineProfiles

F = st.floats(0.0, 1.0, allow_nan=False)


def _argmax(p: np.ndarray, _cost: np.ndarray) -> int:
    return int(np.argmax(p))


def _old_decide(share: float, strategy: str, pm: np.ndarray, pd: np.ndarray,
                allowed: np.ndarray, rng: np.random.Generator) -> tuple[int, bool]:
    """The decision before the bounds (5b047f1^), for comparison."""
    ok = np.flatnonzero(allowed)
    incumbent = int(ok[int(np.argmax(pm[ok]))])
    if not (share > 0.0 and rng.random() < share):
        return incumbent, False
    rest = ok if strategy == "thompson" or len(ok) < 2 else ok[ok != incumbent]
    return int(rest[int(np.argmax(pd[rest]))]), True


@settings(max_examples=200, deadline=None)
@given(pm=arrays(np.float64, 5, elements=F), pd=arrays(np.float64, 5, elements=F),
       allowed=arrays(np.bool_, 5), share=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
       strategy=st.sampled_from(["challenger", "thompson"]), seed=st.integers(0, 2**16))
def test_without_bounds_decisions_are_unchanged(pm: np.ndarray, pd: np.ndarray, allowed: np.ndarray,
                                                share: float, strategy: str, seed: int) -> None:
    allowed[0] = True
    new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(5):
        d = Exploration(share, strategy).decide(pm, pd, np.zeros(5), allowed, _argmax, new_rng,
                                                learnt=1e6)
        assert (d.index, d.explored) == _old_decide(share, strategy, pm, pd, allowed, old_rng)


@settings(max_examples=200, deadline=None)
@given(pm=arrays(np.float64, 5, elements=F), pd=arrays(np.float64, 5, elements=F),
       gap=st.floats(0.01, 1.0), beat=st.floats(0.0, 0.9), seed=st.integers(0, 2**16))
def test_an_arm_outside_the_bounds_is_never_explored(pm: np.ndarray, pd: np.ndarray, gap: float,
                                                    beat: float, seed: int) -> None:
    p_beat = np.random.default_rng(seed).random(5)
    bounded = Exploration(1.0, gap=gap, beat=beat)
    rng = np.random.default_rng(seed)
    allowed = np.ones(5, dtype=bool)
    d = bounded.decide(pm, pd, np.zeros(5), allowed, _argmax, rng, p_beat=p_beat)
    incumbent = int(np.argmax(pm))
    if d.explored:
        assert d.index != incumbent
        assert pm[d.index] >= pm[incumbent] - gap and p_beat[d.index] >= beat
    else:
        assert d.index == incumbent
        far = (pm < pm[incumbent] - gap) | (p_beat < beat)
        far[incumbent] = True
        assert far.all()          # it only declines when no challenger is within the bounds


def test_bounds_only_ever_remove_explorations_and_the_share_stays_within_its_setting() -> None:
    pm = np.array([0.8, 0.78, 0.3, 0.1])
    cost = np.zeros(4)
    allowed = np.ones(4, dtype=bool)
    plain, gapped, decayed = Exploration(0.05), Exploration(0.05, gap=0.05), \
        Exploration(0.05, decay=100)
    r1, r2, r3 = (np.random.default_rng(9) for _ in range(3))
    draws = np.random.default_rng(1).random((20_000, 4))
    got = {"plain": 0, "gapped": 0, "decayed": 0}
    for i, pd in enumerate(draws):
        a = plain.decide(pm, pd, cost, allowed, _argmax, r1)
        b = gapped.decide(pm, pd, cost, allowed, _argmax, r2)
        c = decayed.decide(pm, pd, cost, allowed, _argmax, r3, learnt=i / 10)
        assert b.explored <= a.explored and c.explored <= a.explored   # the same coins
        assert not b.explored or b.index == 1           # 2 and 3 are far below: never explored
        got["plain"] += a.explored
        got["gapped"] += b.explored
        got["decayed"] += c.explored
    # binomial(20000, 0.05): sd ≈ 31; the bounded and decayed never exceed the share
    assert abs(got["plain"] - 1000) < 130
    assert got["gapped"] == got["plain"]               # the coin is the same; arm 1 always qualifies
    assert got["decayed"] < 0.5 * got["plain"]
    assert Exploration(0.05, decay=100).rate(0) == 0.05
    assert Exploration(0.05, decay=100).rate(300) == pytest.approx(0.0125)
    assert all(Exploration(0.05, decay=d).rate(n) <= 0.05 for d in (1, 500) for n in (0, 5, 1e9))


def test_marked_requests_never_explore_with_bounds() -> None:
    rng = np.random.default_rng(0)
    e = Exploration(1.0, gap=0.5, beat=0.01, decay=10)
    pm, pd = np.array([0.5, 0.49]), np.array([0.1, 0.9])
    assert not any(e.decide(pm, pd, np.zeros(2), np.ones(2, dtype=bool), _argmax, rng,
                            may_explore=False).explored for _ in range(200))


def test_invalid_bounds_are_refused() -> None:
    for kw in ({"gap": 0.0}, {"gap": 1.5}, {"beat": 1.0}, {"beat": -0.1}, {"decay": -1.0}):
        with pytest.raises(ValueError):
            Exploration(0.05, **kw)  # type: ignore[arg-type]


def _two(shared: float = 0.25) -> OnlineProfiles:
    cov = np.eye(3)
    return OnlineProfiles.starting(("a", "b"), np.array([[0.0, 0.0, 0.5], [0.0, 0.0, -0.5]]), cov,
                                   shared=shared)


def test_beat_probability_matches_the_posterior() -> None:
    state = _two()
    z = np.array([0.3, -0.2])
    p = state.beat_probability(z, 0)
    mean, var, _ = state.own_moments(z)
    expected = 0.5 * (1 + math.erf((mean[1] - mean[0]) / math.sqrt(2 * (var[0] + var[1]))))
    assert p[0] == 0.5 and p[1] == pytest.approx(expected)
    assert p[1] + state.beat_probability(z, 1)[0] == pytest.approx(1.0)
    # Monte Carlo over the own terms (the shared term is one draw for both: it cancels)
    rng = np.random.default_rng(0)
    a = mean[0] + np.sqrt(var[0]) * rng.standard_normal(200_000)
    b = mean[1] + np.sqrt(var[1]) * rng.standard_normal(200_000)
    assert float((b > a).mean()) == pytest.approx(p[1], abs=0.005)
    for _ in range(300):       # a model learnt to be far worse: its chance of beating goes to ~0
        state.update("b", z, 0.0)
        state.update("a", z, 1.0)
    assert state.beat_probability(z, 0)[1] < 0.01


def test_explored_feedback_can_be_kept_off_the_shared_term() -> None:
    state = _two()
    assert state.shared_mean is not None
    before = state.shared_mean.copy()
    carried = state.update("a", np.array([1.0, 0.0]), 0.0, rater="r", shared=False)
    assert carried == state.rater_floor and np.array_equal(state.shared_mean, before)
    assert state.means[0, -1] < 0.5 and state.rater_weight["r"] == {"a": state.rater_floor}
    state.update("a", np.array([1.0, 0.0]), 0.0)
    assert not np.array_equal(state.shared_mean, before)
