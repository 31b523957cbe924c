"""Tests of the baseline routers: `fixed` (one tier or one model) and `random` (seeded, weighted)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pydantic
import pytest

from helpers import build_context, load_yaml, no_candidates
from llmroute.engine import Engine
from llmroute.routers.base import Verdict
from llmroute.routers.baselines import (
    FixedParams,
    FixedRouter,
    RandomParams,
    RandomRouter,
    build_fixed,
    build_random,
)
from llmroute.types import RouteRequest

REQUEST = RouteRequest.from_prompt("anything at all")


def draws(router: RandomRouter, n: int) -> list[Verdict]:
    return [router.decide(REQUEST, no_candidates()) for _ in range(n)]


# --- fixed -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", ["hi", "Refactor this enormous Java codebase " * 20])
def test_fixed_tier_ignores_the_prompt(prompt: str) -> None:
    router = build_fixed(FixedParams(tier="complex"), build_context())
    verdict = router.decide(RouteRequest.from_prompt(prompt), no_candidates())
    assert verdict.tier == "complex"
    assert verdict.confidence == 1.0
    assert verdict.models == ()
    assert verdict.reason == "fixed policy: always tier 'complex'"
    assert verdict.router == "fixed"


def test_fixed_model_takes_its_catalog_tier() -> None:
    router = build_fixed(FixedParams(model="openai/gpt-4.1-mini"), build_context())
    verdict = router.decide(REQUEST, no_candidates())
    assert verdict.tier == "medium"
    assert verdict.models == ("openai/gpt-4.1-mini",)
    assert verdict.reason == "fixed policy: always openai/gpt-4.1-mini"


def test_fixed_model_without_a_tier_uses_the_top_tier() -> None:
    # gpt-4o is priced by the snapshot but sits in no tier
    router = build_fixed(FixedParams(model="openai/gpt-4o"), build_context())
    assert router.decide(REQUEST, no_candidates()).tier == "complex"


@pytest.mark.parametrize("params", [{}, {"tier": "simple", "model": "openai/gpt-4o-mini"}])
def test_fixed_needs_exactly_one_target(params: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        FixedParams(**params)


def test_fixed_model_policy_routes_to_that_model(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        policies:
          default: {router: fixed, model: openai/gpt-4.1}
    """)
    decision = asyncio.run(Engine(settings).decide("hi"))
    assert decision.model == "openai/gpt-4.1"
    assert decision.tier == "complex"
    assert decision.chain == ("openai/gpt-4.1", "anthropic/claude-sonnet-4-5")


# --- random ----------------------------------------------------------------------------------------

def test_uniform_over_the_ladder_by_default() -> None:
    router = build_random(RandomParams(seed=1), build_context())
    assert router.tiers == ("simple", "medium", "complex")
    counts = Counter(v.tier for v in draws(router, 3000))
    assert set(counts) == {"simple", "medium", "complex"}
    for tier in counts:
        assert abs(counts[tier] / 3000 - 1 / 3) < 0.04, counts
    assert {round(v.confidence, 6) for v in draws(router, 10)} == {round(1 / 3, 6)}


def test_same_seed_same_sequence_and_different_seed_different_sequence() -> None:
    ctx = build_context()
    first = [v.tier for v in draws(build_random(RandomParams(seed=42), ctx), 50)]
    again = [v.tier for v in draws(build_random(RandomParams(seed=42), ctx), 50)]
    other = [v.tier for v in draws(build_random(RandomParams(seed=43), ctx), 50)]
    assert first == again
    assert first != other  # equal by chance with probability 3^-50


def test_weights_shape_the_distribution() -> None:
    params = RandomParams(weights={"simple": 7, "medium": 2, "complex": 1}, seed=7)
    router = build_random(params, build_context())
    verdicts = draws(router, 5000)
    counts = Counter(v.tier for v in verdicts)
    for tier, expected in {"simple": 0.7, "medium": 0.2, "complex": 0.1}.items():
        assert abs(counts[tier] / 5000 - expected) < 0.03, counts
    # confidence is the drawn tier's probability
    by_tier = {v.tier: v.confidence for v in verdicts}
    assert by_tier == pytest.approx({"simple": 0.7, "medium": 0.2, "complex": 0.1})
    assert verdicts[0].reason == f"random draw (p={verdicts[0].confidence:.2f})"


def test_a_zero_weight_tier_is_never_drawn() -> None:
    router = RandomRouter({"simple": 1.0, "complex": 0.0}, random.Random(0))
    assert {v.tier for v in draws(router, 500)} == {"simple"}


@pytest.mark.parametrize(
    "weights", [{}, {"simple": -1.0, "medium": 2.0}, {"simple": 0.0, "medium": 0.0}])
def test_invalid_weights(weights: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        RandomParams(weights=weights)


def test_seeded_random_policy_repeats_across_engines(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        policies:
          default: {router: random, seed: 3, weights: {simple: 1, complex: 1}}
    """)

    def run() -> list[str]:
        engine = Engine(settings)
        return [asyncio.run(engine.decide("hi")).tier for _ in range(30)]

    first = run()
    assert first == run()
    assert set(first) == {"simple", "complex"}


def test_routers_do_not_share_a_random_source() -> None:
    ctx = build_context()
    a = build_random(RandomParams(seed=5), ctx)
    b = build_random(RandomParams(seed=5), ctx)
    draws(a, 10)  # advancing one must not advance the other
    fresh = build_random(RandomParams(seed=5), ctx)
    assert [v.tier for v in draws(b, 20)] == [v.tier for v in draws(fresh, 20)]


def test_fixed_router_can_be_built_directly() -> None:
    router = FixedRouter("simple", "acme/x")
    verdict: Any = router.decide(REQUEST, no_candidates())
    assert (verdict.tier, verdict.models) == ("simple", ("acme/x",))
