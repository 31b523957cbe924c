"""Conservative exploration (issue 13, `learning.explore_regret`): exploring may give up at most a
set rate of expected quality per routed request, cumulatively, by the posterior's own estimate.
The budget only removes explorations (never adds one or changes a non-explored decision), the
invariant spent ≤ rate · routed holds after every decision, unused allowance carries over, and
through the engine the explored requests' expected loss, recomputed from their latents, stays
within the rate times the requests routed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import PROOF_PROMPT
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.config import ConfigError
from llmroute.learn.online import Exploration
from llmroute.learn.online_explore import RegretBudget
from llmroute.learn.online_hub import OnlineHub, decode_latent


def _argmax(p: np.ndarray, _cost: np.ndarray) -> int:
    return int(np.argmax(p))


def test_a_challenger_is_affordable_only_within_the_allowance() -> None:
    budget = RegretBudget(0.01)
    rows = np.arange(4, dtype=np.int64)
    p = np.array([0.9, 0.88, 0.7, 0.95])
    assert budget.affordable(rows, 0, p).tolist() == [0, 3]    # nothing routed: no allowance
    for _ in range(3):
        budget.count()
    assert budget.allowance == pytest.approx(0.03)
    assert budget.affordable(rows, 0, p).tolist() == [0, 1, 3]  # 0.02 fits, 0.2 does not
    budget.spend(0.02)
    assert budget.allowance == pytest.approx(0.01)
    assert budget.affordable(rows, 0, p).tolist() == [0, 3]
    budget.spend(-0.5)                                           # a gain costs nothing
    assert budget.spent == pytest.approx(0.02)
    for _ in range(20):                                          # unused allowance carries over
        budget.count()
    assert budget.affordable(rows, 0, p).tolist() == [0, 1, 2, 3]


def test_an_exploration_is_charged_the_fall_of_the_means_between_incumbent_and_explored() -> None:
    budget = RegretBudget(0.01)
    p = np.array([0.9, 0.88, 0.7, 0.95])
    budget.charge(0, 2, p)
    assert budget.spent == pytest.approx(0.2)
    budget.charge(0, 3, p)                                       # better by the means: free
    assert budget.spent == pytest.approx(0.2)


def test_without_a_rate_every_challenger_is_affordable() -> None:
    budget = RegretBudget()
    rows = np.arange(3, dtype=np.int64)
    assert budget.allowance == float("inf")
    assert budget.affordable(rows, 1, np.array([0.0, 1.0, 0.0])).tolist() == [0, 1, 2]


def test_an_invalid_rate_is_refused() -> None:
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match="regret rate"):
            RegretBudget(rate)
    with pytest.raises(ValueError, match="regret rate"):
        OnlineHub(explore=0.05, regret=2.0)


@settings(max_examples=100, deadline=None)
@given(rate=st.sampled_from([0.0005, 0.005, 0.05]), seed=st.integers(0, 2**16),
       share=st.sampled_from([0.05, 0.5, 1.0]))
def test_the_budget_only_narrows_explorations_and_holds_its_invariant(rate: float, seed: int,
                                                                     share: float) -> None:
    """The same coins and draws with and without a budget: the budgeted decision explores only
    where the unbudgeted one does, and then goes to the best draw among the challengers the
    allowance affords; spent ≤ rate · routed after every decision, and `spent` is exactly the sum
    of the explored requests' expected losses."""
    data = np.random.default_rng(seed)
    explore = Exploration(share)
    free_rng, kept_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    budget = RegretBudget(rate)
    loss = 0.0
    allowed = np.ones(6, dtype=bool)
    for _ in range(300):
        pm, pd = data.random(6), data.random(6)
        allowance = rate * (budget.routed + 1) - budget.spent
        free = explore.decide(pm, pd, np.zeros(6), allowed, _argmax, free_rng)
        kept = explore.decide(pm, pd, np.zeros(6), allowed, _argmax, kept_rng, budget=budget)
        incumbent = int(np.argmax(pm))
        if kept.explored:
            assert free.explored
            fits = [j for j in range(6) if j != incumbent and pm[incumbent] - pm[j] <= allowance]
            assert kept.index == max(fits, key=lambda j: pd[j])
            loss += max(0.0, pm[incumbent] - pm[kept.index])
        else:
            assert kept.index == incumbent
        assert budget.spent <= rate * budget.routed + 1e-12
    assert budget.routed == 300
    assert budget.spent == pytest.approx(loss)


