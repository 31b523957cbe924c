"""Tests of the routing engine: policies, model chains, tier escalation, cost estimates, errors, and
consultations performed through a fake async caller."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from helpers import default_settings, load_yaml, write_yaml
from llmroute.engine import Engine, SyncEngine, as_request, tier_order
from llmroute.errors import ConfigError, LLMRouteError, NoEligibleModelError, UnknownModelError
from llmroute.routers.base import Consult, LLMCall
from llmroute.types import RouteRequest

D = Decimal

#: Each model in exactly one tier, so escalation is easy to read.
LADDER_CONFIG = """
tiers:
  simple: {model: openai/gpt-4o-mini}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: anthropic/claude-sonnet-4-5, fallbacks: [openai/gpt-4.1]}
policies:
  simple: {router: fixed, tier: simple}
  medium: {router: fixed, tier: medium}
  complex: {router: fixed, tier: complex}
routing: {default_policy: medium}
"""

FIXED_POLICIES = """
policies:
  default: {router: rules}
  simple: {router: fixed, tier: simple}
  medium: {router: fixed, tier: medium}
  complex: {router: fixed, tier: complex}
  haiku: {router: fixed, model: anthropic/claude-haiku-4-5}
  llm: {router: llm, model: openai/gpt-4o-mini, timeout_s: 0.05}
