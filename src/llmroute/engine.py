"""The routing engine: from a request to a Decision, through constraints, a policy's router, any
consultation the router asks for (performed by the given caller), the model chain and a cost estimate.

`Engine` is the async core; `SyncEngine` is its thin synchronous facade.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, ModelSpec
from .config import load as load_settings
from .constraints import Candidates, eligible
from .errors import NoEligibleModelError, UnknownModelError
from .routers import default_registry
from .routers.base import (
    BuildContext,
    Consult,
    LLMCall,
    Outcome,
    Registry,
    Router,
    Verdict,
    build_router,
)
from .settings import Settings
from .types import Decision, RouteRequest, Usage

if TYPE_CHECKING:
    from .learn.online_hub import OnlineHub

#: Performs a router's consultation (one chat completion) and returns the reply text. It should
#: bound itself by the call's `timeout_s` (the gateway's does, through its resilience layer, which
#: records the timeout); the engine cuts it `CALLER_GRACE_S` later as a backstop.
Caller = Callable[[LLMCall], Awaitable[str]]
CALLER_GRACE_S = 0.25
#: `chain`'s answers kept (by verdict tier, verdict models and eligible names): few in practice
#: (tiers x routers' preferences x constraint outcomes); the table is emptied when it is full.
CHAIN_MEMO = 512
RequestLike = RouteRequest | str | Sequence[Mapping[str, Any]]


def as_request(request: RequestLike) -> RouteRequest:
    """Accept a RouteRequest, a prompt string, or a list of OpenAI-style messages."""
    if isinstance(request, RouteRequest):
        return request
    if isinstance(request, str):
        return RouteRequest.from_prompt(request)
    return RouteRequest.from_messages(request)


def tier_order(tier: str, ladder: Sequence[str]) -> list[str]:
    """The chosen tier, then the more capable ones, then the cheaper ones (nearest first)."""
    i = ladder.index(tier)
    return [ladder[i], *ladder[i + 1 :], *reversed(ladder[:i])]


class Engine:
    """Routes requests with the policies of one Settings object. Holds no global state."""

    def __init__(self, settings: Settings, *, registry: Registry | None = None,
                 caller: Caller | None = None):
        self.settings = settings
        self.catalog = Catalog.from_settings(settings)
        self.caller = caller
        #: Learning online: the classifiers' live posterior and exploration (None when off).
        self.online = online_hub(settings)
        ctx = BuildContext(settings.tier_names, self.catalog, settings.rules,
                           registry or default_registry(), "", self.online)
        self.policies: dict[str, Router] = {
            name: build_router(spec.model_dump(), ctx, name)
            for name, spec in settings.policies.items()
        }
        top = settings.tiers[settings.tier_names[-1]].model
        self.baseline_model = settings.routing.baseline_model or top
        #: `chain`'s per-decision reads of the (frozen) settings, made once: the ladder, each
        #: tier's walk (`tier_order`) and each tier's listed models (primary, then fallbacks).
        self._ladder = settings.tier_names
        self._walks = {tier: tuple(tier_order(tier, self._ladder)) for tier in self._ladder}
        self._listed = {tier: settings.tier_models(tier) for tier in self._ladder}
        #: The baseline's spec (the catalog is fixed for the engine's life), and `chain`'s answers.
        self._baseline_spec = self.catalog.get(self.baseline_model)
        self._chains: dict[tuple[str, tuple[str, ...], tuple[str, ...]],
                           tuple[str, tuple[str, ...], str]] = {}

    @classmethod
    def from_config(cls, path: str | Path | None = None, *,
                    environ: Mapping[str, str] | None = None, **options: Any) -> Engine:
        """Load and validate a configuration file (or the defaults) and build an engine.
        `environ` replaces os.environ for $LLMROUTE_CONFIG and LLMROUTE__* overrides."""
        registry = options.get("registry")
        return cls(load_settings(path, environ=environ, registry=registry), **options)

    def router(self, policy: str | None = None) -> tuple[str, Router]:
        """The named policy's router (the default policy when None)."""
        name = policy or self.settings.routing.default_policy
        router = self.policies.get(name)
        if router is None:
            known = ", ".join(sorted(self.policies))
            raise UnknownModelError(f"Unknown policy {name!r}. Known policies: {known}",
                                    param="model")
        return name, router

    def candidates(self, request: RouteRequest) -> Candidates:
        """Eligible pool models for the request; raises NoEligibleModelError when none is."""
        found = eligible(self.catalog, request, self._ladder)
        if not found.models:
            raise NoEligibleModelError(found.excluded)
        return found

    async def decide(self, request: RequestLike, *, policy: str | None = None,
                     caller: Caller | None = None, estimate: bool = True) -> Decision:
        """Route one request: constraints, the policy's router, then the chain and its cost
        (`estimate=False`: no cost estimate, see `finish`)."""
        name, req, found, verdict = await self.verdict(request, policy=policy, caller=caller)
        return self.finish(verdict, name, req, found, estimate=estimate)

    async def verdict(self, request: RequestLike, *, policy: str | None = None,
                      caller: Caller | None = None
                      ) -> tuple[str, RouteRequest, Candidates, Verdict]:
        """`decide` up to the router's verdict (its consultations resolved): the policy's name,
        the request, its candidates and the verdict. For a caller that builds its own record of
        the decision from them (the gateway's planner: no `Decision` in between, issue 17)."""
        name, req, found, outcome = self.first_outcome(request, policy=policy)
        if isinstance(outcome, Consult):   # a Verdict needs no coroutine of `_resolve`'s
            outcome = await self.resolve(outcome, caller)
        return name, req, found, outcome

    def first_outcome(self, request: RequestLike, *, policy: str | None = None
                      ) -> tuple[str, RouteRequest, Candidates, Outcome]:
        """`verdict`'s first step, no coroutine: the policy's name, the request, its candidates
        and the router's first answer, a Verdict or a consultation to `resolve` (issue 17: the
        planner awaits only for a consultation)."""
        req = as_request(request)
        name, router = self.router(policy)
        found = self.candidates(req)
        return name, req, found, router.decide(req, found)

    def resolve(self, outcome: Consult, caller: Caller | None = None) -> Awaitable[Verdict]:
        """The verdict a consultation leads to, asking `caller` (else the engine's own)."""
        return self._resolve(outcome, caller or self.caller)

    async def _resolve(self, outcome: Outcome, caller: Caller | None) -> Verdict:
        while isinstance(outcome, Consult):
            outcome = await self._consult(outcome, caller)
        return outcome

    @staticmethod
    async def _consult(consult: Consult, caller: Caller | None) -> Outcome:
        if caller is None:
            return consult.resume(None, "no caller configured for LLM consultations")
        try:
            reply = await asyncio.wait_for(caller(consult.call),
                                           consult.call.timeout_s + CALLER_GRACE_S)
        except TimeoutError:
            return consult.resume(None, f"timed out after {consult.call.timeout_s:g}s")
        except Exception as exc:  # any upstream failure means "no answer": the router defaults
            return consult.resume(None, f"{type(exc).__name__}: {exc}")
        return consult.resume(reply, None)

    def finish(self, verdict: Verdict, policy: str, request: RouteRequest,
               found: Candidates, *, estimate: bool = True) -> Decision:
        """Turn a router's verdict into a Decision: the model chain and the estimated costs.
        `estimate=False` leaves both estimates None (not "unpriced": not estimated), for a caller
        that reads neither: the gateway's planner, whose Plan carries no estimate (issue 17,
        own17: the expected usage and one or two Decimal costs, ~15 k instructions a request)."""
        tier, chain, note = self.chain(verdict, found)
        cost = baseline_cost = None
        if estimate:
            usage = self.expected_usage(request)
            primary = self.catalog.get(chain[0])
            baseline = self._baseline_spec
            cost = _cost(primary, usage)
            baseline_cost = cost if baseline is primary else _cost(baseline, usage)
        return Decision(
            policy=policy, router=verdict.router, tier=tier, chain=chain,
            confidence=verdict.confidence, reason=verdict.reason + note,
            input_tokens=request.input_tokens,
            estimated_cost_usd=cost,
            baseline_model=self.baseline_model,
            baseline_cost_usd=baseline_cost,
            scores=verdict.scores, excluded=found.excluded,
            explored=verdict.explored, latent=verdict.latent,
        )

    def expected_usage(self, request: RouteRequest) -> Usage:
        """Tokens assumed for a cost estimate: the prompt, and the expected (capped) output."""
        out = self.settings.routing.expected_output_tokens
        if request.max_output_tokens is not None:
            out = min(out, request.max_output_tokens)
        return Usage(request.input_tokens, out)

    def chain(self, verdict: Verdict, found: Candidates) -> tuple[str, tuple[str, ...], str]:
        """(tier, models, note): the verdict's models, else its tier's eligible models, else the
        nearest tier with an eligible model (more capable first). Kept by what it depends on: the
        verdict's tier and models and the eligible models' names (in order; each name's spec is
        the catalog's, fixed for the engine's life)."""
        wanted = verdict.models if type(verdict.models) is tuple else tuple(verdict.models)
        key = (verdict.tier, wanted, tuple([spec.name for spec in found.models]))
        made = self._chains.get(key)
        if made is None:
            made = self.walk_chain(verdict, found)  # raises NoEligibleModelError: nothing kept
            if len(self._chains) >= CHAIN_MEMO:
                self._chains.clear()
            self._chains[key] = made
        return made

    def walk_chain(self, verdict: Verdict, found: Candidates) -> tuple[str, tuple[str, ...], str]:
        """`chain` worked out (not kept)."""
        names = {spec.name: spec for spec in found.models}
        preferred = [m for m in verdict.models if m in names]
        ladder = self._ladder
        start = verdict.tier if verdict.tier in ladder else ladder[-1]
        for tier in self._walks[start]:
            models = _dedupe([*preferred, *self._tier_models(tier, names)])
            if models:
                note = "" if tier == verdict.tier else (
                    f"; no eligible model in tier '{verdict.tier}', using tier '{tier}'")
                return tier, models, note
            preferred = []
        raise NoEligibleModelError(found.excluded)

    def _tier_models(self, tier: str, names: Mapping[str, ModelSpec]) -> list[str]:
        listed = [m for m in self._listed[tier] if m in names]
        return listed + [n for n, spec in names.items() if spec.tier == tier and n not in listed]