def test_a_tight_budget_explores_less_and_a_loose_one_as_much() -> None:
    data = np.random.default_rng(3)
    rows = [(data.random(5), data.random(5)) for _ in range(2000)]

    def explored(budget: RegretBudget | None) -> int:
        rng = np.random.default_rng(11)
        return sum(Exploration(0.05).decide(pm, pd, np.zeros(5), np.ones(5, dtype=bool), _argmax,
                                            rng, budget=budget).explored for pm, pd in rows)

    free = explored(None)
    assert free > 50
    assert explored(RegretBudget(1.0)) == free
    tight = explored(RegretBudget(0.001))
    assert 0 < tight < free / 2


@pytest.mark.asyncio
async def test_through_the_engine_exploration_stays_within_its_rate(tmp_path: Path) -> None:
    """Routed by the engine, with no feedback (the posterior means stay the prior's): each explored
    request's expected loss, recomputed from its latent against the means' choice, summed, is at
    most the rate times every request routed (without a budget, over it); marked
    requests never explore."""
    rate = 0.0001                    # unbounded, exploring here gives up ~0.0003 per request
    prompts = [f"{PROOF_PROMPT} Variant {i}: explain it to a {['child', 'student', 'expert'][i % 3]}."
               for i in range(40)]

    async def explored(learning: str) -> tuple[int, float, int, OnlineHub]:
        engine = engine_of(tmp_path, learning)
        hub = engine.online
        assert isinstance(hub, OnlineHub)
        n, loss, routed = 0, 0.0, 0
        for i in range(1500):
            prompt = prompts[i % len(prompts)]
            model, was, latent = await route(engine, prompt)
            routed += 1
            if not was:
                continue
            assert latent is not None
            mean_choice, again, _ = await route(engine, prompt, metadata={EXPLORE_KEY: "false"})
            routed += 1
            assert not again
            slot = next(iter(hub.slots.values()))
            names = list(slot.profiles.models)
            p = slot.p_good(decode_latent(latent), names)
            loss += max(0.0, float(p[names.index(mean_choice)] - p[names.index(model)]))
            n += 1
        slot = next(iter(hub.slots.values()))
        assert slot.budget.routed == routed
        return n, loss, routed, hub

    base = "learning: {online: true, explore: 0.05, seed: 4, explore_beat: 0"
    n_free, loss_free, routed_free, _ = await explored(base + "}\n")
    n_kept, loss_kept, routed_kept, hub = await explored(base + f", explore_regret: {rate}}}\n")
    assert hub.regret == rate
    assert n_free > 30 and loss_free > rate * routed_free     # unbounded, it would overspend
    assert n_kept > 0 and loss_kept < loss_free / 2             # near-ties instead
    assert loss_kept <= rate * routed_kept + 0.005              # float16 latents: a little slack
    engine = engine_of(tmp_path, base + f", explore_regret: {rate}}}\n")
    marked = [await route(engine, prompts[i % 40], metadata={EXPLORE_KEY: "false"})
              for i in range(300)]
    assert not any(e for _, e, _ in marked)


def test_the_setting_is_validated(tmp_path: Path) -> None:
    for bad in ("-0.1", "1.5", "'lots'"):
        with pytest.raises(ConfigError, match="explore_regret"):
            engine_of(tmp_path, f"learning: {{online: true, explore: 0.05, explore_regret: {bad}}}\n")
