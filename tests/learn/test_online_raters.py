"""One noisy rater cannot swing a model (issue 13): a rater's weight on a model is at most
`rater_floor` plus `rater_share` of every other rater's, never more than `rater_cap`; measured on the
bundled artifact's prior, alone and among honest raters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.learn import artifact
from llmroute.learn.model import RouterModel
from llmroute.learn.online import SHARED_RATER_KEY, OnlineProfiles

PROMPTS = ("What is the capital of France?",
           "Solve 3x^2 - 12x + 9 = 0 step by step for a beginner.",
           "Write a Python function that merges two sorted lists.")


@pytest.fixture(scope="module")
def router() -> RouterModel:
    return artifact.load_default()


def _start(router: RouterModel, shared: float = 0.0, **kw: float) -> OnlineProfiles:
    return OnlineProfiles.from_router(router, router.models[:3], shared=shared, **kw)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("shared", [0.0, 0.25])
def test_one_rater_alone_cannot_swing_the_bundled_prior(router: RouterModel, prompt: str,
                                                        shared: float) -> None:
    """1,000 zeros from one rater, nobody else: P(good) moves by under 0.1 (a quarter of one
    feedback), within `influence_bound`; the other models move less. With the floor at the old
    cap (10) the same zeros took the model from ~0.82 to ~0.15."""
    z = np.asarray(router.latent(prompt), dtype=np.float64)
    start = _start(router, shared)
    p0 = start.p_good(z)
    _, v0 = start.logit_moments(z)
    troll = _start(router, shared)
    carried = sum(troll.update(router.models[0], z, 0.0, weight=1.0, rater="troll") for _ in range(1000))
    assert carried == pytest.approx(troll.rater_floor)
    moved = p0 - troll.p_good(z)
    assert 0 < moved[0] < 0.1
    assert moved[0] <= troll.influence_bound(float(v0[0]), float(v0[0]))
    assert np.all(np.abs(moved[1:]) <= moved[0])
    old = _start(router, shared, rater_floor=10.0, rater_share=0.0)
    for _ in range(1000):
        old.update(router.models[0], z, 0.0, rater="troll")
    assert float(p0[0] - old.p_good(z)[0]) > 0.4


@pytest.mark.parametrize("honest", [10, 50, 200])
def test_one_rater_among_honest_ones_moves_a_model_little(router: RouterModel, honest: int) -> None:
    """`honest` raters each report one outcome (drawn at the model's real rate 0.8); then one rater
    sends 1,000 zeros: it carries a quarter plus a tenth of their weight, and moves the
    model's P(good) by under 0.1 (the same zeros from 1,000 raters move it by more than 0.3)."""
    z = np.asarray(router.latent(PROMPTS[0]), dtype=np.float64)
    rng = np.random.default_rng(honest)
    crowd = _start(router)
    for i in range(honest):
        crowd.update(router.models[0], z, float(rng.random() < 0.8), rater=f"user{i}")
    before = float(crowd.p_good(z)[0])
    flooded = OnlineProfiles.from_dict(crowd.to_dict())
    many = OnlineProfiles.from_dict(crowd.to_dict())
    carried = sum(flooded.update(router.models[0], z, 0.0, rater="troll") for _ in range(1000))
    for i in range(1000):
        many.update(router.models[0], z, 0.0, rater=f"other{i}")
    others = float(crowd.model_weight[0])       # the first honest ones carried less, alone
    assert honest * 0.25 < others <= honest
    assert carried == pytest.approx(min(10.0, 0.25 + 0.1 * others))
    assert 0 < before - float(flooded.p_good(z)[0]) < 0.1
    assert before - float(many.p_good(z)[0]) > 0.3


def test_the_budget_grows_only_with_the_others_weight() -> None:
    """A rater's budget is floor + share × (everyone's weight − its own), at most the cap; anonymous
    feedback counts for the others and is not capped; the shared term has its own budget."""
    state = OnlineProfiles(("a", "b"), np.zeros((2, 2)), np.repeat(np.eye(2)[None], 2, axis=0),
                           rater_cap=2.0, rater_floor=0.5, rater_share=0.25,
                           shared_cov=0.5 * np.eye(2))
    z = np.array([1.0])
    assert state.update("a", z, 1.0, rater="r") == 0.5
    assert state.update("a", z, 1.0, rater="r") == 0.0
    assert state.update("b", z, 1.0, rater="r") == 0.5      # per model
    assert [state.update("a", z, 1.0) for _ in range(4)] == [1.0] * 4   # anonymous
    assert state.budget("a", "r") == pytest.approx(0.5 + 0.25 * 4)
    assert state.update("a", z, 1.0, rater="r") == pytest.approx(1.0)
    for i in range(20):
        state.update("a", z, 1.0, rater=f"u{i}")
    assert state.budget("a", "r") == 2.0                       # the cap
    assert state.model_weight.tolist() == pytest.approx([4 + 1.5 + sum(
        min(1.0, 0.5 + 0.25 * (5.5 + i)) for i in range(20)), 0.5])
    # the shared term has one budget across models: r's first 0.5 (a) spent it, so its 0.5 on b
    # updated b's own term only; after the anonymous 4 its 1.0 on a went in again
    assert state.rater_weight["r"][SHARED_RATER_KEY] == pytest.approx(1.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["r0", "r1", "r2", None]),
                          st.floats(0, 3), st.floats(0, 1)), max_size=60),
       st.floats(0.05, 2), st.floats(0, 1), st.floats(0.1, 5))
