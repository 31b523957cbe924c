"""The learned classifier router over the bundled artifact: a pure decision per prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import load_yaml
from llmroute.config import check
from llmroute.engine import Engine
from llmroute.routers import default_registry
from llmroute.routers.base import BuildContext, Verdict
from llmroute.routers.classifier import ClassifierParams, build
from llmroute.types import RouteRequest

CONFIG = """
routing: {default_policy: learned}
policies:
  learned: {router: classifier, quality_target: %s}
  thrifty: {router: classifier, willingness_to_pay: %s}
"""
CODE = "Write a Python function that parses an ISO 8601 date with timezone offsets and " \
       "returns a timezone-aware datetime; include unit tests for edge cases."


def engine_for(tmp_path: Path, target: float = 0.7, lam: float = 100.0) -> Engine:
    return Engine(load_yaml(tmp_path, CONFIG % (target, lam)))


def decide(engine: Engine, policy: str, prompt: str) -> Verdict:
    request = RouteRequest.from_prompt(prompt)
    verdict = engine.policies[policy].decide(request, engine.candidates(request))
    assert isinstance(verdict, Verdict)
    return verdict


def test_decides_among_the_pool_with_probabilities_for_every_candidate(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    verdict = decide(engine, "learned", CODE)
    pool = {spec.name for spec in engine.catalog}
    assert set(verdict.scores) == pool
    assert all(0.0 <= p <= 1.0 for p in verdict.scores.values())
    assert len(verdict.models) == 1 and verdict.models[0] in pool
    chosen = engine.catalog.get(verdict.models[0])
    assert chosen is not None and verdict.tier == chosen.tier
    assert verdict.confidence == pytest.approx(verdict.scores[verdict.models[0]], abs=1e-4)
    assert "classifier P(good)" in verdict.reason and "target 0.7)" in verdict.reason


def test_a_higher_target_never_picks_a_cheaper_model(tmp_path: Path) -> None:
    def cost(target: float) -> float:
        engine = engine_for(tmp_path, target=target)
        spec = engine.catalog.get(decide(engine, "learned", CODE).models[0])
        assert spec is not None and spec.input_per_m is not None
        return float(spec.input_per_m)

    costs = [cost(t) for t in (0.0, 0.5, 0.9, 1.0)]
    assert costs == sorted(costs)
    assert costs[0] == min(float(s.input_per_m or 0) for s in engine_for(tmp_path).catalog)


def test_willingness_to_pay_zero_buys_the_most_likely_model(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, lam=0.0)
    verdict = decide(engine, "thrifty", CODE)
    assert verdict.models[0] == max(verdict.scores, key=verdict.scores.__getitem__)
    assert "λ=0" in verdict.reason


def test_the_full_decision_goes_through_the_engine(tmp_path: Path) -> None:
    import asyncio

    engine = engine_for(tmp_path)
    decision = asyncio.run(engine.decide("What is the capital of France?", policy="learned"))
    assert decision.router == "classifier"
    assert decision.chain[0] in {s.name for s in engine.catalog}


def test_knobs_are_exclusive_and_bad_artifacts_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ClassifierParams(quality_target=0.5, willingness_to_pay=3)
    (tmp_path / "conf.yaml").write_text(
        "policies:\n  default: {router: classifier, artifact: /nonexistent/router.json}\n"
        "  aliased: {router: classifier, aliases: {openai/gpt-4o-mini: not-in-artifact}}\n")
    checked = check(tmp_path / "conf.yaml", environ={"OPENAI_API_KEY": "x",
                                                     "ANTHROPIC_API_KEY": "x"})
    paths = {p.path for p in checked.errors}
    assert "policies.default.artifact" in paths
    assert "policies.aliased.aliases.openai/gpt-4o-mini" in paths


def test_an_alias_gives_a_pool_model_a_learned_profile(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "")
    engine = Engine(settings)
    ctx = BuildContext(settings.tier_names, engine.catalog, settings.rules, default_registry(), "p")
    plain = build(ClassifierParams(), ctx)
    aliased = build(ClassifierParams(aliases={"openai/gpt-4o-mini": "gpt-4-1106-preview"}), ctx)
    request = RouteRequest.from_prompt(CODE)
    found = engine.candidates(request)
    p_plain = plain.decide(request, found).scores["openai/gpt-4o-mini"]
    p_aliased = aliased.decide(request, found).scores["openai/gpt-4o-mini"]
    assert p_plain != p_aliased  # the alias replaced the tier profile with GPT-4's


BLEND = """
routing: {default_policy: mixed}
policies:
  mixed:
    router: classifier
    quality_target: 0.0
    blend: {share: %s, willingness_to_pay: 0.0}
