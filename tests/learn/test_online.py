"""Learning online: the posterior update, its bounded influence, exploration, and the simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.model import RouterModel
from llmroute.learn.online import Exploration, OnlineProfiles, adf_update, design, sigmoid
from llmroute.learn.online_field import Setup
from llmroute.learn.online_sim import half_gap, main, report, simulate

from .conftest import synthetic_records


def _profiles(k: int = 3, var: float = 1.0, cap: float = 10.0, models: int = 1,
              floor: float | None = None) -> OnlineProfiles:
    """Profiles at 0; `floor` None: as large as the cap, so the cap alone binds (the relative
    budget has its own tests, test_online_raters.py)."""
    names = tuple(f"m{i}" for i in range(models))
    return OnlineProfiles(names, np.zeros((models, k)), np.repeat(var * np.eye(k)[None], models, axis=0),
                          rater_cap=cap, rater_floor=cap if floor is None else floor)


def test_update_moves_towards_the_outcome_and_shrinks_variance() -> None:
    state = _profiles()
    z = np.array([1.0, -0.5])
    m0, v0 = state.logit_moments(z)
    state.update("m0", z, 1.0)
    m1, v1 = state.logit_moments(z)
    assert m1[0] > m0[0] and v1[0] < v0[0]
    assert np.all(np.linalg.eigvalsh(state.covs[0]) > 0)          # still a covariance
    state.update("m0", z, 0.0)
    m2, _ = state.logit_moments(z)
    assert m2[0] < m1[0]
    # a direction orthogonal to x (Σ = I here) is untouched
    x = design(z)
    perp = np.array([0.0, 2.0, 1.0])     # x · perp = 0 with x = [1, -0.5, 1]
    assert float(x @ perp) == pytest.approx(0.0)
    mean, cov = adf_update(np.zeros(3), np.eye(3), x, 1.0, 1.0)
    assert float(perp @ mean) == pytest.approx(0.0, abs=1e-12)
    assert float(perp @ cov @ perp) == pytest.approx(float(perp @ perp))


def test_zero_weight_changes_nothing() -> None:
    state = _profiles()
    assert state.update("m0", np.ones(2), 1.0, weight=0.0) == 0.0
    assert np.all(state.means == 0) and np.all(state.covs[0] == np.eye(3))


@pytest.mark.parametrize("rate", [0.8, 0.3])
def test_repeated_observations_converge(rate: float) -> None:
    """Fractional quality repeated, and Bernoulli draws at that rate, both converge to it."""
    z = np.array([0.7, 0.2])
    state = _profiles()
    for _ in range(2000):
        state.update("m0", z, rate)
    assert float(state.p_good(z)[0]) == pytest.approx(rate, abs=0.01)
    rng = np.random.default_rng(1)
    noisy = _profiles()
    for y in rng.random(4000) < rate:
        noisy.update("m0", z, float(y))
    assert float(noisy.p_good(z)[0]) == pytest.approx(rate, abs=0.04)
    assert float(noisy.logit_moments(z)[1][0]) < 0.01


def test_state_round_trips_exactly() -> None:
    rng = np.random.default_rng(0)
    state = _profiles(k=4, models=3)
    for t in range(50):
        state.update(f"m{t % 3}", rng.normal(size=3), float(rng.random()), float(rng.random()),
                     rater=f"r{t % 4}")
    copy = OnlineProfiles.from_dict(json.loads(json.dumps(state.to_dict())))
    assert copy.models == state.models and copy.rater_cap == state.rater_cap
    assert (copy.rater_floor, copy.rater_share) == (state.rater_floor, state.rater_share)
    assert np.array_equal(copy.model_weight, state.model_weight)
    assert copy.shared_weight == state.shared_weight
    assert np.array_equal(copy.means, state.means) and np.array_equal(copy.covs, state.covs)
    assert np.array_equal(copy.n_updates, state.n_updates) and copy.rater_weight == state.rater_weight
    z = rng.normal(size=3)
    state.update("m1", z, 1.0, rater="r0")
    copy.update("m1", z, 1.0, rater="r0")
    assert np.array_equal(copy.means, state.means)
    with pytest.raises(ValueError, match="version"):
        OnlineProfiles.from_dict({**state.to_dict(), "version": 99})


def test_one_rater_cannot_swing_it_many_raters_can() -> None:
    """1,000 ratings of 0 from one rater move P(good) less than `influence_bound`; the same ratings
    from 1,000 raters move it far more."""
    z = np.array([1.0, 0.0])
    cap, var = 0.5, 0.25
    one, many = _profiles(var=var, cap=cap), _profiles(var=var, cap=cap)
    _, v0 = one.logit_moments(z)
    bound = one.influence_bound(float(v0[0]), float(v0[0]))
    assert bound == pytest.approx(0.25 * 0.5 * 0.5)
    carried = sum(one.update("m0", z, 0.0, weight=5.0, rater="troll") for _ in range(1000))
    for i in range(1000):
        many.update("m0", z, 0.0, rater=f"user{i}")
    assert carried == pytest.approx(cap)
    assert one.rater_weight == {"troll": {"m0": cap}}
    moved_one = 0.5 - float(one.p_good(z)[0])
    moved_many = 0.5 - float(many.p_good(z)[0])
    assert 0 < moved_one < bound
    assert moved_many > 0.4
    # the bound holds at another prompt too
    z2 = np.array([0.3, 0.9])
    _, v2 = _profiles(var=var, cap=cap).logit_moments(z2)
    assert abs(0.5 - float(one.p_good(z2)[0])) < one.influence_bound(float(v2[0]), float(v0[0]))


def test_from_router_starts_at_its_profiles(handmade: RouterModel) -> None:
    state = OnlineProfiles.from_router(handmade, ["c1", "s1"], prior_scale=0.5)
    z = handmade.latent("What is the capital of the river?")
    expected = handmade.predict("What is the capital of the river?", ["c1", "s1"]).p_good
    assert np.allclose(state.p_good(z), expected, atol=1e-5)
    assert state.dim == handmade.latent_dim + 1
    state.update("s1", z, 1.0)
    live = handmade.with_profiles(state.profiles(handmade))
    assert live.models == ("c1", "s1")
    assert np.allclose(live.predict_latent(z, 10)[0], state.p_good(z), atol=1e-5)


def _argmax(p: np.ndarray, _c: np.ndarray) -> int:
    return int(np.argmax(p))


def test_exploration_share_and_marks() -> None:
    rng = np.random.default_rng(0)
    p_mean, p_draw = np.array([0.9, 0.1, 0.5, 0.2]), np.array([0.1, 0.2, 0.3, 0.8])
    cost = np.zeros(4)
    allowed = np.array([True, True, True, False])
    never = [Exploration(0.0).decide(p_mean, p_draw, cost, allowed, _argmax, rng) for _ in range(500)]
    assert not any(d.explored for d in never) and {d.index for d in never} == {0}
    always = [Exploration(1.0).decide(p_mean, p_draw, cost, allowed, _argmax, rng) for _ in range(500)]
    assert all(d.explored for d in always)
    assert {d.index for d in always} == {2}            # the draw's best among the allowed (3 is not)
    marked = [Exploration(1.0).decide(p_mean, p_draw, cost, allowed, _argmax, rng, may_explore=False)
              for _ in range(500)]
    assert not any(d.explored for d in marked)
    some = [Exploration(0.05).decide(p_mean, p_draw, cost, allowed, _argmax, rng) for _ in range(4000)]
    assert 0.03 < np.mean([d.explored for d in some]) < 0.07
    with pytest.raises(ValueError):
        Exploration(1.5)
    with pytest.raises(ValueError, match="no allowed"):
        Exploration().decide(p_mean, p_draw, cost, np.zeros(4, dtype=bool), _argmax, rng)


def test_thompson_draws_only_among_what_the_posterior_allows() -> None:
    state = _profiles(models=2)
    state.means[1, -1] = 3.0
    for _ in range(200):
        state.update("m1", np.zeros(2), 1.0)
    draws = np.array([state.thompson(np.zeros(2), np.random.default_rng(s)) for s in range(300)])
    assert draws[:, 0].std() > 5 * draws[:, 1].std()       # the uncertain model varies, the known does not


def _synthetic_setup(seed: int = 0) -> Setup:
    """Two models, z in 2-d; the truth differs from the start (model b is better on z₀ > 0)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(300, 2))
    truth = np.array([[0.0, 0.0, 0.5], [3.0, 0.0, -0.5]])
    quality = (rng.random((300, 2)) < sigmoid(z @ truth[:, :2].T + truth[:, 2])).astype(float)
    start = OnlineProfiles(("a", "b"), np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]),
                           np.repeat(np.eye(3)[None], 2, axis=0))
    best = np.argmax(z @ truth[:, :2].T + truth[:, 2], axis=1).astype(np.int64)
    return Setup(("a", "b"), z, quality, np.zeros_like(quality), np.zeros(2), start, best, False)