def test_no_rater_exceeds_its_budget(events: list[tuple[str, str | None, float, float]], floor: float,
                                     share: float, cap: float) -> None:
    """Whatever the order: each rater's weight on a model is at most min(cap, floor + share × the
    others' weight on it), the totals are the sum of what was carried, and the state round-trips."""
    state = OnlineProfiles(("a", "b"), np.zeros((2, 2)), np.repeat(np.eye(2)[None], 2, axis=0),
                           rater_cap=cap, rater_floor=floor, rater_share=share)
    carried = {"a": 0.0, "b": 0.0}
    for model, rater, weight, quality in events:
        carried[model] += state.update(model, np.array([0.3]), quality, weight=weight, rater=rater)
    for j, model in enumerate(("a", "b")):
        assert state.model_weight[j] == pytest.approx(carried[model])
        for per in state.rater_weight.values():
            mine = per.get(model, 0.0)
            assert mine <= min(cap, floor + share * (carried[model] - mine)) + 1e-9
    copy = OnlineProfiles.from_dict(json.loads(json.dumps(state.to_dict())))
    assert copy.model_weight.tolist() == state.model_weight.tolist()
    assert (copy.rater_floor, copy.rater_share, copy.rater_cap) == (floor, share, cap)


def test_a_version_2_state_loads_with_the_default_budget() -> None:
    """A state saved before the budget (no floor, share or totals) loads with the defaults and the
    named raters' weights as the totals."""
    state = OnlineProfiles(("a",), np.zeros((1, 2)), np.eye(2)[None], rater_floor=10.0, rater_share=0.0)
    state.update("a", np.array([1.0]), 0.0, rater="r")
    state.update("a", np.array([1.0]), 0.0, rater="s")
    old = state.to_dict()
    old["version"] = 2
    for key in ("rater_floor", "rater_share", "model_weight", "shared_weight"):
        del old[key]
    loaded = OnlineProfiles.from_dict(old)
    assert (loaded.rater_floor, loaded.rater_share) == (0.25, 0.1)
    assert loaded.model_weight.tolist() == [2.0]
    assert loaded.budget("a", "r") == pytest.approx(0.35)
    with pytest.raises(ValueError, match="malformed"):
        OnlineProfiles.from_dict({**state.to_dict(), "rater_share": "lots"})
    with pytest.raises(ValueError, match="share"):
        OnlineProfiles(("a",), np.zeros((1, 2)), np.eye(2)[None], rater_share=1.5)
