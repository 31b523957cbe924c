"""Tests of the cascade router: the first confident stage decides, the fallback tier when none is,
and a stage that consults an LLM before the cascade can go on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydantic
import pytest

from helpers import build_context, load_yaml, no_candidates
from llmroute.engine import Engine
from llmroute.routers.base import Consult, LLMCall, Verdict, build_router
from llmroute.routers.cascade import CascadeParams, CascadeRouter, Stage
from llmroute.routers.llm import LLMParams, LLMRouter
from llmroute.routers.rules import RulesRouter
from llmroute.types import RouteRequest

REQUEST = RouteRequest.from_prompt("hello")


class Stub:
    """A router that always gives the same verdict and counts how often it was asked."""

    def __init__(self, name: str, tier: str, confidence: float, models: tuple[str, ...] = ()):
        self.name = name
        self.verdict = Verdict(tier, confidence, f"{name} thinks {tier}", name,
                               scores={tier: confidence}, models=models)
        self.asked = 0

    def decide(self, request: RouteRequest, candidates: object) -> Verdict:
        self.asked += 1
        return self.verdict


def cascade(*stages: tuple[object, float], fallback: str = "complex") -> CascadeRouter:
    return CascadeRouter([Stage(r, t) for r, t in stages], fallback)  # type: ignore[arg-type]


def final(outcome: Verdict | Consult) -> Verdict:
    assert isinstance(outcome, Verdict)
    return outcome


def llm_stage() -> LLMRouter:
    return LLMRouter(LLMParams(model="openai/gpt-4o-mini"))


# --- stages without consultations ------------------------------------------------------------------

def test_the_first_confident_stage_decides_and_later_stages_are_not_asked() -> None:
    first, second = Stub("a", "simple", 0.9), Stub("b", "complex", 0.99)
    verdict = final(cascade((first, 0.7), (second, 0.5)).decide(REQUEST, no_candidates()))
    assert verdict.tier == "simple"
    assert verdict.confidence == 0.9
    assert verdict.router == "a"
    assert verdict.reason == "stage 1 (a 0.90 ≥ 0.70): a thinks simple"
    assert (first.asked, second.asked) == (1, 0)


def test_an_unconfident_stage_passes_to_the_next() -> None:
    first, second = Stub("a", "simple", 0.6), Stub("b", "medium", 0.55)
    verdict = final(cascade((first, 0.7), (second, 0.5)).decide(REQUEST, no_candidates()))
    assert verdict.tier == "medium"
    assert verdict.router == "b"
    assert verdict.reason.startswith("stage 2 (b 0.55 ≥ 0.50): b thinks medium")
    assert "after a 0.60 < 0.70 for 'simple'" in verdict.reason
    assert (first.asked, second.asked) == (1, 1)


def test_reaching_the_threshold_exactly_is_confident() -> None:
    verdict = final(cascade((Stub("a", "simple", 0.7), 0.7)).decide(REQUEST, no_candidates()))
    assert verdict.tier == "simple"


def test_the_deciding_verdict_keeps_its_models_and_scores() -> None:
    stub = Stub("a", "medium", 0.9, models=("openai/gpt-4.1-mini",))
    verdict = final(cascade((stub, 0.5)).decide(REQUEST, no_candidates()))
    assert verdict.models == ("openai/gpt-4.1-mini",)
    assert verdict.scores == {"medium": 0.9}


def test_the_fallback_tier_when_no_stage_is_confident() -> None:
    router = cascade((Stub("a", "simple", 0.2), 0.7), (Stub("b", "medium", 0.4), 0.5),
                     fallback="complex")
    router.name = "hybrid"
    verdict = final(router.decide(REQUEST, no_candidates()))
    assert verdict.tier == "complex"
    assert verdict.confidence == 0.0
    assert verdict.router == "hybrid"
    assert verdict.reason == ("no stage confident (a 0.20 < 0.70 for 'simple'; "
                              "b 0.40 < 0.50 for 'medium'); fallback tier 'complex'")


def test_a_cascade_is_stateless_between_requests() -> None:
    stub = Stub("a", "simple", 0.2)
    router = cascade((stub, 0.7))
    first = final(router.decide(REQUEST, no_candidates()))
    second = final(router.decide(REQUEST, no_candidates()))
    assert first.reason == second.reason  # the trace does not accumulate


# --- an llm stage: the cascade hands the consultation up and goes on with its answer ---------------

def test_a_confident_llm_answer_decides() -> None:
    after = Stub("after", "simple", 1.0)
    router = cascade((Stub("rules", "medium", 0.3), 0.7), (llm_stage(), 0.7), (after, 0.5))
    outcome = router.decide(REQUEST, no_candidates())
    assert isinstance(outcome, Consult)
    assert isinstance(outcome.call, LLMCall)
    assert outcome.call.model == "openai/gpt-4o-mini"
    verdict = final(outcome.resume("COMPLEX", None))
    assert verdict.tier == "complex"
    assert verdict.router == "llm"
    assert verdict.reason.startswith("stage 2 (llm 0.80 ≥ 0.70): classifier said COMPLEX")
    assert "after rules 0.30 < 0.70" in verdict.reason
    assert after.asked == 0


@pytest.mark.parametrize(("reply", "error"), [("no idea", None), (None, "timed out after 2s")])
def test_an_llm_stage_that_fails_falls_through_to_the_next_stage(
    reply: str | None, error: str | None
) -> None:
    after = Stub("after", "simple", 0.95)
    router = cascade((llm_stage(), 0.7), (after, 0.5))
    outcome = router.decide(REQUEST, no_candidates())
    assert isinstance(outcome, Consult)
    verdict = final(outcome.resume(reply, error))
    assert verdict.tier == "simple"
    assert verdict.router == "after"
    assert "after llm 0.30 < 0.70 for 'medium'" in verdict.reason
    assert after.asked == 1


def test_an_llm_stage_that_fails_last_gives_the_fallback_tier() -> None:
    router = cascade((Stub("rules", "medium", 0.5), 0.7), (llm_stage(), 0.7), fallback="complex")
    outcome = router.decide(REQUEST, no_candidates())
    assert isinstance(outcome, Consult)
    verdict = final(outcome.resume(None, "boom"))
    assert verdict.tier == "complex"
    assert verdict.confidence == 0.0
    assert "rules 0.50 < 0.70 for 'medium'; llm 0.30 < 0.70 for 'medium'" in verdict.reason


def test_a_confident_stage_before_the_llm_avoids_the_consultation() -> None:
    router = cascade((Stub("rules", "simple", 0.9), 0.7), (llm_stage(), 0.7))
    assert isinstance(router.decide(REQUEST, no_candidates()), Verdict)


def test_two_llm_stages_consult_in_turn() -> None:
    strict = LLMRouter(LLMParams(model="openai/gpt-4o-mini", confidence=0.6))
    router = cascade((strict, 0.7), (llm_stage(), 0.7))
    first = router.decide(REQUEST, no_candidates())
    assert isinstance(first, Consult)
    second = first.resume("SIMPLE", None)  # confidence 0.6 < 0.7: on to the next llm stage
    assert isinstance(second, Consult)
    verdict = final(second.resume("MEDIUM", None))
    assert verdict.tier == "medium"
    assert verdict.reason.startswith("stage 2 ")


# --- built from config and driven by the engine ----------------------------------------------------

HYBRID = """
policies:
  default:
    router: cascade
    stages:
      - {router: rules, threshold: 0.9}
      - {router: llm, model: openai/gpt-4o-mini, threshold: 0.7, timeout_s: 0.05}
    fallback_tier: complex