def test_simulation_learns_on_a_synthetic_source() -> None:
    setup = _synthetic_setup()
    rep = report(setup, "synthetic", 2000, 0.2, [0.0, 0.05], seed=0, every=100)
    names = [v.name for v in rep.variants]
    assert names == ["offline", "in-domain", "online", "online+explore 0.05"]
    online = rep.variants[2]
    assert rep.q_indomain > rep.q_offline + 0.05
    assert online.snapshots[-1][1] > rep.q_offline + 0.5 * (rep.q_indomain - rep.q_offline)
    assert rep.half_gap_first["online"] is not None
    assert 50 < rep.variants[3].explored < 160
    assert set(online.cumulative) == {1000, 2000}
    again = simulate(setup, 2000, 0.2, [0.0], seed=0, every=100)
    assert again[2].cumulative == online.cumulative                 # seeded


def test_half_gap() -> None:
    snaps = [(0, 0.4, 0.0), (100, 0.5, 0.0), (200, 0.44, 0.0), (300, 0.6, 0.0), (400, 0.55, 0.0)]
    assert half_gap(snaps, 0.4, 0.6) == (100, 300)
    assert half_gap(snaps, 0.6, 0.5) == (None, None)


def test_simulation_end_to_end_on_a_tiny_source(tmp_path: Path, handmade: RouterModel) -> None:
    pytest.importorskip("sklearn")
    data = tmp_path / "data"
    (data / "routeprofile").mkdir(parents=True)
    lines = []
    for r in synthetic_records(80):
        lines.append(json.dumps({"id": r.id, "prompt": r.prompt, "outcomes": dict(r.outcomes),
                                 "cost_usd": dict(r.cost_usd), "output_chars": dict(r.output_chars),
                                 "category": r.dataset}))
    (data / "routeprofile" / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    artifact.save(handmade, tmp_path / "router")
    out = tmp_path / "sim.json"
    main(["--data", str(data), "--source", "routeprofile", "--requests", "600", "--every", "100",
          "--explore", "0,0.05", "--artifact", str(tmp_path / "router"), "--json", str(out),
          "--target", "0.7"])
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["has_cost"] is True and rep["requests"] == 600 and rep["n_field"] == 40
    assert [v["name"] for v in rep["variants"]] == ["offline", "in-domain", "online", "online+explore 0.05"]


def test_forgetting_keeps_uncertainty_and_leaves_others_at_the_prior() -> None:
    prior = np.eye(3)
    z = np.array([1.0, -0.5])
    kept = OnlineProfiles(("m0", "m1"), np.zeros((2, 3)), np.repeat(prior[None], 2, axis=0))
    forgets = OnlineProfiles(("m0", "m1"), np.zeros((2, 3)), np.repeat(prior[None], 2, axis=0),
                             forget=0.01, prior_cov=prior)
    for _ in range(2000):
        kept.update("m0", z, 0.0)
        forgets.update("m0", z, 0.0)
    _, v_kept = kept.logit_moments(z)
    _, v_forgets = forgets.logit_moments(z)
    assert v_forgets[0] > 5 * v_kept[0]                      # a floor, not a collapse
    assert np.allclose(forgets.covs[1], prior)               # never rated: stays at the prior
    copy = OnlineProfiles.from_dict(json.loads(json.dumps(forgets.to_dict())))
    assert copy.forget == 0.01 and copy.prior_cov is not None
    assert np.array_equal(copy.prior_cov, prior)
    with pytest.raises(ValueError):
        OnlineProfiles(("m0",), np.zeros((1, 3)), prior[None], forget=0.1)   # no prior given
    with pytest.raises(ValueError):
        OnlineProfiles(("m0",), np.zeros((1, 3)), prior[None], forget=1.0, prior_cov=prior)
