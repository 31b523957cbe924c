"""Baseline routers for A/B tests and evaluation: `fixed` (always one tier or model) and `random`."""

from __future__ import annotations

import random
from collections.abc import Mapping

from pydantic import model_validator

from ..constraints import Candidates
from ..errors import ConfigProblem
from ..types import RouteRequest
from .base import BuildContext, RouterParams, RouterType, Verdict, tier_problem


class FixedParams(RouterParams):
    """Always `tier`, or always `model` (then the tier is the model's own)."""

    tier: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> FixedParams:
        if (self.tier is None) == (self.model is None):
            raise ValueError("give exactly one of `tier` or `model`")
        return self


class FixedRouter:
    """Sends everything to one tier (or one model)."""

    def __init__(self, tier: str, model: str | None = None, name: str = "fixed"):
        self.name = name
        self.tier = tier
        self.models = (model,) if model else ()

    def decide(self, request: RouteRequest, candidates: Candidates) -> Verdict:
        """Always the same answer, at full confidence."""
        target = self.models[0] if self.models else f"tier '{self.tier}'"
        return Verdict(self.tier, 1.0, f"fixed policy: always {target}", self.name,
                       models=self.models)


def build_fixed(params: FixedParams, ctx: BuildContext) -> FixedRouter:
    """Factory: a fixed model takes its catalog tier (or the top tier when it has none)."""
    if params.model is not None:
        spec = ctx.catalog.get(params.model)
        tier = spec.tier if spec is not None and spec.tier else ctx.tiers[-1]
        return FixedRouter(tier, params.model)
    assert params.tier is not None
    return FixedRouter(params.tier)


def check_fixed(params: FixedParams, ctx: BuildContext) -> list[ConfigProblem]:
    """The tier must be on the ladder; the model must be in the pool."""
    if params.tier is not None:
        return tier_problem(params.tier, ctx, f"{ctx.name}.tier")
    if params.model not in ctx.catalog:
        return [ConfigProblem(f"{ctx.name}.model", f"model {params.model!r} is not in the pool",
                              "add it to a tier's fallbacks or to `models:`")]
    return []


class RandomParams(RouterParams):
    """Pick a tier at random, uniformly or by `weights`; `seed` makes the sequence repeatable."""

    weights: dict[str, float] | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _positive(self) -> RandomParams:
        if self.weights is not None and (
            not self.weights or any(w < 0 for w in self.weights.values())
            or sum(self.weights.values()) <= 0
        ):
            raise ValueError("weights must be non-negative with a positive sum")
        return self


class RandomRouter:
    """A baseline that ignores the prompt. The random source is given, never global."""

    def __init__(self, weights: Mapping[str, float], rng: random.Random, name: str = "random"):
        self.name = name
        self.tiers = tuple(weights)
        self.weights = tuple(weights.values())
        self.rng = rng

    def decide(self, request: RouteRequest, candidates: Candidates) -> Verdict:
        """A weighted draw; confidence is the drawn tier's probability."""
        tier = self.rng.choices(self.tiers, self.weights)[0]
        share = self.weights[self.tiers.index(tier)] / sum(self.weights)
        return Verdict(tier, share, f"random draw (p={share:.2f})", self.name)


def build_random(params: RandomParams, ctx: BuildContext) -> RandomRouter:
    """Factory: uniform over the ladder unless weights are given."""
    weights = params.weights or dict.fromkeys(ctx.tiers, 1.0)
    return RandomRouter(weights, random.Random(params.seed))


def check_random(params: RandomParams, ctx: BuildContext) -> list[ConfigProblem]:
    """Every weighted tier must be on the ladder."""
    problems: list[ConfigProblem] = []
    for tier in params.weights or {}:
        problems += tier_problem(tier, ctx, f"{ctx.name}.weights.{tier}")
    return problems


FIXED = RouterType("fixed", FixedParams, build_fixed, check_fixed)
RANDOM = RouterType("random", RandomParams, build_random, check_random)