def online_hub(settings: Settings) -> OnlineHub | None:
    """The hub classifier routers learn and explore with, when `learning` asks for either (the
    learned model and numpy load only then)."""
    learning = settings.learning
    if not learning.online and learning.explore == 0:
        return None
    from .learn.online_hub import OnlineHub

    return OnlineHub(explore=learning.explore, strategy=learning.explore_strategy,
                     rater_cap=learning.rater_cap, rater_floor=learning.rater_floor,
                     rater_share=learning.rater_share, trusted=learning.trusted_raters,
                     prior_scale=learning.prior_scale, seed=learning.seed,
                     store_latent=learning.online, forget=learning.forget,
                     ability_var=learning.ability_var, shared=learning.shared,
                     pending_cap=learning.explore_pending, pending_s=learning.explore_pending_s,
                     gap=learning.explore_gap, beat=learning.explore_beat,
                     decay=learning.explore_decay, regret=learning.explore_regret,
                     at=learning.explore_at, optimism=learning.optimism,
                     shared_ability=learning.shared_ability)


def _dedupe(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _cost(spec: ModelSpec | None, usage: Usage) -> Decimal | None:
    return None if spec is None else spec.cost(usage)


class SyncEngine:
    """The synchronous facade over `Engine` for scripts and non-async applications."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._runner = asyncio.Runner()
        # closed by close(), or once collected, or at exit: no unclosed loop left behind
        self._closer = weakref.finalize(self, self._runner.close)

    def decide(self, request: RequestLike, *, policy: str | None = None,
               caller: Caller | None = None) -> Decision:
        """Route one request (blocking). In async code, use `await engine.decide(...)`."""
        return self._runner.run(self.engine.decide(request, policy=policy, caller=caller))

    def close(self) -> None:
        """Release the private event loop (once)."""
        self._closer()

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
