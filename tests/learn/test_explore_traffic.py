"""Exploration at the traffic's typical prompt (issue 13, `learning.explore_at: traffic`): an
explored request's challenger is drawn and bounded at a running mean of the pool's latents, so
which model is explored does not depend on the request's own prompt (each challenger's feedback
comes from a random sample of the traffic); with the default scope ("prompt") it does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import PROOF_PROMPT
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.config import ConfigError
from llmroute.engine import Engine
from llmroute.learn.online import Exploration
from llmroute.learn.online_explore import TrafficMean
from llmroute.learn.online_hub import OnlineHub, Slot


def test_the_traffic_mean_is_the_mean_then_a_window() -> None:
    mean = TrafficMean(window=3)
    z0 = np.array([5.0, -1.0])
    assert mean.at(z0).tolist() == [5.0, -1.0]          # nothing seen: the prompt itself
    for z in ([0.0, 0.0], [3.0, 3.0], [6.0, 0.0]):
        mean.add(z)
    assert mean.n == 3
    assert mean.at(z0) == pytest.approx([3.0, 1.0])      # the plain mean of the three
    mean.add([9.0, 4.0])                                 # past the window: weight 1/3
    assert mean.at(z0) == pytest.approx([5.0, 2.0])
    mean.add([1.0, 2.0, 3.0])                            # another latent size: starts again
    assert mean.n == 1 and mean.at(z0).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="window"):
        TrafficMean(window=0)


def test_the_scope_is_validated(tmp_path: Path) -> None:
    assert Exploration(0.05).at == "prompt"
    with pytest.raises(ValueError, match="scope"):
        Exploration(0.05, at="everywhere")
    with pytest.raises(ConfigError, match="explore_at"):
        engine_of(tmp_path, "learning: {online: true, explore: 0.05, explore_at: everywhere}\n")


HARD = [f"{PROOF_PROMPT} Then generalise it to the {k}-th root of every prime, with a full "
        f"epsilon-delta argument and a worked counterexample for composites." for k in range(3, 43)]
EASY = [f"What is {k} plus {k + 1}?" for k in range(40)]


def _slot(engine: Engine) -> Slot:
    hub = engine.online
    assert isinstance(hub, OnlineHub)
    return next(iter(hub.slots.values()))


async def _stream(tmp_path: Path, at: str, prompts: list[str], strategy: str = "challenger"
                  ) -> list[tuple[str, str] | None]:
    """Route `prompts` (no feedback: the posterior stays the prior) with the traffic mean frozen at
    a fixed latent; for each request, None when it did not explore, else (the explored model, the
    means' choice for the same prompt)."""
    learning = (f"learning: {{online: true, explore: 0.05, seed: 9, explore_beat: 0, "
                f"explore_at: {at}, explore_strategy: {strategy}}}\n")
    engine = engine_of(tmp_path, learning)
    await route(engine, PROOF_PROMPT, metadata={EXPLORE_KEY: "false"})   # registers the slot
    slot = _slot(engine)
    fixed = engine.router("learned")[1].model.latent("Summarise this paragraph in two sentences.")
    slot.traffic = TrafficMean(window=10**12, n=10**12, mean=np.asarray(fixed, dtype=np.float64))
    out: list[tuple[str, str] | None] = []
    for prompt in prompts * 25:
        model, explored, _ = await route(engine, prompt)
        if not explored:
            out.append(None)
            continue
        means_choice, again, _ = await route(engine, prompt, metadata={EXPLORE_KEY: "false"})
        assert not again
        out.append((model, means_choice))
    return out


@pytest.mark.asyncio
async def test_the_explored_model_does_not_depend_on_the_prompt(tmp_path: Path) -> None:
    """The same seed over two streams of different prompts (hard proofs, easy sums): the coins
    fall on the same requests. Drawing among all candidates ("thompson"), at the traffic scope
    every explored request goes to the same model in both streams; at the prompt scope the draws
    follow the prompts and differ. Drawing among the challengers (the default), the two streams'
    explored models differ only where one of them is the other stream's means' choice (a
    challenger is never the incumbent)."""
    streams = {(at, strategy): [await _stream(tmp_path, at, prompts, strategy)
                                for prompts in (HARD, EASY)]
               for at in ("traffic", "prompt") for strategy in ("thompson", "challenger")}

    def explored_pairs(at: str, strategy: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
        hard, easy = streams[at, strategy]
        pairs = [(h, e) for h, e in zip(hard, easy, strict=True) if h is not None or e is not None]
        assert len(pairs) > 30
        assert all(h is not None and e is not None for h, e in pairs)   # the same coins
        return [(h, e) for h, e in pairs if h is not None and e is not None]

    traffic = explored_pairs("traffic", "thompson")
    assert all(h[0] == e[0] for h, e in traffic)
    assert len({h[0] for h, _ in traffic}) > 1                           # the draws do vary
    assert any(h[0] != e[0] for h, e in explored_pairs("prompt", "thompson"))
    for h, e in explored_pairs("traffic", "challenger"):
        assert h[0] == e[0] or e[0] == h[1] or h[0] == e[1]


@pytest.mark.asyncio
async def test_the_mean_follows_the_pools_traffic_only_when_it_is_used(tmp_path: Path) -> None:
    for at, seen in (("traffic", 61), ("prompt", 0)):
        engine = engine_of(tmp_path, f"learning: {{online: true, explore: 0.05, explore_at: {at}}}\n")
        for i in range(60):
            await route(engine, EASY[i % len(EASY)], metadata={EXPLORE_KEY: "false"} if i % 2 else {})
        await route(engine, HARD[0])
        assert _slot(engine).traffic.n == seen            # marked requests count too
    stream = [*(EASY * 2)[:60], HARD[0]]
    latents = [engine.router("learned")[1].model.latent(p) for p in stream]
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, explore_at: traffic}\n")
    for p in stream:
        await route(engine, p)
    assert _slot(engine).traffic.at(latents[0]) == pytest.approx(np.mean(latents, axis=0), abs=1e-5)