"""


def engine_of(tmp_path: Path, text: str, **options: object) -> Engine:
    return Engine(load_yaml(tmp_path, text), **options)  # type: ignore[arg-type]


def decide(engine: Engine, request: object, **options: object):  # type: ignore[no-untyped-def]
    return asyncio.run(engine.decide(request, **options))  # type: ignore[arg-type]


class FakeCaller:
    """Records every LLMCall and answers with a canned reply, a delay, or an exception."""

    def __init__(self, reply: str = "COMPLEX", *, delay: float = 0.0,
                 error: Exception | None = None):
        self.reply = reply
        self.delay = delay
        self.error = error
        self.calls: list[LLMCall] = []

    async def __call__(self, call: LLMCall) -> str:
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.reply


# --- small pieces ----------------------------------------------------------------------------------

def test_tier_order_prefers_more_capable_then_nearest_cheaper() -> None:
    ladder = ["simple", "medium", "complex"]
    assert tier_order("simple", ladder) == ["simple", "medium", "complex"]
    assert tier_order("medium", ladder) == ["medium", "complex", "simple"]
    assert tier_order("complex", ladder) == ["complex", "medium", "simple"]
    assert tier_order("b", ["a", "b", "c", "d"]) == ["b", "c", "d", "a"]


def test_as_request_accepts_prompts_messages_and_requests() -> None:
    from_prompt = as_request("hello")
    assert from_prompt.last_user_text == "hello"
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert as_request(messages).last_user_text == "hi"
    req = RouteRequest.from_prompt("x")
    assert as_request(req) is req


# --- policies and chains ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("policy", "tier", "chain"),
    [
        ("simple", "simple", ("openai/gpt-4o-mini", "anthropic/claude-haiku-4-5")),
        ("medium", "medium",
         ("openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini")),
        ("complex", "complex", ("anthropic/claude-sonnet-4-5", "openai/gpt-4.1")),
    ],
)
def test_chain_is_the_tier_primary_then_fallbacks(
    tmp_path: Path, policy: str, tier: str, chain: tuple[str, ...]
) -> None:
    decision = decide(engine_of(tmp_path, FIXED_POLICIES), "hello", policy=policy)
    assert decision.policy == policy
    assert decision.tier == tier
    assert decision.chain == chain
    assert decision.model == chain[0]
    assert decision.confidence == 1.0
    assert decision.excluded == {}


def test_default_policy_is_used_when_none_is_named(tmp_path: Path) -> None:
    decision = decide(engine_of(tmp_path, FIXED_POLICIES), "Please refactor this python code")
    assert decision.policy == "default"
    assert decision.tier == "complex"
    assert "code-words" in decision.reason


def test_excluded_models_are_dropped_from_the_chain(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    req = RouteRequest.from_prompt("hello", allowed_models=["openai/*"])
    decision = decide(engine, req, policy="medium")
    assert decision.chain == ("openai/gpt-4.1-mini", "openai/gpt-4o-mini")
    assert decision.excluded == {
        "anthropic/claude-haiku-4-5": "not in allowed_models",
        "anthropic/claude-sonnet-4-5": "not in allowed_models",
    }


def test_fixed_model_leads_its_tier_chain(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    decision = decide(engine, "hello", policy="haiku")
    assert decision.tier == "simple"  # haiku first appears in the simple tier
    assert decision.chain == ("anthropic/claude-haiku-4-5", "openai/gpt-4o-mini")
    excluded = RouteRequest.from_prompt("hello", excluded_models=["anthropic/*"])
    assert decide(engine, excluded, policy="haiku").chain == ("openai/gpt-4o-mini",)


def test_models_with_a_configured_tier_join_that_tier_chain(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, LADDER_CONFIG + "models:\n  openai/gpt-4o: {tier: complex}\n")
    decision = decide(engine, "hi", policy="complex")
    assert decision.chain == ("anthropic/claude-sonnet-4-5", "openai/gpt-4.1", "openai/gpt-4o")


# --- tier escalation -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("policy", "allowed", "tier", "chain"),
    [
        # nothing simple is allowed: escalate to the next more capable tier with a model
        ("simple", ["openai/gpt-4.1-mini"], "medium", ("openai/gpt-4.1-mini",)),
        ("simple", ["anthropic/*"], "complex", ("anthropic/claude-sonnet-4-5",)),
        # more capable first, even when a cheaper tier has eligible models too
        ("medium", ["openai/gpt-4o-mini", "openai/gpt-4.1"], "complex", ("openai/gpt-4.1",)),
        # nothing at or above: the nearest cheaper tier
        ("complex", ["openai/gpt-4o-mini"], "simple", ("openai/gpt-4o-mini",)),
        ("complex", ["openai/gpt-4o-mini", "openai/gpt-4.1-mini"], "medium",
         ("openai/gpt-4.1-mini",)),
    ],
)
def test_escalation_when_a_tier_has_no_eligible_model(
    tmp_path: Path, policy: str, allowed: list[str], tier: str, chain: tuple[str, ...]
) -> None:
    engine = engine_of(tmp_path, LADDER_CONFIG)
    decision = decide(engine, RouteRequest.from_prompt("hi", allowed_models=allowed), policy=policy)
    assert decision.tier == tier
    assert decision.chain == chain
    assert f"no eligible model in tier '{policy}', using tier '{tier}'" in decision.reason


def test_escalation_for_a_capability(tmp_path: Path) -> None:
    text = """
        tiers:
          simple: {model: acme/text-only}
          complex: {model: openai/gpt-4o-mini}
        models:
          acme/text-only: {input_per_m: 0.01, output_per_m: 0.02, capabilities: [json]}
        rules: []
        policies:
          default: {router: fixed, tier: simple}
    """
    engine = engine_of(tmp_path, text)
    assert decide(engine, "hi").chain == ("acme/text-only",)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    decision = decide(engine, RouteRequest.from_prompt("hi", tools=tools))
    assert decision.tier == "complex"
    assert decision.chain == ("openai/gpt-4o-mini",)
    assert decision.excluded == {"acme/text-only": "lacks capability: tools"}


# --- cost estimates --------------------------------------------------------------------------------

def test_cost_estimate_uses_prompt_tokens_and_expected_output(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    decision = decide(engine, "hi", policy="simple")
    # "hi": 2 chars → 1 token, + 4 for the message + 3 = 8 prompt tokens; 256 expected out
    assert decision.input_tokens == 8
    assert decision.estimated_cost_usd == D("0.0001548")  # (8 × 0.15 + 256 × 0.60) / 1M
    assert decision.baseline_model == "anthropic/claude-sonnet-4-5"  # the top tier's primary
    assert decision.baseline_cost_usd == D("0.003864")  # (8 × 3 + 256 × 15) / 1M
    assert decision.estimated_savings_usd == D("0.0037092")
    data = decision.to_dict()
    assert data["estimated_cost_usd"] == "0.0001548"
    assert data["estimated_savings_usd"] == "0.0037092"


def test_cost_estimate_caps_output_at_max_tokens(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    decision = decide(engine, RouteRequest.from_prompt("hi", max_output_tokens=100),
                      policy="simple")
    assert decision.estimated_cost_usd == D("0.0000612")  # (8 × 0.15 + 100 × 0.60) / 1M
    assert engine.expected_usage(RouteRequest.from_prompt("hi", max_output_tokens=1000)) \
        .output_tokens == 256


def test_cost_estimate_follows_expected_output_tokens_and_baseline_model(tmp_path: Path) -> None:
    text = FIXED_POLICIES + "routing: {expected_output_tokens: 1000, baseline_model: openai/gpt-4.1}\n"
    decision = decide(engine_of(tmp_path, text), "hi", policy="simple")
    assert decision.estimated_cost_usd == D("0.0006012")  # (8 × 0.15 + 1000 × 0.60) / 1M
    assert decision.baseline_model == "openai/gpt-4.1"
    assert decision.baseline_cost_usd == D("0.008016")  # (8 × 2 + 1000 × 8) / 1M


def test_unpriced_primary_gives_no_estimate_never_zero(tmp_path: Path) -> None:
    text = """
        tiers:
          simple: {model: acme/house}
          complex: {model: anthropic/claude-sonnet-4-5}
        models:
          acme/house: {}
        rules: []
        policies:
          default: {router: fixed, tier: simple}
    """
    decision = decide(engine_of(tmp_path, text), "hi")
    assert decision.model == "acme/house"
    assert decision.estimated_cost_usd is None
    assert decision.baseline_cost_usd is not None
    assert decision.estimated_savings_usd is None
    assert decision.to_dict()["estimated_cost_usd"] is None


# --- errors ----------------------------------------------------------------------------------------

def test_unknown_policy(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    with pytest.raises(UnknownModelError) as info:
        decide(engine, "hi", policy="nope")
    err = info.value
    assert err.status == 404
    assert err.code == "model_not_found"
    assert err.param == "model"
    assert "'nope'" in err.message
    assert "complex, default, haiku, llm, medium, simple" in err.message


def test_no_eligible_model_names_why_each_model_was_excluded(tmp_path: Path) -> None:
    text = """
        tiers:
          simple: {model: acme/tiny}
          medium: {model: acme/no-tools}
          complex: {model: anthropic/claude-sonnet-4-5}
        models:
          acme/tiny: {input_per_m: 1, output_per_m: 1, context_window: 50}
          acme/no-tools: {input_per_m: 1, output_per_m: 1, capabilities: [vision]}
        policies:
          default: {router: rules}
    """
    engine = engine_of(tmp_path, text)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    req = RouteRequest.from_prompt("x" * 400, tools=tools, excluded_models=["anthropic/*"])
    with pytest.raises(NoEligibleModelError) as info:
        decide(engine, req)
    err = info.value
    assert err.status == 400
    assert err.code == "no_eligible_model"
    assert set(err.excluded) == {"acme/tiny", "acme/no-tools", "anthropic/claude-sonnet-4-5"}
    assert err.excluded["acme/tiny"].startswith("context window 50 < ~")
    assert err.excluded["acme/no-tools"] == "lacks capability: tools"
    assert err.excluded["anthropic/claude-sonnet-4-5"] == "excluded by excluded_models"
    for name, reason in err.excluded.items():
        assert f"{name}: {reason}" in err.message


def test_no_eligible_model_when_everything_is_excluded(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES)
    with pytest.raises(NoEligibleModelError) as info:
        decide(engine, RouteRequest.from_prompt("hi", excluded_models=["*"]))
    assert len(info.value.excluded) == 5
    assert set(info.value.excluded.values()) == {"excluded by excluded_models"}


def test_an_invalid_config_never_half_starts(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "routing: {default_policy: nothere}")
    with pytest.raises(ConfigError):
        Engine.from_config(path)


# --- consultations (LLM-as-router) -----------------------------------------------------------------

def test_consultation_success(tmp_path: Path) -> None:
    caller = FakeCaller("Complex.")
    engine = engine_of(tmp_path, FIXED_POLICIES, caller=caller)
    decision = decide(engine, "Design a distributed database", policy="llm")
    assert decision.tier == "complex"
    assert decision.chain[0] == "anthropic/claude-sonnet-4-5"
    assert decision.confidence == 0.8
    assert decision.router == "llm"
    assert "classifier said COMPLEX" in decision.reason
    assert decision.scores == {"COMPLEX": 1.0}
    (call,) = caller.calls
    assert call.model == "openai/gpt-4o-mini"
    assert call.timeout_s == 0.05
    assert call.max_tokens == 8
    assert call.temperature == 0.0
    assert "Design a distributed database" in call.messages[0]["content"]


@pytest.mark.parametrize(
    ("caller", "why"),
    [
        (FakeCaller("I cannot decide, sorry"), "unreadable classifier reply"),
        (FakeCaller("SIMPLE", delay=1.0), "timed out after 0.05s"),
        (FakeCaller(error=RuntimeError("upstream 503")), "RuntimeError: upstream 503"),
    ],
    ids=["garbage", "timeout", "exception"],
)
def test_consultation_failures_give_the_default_tier(
    tmp_path: Path, caller: FakeCaller, why: str
) -> None:
    engine = engine_of(tmp_path, FIXED_POLICIES, caller=caller)
    decision = decide(engine, "hello there", policy="llm")
    assert decision.tier == "medium"
    assert decision.confidence == 0.3
    assert why in decision.reason
    assert "default tier 'medium'" in decision.reason
    assert len(caller.calls) == 1


def test_consultation_without_a_caller_defaults(tmp_path: Path) -> None:
    decision = decide(engine_of(tmp_path, FIXED_POLICIES), "hello", policy="llm")
    assert decision.tier == "medium"
    assert "no caller configured" in decision.reason


def test_a_per_call_caller_overrides_the_engine_caller(tmp_path: Path) -> None:
    engine_caller, call_caller = FakeCaller("COMPLEX"), FakeCaller("SIMPLE")
    engine = engine_of(tmp_path, FIXED_POLICIES, caller=engine_caller)
    decision = decide(engine, "hello", policy="llm", caller=call_caller)
    assert decision.tier == "simple"
    assert engine_caller.calls == []
    assert len(call_caller.calls) == 1


def test_identical_prompts_are_classified_once_per_engine(tmp_path: Path) -> None:
    caller = FakeCaller("SIMPLE")
    settings = load_yaml(tmp_path, FIXED_POLICIES)
    engine = Engine(settings, caller=caller)
    first = decide(engine, "What is the capital of Peru?", policy="llm")
    second = decide(engine, "What is the capital of Peru?", policy="llm")
    assert first.tier == second.tier == "simple"
    assert "cached classification" in second.reason
    assert len(caller.calls) == 1
    decide(engine, "Another question", policy="llm")
    assert len(caller.calls) == 2
    # no state shared between engines
    decide(Engine(settings, caller=caller), "What is the capital of Peru?", policy="llm")
    assert len(caller.calls) == 3


def test_cascade_default_policy_with_the_defaults() -> None:
    engine = Engine(default_settings())
    decision = decide(engine, "Tell me a story about a dragon who lives high up in the cold "
                              "mountains and loves cheese")
    assert decision.policy == "default"
    # no structural rule (code fence, tools) matches; the classifier decides every such prompt (its
    # stage's threshold is 0), by its calibrated willingness to pay: which tier depends on the
    # artifact, so only that it decided is pinned here
    assert decision.router == "classifier" and "λ=" in decision.reason
    assert "stage 2 (classifier" in decision.reason and decision.tier in ("simple", "medium",
                                                                         "complex")


def test_sync_engine_facade() -> None:
    with SyncEngine(Engine(default_settings())) as router:
        decision = router.decide("What's 2+2?")
        assert decision.tier == "simple"
        assert router.decide("hi", policy="quality").tier == "complex"


async def _old_verdict(engine: Engine, request: object, policy: str | None,
                       caller: FakeCaller | None) -> object:
    """`Engine.verdict` as it was before cut17e (one body), verbatim but for `self`."""
    req = as_request(request)  # type: ignore[arg-type]
    name, router = engine.router(policy)
    found = engine.candidates(req)
    outcome = router.decide(req, found)
    if isinstance(outcome, Consult):
        outcome = await engine._resolve(outcome, caller or engine.caller)
    return name, req, found, outcome


@pytest.mark.parametrize("policy", [None, "simple", "haiku", "llm", "nope"])
@pytest.mark.parametrize("reply", ["COMPLEX", "SIMPLE", "garbage"])
@pytest.mark.parametrize("callers", ["none", "engine's", "given"])
def test_first_outcome_then_resolve_is_the_old_verdict(tmp_path: Path, policy: str | None,
                                                      reply: str, callers: str) -> None:
    """cut17e: the planner takes `first_outcome` and awaits `resolve` only for a consultation;
    that, and `verdict`, give what the old `verdict` gave (or its error): the same policy name,
    request, candidates and verdict, the same consultations asked of the same caller."""
    settings = load_yaml(tmp_path, FIXED_POLICIES)

    async def one(way: str) -> tuple[object, list[int]]:
        own = FakeCaller("SIMPLE" if callers == "given" else reply) if callers != "none" else None
        given = FakeCaller(reply) if callers == "given" else None
        engine = Engine(settings, caller=own)  # a fresh one: no classification kept
        try:
            if way == "old":
                found = await _old_verdict(engine, "Design a database", policy, given)
            elif way == "verdict":
                found = await engine.verdict("Design a database", policy=policy, caller=given)
            else:
                name, req, cands, outcome = engine.first_outcome("Design a database", policy=policy)
                if isinstance(outcome, Consult):
                    outcome = await engine.resolve(outcome, given)
                found = (name, req, cands, outcome)
        except LLMRouteError as exc:
            found = (type(exc), str(exc))
        return found, [len(c.calls) for c in (own, given) if c is not None]

    old = asyncio.run(one("old"))
    assert asyncio.run(one("verdict")) == old
    assert asyncio.run(one("planner")) == old
