"""Issue 17, cut17: three shortcuts in the gateway's admission and calling, each against what it
stands in for. `admit` hands the planner the policy it already computed (without an experiment
arm) instead of letting `_plan` compute it again; without limits it builds the fresh `Ticket()`
that `Admission.reserve` would answer, with no coroutine; `_call` passes a bound method for the
context window instead of a lambda built per request. own17: the planner leaves the unknown
policy's refusal to `decide`'s first step, and `_call` hands back `call_with_fallbacks`' own
coroutine. cut17e: `Gateway.plan` and `Planner.plan` hand back the planning coroutine itself."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from helpers import default_settings
from llmroute.chat import chat_request
from llmroute.control.limits import Ticket
from llmroute.errors import LLMRouteError, UnknownModelError
from llmroute.gateway import Gateway
from llmroute.outcome import OPEN, Principal
from llmroute.resilience import call_with_fallbacks

MODELS = ("auto", "auto/default", "auto/cheap", "auto/quality", "auto/rules", "auto/nope",
          "auto/", "autox", "my-auto", "my-cheap", "medium", "no-such-model")
PRINCIPALS = (OPEN, Principal(name="k", policies=("cheap",)), Principal(name="k2", policies=()),
              Principal(name="k3", models=("nothing",)))
CONTENTS = ("hi", "```python\nprint(1)\n```\nwhy does this fail?",
            "Prove that the square root of two is irrational, step by step.")


def _gateway() -> Gateway:
    settings = default_settings().model_copy(update={
        "model_aliases": {"my-auto": "auto", "my-cheap": "auto/cheap"}})
    return Gateway(settings)


def _req(model: str, content: str) -> Any:
    return chat_request({"model": model, "messages": [{"role": "user", "content": content}]})


async def _either(call: Any) -> tuple[str, object]:
    try:
        return "plan", await call
    except LLMRouteError as exc:
        return "error", (type(exc), str(exc), exc.status, exc.to_dict())


@pytest.mark.parametrize("model", MODELS)
def test_the_policy_handed_over_plans_as_the_policy_recomputed(model: str) -> None:
    """`admit`'s plan, and `plan(policy=requested_policy(...))`, equal `plan()` (the old), for
    auto, auto/<policy>, unknown policies, aliases (also of auto), concrete models, unknown
    names, and keys restricted to some policies or none: the same Plan or the same error."""
    gw = _gateway()

    async def both(principal: Principal, content: str) -> tuple[object, object]:
        req = _req(model, content)
        old = await _either(gw.plan(req, principal))
        try:
            requested = gw.requested_policy(req, principal)
        except LLMRouteError as exc:  # `admit` raises here, before planning: so did the old
            assert old[0] == "error" and old[1][0] is type(exc) and old[1][1] == str(exc)
        else:
            assert await _either(gw.plan(req, principal, policy=requested)) == old
        admitted = await _either(gw.admit(req, principal, "r"))
        new = ("plan", admitted[1][0].plan) if admitted[0] == "plan" else admitted  # type: ignore[index]
        return old, new

    for principal in PRINCIPALS:
        for content in CONTENTS:
            old, new = asyncio.run(both(principal, content))
            assert new == old, (model, principal, content)


def test_admit_plans_as_before_and_builds_a_fresh_ticket_without_limits() -> None:
    gw = _gateway()
    assert not gw.admission.limiter.limits and not gw.admission.experiments

    async def run() -> None:
        req = _req("auto", "hi")
        first, ticket1 = await gw.admit(req, OPEN, "r1")
        _second, ticket2 = await gw.admit(req, OPEN, "r2")
        assert first.plan == await gw.plan(req, OPEN)  # the old `admit`'s plan
        reserved = await gw.admission.reserve(req, OPEN, first.plan)  # what it stands in for
        assert ticket1 == reserved == Ticket() and type(ticket1) is type(reserved)
        assert first.extra_headers == dict(reserved.headers) == {}
        assert ticket1 is not ticket2 and ticket1.headers is not ticket2.headers  # fresh each time
    asyncio.run(run())


def test_limits_configured_still_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    """With limits, `reserve` is still awaited (its refusal still refuses)."""
    gw = _gateway()
    calls: list[object] = []
    sentinel = Ticket(headers={"x-test": "1"})

    async def reserve(req: object, principal: object, plan: object, **kw: object) -> Ticket:
        calls.append(plan)
        return sentinel

    monkeypatch.setattr(gw.admission.limiter, "limits", ("a limit",))
    monkeypatch.setattr(gw.admission, "reserve", reserve)
    outcome, ticket = asyncio.run(gw.admit(_req("auto", "hi"), OPEN, "r"))
    assert ticket is sentinel and calls == [outcome.plan]
    assert outcome.extra_headers == {"x-test": "1"}


def test_the_context_window_method_answers_as_the_lambda() -> None:
    gw = _gateway()
    window = gw.catalog.get

    def old(m: str) -> int | None:
        return s.context_window if (s := window(m)) else None

    names = [spec.name for spec in gw.catalog] + ["no-such-model", "", "auto"]
    assert len(names) > 3
    assert any(old(n) is not None for n in names)
    for name in names:
        assert gw._context_window(name) == old(name), name


def test_an_unknown_policy_is_refused_before_any_decision_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner no longer asks `engine.router` itself before deciding (own17): `decide`'s first
    step refuses the policy with the same error, before constraints or any router runs."""
    gw = _gateway()
    with pytest.raises(UnknownModelError) as expected:
        gw.engine.router("nope")

    def no_work(*args: object) -> None:
        raise AssertionError("decision work for an unknown policy")

    monkeypatch.setattr(gw.engine, "candidates", no_work)
    for policy in (None, "nope"):  # asked for by the model name, or handed over by `admit`
        with pytest.raises(UnknownModelError) as refused:
            asyncio.run(gw.plan(_req("auto/nope", "hi"), OPEN, policy=policy))
        assert refused.value.to_dict() == expected.value.to_dict()
        assert refused.value.status == expected.value.status == 404


