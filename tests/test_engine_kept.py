"""What `Engine` keeps between decisions (issue 17, orch17): `chain`'s answers by what they depend
on, and the baseline's spec. Each answer must be what working it out gives, and a Decision's costs
the Decimals computed from the catalog's specs per call; and RouteRequest's faster constructor
builds what the generated one built; a decision without estimates (the gateway's planner) is the
estimating one less its two costs."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import default_settings
from llmroute import engine as engine_module
from llmroute.chat import chat_request
from llmroute.constraints import Candidates
from llmroute.engine import Engine
from llmroute.errors import NoEligibleModelError
from llmroute.gateway import Gateway
from llmroute.outcome import OPEN, Plan
from llmroute.routers.base import Verdict
from llmroute.types import RouteRequest, Usage


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_settings())


def test_a_kept_chain_is_the_worked_out_one(engine: Engine) -> None:
    rng = random.Random(17)
    found = engine.candidates(RouteRequest.from_prompt("hello"))
    pool = [spec.name for spec in found.models] + ["not/a-model"]
    for _ in range(2000):
        kept = Candidates(tuple(s for s in found.models if rng.random() < 0.6), found.tiers)
        tier = rng.choice([*engine.settings.tier_names, "unknown"])
        verdict = Verdict(tier, 0.5, "r", "x", models=tuple(rng.sample(pool, rng.randint(0, 3))))
        if not kept.models:
            with pytest.raises(NoEligibleModelError):
                engine.chain(verdict, kept)
            continue
        fresh = engine.walk_chain(verdict, kept)
        assert engine.chain(verdict, kept) == fresh
        assert engine.chain(verdict, kept) == fresh  # the kept one, asked again


def test_a_list_of_models_is_kept_as_its_tuple(engine: Engine) -> None:
    found = engine.candidates(RouteRequest.from_prompt("hello"))
    name = found.models[-1].name
    listed = Verdict(engine.settings.tier_names[0], 0.5, "r", "x", models=[name])  # type: ignore[arg-type]
    assert engine.chain(listed, found) == engine.walk_chain(listed, found)
    assert engine.chain(listed, found)[1][0] == name


def test_the_kept_chains_are_bounded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "CHAIN_MEMO", 3)
    engine._chains.clear()
    found = engine.candidates(RouteRequest.from_prompt("hello"))
    names = [spec.name for spec in found.models]
    for i in range(10):
        verdict = Verdict(engine.settings.tier_names[0], 0.5, "r", "x", models=(names[i % len(names)],))
        assert engine.chain(verdict, found) == engine.walk_chain(verdict, found)
        assert len(engine._chains) <= 3


def _costs_per_call(engine: Engine, chain: tuple[str, ...], request: RouteRequest) -> tuple[Any, Any]:
    usage = engine.expected_usage(request)
    primary = engine.catalog.get(chain[0])
    baseline = engine.catalog.get(engine.baseline_model)
    return (None if primary is None else primary.cost(usage),
            None if baseline is None else baseline.cost(usage))


@settings(max_examples=150, deadline=None)
@given(tokens=st.integers(0, 400_000), out=st.one_of(st.none(), st.integers(0, 100_000)),
       pick=st.integers(0, 50), same=st.booleans())
def test_finish_costs_are_the_per_call_decimals(engine: Engine, tokens: int, out: int | None,
                                                pick: int, same: bool) -> None:
    found = engine.candidates(RouteRequest.from_prompt("hello"))
    model = engine.baseline_model if same else found.models[pick % len(found.models)].name
    verdict = Verdict("unknown", 0.5, "r", "x", models=(model,))
    request = dataclasses.replace(RouteRequest.from_prompt("hi"), input_tokens=tokens,
                                  max_output_tokens=out)
    decision = engine.finish(verdict, "p", request, found)
    cost, baseline = _costs_per_call(engine, decision.chain, request)
    assert decision.chain[0] == model
    assert (str(decision.estimated_cost_usd), str(decision.baseline_cost_usd)) == (str(cost), str(baseline))
    assert decision.estimated_cost_usd == cost and decision.baseline_cost_usd == baseline


def test_the_usage_is_unchanged_by_the_kept_spec(engine: Engine) -> None:
    spec = engine.catalog.get(engine.baseline_model)
    assert spec is engine._baseline_spec
    assert spec is not None and spec.cost(Usage(10, 10)) is not None


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=4),
       roles=st.lists(st.sampled_from(["user", "assistant", "system"]), min_size=4, max_size=4),
       out=st.one_of(st.none(), st.integers(1, 10_000)),
       allowed=st.lists(st.text(max_size=5), max_size=2),
       metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)),
       user=st.one_of(st.none(), st.text(max_size=5)), tools=st.booleans())
def test_route_request_builds_what_the_generated_constructor_built(
        texts: list[str], roles: list[str], out: int | None, allowed: list[str],
        metadata: dict[str, str] | None, user: str | None, tools: bool) -> None:
    messages = [{"role": roles[i], "content": text} for i, text in enumerate(texts)]
    made = RouteRequest.from_messages(messages, max_output_tokens=out, allowed_models=allowed,
                                      metadata=metadata, user=user,
                                      tools=[{"type": "function"}] if tools else None)
    values = {f.name: getattr(made, f.name) for f in dataclasses.fields(RouteRequest)}
    generated = _generated(RouteRequest)(**values)
    assert vars(generated) == vars(made) and repr(generated) == repr(made)
    assert list(vars(generated)) == list(vars(made))  # the same fields, stored in the same order
    assert made == RouteRequest(**values) and made == dataclasses.replace(made)
    assert RouteRequest(messages=(), user_text="", last_user_text="", input_tokens=0).metadata == {}
    assert RouteRequest((), "", "", 0).metadata is not RouteRequest((), "", "", 0).metadata


def _generated(cls: type[Any]) -> type[Any]:
    """`cls` as the plain frozen dataclass (the generated `__init__`)."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True)


