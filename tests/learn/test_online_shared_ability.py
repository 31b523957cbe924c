"""The shared term on the prompts' latent directions (issue 13, `learning.shared_ability`): what makes a
prompt hard for every model is learnt from all of their feedback, so a model routed only the prompts
the incumbent fails is not taken for a weak model everywhere (the adverse selection session 24 found
behind the online learner's bad basin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.config import ConfigError
from llmroute.learn.online import OnlineProfiles, ability_moment
from llmroute.learn.online_hub import OnlineHub

#: two models with the same ability, the incumbent a little ahead; a prior almost all in the bias
MEANS = np.array([[1.0, 0.3, 0.5], [1.0, 0.3, 0.0]])
COV = np.diag([0.01, 0.01, 2.5])
TYPICAL, HARD = np.array([0.5, 0.3]), np.array([-2.0, 0.0])


def _state(c: float, shared: float = 0.0) -> OnlineProfiles:
    return OnlineProfiles.starting(("incumbent", "newcomer"), MEANS.copy(), COV, shared=shared,
                                   shared_ability=c)


def test_the_moment_is_the_pools_mean_ability_outer_product() -> None:
    means = np.array([[1.0, 0.0, 3.0], [0.0, 2.0, -1.0]])
    got = ability_moment(means)
    assert got.shape == (3, 3)
    assert np.allclose(got[:2, :2], [[0.5, 0.0], [0.0, 2.0]])
    assert np.allclose(got[2], 0.0) and np.allclose(got[:, 2], 0.0)     # no common level
    assert np.allclose(ability_moment(np.zeros((0, 3))), 0.0)


def test_the_term_adds_to_the_shared_share_and_changes_nothing_on_day_one() -> None:
    plain, both = _state(0.0), _state(0.5, shared=0.25)
    assert plain.shared_cov is None
    assert _state(0.5).shared_cov == pytest.approx(0.5 * ability_moment(MEANS))
    assert both.shared_cov == pytest.approx(0.25 * COV + 0.5 * ability_moment(MEANS))
    for z in (TYPICAL, HARD):
        assert both.p_good(z) == pytest.approx(plain.p_good(z))           # its mean starts at 0
        assert both.logit_moments(z)[1][0] > plain.logit_moments(z)[1][0]
    copy = OnlineProfiles.from_dict(both.to_dict())
    assert copy.shared_cov == pytest.approx(both.shared_cov)
    with pytest.raises(ValueError, match="shared_ability"):
        _state(-0.1)
    with pytest.raises(ValueError, match="shared_ability"):
        _state(11.0)


def test_a_model_fed_the_incumbents_hard_prompts_keeps_its_level() -> None:
    """The incumbent is rated on typical prompts (good) and hard ones (bad, worse than day one
    thought); then the newcomer is routed only hard prompts and rated bad there. Without the term
    its level falls everywhere (P at the typical prompt 0.64 → 0.39); with it the pool has learnt
    that those prompts are hard, predicts the newcomer low there before it is rated, and its own
    level barely moves."""
    day_one = float(_state(0.0).p_good(TYPICAL)[1])
    after, before_rated = {}, {}
    for c in (0.0, 0.1):
        state = _state(c)
        for _ in range(40):
            state.update("incumbent", HARD, 0.0)
            state.update("incumbent", TYPICAL, 1.0)
        before_rated[c] = float(state.p_good(HARD)[1])
        for _ in range(10):
            state.update("newcomer", HARD, 0.0)
        after[c] = float(state.p_good(TYPICAL)[1])
    assert after[0.0] < day_one - 0.2
    assert after[0.1] > day_one - 0.05
    assert before_rated[0.1] < 0.5 * before_rated[0.0]                   # hard for every model


@pytest.mark.asyncio
async def test_the_setting_reaches_every_slot(tmp_path: Path) -> None:
    assert OnlineHub().shared_ability == 0.0
    for bad in ("-1", "11"):
        with pytest.raises(ConfigError, match="shared_ability"):
            engine_of(tmp_path, f"learning: {{online: true, shared_ability: {bad}}}\n")
    for c, expect_shared in ((0.0, False), (0.5, True)):
        engine = engine_of(tmp_path, f"learning: {{online: true, shared_ability: {c}}}\n")
        await route(engine)
        hub = engine.online
        assert isinstance(hub, OnlineHub)
        (slot,) = hub.slots.values()
        prof = slot.profiles
        assert (prof.shared_cov is not None) == expect_shared
        if expect_shared:
            assert prof.shared_cov is not None
            assert np.allclose(prof.shared_cov[-1], 0.0)                  # no common level
            assert np.allclose(prof.shared_cov, c * ability_moment(prof.means))
