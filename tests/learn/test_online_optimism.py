"""Optimism in the online learner's greedy choice (issue 13, `learning.optimism`): a model is chosen
on its P(good) with a bonus of κ times how much its own posterior sd exceeds the best-known
candidate's, so a model with fewer feedbacks whose mean is close gets tried again instead of being
buried by a few bad ones. On day one (every model at the same prior) nobody gets a bonus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import LEARNED_CONFIG, PROOF_PROMPT, load_yaml
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.config import ConfigError
from llmroute.engine import Engine
from llmroute.learn.online import Exploration, OnlineProfiles, sigmoid
from llmroute.learn.online_hub import OnlineHub, Slot
from llmroute.learn.online_sim import make_pick
from llmroute.types import RouteRequest

PROMPTS = [PROOF_PROMPT, "What is 2 plus 2?", "Write a haiku about autumn rain.",
           "Summarise the causes of the French revolution in three bullet points.",
           "Implement a thread-safe LRU cache in Rust with generics and tests."]


def _profiles() -> OnlineProfiles:
    rng = np.random.default_rng(3)
    means = rng.normal(0.0, 0.5, (4, 6))
    a = rng.normal(0.0, 0.4, (6, 6))
    return OnlineProfiles.starting(("a", "b", "c", "d"), means, a @ a.T + 0.3 * np.eye(6))


def test_no_bonus_on_day_one_and_the_less_known_get_ahead() -> None:
    prof = _profiles()
    z = np.array([0.3, -0.2, 0.5, 0.1, -0.4])
    assert prof.p_upper(z, 0.0) == pytest.approx(prof.p_good(z))
    assert prof.p_upper(z, 2.0) == pytest.approx(prof.p_good(z))     # the same prior: no bonus
    for _ in range(40):                                               # "a" is fed back a lot
        prof.update("a", z, 1.0)
    mean, var, _ = prof.own_moments(z)
    sd = np.sqrt(var)
    assert sd[0] < sd[1:].min()
    upper = prof.p_upper(z, 0.5)
    assert upper == pytest.approx(sigmoid(mean + 0.5 * (sd - sd[0])))
    assert upper[0] == pytest.approx(prof.p_good(z)[0])               # the best known: none
    assert (upper[1:] > prof.p_good(z)[1:]).all()
    # among a subset the bonus is relative to the subset's best-known model
    assert prof.p_upper(z, 0.5, [1, 2])[0] == pytest.approx(
        sigmoid(mean[1] + 0.5 * (sd[1] - sd[1:3].min())))


def test_the_choice_is_the_optimistic_one_and_the_reference_the_means() -> None:
    pick, _ = make_pick(0.0, None)
    means = np.array([0.60, 0.58, 0.20])
    upper = np.array([0.60, 0.66, 0.30])
    cost = np.zeros(3)
    allowed = np.ones(3, dtype=bool)
    rng = np.random.default_rng(0)
    assert Exploration(0.0).decide(means, means, cost, allowed, pick, rng).index == 0
    d = Exploration(0.0).decide(means, means, cost, allowed, pick, rng, p_choice=upper)
    assert (d.index, d.explored) == (1, False)


def test_the_setting_is_validated(tmp_path: Path) -> None:
    assert OnlineHub().optimism == 0.0
    with pytest.raises(ValueError, match="optimism"):
        OnlineHub(optimism=5.0)
    for bad in ("-0.5", "4"):
        with pytest.raises(ConfigError, match="optimism"):
            engine_of(tmp_path, f"learning: {{online: true, optimism: {bad}}}\n")


def _slot(engine: Engine) -> Slot:
    hub = engine.online
    assert isinstance(hub, OnlineHub)
    return next(iter(hub.slots.values()))


@pytest.mark.asyncio
async def test_through_the_engine(tmp_path: Path) -> None:
    """The most likely model (`willingness_to_pay: 0`). Day one: the same choices as without
    optimism (and under a quality target too). Then the means' choice at a prompt is made
    well known (its covariance shrunk as feedback does) and set just ahead of the runner-up: the
    optimistic learner routes the runner-up, unmarked as exploration, and says so in its reason;
    without optimism the means' choice stays."""
    likeliest = LEARNED_CONFIG.replace("quality_target: 0.7", "willingness_to_pay: 0")
    plain = Engine(load_yaml(tmp_path, likeliest + "learning: {online: true}\n"))
    hopeful = Engine(load_yaml(tmp_path, likeliest + "learning: {online: true, optimism: 0.5}\n"))
    targeted = engine_of(tmp_path, "learning: {online: true, optimism: 0.5}\n")
    targeted_plain = engine_of(tmp_path, "learning: {online: true}\n")
    for prompt in PROMPTS:
        assert (await route(plain, prompt))[0] == (await route(hopeful, prompt))[0]
        assert (await route(targeted_plain, prompt))[0] == (await route(targeted, prompt))[0]
    outcomes = {}
    for name, engine in (("plain", plain), ("hopeful", hopeful)):
        slot = _slot(engine)
        router = engine.router("learned")[1]
        z = np.asarray(router.model.latent(PROOF_PROMPT), dtype=np.float64)
        names = list(slot.rows)
        p = slot.p_good(z, names)
        first, second = (int(i) for i in np.argsort(-p)[:2])
        prof, x = slot.profiles, np.append(z, 1.0)
        i, j = slot.rows[names[first]], slot.rows[names[second]]
        prof.covs[i] *= 0.05                                            # well known
        # the known model 0.05 logit ahead of the runner-up at this prompt
        prof.means[i] += (prof.means[j] @ x + 0.05 - prof.means[i] @ x) * x / (x @ x)
        decision = await engine.decide(RouteRequest.from_prompt(
            PROOF_PROMPT, metadata={EXPLORE_KEY: "false"}))
        outcomes[name] = (decision, names[first], names[second])
    decision, first, _ = outcomes["plain"]
    assert decision.model == first and not decision.explored
    assert "optimism" not in decision.reason
    decision, _, second = outcomes["hopeful"]
    assert decision.model == second and not decision.explored
    assert "optimism 0.5 sd" in decision.reason
