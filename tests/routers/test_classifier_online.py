"""The classifier learning online (issue 13), through the engine: the posterior means route,
feedback moves them, exploration stays within its share, never on marked requests and only among
the allowed candidates, and with learning off nothing changes (no hub, no latent, no mark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import PROOF_PROMPT
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.engine import Engine
from llmroute.learn.online_hub import Feedback, OnlineHub, decode_latent, encode_latent, quality_of
from llmroute.routers.classifier import ClassifierRouter

PROMPT = PROOF_PROMPT


def classifier(engine: Engine) -> ClassifierRouter:
    router = engine.router("learned")[1]
    assert isinstance(router, ClassifierRouter)
    return router


def test_latents_travel_as_short_text_and_feedback_becomes_a_quality() -> None:
    z = np.array([0.5, -1.25, 3.0, 0.0])
    text = encode_latent(z)
    assert len(text) <= 12 and np.array_equal(decode_latent(text), z)
    with pytest.raises(ValueError):
        decode_latent("not base64!")
    assert [quality_of(r, None) for r in (1, 3, 5)] == [0.0, 0.5, 1.0]
    assert quality_of(5, False) == 0.0 and quality_of(None, True) == 1.0
    assert quality_of(None, None) is None


@pytest.mark.asyncio
async def test_learning_off_costs_nothing(tmp_path: Path) -> None:
    engine = engine_of(tmp_path)
    assert engine.online is None and classifier(engine).online is None
    assert (await route(engine))[1:] == (False, None)


@pytest.mark.asyncio
async def test_feedback_moves_the_posterior_and_the_route(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {online: true}\n")
    hub = engine.online
    assert isinstance(hub, OnlineHub) and len(hub.slots) == 1
    slot = next(iter(hub.slots.values()))
    before, explored, latent = await route(engine)
    assert not explored and latent is not None
    z = decode_latent(latent)
    p0 = float(slot.p_good(z, [before])[0])
    for i in range(30):  # thirty users each say the chosen model failed on this prompt
        assert hub.apply(Feedback(before, latent, 0.0, f"user-{i}")) > 0
    assert float(slot.p_good(z, [before])[0]) < p0 / 2
    after, _, _ = await route(engine)
    assert after != before
    # a published state loads into a fresh engine's hub: it routes the same way
    fresh = engine_of(tmp_path, "learning: {online: true}\n")
    assert fresh.online is not None and fresh.online.load(hub.state()) == 1
    assert (await route(fresh))[0] == after


async def _rated(tmp_path: Path, learning: str) -> tuple[OnlineHub, str, str]:
    """An engine learning as `learning` says: its hub, and the model and latent of one request."""
    engine = engine_of(tmp_path, f"learning: {learning}\n")
    hub = engine.online
    assert hub is not None
    model, _, latent = await route(engine)
    assert latent is not None
    return hub, model, latent


@pytest.mark.asyncio
async def test_one_rater_is_capped(tmp_path: Path) -> None:
    hub, model, latent = await _rated(tmp_path, "{online: true, rater_cap: 2, rater_floor: 2}")
    carried = [hub.apply(Feedback(model, latent, 0.0, "noisy")) for _ in range(5)]
    assert carried == [1.0, 1.0, 0.0, 0.0, 0.0]


@pytest.mark.asyncio
async def test_a_rater_is_a_minority_voice_unless_trusted(tmp_path: Path) -> None:
    """Defaults: one rater alone carries a quarter of a feedback on a model; as others rate it, a
    tenth of their weight more; a trusted rater (the app's one key) and anonymous feedback count
    in full."""
    hub, model, latent = await _rated(tmp_path, "{online: true, trusted_raters: [app-key]}")
    carried = [hub.apply(Feedback(model, latent, 0.0, "noisy")) for _ in range(3)]
    assert carried == [0.25, 0.0, 0.0]
    assert [hub.apply(Feedback(model, latent, 1.0, "app-key")) for _ in range(10)] == [1.0] * 10
    assert hub.apply(Feedback(model, latent, 1.0, None)) == 1.0
    # the others gave 11: the noisy rater may now reach 0.25 + 1.1 in all
    assert hub.apply(Feedback(model, latent, 0.0, "noisy")) == pytest.approx(1.0)
    assert hub.apply(Feedback(model, latent, 0.0, "noisy")) == pytest.approx(0.1)
    assert hub.apply(Feedback(model, latent, 0.0, "noisy")) == 0.0
    slot = next(iter(hub.slots.values()))
    assert slot.profiles.rater_weight == {"noisy": {model: pytest.approx(1.35)}}
    assert float(slot.profiles.model_weight.sum()) == pytest.approx(12.35)
    assert "app-key" not in slot.profiles.rater_weight


@pytest.mark.asyncio
async def test_exploration_stays_within_its_share_never_on_marked_requests(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 7}\n")
    prompts = [f"{PROMPT} Variant {i}: explain it to a {['child', 'student', 'expert'][i % 3]}."
               for i in range(40)]
    n = 2000
    explored = 0
    for i in range(n):
        explored += (await route(engine, prompts[i % len(prompts)]))[1]
    share = explored / n
    # binomial(2000, 0.05): sd ≈ 0.0049; 4 sd either side
    assert 0.05 - 0.02 < share < 0.05 + 0.02, share
    marked = [await route(engine, prompts[i % 40], metadata={EXPLORE_KEY: "false"})
              for i in range(500)]
    assert not any(e for _, e, _ in marked)


@pytest.mark.asyncio
async def test_exploration_chooses_only_among_allowed_candidates(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 3}\n")
    allowed = ("openai/gpt-4o-mini", "openai/gpt-4.1-mini")
    seen: set[str] = set()
    explored = 0
    for i in range(1500):
        model, was_explored, _ = await route(engine, f"{PROMPT} ({i})", allowed_models=allowed)
        explored += was_explored
        if was_explored:
            seen.add(model)
    assert explored > 30 and seen <= set(allowed)


@pytest.mark.asyncio
async def test_exploration_without_online_learning_keeps_no_latent(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {explore: 0.05, seed: 1}\n")
    results = [await route(engine, f"{PROMPT} {i}") for i in range(400)]
    assert any(e for _, e, _ in results)
    assert all(latent is None for _, _, latent in results)


@pytest.mark.asyncio
async def test_explored_requests_go_to_a_challenger_of_the_means_choice(tmp_path: Path) -> None:
    """The default strategy spends every explored request on a candidate other than the one the
    posterior means choose for that prompt; `thompson` often re-confirms the means' choice."""
    async def explored_vs_mean(strategy: str) -> tuple[int, int]:
        engine = engine_of(tmp_path, f"learning: {{online: true, explore: 0.05, seed: 4, "
                                     f"explore_strategy: {strategy}}}\n")
        same = explored = 0
        for i in range(1500):
            prompt = f"{PROMPT} ({i})"
            model, was_explored, _ = await route(engine, prompt)
            if was_explored:
                explored += 1
                mean_choice, _, _ = await route(engine, prompt, metadata={EXPLORE_KEY: "false"})
                same += model == mean_choice
        return explored, same

    explored, same = await explored_vs_mean("challenger")
    assert explored > 30 and same == 0
    explored, same = await explored_vs_mean("thompson")
    assert explored > 30 and same > explored // 4
