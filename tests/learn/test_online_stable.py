"""Stable online learning (issue 13): exploration that reaches a model the prior is confident is bad,
the shared term that keeps what a model's prompts have in common off its own level, the optional
ability variance, and one rater's bounded influence on the bundled artifact's prior."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.abilities import prior
from llmroute.learn.online import Exploration, OnlineProfiles, prior_covariance, shared_for, sigmoid
from llmroute.learn.online_hub import OnlineHub


def _argmax(p: np.ndarray, _c: np.ndarray) -> int:
    return int(np.argmax(p))


def _confident(var: float = 0.05) -> OnlineProfiles:
    """m0 at P(good) 0.88, m1 at 0.12, both with a small (confident) bias variance."""
    means = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0]])
    covs = np.repeat(np.diag([var, var, var])[None], 2, axis=0)
    return OnlineProfiles(("m0", "m1"), means, covs)


def _reached(strategy: str, requests: int = 2000, share: float = 0.05) -> list[int]:
    """Requests (indices) sent to m1 when the posterior means always prefer m0."""
    state, rng = _confident(), np.random.default_rng(11)
    chooser = Exploration(share, strategy)
    z, cost, allowed = np.array([0.3, -0.2]), np.zeros(2), np.ones(2, dtype=bool)
    hits = []
    for t in range(requests):
        d = chooser.decide(state.p_good(z), state.thompson(z, rng), cost, allowed, _argmax, rng)
        if d.index == 1:
            assert d.explored                  # the means never choose m1
            hits.append(t)
    return hits


def test_challenger_exploration_reaches_a_confidently_bad_model_thompson_does_not() -> None:
    challenger, thompson = _reached("challenger"), _reached("thompson")
    # every explored request goes to m1: binomial(2000, 0.05) ≈ 100 ± 10
    assert 60 < len(challenger) < 140 and challenger[0] < 200
    # the plain draw needs a 4-logit upset with a logit sd of 0.3: essentially never
    assert len(thompson) < 5


def test_challenger_leaves_out_only_the_means_choice() -> None:
    rng = np.random.default_rng(0)
    p_mean, p_draw = np.array([0.2, 0.9, 0.5, 0.1]), np.array([0.1, 0.95, 0.3, 0.6])
    allowed = np.array([True, True, True, False])
    chooser = Exploration(1.0, "challenger")
    # the means choose 1; the draw's best other than it, among the allowed (3 is not), is 2
    assert {chooser.decide(p_mean, p_draw, np.zeros(4), allowed, _argmax, rng).index
            for _ in range(50)} == {2}
    # one allowed candidate: it is the choice, exploring or not
    only = np.array([False, True, False, False])
    assert chooser.decide(p_mean, p_draw, np.zeros(4), only, _argmax, rng).index == 1
    assert Exploration(1.0, "thompson").decide(p_mean, p_draw, np.zeros(4), allowed, _argmax,
                                               rng).index == 1
    with pytest.raises(ValueError, match="strategy"):
        Exploration(0.05, "greedy")


def test_prior_covariance_adds_ability_variance_only() -> None:
    spread = np.array([[0.01, 0.0, 0.0], [0.0, 0.02, 0.0], [0.0, 0.0, 2.5]])
    cov = prior_covariance(spread, 2.0, 0.05)
    assert np.allclose(np.diag(cov), [0.07, 0.09, 5.0])
    assert np.array_equal(prior_covariance(spread, 1.0, 0.0), spread)
    router = artifact.load_default()
    state = OnlineProfiles.from_router(router, router.models[:2], ability_var=0.05, shared=0.0)
    assert np.allclose(state.covs[0], prior(router)[1] + np.diag([0.05] * (state.dim - 1) + [0.0]))


def test_one_rater_cannot_swing_the_bundled_prior_beyond_its_cap() -> None:
    """With the floor at the cap (the cap alone binds), one rater's 1,000 zeros on one model carry
    `rater_cap` of weight and move its P(good) by at most what `rater_cap` zeros from separate raters
    would; the influence bound holds. The default budget: test_online_raters.py."""
    router = artifact.load_default()
    z = np.asarray(router.latent("What is the capital of France?"), dtype=np.float64)
    troll = OnlineProfiles.from_router(router, router.models[:1], rater_cap=3.0, rater_floor=3.0)
    three = OnlineProfiles.from_router(router, router.models[:1], rater_cap=3.0, rater_floor=3.0)
    carried = sum(troll.update(router.models[0], z, 0.0, rater="troll") for _ in range(1000))
    for i in range(3):
        three.update(router.models[0], z, 0.0, rater=f"user{i}")
    assert carried == pytest.approx(3.0)
    assert np.allclose(troll.means, three.means)
    start = float(OnlineProfiles.from_router(router, router.models[:1]).p_good(z)[0])
    _, v0 = OnlineProfiles.from_router(router, router.models[:1]).logit_moments(z)
    moved = start - float(troll.p_good(z)[0])
    assert 0 < moved <= troll.influence_bound(float(v0[0]), float(v0[0]))


def _pair(shared: float) -> OnlineProfiles:
    """Two models with the same prior mean and a prior almost all in the bias."""
    cov = np.diag([0.01, 0.01, 2.5])
    return OnlineProfiles.starting(("a", "b"), np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), cov,
                                   shared=shared)


def test_the_shared_term_keeps_what_a_models_prompts_share_off_its_own_level() -> None:
    """Model a fed 20 zeros (the hard prompts a router sends the strong model): without the shared
    term only a falls, so b looks far better; with it both fall and the gap between them is smaller
    — the prior's total variance per model is the same in both."""
    z = np.array([0.2, -0.1])
    gaps = {}
    for shared in (0.0, 0.5):
        state = _pair(shared)
        _, v = state.logit_moments(z)
        assert np.allclose(v, _pair(0.0).logit_moments(z)[1])      # same prior per model
        for _ in range(20):
            state.update("a", z, 0.0)
        p = state.p_good(z)
        gaps[shared] = float(p[1] - p[0])
        if shared == 0.0:
            assert p[1] == pytest.approx(float(sigmoid(1.0)))     # b untouched
        else:
            assert p[1] < float(sigmoid(1.0)) - 0.1                 # b falls too
    assert gaps[0.5] < 0.6 * gaps[0.0]


