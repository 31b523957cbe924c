"""Exploration's bounds through the engine (issue 13): with `learning.explore_gap` an explored
request never goes to a model whose P(good) at the prompt is more than the gap below the means'
choice; with `explore_beat` never to one unlikely to beat it; with `explore_decay` the share fades
with learnt feedback. The share stays within its setting, marked requests never explore, and
explored requests are still marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import PROOF_PROMPT
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.learn.online_hub import Feedback, OnlineHub, decode_latent

PROMPTS = [f"{PROOF_PROMPT} Variant {i}: explain it to a {['child', 'student', 'expert'][i % 3]}."
           for i in range(40)]


async def _explored(engine_yaml: str, tmp_path: Path, n: int = 1500
                    ) -> tuple[list[tuple[str, str, str]], int]:
    """(explored model, the means' choice, latent) per explored request, and how many explored."""
    engine = engine_of(tmp_path, engine_yaml)
    out = []
    for i in range(n):
        prompt = PROMPTS[i % len(PROMPTS)]
        model, was, latent = await route(engine, prompt)
        if was:
            assert latent is not None
            mean_choice, again, _ = await route(engine, prompt, metadata={EXPLORE_KEY: "false"})
            assert not again
            out.append((model, mean_choice, latent))
    return out, len(out)


@pytest.mark.asyncio
async def test_a_model_far_below_the_means_choice_is_never_explored(tmp_path: Path) -> None:
    gap = 0.01                                # claude sits 0.019–0.025 below gpt-4o-mini here
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 4}\n")
    hub = engine.online
    assert isinstance(hub, OnlineHub)
    unbounded, n_free = await _explored("learning: {online: true, explore: 0.05, seed: 4, "
                                        "explore_beat: 0}\n", tmp_path)
    bounded, n_gap = await _explored(f"learning: {{online: true, explore: 0.05, seed: 4, "
                                     f"explore_gap: {gap}, explore_beat: 0}}\n", tmp_path)
    await route(engine)                       # registers the slot: P(good) from the same prior
    slot = next(iter(hub.slots.values()))
    names = list(slot.profiles.models)

    def below(rows: list[tuple[str, str, str]]) -> int:
        far = 0
        for model, choice, latent in rows:
            p = dict(zip(names, slot.p_good(decode_latent(latent), names).tolist(), strict=True))
            far += p[model] < p[choice] - gap - 0.005      # float16 latents: a little slack
        return far

    assert n_free > 30 and below(unbounded) > 0           # without the bound, far arms are tried
    assert below(bounded) == 0
    assert n_gap <= n_free                                 # the same coins; the bound only removes
    assert all(model != choice for model, choice, _ in bounded)


@pytest.mark.asyncio
async def test_bounded_and_decaying_exploration_stays_within_its_share(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 7, "
                                 "explore_beat: 0.2, explore_decay: 5}\n")
    hub = engine.online
    assert isinstance(hub, OnlineHub)
    first = [await route(engine, PROMPTS[i % 40]) for i in range(1000)]
    early = sum(e for _, e, _ in first)
    assert 0 < early < 0.05 * 1000 + 4 * (0.05 * 0.95 * 1000) ** 0.5
    model, _, latent = first[0]
    assert latent is not None
    for _ in range(95):                       # 95 learnt feedbacks: the share falls to 5 / 100 of it
        hub.apply(Feedback(model, latent, 1.0, None))
    later = [await route(engine, PROMPTS[i % 40]) for i in range(1000)]
    assert sum(e for _, e, _ in later) < max(early // 4, 4)
    marked = [await route(engine, PROMPTS[i % 40], metadata={EXPLORE_KEY: "false"})
              for i in range(300)]
    assert not any(e for _, e, _ in marked)


@pytest.mark.asyncio
async def test_exploring_is_bounded_by_default_and_the_bound_can_be_turned_off(tmp_path: Path) -> None:
    """`explore_beat` defaults to 0.1: an explored request goes only to a model with at least a 10%
    posterior chance of beating the means' choice at the prompt (with 0, to any challenger)."""
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 4}\n")
    hub = engine.online
    assert isinstance(hub, OnlineHub) and hub.exploration.beat == 0.1
    off = engine_of(tmp_path, "learning: {online: true, explore: 0.05, explore_beat: 0}\n")
    assert off.online is not None and off.online.exploration.beat == 0.0
    await route(engine)
    slot = next(iter(hub.slots.values()))
    names = list(slot.profiles.models)
    rows, n = await _explored("learning: {online: true, explore: 0.05, seed: 4}\n", tmp_path)
    assert n > 0
    for model, choice, latent in rows:
        p_beat = slot.beat_probability(decode_latent(latent), names, names.index(choice))
        assert p_beat[names.index(model)] >= 0.1 - 0.01       # float16 latents: a little slack