"""


@pytest.mark.parametrize(
    ("reply", "tier", "router_name"),
    [("simple", "simple", "llm"), ("dunno", "complex", "cascade"),
     (RuntimeError("down"), "complex", "cascade")],
)
def test_engine_runs_the_consultation_of_a_cascade_stage(
    tmp_path: Path, reply: str | Exception, tier: str, router_name: str
) -> None:
    calls: list[LLMCall] = []

    async def caller(call: LLMCall) -> str:
        calls.append(call)
        if isinstance(reply, Exception):
            raise reply
        return reply

    engine = Engine(load_yaml(tmp_path, HYBRID), caller=caller)
    # "hi" matches the short rule at 0.75 < 0.9, so the llm stage is consulted
    decision = asyncio.run(engine.decide("hi"))
    assert decision.tier == tier
    assert decision.router == router_name
    assert len(calls) == 1


def test_build_from_spec_uses_the_default_threshold() -> None:
    ctx = build_context()
    router = build_router({"router": "cascade", "stages": [{"router": "rules"}],
                           "fallback_tier": "simple"}, ctx, "hybrid")
    assert isinstance(router, CascadeRouter)
    assert router.name == "cascade"  # a router is named by its type; "hybrid" is where it sits
    assert router.fallback_tier == "simple"
    (stage,) = router.stages
    assert stage.threshold == 0.7
    assert isinstance(stage.router, RulesRouter)


@pytest.mark.parametrize(
    "stages",
    [[], [{"threshold": 0.5}], [{"router": "rules", "threshold": 1.5}],
     [{"router": "rules", "threshold": "high"}]],
)
def test_invalid_stages(stages: list[dict[str, object]]) -> None:
    with pytest.raises(pydantic.ValidationError):
        CascadeParams(stages=stages)  # type: ignore[arg-type]
