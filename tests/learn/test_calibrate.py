"""Calibration: a business goal → a knob setting, or a blend of two on the curve's convex hull."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn import calibrate as cal
from llmroute.learn.policy import blend_point

# Three models: cheap (index 0), mid (1), top (2); four prompts with known outcomes.
P = np.array([[0.9, 0.95, 0.99],
              [0.3, 0.8, 0.9],
              [0.2, 0.4, 0.9],
              [0.1, 0.5, 0.6]])
EST = np.tile([1.0, 2.0, 10.0], (4, 1))
QUALITY = np.array([[1.0, 1.0, 1.0],
                    [0.0, 1.0, 1.0],
                    [0.0, 0.0, 1.0],
                    [0.0, 0.0, 0.0]])
COST = EST.copy()


def found() -> list[cal.Setting]:
    return cal.settings(P, EST, QUALITY, COST, top=2)


def test_settings_cover_both_knobs_with_their_top_share() -> None:
    settings = found()
    assert {s.knob for s in settings} == {"quality_target", "willingness_to_pay"}
    everything_top = [s for s in settings if s.top_share == 1.0]
    assert everything_top and all(s.cost == 10.0 and s.quality == 0.75 for s in everything_top)
    for s in settings:  # each setting, applied, gives what it says
        choice = s.choose(P, EST)
        assert s.top_share == np.mean(choice == 2)
        assert s.cost == COST[np.arange(4), choice].mean()


def test_a_quality_goal_between_two_settings_is_a_blend_on_the_hull() -> None:
    # Points (cost, quality) include all-cheap (1, .25) at λ > .5, prompt 1 on mid (1.25, .5) at
    # λ in (.4, .5), and prompt 2 on top with prompts 1 and 3 on mid (3.75, .75) at λ in (.0125,
    # .05). The goal .6 lies 40% of the way along the hull segment between the last two, so the
    # expected cost is 1.25 + 0.4 · 2.5 = 2.25.
    best = cal.for_quality(found(), 0.6)
    assert best is not None and best.blend is not None
    assert best.share == pytest.approx(0.4)
    assert (best.main.cost, best.main.quality) == (1.25, 0.5)
    assert (best.blend.cost, best.blend.quality) == (3.75, 0.75)
    assert best.quality == pytest.approx(0.6) and best.cost == pytest.approx(2.25)
    params = best.params()
    assert set(params) == {best.main.knob, "blend"}
    assert params["blend"]["share"] == pytest.approx(0.4)


def test_a_goal_met_by_a_vertex_needs_no_blend_and_an_unreachable_one_is_none() -> None:
    exact = cal.for_quality(found(), 0.5)
    assert exact is not None and exact.blend is None and exact.cost == 1.25
    assert cal.for_quality(found(), 0.8) is None
    assert cal.for_quality(found(), 0.0) is not None


def test_a_top_share_cap_blends_up_to_the_cap() -> None:
    # Top shares: 0 → quality .5 (cheap/mid only), 0.25 → .75 (prompt 2 on top). A 10% cap sits
    # 40% of the way: expected quality .5 + .4 · .25 = .6, exactly 10% of calls on top.
    best = cal.for_top_share(found(), 0.1)
    assert best is not None and best.blend is not None
    assert best.top_share == pytest.approx(0.1) and best.quality == pytest.approx(0.6)
    assert cal.for_top_share(found(), 1.0) is not None
    assert cal.for_top_share(found(), 1.0).blend is None  # type: ignore[union-attr]


def test_realised_splits_prompts_by_their_hash_as_the_router_does() -> None:
    best = cal.for_quality(found(), 0.6)
    assert best is not None and best.blend is not None
    texts = [f"prompt {i}" for i in range(4)]
    on_blend = [blend_point(t) < best.share for t in texts]
    choice = np.where(on_blend, best.blend.choose(P, EST), best.main.choose(P, EST))
    expected = (COST[np.arange(4), choice].mean(), QUALITY[np.arange(4), choice].mean())
    assert best.realised(P, EST, QUALITY, COST, texts) == expected
    single = cal.Calibration(best.main)
    assert single.realised(P, EST, QUALITY, COST, texts) == (best.main.cost, best.main.quality)


def test_a_pair_threshold_for_a_share_or_a_quality_goal() -> None:
    # Gains in decreasing order: .5, .3, .3 (tied), .1, −.2. Strong is right on the first three.
    gain = np.array([0.1, 0.5, 0.3, -0.2, 0.3])
    quality = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    cost = np.tile([10.0, 1.0], (5, 1))
    capped = cal.for_pair(gain, quality, cost, max_share=0.5)
    # 2 of 5 would split the tie at .3: the most that fits is 1 prompt (20%), threshold in (.3, .5).
    assert capped is not None and capped.share == 0.2 and 0.3 < capped.threshold < 0.5
    assert capped.quality == pytest.approx(0.4) and capped.cost == pytest.approx((10 + 4) / 5)
    goal = cal.for_pair(gain, quality, cost, quality_goal=0.8)
    # The whole tie joins: 3 strong calls give quality (1 + 1 + 1 + 1 + 0) / 5 = .8.
    assert goal is not None and goal.share == 0.6 and 0.1 < goal.threshold < 0.3
    assert goal.quality == pytest.approx(0.8)
    assert cal.for_pair(gain, quality, cost, quality_goal=0.9) is None
    none = cal.for_pair(gain, quality, cost, max_share=0.0)
    assert none is not None and none.share == 0.0 and none.threshold == 1.0
    every = cal.for_pair(gain, quality, cost, max_share=1.0)
    assert every is not None and every.share == 1.0 and every.threshold < -0.2
    with pytest.raises(ValueError):
        cal.for_pair(gain, quality, cost)