def test_the_shared_draw_is_common_and_the_state_round_trips() -> None:
    state = OnlineProfiles.starting(("a", "b", "c"), np.array([[0, 0, 0.5], [0, 0, 0.0], [0, 0, -0.5]]),
                                    np.eye(3), shared=0.9)
    for i in range(30):                                              # shrink the own terms
        state.update("abc"[i % 3], np.array([0.1, 0.0]), float(i % 2))
    state.covs *= 1e-6
    z = np.array([0.1, 0.0])
    order = np.argsort(state.p_good(z))
    rng = np.random.default_rng(3)
    draws = [state.thompson(z, rng) for _ in range(50)]
    assert all(np.array_equal(np.argsort(d), order) for d in draws)  # a common shift keeps the order
    assert np.std([d[0] for d in draws]) > 0.05                      # ... and the draws do vary
    assert np.allclose(state.p_good_many(z[None])[0], state.p_good(z))
    copy = OnlineProfiles.from_dict(json.loads(json.dumps(state.to_dict())))
    assert copy.shared_mean is not None and state.shared_mean is not None
    assert np.array_equal(copy.shared_mean, state.shared_mean)
    assert np.array_equal(copy.p_good(z), state.p_good(z))
    old = {k: v for k, v in _pair(0.0).to_dict().items() if not k.startswith("shared")}
    assert OnlineProfiles.from_dict({**old, "version": 1}).shared_cov is None   # version 1 still loads
    with pytest.raises(ValueError, match="shared"):
        OnlineProfiles.starting(("a",), np.zeros((1, 3)), np.eye(3), shared=1.0)


def test_the_shared_term_is_on_by_default_only_when_exploring() -> None:
    assert shared_for(None, 0.0) == 0.0 and shared_for(None, 0.02) == 0.25
    assert shared_for(0.3, 0.0) == 0.3 and shared_for(0.0, 0.05) == 0.0
    router = artifact.load_default()
    pool = router.with_profiles([router.profile(m) for m in router.models[:3]])
    plain = OnlineHub(explore=0.0).slot("a", pool, router).profiles
    exploring = OnlineHub(explore=0.05).slot("a", pool, router).profiles
    assert plain.shared_cov is None and exploring.shared_cov is not None
    assert np.allclose(exploring.covs[0] + exploring.shared_cov, plain.covs[0])
