"""Planning a chat request: which policy `auto` / `auto/<policy>` asks for (and whether the key
may use it), the router's decision through the engine (the LLM router's consultations included),
cache-aware routing's stay-or-switch after it, or the check of a concrete model; the request's own
`models` fallbacks appended. The gateway's first stage after admission's arm."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from .aliases import AUTO, Aliases
from .cache.affinity_stage import Affinity
from .catalog import Catalog, ModelSpec
from .chat import ChatRequest
from .constraints import exclusion_reason, matches
from .consult import Consultant, Consulted
from .deployments import Deployments
from .engine import Engine
from .errors import NoEligibleModelError, PermissionDeniedError, UnknownModelError
from .outcome import OPEN, Plan, Principal
from .routers.base import Consult, LLMCall
from .settings import Settings
from .types import RouteRequest


class Planner:
    """Plans the requests of one gateway."""

    def __init__(self, settings: Settings, engine: Engine, catalog: Catalog,
                 deployments: Deployments, consultant: Consultant, affinity: Affinity):
        self.settings = settings
        self.engine = engine
        self.catalog = catalog
        self.deployments = deployments
        self.consultant = consultant
        self.affinity = affinity
        self.aliases = Aliases.build(settings.model_aliases, {
            name: deployments.get(name)[1] for name in deployments.names()})

    def route_request(self, req: ChatRequest, principal: Principal) -> RouteRequest:
        body = req.body
        return RouteRequest.from_messages(
            body["messages"], max_output_tokens=req.max_output_tokens, tools=body.get("tools"),
            response_format=body.get("response_format"), allowed_models=req.allowed_models,
            excluded_models=req.excluded_models, key_models=principal.models or (), user=req.user,
            metadata=req.metadata)

    def requested_policy(self, req: ChatRequest, principal: Principal) -> str | None:
        """The policy `auto` / `auto/<policy>` asks for (None: a concrete model), if the key may
        use it."""
        if not (req.model == AUTO or req.model.startswith(AUTO + "/")):
            return None
        policy = req.model[len(AUTO) + 1 :] or self.settings.routing.default_policy
        if principal.policies is not None and policy not in principal.policies:
            raise PermissionDeniedError(f"This key may not use policy {policy!r}.", param="model")
        return policy

    def plan(self, req: ChatRequest, principal: Principal = OPEN, *,
             policy: str | None = None) -> Coroutine[Any, Any, Plan]:
        """Decide the chain: route with `policy` (an experiment arm's or a downgrade's, chosen
        by the gateway), else as `auto` / `auto/<policy>` asks, else check a concrete model.
        A name that cannot be an alias (auto[/policy], a served model) is planned by `_plan`'s
        coroutine itself (issue 17: no coroutine of this method's around it); any other goes
        through `_plan_alias`. Either way every error raises where the coroutine is awaited."""
        if not self._aliasable(req.model):
            return self._plan(req, principal, policy)
        return self._plan_alias(req, principal, policy)

    async def _plan_alias(self, req: ChatRequest, principal: Principal, policy: str | None
                          ) -> Plan:
        """`plan` of a name that may be an alias (or a snapshot name), else planned as it is."""
        resolved = self.aliases.resolve(req.model)
        if resolved is None:
            return await self._plan(req, principal, policy)
        # planned as its target (once: a target is never an alias); the reason says what was asked
        plan = await self._plan(self._aliased(req, resolved.target), principal, policy)
        return replace(plan, reason=f"{req.model!r} -> {resolved.target} ({resolved.via}); "
                                    f"{plan.reason}")

    async def _plan(self, req: ChatRequest, principal: Principal, policy: str | None) -> Plan:
        route = self.route_request(req, principal)
        policy = policy or self.requested_policy(req, principal)
        if policy is not None:
            return await self._plan_auto(req, route, policy, principal.name)
        return self._plan_concrete(req, route, principal)

    def _aliasable(self, name: str) -> bool:
        """Whether `name` may be an alias: not auto[/policy], not a served model."""
        return not (name == AUTO or name.startswith(AUTO + "/") or name in self.deployments)

    def _aliased(self, req: ChatRequest, target: str) -> ChatRequest:
        """The request as its alias's target asks; a tier: its primary model, its fallbacks
        next (then the request's own)."""
        tier = self.settings.tiers.get(target)
        if tier is None or target in self.deployments:
            return replace(req, model=target)
        return replace(req, model=tier.model, fallbacks=(*tier.fallbacks, *req.fallbacks))

    async def _plan_auto(self, req: ChatRequest, route: RouteRequest, policy: str,
                         scope: str | None = None) -> Plan:
        # The Plan is what `engine.decide(..., estimate=False)`'s Decision would give, built from
        # the verdict and the chain without that Decision (issue 17): the Plan carries no cost
        # estimate (limits price its chain themselves, the ledger the answer). `engine.verdict`
        # without its coroutine: only a consultation is awaited; an unknown policy: its first
        # step refuses it (404)
        _, _, found, verdict = self.engine.first_outcome(route, policy=policy)
        record: Consulted | None = None
        if isinstance(verdict, Consult):
            # the consultations' record, made at the first one (most plans have none: no record
            # nor caller to build per request)
            consulted: list[Consulted] = []

            async def classify(call: LLMCall) -> str:
                if not consulted:
                    consulted.append(Consulted())
                return await self.consultant.call(call, consulted[0])

            verdict = await self.engine.resolve(verdict, classify)
            record = consulted[0] if consulted else None
        tier, models, note = self.engine.chain(verdict, found)
        # the engine's chain has no repeats: only the request's own fallbacks can add one
        chain = models if not req.fallbacks else tuple(dict.fromkeys(
            (*models, *self._fallbacks(req, route))))
        plan = Plan(chain, tier, verdict.router, policy, verdict.confidence,
                    verdict.reason + note, route.input_tokens, verdict.explored, verdict.latent,
                    () if record is None else tuple(record.attempts),
                    None if record is None else record.cost_usd)
        if not self.affinity.enabled:  # `steer` would hand the plan back as it is
            return plan
        # after the router's verdict: stay on the conversation's warm model when that pays
        return await self.affinity.steer(plan, req, scope, found.excluded,
                                         self.engine.expected_usage(route))

    def _plan_concrete(self, req: ChatRequest, route: RouteRequest, principal: Principal) -> Plan:
        spec = self.served(req.model)
        if principal.models is not None and not matches(spec, principal.models):
            raise PermissionDeniedError(f"This key may not use model {req.model!r}.", param="model")
        reason = exclusion_reason(spec, route)
        if reason is not None:
            raise NoEligibleModelError({spec.name: reason}, param="model")
        chain = (spec.name, *self._fallbacks(req, route))
        return Plan(tuple(dict.fromkeys(chain)), spec.tier or "-", "none", None, 1.0,
                    "model requested explicitly", route.input_tokens)

    def served(self, name: str) -> ModelSpec:
        spec = self.catalog.get(name)
        if spec is None or name not in self.deployments:
            served = ", ".join(["auto", *(f"auto/{p}" for p in self.engine.policies),
                                *self.deployments.names()])
            raise UnknownModelError(f"The model {name!r} is not served by this gateway. "
                                    f"Available: {served}", param="model")
        return spec

    def _fallbacks(self, req: ChatRequest, route: RouteRequest) -> list[str]:
        """The request's own `models` fallbacks: must be served; ineligible ones are skipped."""
        return [name for name in req.fallbacks
                if exclusion_reason(self.served(name), route) is None]