def test_the_gateways_call_is_call_with_fallbacks_own_coroutine() -> None:
    """`Gateway._call` hands back `call_with_fallbacks`' coroutine (own17: none of its own around
    it), which answers as before."""
    gw = _gateway()

    async def attempt(model: str, timeout_s: float) -> str:
        return f"{model} answered"

    call = gw._call(("m1", "m2"), attempt)
    assert call.cr_code is call_with_fallbacks.__code__  # type: ignore[attr-defined]
    value, attempts = asyncio.run(call)  # type: ignore[arg-type]
    assert value == "m1 answered" and [a.model for a in attempts] == ["m1"]


async def _old_plan(gw: Gateway, req: Any, principal: Principal, policy: str | None) -> Any:
    """`Planner.plan` as it was before cut17e (one coroutine of its own around `_plan`), verbatim
    but for `self`."""
    planner = gw.planner
    resolved = planner.aliases.resolve(req.model) if planner._aliasable(req.model) else None
    if resolved is None:
        return await planner._plan(req, principal, policy)
    plan = await planner._plan(planner._aliased(req, resolved.target), principal, policy)
    return replace(plan, reason=f"{req.model!r} -> {resolved.target} ({resolved.via}); "
                                f"{plan.reason}")


@pytest.mark.parametrize("model", (*MODELS, "gpt-4o-mini-2024-07-18", "my-auto-2024-01-01"))
def test_the_plans_coroutine_plans_as_the_old_plan(model: str) -> None:
    """cut17e: `Gateway.plan` and `Planner.plan` hand back the coroutine that plans (no
    coroutine of their own around it): the same Plan or the same error as the old `plan`, for
    auto, policies, aliases, snapshot names, concrete and unknown names, keys restricted to
    some policies or models, with or without a policy handed over; and nothing runs (nothing
    raises) before it is awaited."""
    gw = _gateway()

    async def compare(principal: Principal, content: str, policy: str | None) -> None:
        req = _req(model, content)
        call = gw.plan(req, principal, policy=policy)  # an unknown policy raises only when awaited
        assert asyncio.iscoroutine(call)
        assert await _either(call) == await _either(_old_plan(gw, req, principal, policy))

    for principal in PRINCIPALS:
        for content in CONTENTS:
            for policy in (None, "cheap", "nope"):
                asyncio.run(compare(principal, content, policy))
