"""What a replay stands in for, offline: the conversation rebuilt from the ledger's stored text, the
router LLM's answer (counted and priced, never sent), and the learned router's quality estimates.

- `messages_from_text` inverts `accounting.prompt_text` ("role: content" per message).
- `offline_caller` is the `engine.decide` caller for LLM-as-router consultations. The ledger does not
  keep what a router LLM answered, so the caller answers with the label of the entry's *logged tier*
  (the tier the served policy reached: for traffic an `llm` policy routed, that is the router LLM's
  own answer; for other traffic, a stand-in) and, with no logged tier or no label for it, gives no
  answer, so the router falls back to its default tier as it does when the call fails. Every call is
  recorded as a `Consultation` with a conservative cost estimate: the call's messages estimated the
  way routing estimates prompts (≈4 characters per token plus per-message overhead) at the router
  model's input price, plus its full `max_tokens` at the output price.
- `learned_estimate` gives P(good) per (prompt, model) from a trained router model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..catalog import Catalog
from ..engine import Caller, Engine
from ..learn.model import RouterModel
from ..routers import default_registry
from ..routers.base import BuildContext, LLMCall, Router
from ..routers.cascade import CascadeRouter
from ..routers.classifier import ClassifierParams, ClassifierRouter
from ..routers.classifier import build as build_classifier
from ..routers.llm import LLMRouter
from ..types import RouteRequest, Usage

#: Roles that start a new message in the stored text; any other line continues the message before.
ROLES = ("system", "developer", "user", "assistant", "tool", "function", "?")
_ROLE_LINE = re.compile(r"^(" + "|".join(re.escape(r) for r in ROLES) + r"): ?(.*)$", re.DOTALL)

#: P(good) for each prompt, over the models it covers (a model left out of a mapping is unknown).
Estimate = Callable[[Sequence[str], Sequence[str]], list[dict[str, float]]]


def messages_from_text(prompt_text: str) -> list[dict[str, str]]:
    """The messages of a stored "role: content" transcript. A line that starts with a known role
    and ": " begins a message (so a content line that itself starts with "user: " splits, which
    the stored text cannot tell apart); text before any role line is a user message."""
    messages: list[dict[str, str]] = []
    for line in prompt_text.split("\n"):
        match = _ROLE_LINE.match(line)
        if match:
            messages.append({"role": match.group(1), "content": match.group(2)})
        elif messages:
            messages[-1]["content"] += "\n" + line
        else:
            messages.append({"role": "user", "content": line})
    for message in messages:
        if message["role"] == "?":
            message["role"] = "user"
    return messages


@dataclass(frozen=True)
class Consultation:
    """One LLM-as-router call a replay answered offline, with its estimated size and cost."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    answered: bool        # True: answered with the logged tier's label; False: no answer given


class NoLoggedAnswerError(Exception):
    """Replay has nothing to answer a router LLM with (the router falls back to its default)."""


def _routers(router: Router) -> Iterator[Router]:
    """The router and, for a cascade, every stage's router (depth first)."""
    yield router
    if isinstance(router, CascadeRouter):
        for stage in router.stages:
            yield from _routers(stage.router)


def tier_labels(router: Router) -> dict[str, dict[str, str]]:
    """Per router-LLM model, the label that means each tier (the first label listed for it)."""
    found: dict[str, dict[str, str]] = {}
    for inner in _routers(router):
        if isinstance(inner, LLMRouter):
            table = found.setdefault(inner.params.model, {})
            for label, tier in inner.params.labels.items():
                table.setdefault(tier, label)
    return found


def consultation_cost(call: LLMCall, catalog: Catalog, answered: bool) -> Consultation:
    """The call's conservative size and cost: estimated prompt tokens in, all of `max_tokens` out."""
    tokens = RouteRequest.from_messages(call.messages).input_tokens
    cost = catalog.cost(call.model, Usage(tokens, call.max_tokens))
    return Consultation(call.model, tokens, call.max_tokens, cost, answered)


def offline_caller(labels: Mapping[str, Mapping[str, str]], logged_tier: str | None,
                   catalog: Catalog, record: Callable[[Consultation], None]) -> Caller:
    """A caller that never calls out: it records each consultation and answers with the label of
    `logged_tier` (raising `NoLoggedAnswerError`, i.e. "no answer", when there is none)."""

    async def call(llm: LLMCall) -> str:
        label = labels.get(llm.model, {}).get(logged_tier) if logged_tier else None
        record(consultation_cost(llm, catalog, label is not None))
        if label is None:
            raise NoLoggedAnswerError(f"no logged tier to answer {llm.model} with")
        return label

    return call


def learned_estimate(model: RouterModel) -> Estimate:
    """Estimates from a trained router model: every model it has a profile for is covered."""

    def estimate(texts: Sequence[str], models: Sequence[str]) -> list[dict[str, float]]:
        covered = [m for m in dict.fromkeys(models) if m in model.models]
        if not texts or not covered:
            return [{} for _ in texts]
        p, _ = model.predict_many(texts, covered)
        return [{m: float(p[i, j]) for j, m in enumerate(covered)} for i in range(len(texts))]

    return estimate


def no_estimate(texts: Sequence[str], models: Sequence[str]) -> list[dict[str, float]]:
    """No learned estimates: quality is observed or unknown."""
    return [{} for _ in texts]


def estimator_for(engine: Engine, policy: str | None = None, artifact: str | Path | None = None
                  ) -> Estimate:
    """The learned estimate a replay of `policy` uses: the artifact given, else the policy's own
    classifier (a classifier policy or a cascade's classifier stage), else the bundled artifact;
    every tiered pool model gets a profile (learned, or its tier's typical one)."""
    if artifact is None:
        _, router = engine.router(policy)
        for inner in _routers(router):
            if isinstance(inner, ClassifierRouter):
                return learned_estimate(inner.model)
    settings = engine.settings
    ctx = BuildContext(settings.tier_names, engine.catalog, settings.rules, default_registry(),
                       policy or "replay")
    params = ClassifierParams(artifact=str(artifact) if artifact is not None else None)
    return learned_estimate(build_classifier(params, ctx).model)

