"""The hybrid cascade: ordered stages, each a router with a confidence threshold; the first confident
stage decides, and when none is, a configured capable tier does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from ..constraints import Candidates
from ..errors import ConfigProblem
from ..types import RouteRequest
from .base import (
    BuildContext,
    Consult,
    Outcome,
    Router,
    RouterParams,
    RouterType,
    Verdict,
    build_router,
    tier_problem,
    validate_spec,
)
from .figures import two_places


class CascadeParams(RouterParams):
    """`stages`: router specs, each with an optional `threshold` (default 0.7);
    `fallback_tier`: the tier used when no stage is confident."""

    stages: tuple[dict[str, Any], ...] = Field(min_length=1)
    fallback_tier: str = "medium"

    @field_validator("stages")
    @classmethod
    def _specs(cls, stages: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for i, stage in enumerate(stages):
            if "router" not in stage:
                raise ValueError(f"stage {i} needs a `router` key")
            threshold = stage.get("threshold", 0.7)
            if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
                raise ValueError(f"stage {i}: threshold must be a number in [0, 1]")
        return stages


@dataclass(frozen=True)
class Stage:
    """One stage of a cascade: a router and the confidence it must reach to decide."""

    router: Router
    threshold: float


class CascadeRouter:
    """Ask each stage in turn; the first whose confidence reaches its threshold decides."""

    def __init__(self, stages: Sequence[Stage], fallback_tier: str, name: str = "cascade"):
        self.name = name
        self.stages = tuple(stages)
        self.fallback_tier = fallback_tier
        #: Each stage's threshold as the reasons show it (`:.2f`), formatted once.
        self._shown = tuple(f"{stage.threshold:.2f}" for stage in self.stages)
        self._thresholds = tuple(stage.threshold for stage in self.stages)

    def decide(self, request: RouteRequest, candidates: Candidates) -> Outcome:
        """Walk the stages from the first."""
        return self._walk(request, candidates, 0, ())

    def _walk(self, request: RouteRequest, candidates: Candidates, start: int,
              trace: tuple[str, ...]) -> Outcome:
        for index in range(start, len(self.stages)):
            outcome = self.stages[index].router.decide(request, candidates)
            if isinstance(outcome, Consult):
                return self._wrap(outcome, request, candidates, index, trace)
            decided, trace = self._judge(outcome, index, trace)
            if decided is not None:
                return decided
        why = "; ".join(trace)
        return Verdict(self.fallback_tier, 0.0,
                       f"no stage confident ({why}); fallback tier '{self.fallback_tier}'",
                       self.name)

    def _wrap(self, consult: Consult, request: RouteRequest, candidates: Candidates, index: int,
              trace: tuple[str, ...]) -> Consult:
        """Pass a stage's consultation up; continue the cascade with its answer."""

        def resume(reply: str | None, error: str | None) -> Outcome:
            outcome = consult.resume(reply, error)
            if isinstance(outcome, Consult):
                return self._wrap(outcome, request, candidates, index, trace)
            decided, new_trace = self._judge(outcome, index, trace)
            return decided or self._walk(request, candidates, index + 1, new_trace)

        return Consult(consult.call, resume)

    def _judge(self, verdict: Verdict, index: int, trace: tuple[str, ...]
               ) -> tuple[Verdict | None, tuple[str, ...]]:
        note = f"{verdict.router} {two_places(verdict.confidence)}"
        shown = self._shown[index]
        if verdict.confidence >= self._thresholds[index]:
            passed = f"; after {'; '.join(trace)}" if trace else ""
            reason = f"stage {index + 1} ({note} ≥ {shown}): {verdict.reason}{passed}"
            return verdict.with_reason(reason), trace
        return None, (*trace, f"{note} < {shown} for '{verdict.tier}'")


def build(params: CascadeParams, ctx: BuildContext) -> CascadeRouter:
    """Factory: build every stage through the registry."""
    stages = []
    for spec in params.stages:
        inner = {k: v for k, v in spec.items() if k != "threshold"}
        router = build_router(inner, ctx, str(inner["router"]))
        stages.append(Stage(router, float(spec.get("threshold", 0.7))))
    return CascadeRouter(stages, params.fallback_tier)


def check(params: CascadeParams, ctx: BuildContext) -> list[ConfigProblem]:
    """Check the fallback tier and every stage's spec."""
    problems = tier_problem(params.fallback_tier, ctx, f"{ctx.name}.fallback_tier")
    for i, spec in enumerate(params.stages):
        inner = {k: v for k, v in spec.items() if k != "threshold"}
        problems += validate_spec(inner, ctx, f"{ctx.name}.stages[{i}]")[1]
    return problems


ROUTER_TYPE = RouterType("cascade", CascadeParams, build, check)
