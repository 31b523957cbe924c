"""Explorations in flight (issue 13, delayed feedback): with `learning.explore_pending`, a model with
that many explorations whose feedback has not reached the posterior is left out of exploring until
a feedback on it is learnt (here or in a reloaded state) or the exploration times out; marked
requests still never explore, and explored requests are still marked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers import PROOF_PROMPT
from helpers import learned_engine as engine_of
from helpers import route_learned as route
from llmroute.chat import EXPLORE_KEY
from llmroute.learn.online_explore import Pending
from llmroute.learn.online_hub import Feedback, OnlineHub

PROMPT = PROOF_PROMPT
PROMPTS = [f"{PROMPT} Variant {i}." for i in range(20)]


def test_a_model_at_its_cap_is_left_out_until_released_or_timed_out() -> None:
    pending = Pending(cap=2, timeout_s=10.0)
    names = ["a", "b", "c"]
    rows = np.arange(3)
    pending.hold("a", 0.0)
    assert list(pending.open(rows, names, 1.0)) == [0, 1, 2]
    pending.hold("a", 1.0)
    assert list(pending.open(rows, names, 2.0)) == [1, 2]      # "a" has 2 in flight
    pending.release("a")                                       # one feedback on "a" learnt
    assert list(pending.open(rows, names, 2.0)) == [0, 1, 2]
    pending.hold("a", 3.0)
    assert list(pending.open(rows, names, 9.0)) == [1, 2]
    assert list(pending.open(rows, names, 11.5)) == [0, 1, 2]  # the one held at 1.0 timed out
    assert pending.count("a", 13.5) == 0                       # all timed out


def test_without_a_cap_nothing_is_counted_or_left_out() -> None:
    pending = Pending()
    for t in range(100):
        pending.hold("a", float(t))
    assert pending.count("a", 100.0) == 0
    assert list(pending.open(np.arange(2), ["a", "b"], 100.0)) == [0, 1]
    with pytest.raises(ValueError):
        Pending(cap=-1)


@pytest.mark.asyncio
async def test_exploration_stops_at_the_cap_and_resumes_when_feedback_is_learnt(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, "learning: {online: true, explore: 0.05, seed: 7, "
                                 "explore_pending: 1, explore_pending_s: 3600}\n")
    hub = engine.online
    assert isinstance(hub, OnlineHub)
    slot = next(iter(hub.slots.values()))
    explored: Counter[str] = Counter()
    latents: dict[str, str] = {}
    for i in range(1500):
        model, was, latent = await route(engine, PROMPTS[i % len(PROMPTS)])
        if was:
            assert latent is not None
            explored[model] += 1
            latents[model] = latent
    # three candidates; each explored at most once while its exploration is in flight
    assert explored and max(explored.values()) == 1, explored
    blocked = set(explored)
    # a feedback on one of them reaches the posterior: that model may be explored again
    model = next(iter(blocked))
    hub.apply(Feedback(model, latents[model], 1.0, "user-1"))
    assert slot.pending.count(model, 0.0) == 0
    # marked requests never explore, whatever is pending
    marked = [await route(engine, PROMPTS[i % 20], metadata={EXPLORE_KEY: "false"})
              for i in range(300)]
    assert not any(e for _, e, _ in marked)


@pytest.mark.asyncio
async def test_a_reloaded_state_with_new_updates_releases_pending(tmp_path: Path) -> None:
    learning = "learning: {online: true, explore: 0.05, seed: 1, explore_pending: 2}\n"
    learner, server = engine_of(tmp_path, learning), engine_of(tmp_path, learning)
    assert learner.online is not None and server.online is not None
    model, _, latent = await route(learner)
    assert latent is not None
    slot = next(iter(server.online.slots.values()))
    slot.pending.hold(model, 0.0)
    slot.pending.hold(model, 0.0)
    assert slot.pending.count(model, 1.0) == 2
    learner.online.apply(Feedback(model, latent, 0.0, "user-1"))
    assert server.online.load(learner.online.state()) == 1     # one update on `model` in it
    assert slot.pending.count(model, 1.0) == 1
    assert server.online.load(learner.online.state()) == 1     # the same state again: no release
    assert slot.pending.count(model, 1.0) == 1