#: The default settings' policies whose decision is a function of the request (not `random`).
DETERMINISTIC = ("default", "learned", "rules", "cheap", "quality")


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300), out=st.one_of(st.none(), st.integers(1, 100_000)),
       policy=st.sampled_from(DETERMINISTIC), code=st.booleans())
def test_a_decision_without_estimates_is_the_decision_less_its_costs(
        engine: Engine, text: str, out: int | None, policy: str, code: bool) -> None:
    """`decide(..., estimate=False)` (the gateway's planner, issue 17 own17) is the estimating
    decision with its two costs None: the same chain, tier, reason, scores, everything else."""
    content = f"```python\n{text}\n```\nwhy?" if code else text
    route = RouteRequest.from_messages([{"role": "user", "content": content}], max_output_tokens=out)
    try:
        full = asyncio.run(engine.decide(route, policy=policy))
    except NoEligibleModelError as exc:  # an output no model allows: the same refusal
        with pytest.raises(NoEligibleModelError) as bare_exc:
            asyncio.run(engine.decide(route, policy=policy, estimate=False))
        assert bare_exc.value.to_dict() == exc.to_dict()
        return
    bare = asyncio.run(engine.decide(route, policy=policy, estimate=False))
    assert bare == dataclasses.replace(full, estimated_cost_usd=None, baseline_cost_usd=None)
    assert full.estimated_cost_usd is not None and full.baseline_cost_usd is not None  # priced


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300), out=st.one_of(st.none(), st.integers(1, 100_000)),
       policy=st.sampled_from(DETERMINISTIC))
def test_the_planners_plan_is_the_one_the_estimating_decision_gives(
        text: str, out: int | None, policy: str) -> None:
    """The gateway's Plan (its planner asks for no estimate) is the Plan built from the full,
    estimating decision, field for field."""
    gw = _gateway()
    body: dict[str, Any] = {"model": f"auto/{policy}", "messages": [{"role": "user", "content": text}]}
    if out is not None:
        body["max_tokens"] = out
    req = chat_request(body)

    async def both() -> tuple[Plan, Plan]:
        route = gw.planner.route_request(req, OPEN)
        full = await gw.engine.decide(route, policy=policy)
        made = Plan(full.chain, full.tier, full.router, policy, full.confidence, full.reason,
                    full.input_tokens, full.explored, full.latent, (), None)
        return made, await gw.plan(req, OPEN)

    try:
        made, planned = asyncio.run(both())
    except NoEligibleModelError as exc:  # an output no model allows: the planner refuses alike
        with pytest.raises(NoEligibleModelError) as planned_exc:
            asyncio.run(gw.plan(req, OPEN))
        assert planned_exc.value.to_dict() == exc.to_dict()
        return
    assert planned == made


_GATEWAY: list[Gateway] = []


def _gateway() -> Gateway:
    if not _GATEWAY:
        _GATEWAY.append(Gateway(default_settings()))
    return _GATEWAY[0]


class _Steer:
    """Affinity on, recording what the planner hands `steer` (and handing the plan back)."""

    enabled = True

    def __init__(self) -> None:
        self.seen: list[tuple[Plan, dict[str, str], Usage]] = []

    async def steer(self, plan: Plan, req: Any, scope: str | None, excluded: Any,
                    expected: Usage) -> Plan:
        self.seen.append((plan, dict(excluded), expected))
        return plan


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=200), policy=st.sampled_from(DETERMINISTIC),
       keep=st.sets(st.integers(0, 20), min_size=1))
def test_the_planner_hands_affinity_the_decisions_exclusions(
        text: str, policy: str, keep: set[int]) -> None:
    """The planner builds its Plan from the engine's verdict and chain, without a Decision
    (issue 17, cut17d): with the key restricted to some models, the Plan and what cache-aware
    routing is handed (the excluded models and their reasons, the expected usage) are the
    estimating Decision's."""
    gw = _gateway()
    names = sorted(spec.name for spec in gw.engine.catalog)
    allowed = tuple(n for i, n in enumerate(names) if i in keep) or (names[0],)
    principal = dataclasses.replace(OPEN, models=allowed)
    req = chat_request({"model": f"auto/{policy}", "messages": [{"role": "user", "content": text}]})
    steer = _Steer()

    async def both() -> tuple[Any, Plan]:
        route = gw.planner.route_request(req, principal)
        try:
            full: Any = await gw.engine.decide(route, policy=policy)
        except NoEligibleModelError as exc:
            full = exc
        real, gw.planner.affinity = gw.planner.affinity, steer  # type: ignore[assignment]
        try:
            return full, await gw.plan(req, principal)
        finally:
            gw.planner.affinity = real

    try:
        full, planned = asyncio.run(both())
    except NoEligibleModelError as exc:  # none of the key's models fits: the same refusal
        assert isinstance(full, NoEligibleModelError)
        assert exc.to_dict() == full.to_dict()
        return
    assert planned == Plan(full.chain, full.tier, full.router, policy, full.confidence,
                           full.reason, full.input_tokens, full.explored, full.latent, (), None)
    [(handed, excluded, expected)] = steer.seen
    assert handed == planned and excluded == dict(full.excluded)
    assert expected == gw.engine.expected_usage(gw.planner.route_request(req, principal))