"""
PROMPTS = [f"Question {i}: {CODE if i % 2 else 'what is 2 + 2?'}" for i in range(400)]


def test_a_blend_applies_its_setting_to_a_stable_share_of_prompts(tmp_path: Path) -> None:
    engine = Engine(load_yaml(tmp_path, BLEND % 0.3))
    cheapest = min(engine.catalog, key=lambda s: float(s.input_per_m or 0)).name
    verdicts = [decide(engine, "mixed", p) for p in PROMPTS]
    blended = [v for v in verdicts if "(blend)" in v.reason]
    # target 0 buys the cheapest model; λ = 0 the most likely one
    assert all(v.models[0] == cheapest and "target 0)" in v.reason for v in verdicts if v not in blended)
    assert all(v.models[0] == max(v.scores, key=v.scores.__getitem__) and "λ=0 (blend)" in v.reason
               for v in blended)
    assert abs(len(blended) / len(PROMPTS) - 0.3) < 0.07
    again = [decide(Engine(load_yaml(tmp_path, BLEND % 0.3)), "mixed", p).reason for p in PROMPTS[:20]]
    assert again == [v.reason for v in verdicts[:20]]  # the same prompt, the same setting
    for share, expected in ((0.0, 0), (1.0, len(PROMPTS))):
        engine = Engine(load_yaml(tmp_path, BLEND % share))
        assert sum("(blend)" in decide(engine, "mixed", p).reason for p in PROMPTS) == expected


def test_blend_point_is_stable_and_uniform() -> None:
    from llmroute.learn.policy import blend_point

    assert blend_point("hello") == blend_point("hello") == 0x3610A686 / 2**32
    points = np.array([blend_point(f"prompt number {i}") for i in range(5000)])
    assert points.min() >= 0.0 and points.max() < 1.0
    assert np.histogram(points, bins=10, range=(0, 1))[0].min() > 400


def test_a_bad_blend_is_a_config_error() -> None:
    for bad in ({"share": 1.5, "quality_target": 0.5}, {"quality_target": 0.5},
                {"share": 0.5, "quality_target": 0.5, "willingness_to_pay": 1.0},
                {"share": 0.5, "temperature": 1}):
        with pytest.raises(ValueError):
            ClassifierParams(blend=bad)  # type: ignore[arg-type]


PAIR = """
routing: {default_policy: pair}
policies:
  pair:
    router: classifier
    strong_weak: {strong: openai/gpt-4.1, weak: openai/gpt-4o-mini, threshold: %s}
"""


def test_the_strong_weak_knob_sends_the_prompts_with_enough_gain_to_the_strong_model(
        tmp_path: Path) -> None:
    def picks(threshold: float) -> list[Verdict]:
        engine = Engine(load_yaml(tmp_path, PAIR % threshold))
        return [decide(engine, "pair", p) for p in PROMPTS[:60]]

    for verdict in picks(0.0):
        gain = verdict.scores["openai/gpt-4.1"] - verdict.scores["openai/gpt-4o-mini"]
        expected = "openai/gpt-4.1" if gain > 0.0 else "openai/gpt-4o-mini"
        assert verdict.models == (expected,) and "strong/weak: gain" in verdict.reason
    assert {v.models[0] for v in picks(1.0)} == {"openai/gpt-4o-mini"}
    assert {v.models[0] for v in picks(-1.0)} == {"openai/gpt-4.1"}


def test_the_pair_falls_back_when_constraints_leave_one_of_it(tmp_path: Path) -> None:
    from llmroute.constraints import Candidates

    engine = Engine(load_yaml(tmp_path, PAIR % -1.0))
    router = engine.policies["pair"]
    request = RouteRequest.from_prompt(CODE)
    found = engine.candidates(request)
    only_weak = Candidates(tuple(s for s in found.models if s.name != "openai/gpt-4.1"), found.tiers)
    verdict = router.decide(request, only_weak)
    assert isinstance(verdict, Verdict) and verdict.models == ("openai/gpt-4o-mini",)
    assert "only one of the pair" in verdict.reason
    neither = Candidates(tuple(s for s in found.models if s.name not in ("openai/gpt-4.1",
                                                                         "openai/gpt-4o-mini")), found.tiers)
    verdict = router.decide(request, neither)
    assert isinstance(verdict, Verdict)
    assert verdict.models[0] == max(verdict.scores, key=verdict.scores.__getitem__)


def test_a_bad_pair_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ClassifierParams(quality_target=0.5,
                         strong_weak={"strong": "a", "weak": "b", "threshold": 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ClassifierParams(strong_weak={"strong": "a", "weak": "b", "threshold": 2})  # type: ignore[arg-type]
    (tmp_path / "conf.yaml").write_text(
        "policies:\n  pair: {router: classifier, strong_weak: {strong: nope/model, "
        "weak: openai/gpt-4o-mini, threshold: 0.1}}\n")
    checked = check(tmp_path / "conf.yaml", environ={"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x"})
    assert "policies.pair.strong_weak.strong" in {p.path for p in checked.errors}
