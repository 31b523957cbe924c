"""The one orchestrator of a chat request: plan (route or take the requested model, check constraints
and the caller's key), call the chain through fallbacks/retries/cooldowns, and describe what happened.

Used by the HTTP server and by the in-process `Client` alike: there is no second implementation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .accounting import Accountant
from .constraints import exclusion_reason, matches
from .deployments import Deployments
from .engine import Engine
from .errors import (
    LLMRouteError,
    NoEligibleModelError,
    PermissionDeniedError,
    UnknownModelError,
    UpstreamError,
)
from .ledger.entry import LedgerEntry
from .resilience import Attempt, CooldownPolicy, Cooldowns, RetryPolicy, call_with_fallbacks
from .routers.base import LLMCall
from .server.wire import ChatRequest
from .settings import Settings
from .types import RouteRequest, Usage

JSON = dict[str, Any]
AUTO = "auto"
log = logging.getLogger("llmroute.gateway")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a gateway key's name and what it may use (None: no restriction)."""

    name: str | None = None
    models: tuple[str, ...] | None = None
    policies: tuple[str, ...] | None = None


OPEN = Principal()


@dataclass(frozen=True)
class Plan:
    """What the gateway will try, and why."""

    chain: tuple[str, ...]
    tier: str
    router: str
    policy: str | None
    confidence: float
    reason: str
    input_tokens: int


@dataclass
class Outcome:
    """What happened to one request: the plan, the model that answered, attempts, usage and cost.
    For a stream, usage and cost are filled in when the stream ends."""

    request_id: str
    plan: Plan
    model: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage | None = None
    cost_usd: Decimal | None = None
    started: float = field(default_factory=time.monotonic)
    finished: bool = False

    def headers(self) -> dict[str, str]:
        """The `x-llmroute-*` response headers."""
        tried = [a for a in self.attempts if not a.skipped]
        out = {
            "x-llmroute-request-id": self.request_id,
            "x-llmroute-model": self.model,
            "x-llmroute-tier": self.plan.tier,
            "x-llmroute-router": self.plan.router,
            "x-llmroute-confidence": f"{self.plan.confidence:.3f}",
            "x-llmroute-attempts": str(len(tried)),
        }
        if self.plan.policy:
            out["x-llmroute-policy"] = self.plan.policy
        if self.finished:
            out["x-llmroute-cost-usd"] = "unpriced" if self.cost_usd is None else f"{self.cost_usd:f}"
        return out


def usage_of(payload: Mapping[str, Any]) -> Usage | None:
    """Our Usage from an OpenAI `usage` object (cached tokens are part of the prompt tokens)."""
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details") or {}
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                 int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0)


class Gateway:
    """Routes and serves chat requests for one Settings object."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 deployments: Deployments | None = None, environ: Mapping[str, str] | None = None,
                 recorder: Callable[[LedgerEntry], None] | None = None):
        self.settings = settings
        self.engine = engine or Engine(settings)
        self.catalog = self.engine.catalog
        self.accountant = Accountant(self.catalog, self.engine.baseline_model, settings.ledger)
        self.recorder = recorder
        self.deployments = deployments or Deployments.from_settings(settings, self.catalog, environ)
        res = settings.resilience
        self.retry = RetryPolicy(res.retry.max_attempts, res.retry.backoff_base_s,
                                 res.retry.backoff_max_s, res.retry.jitter,
                                 max_retry_after_s=res.retry.max_retry_after_s)
        self.cooldowns = Cooldowns(CooldownPolicy(res.cooldown.failures, res.cooldown.cooldown_s))
        self.rng = random.Random()  # backoff jitter; seeding one per request would cost ~14 µs

    async def aclose(self) -> None:
        """Close every upstream connection pool."""
        await self.deployments.aclose()

    def readiness(self) -> dict[str, Any]:
        """Per-tier availability (a served model of the tier, primary, fallback or tiered in
        `models:`, whose breaker is not open) and breaker states."""
        states = {model: self.cooldowns.state(model) for model in self.deployments.names()}
        tiers = {
            tier: any(states.get(name, "open") != "open" for name in self._tier_models(tier))
            for tier in self.settings.tier_names
        }
        return {
            "status": "ready" if all(tiers.values()) else "degraded",
            "tiers": tiers,
            "upstreams": states,
            "unserved": dict(self.deployments.missing),
        }

    def _tier_models(self, tier: str) -> list[str]:
        table = self.settings.tiers[tier]
        return [table.model, *table.fallbacks, *(spec.name for spec in self.catalog.by_tier(tier))]

    # -- planning ---------------------------------------------------------------------------
    def _route_request(self, req: ChatRequest, principal: Principal) -> RouteRequest:
        body = req.body
        return RouteRequest.from_messages(
            body["messages"], max_output_tokens=req.max_output_tokens, tools=body.get("tools"),
            response_format=body.get("response_format"), allowed_models=req.allowed_models,
            excluded_models=req.excluded_models, key_models=principal.models or (),
            user=body.get("user") if isinstance(body.get("user"), str) else None)

    async def plan(self, req: ChatRequest, principal: Principal = OPEN) -> Plan:
        """Decide the chain: route `auto` / `auto/<policy>`, or check a concrete model."""
        route = self._route_request(req, principal)
        if req.model == AUTO or req.model.startswith(AUTO + "/"):
            return await self._plan_auto(req, route, principal)
        return self._plan_concrete(req, route, principal)

    async def _plan_auto(self, req: ChatRequest, route: RouteRequest, principal: Principal) -> Plan:
        policy = req.model[len(AUTO) + 1 :] or self.settings.routing.default_policy
        if principal.policies is not None and policy not in principal.policies:
            raise PermissionDeniedError(f"This key may not use policy {policy!r}.", param="model")
        self.engine.router(policy)  # unknown policy -> 404 before any work
        decision = await self.engine.decide(route, policy=policy, caller=self._classify)
        chain = (*decision.chain, *self._fallbacks(req, route))
        return Plan(tuple(dict.fromkeys(chain)), decision.tier, decision.router, policy,
                    decision.confidence, decision.reason, decision.input_tokens)

    def _plan_concrete(self, req: ChatRequest, route: RouteRequest, principal: Principal) -> Plan:
        spec = self._served(req.model)
        if principal.models is not None and not matches(spec, principal.models):
            raise PermissionDeniedError(f"This key may not use model {req.model!r}.", param="model")
        reason = exclusion_reason(spec, route)
        if reason is not None:
            raise NoEligibleModelError({spec.name: reason}, param="model")
        chain = (spec.name, *self._fallbacks(req, route))
        return Plan(tuple(dict.fromkeys(chain)), spec.tier or "-", "none", None, 1.0,
                    "model requested explicitly", route.input_tokens)

    def _served(self, name: str) -> Any:
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
                if exclusion_reason(self._served(name), route) is None]

    async def _classify(self, call: LLMCall) -> str:
        """Perform an LLM-as-router consultation (one attempt, no fallbacks)."""
        provider, upstream = self.deployments.get(call.model)
        body = {"messages": list(call.messages), "max_tokens": call.max_tokens,
                "temperature": call.temperature}
        response = await provider.complete(body, upstream)
        content = response["choices"][0]["message"].get("content")
        return content if isinstance(content, str) else ""

    # -- calling ----------------------------------------------------------------------------
    async def _call(self, chain: tuple[str, ...], attempt: Any) -> tuple[Any, list[Attempt]]:
        res = self.settings.resilience
        window = self.catalog.get
        return await call_with_fallbacks(
            chain, attempt, retry=self.retry, cooldowns=self.cooldowns, deadline_s=res.deadline_s,
            context_window=lambda m: (s.context_window if (s := window(m)) else None),
            content_policy_chain=res.content_policy_fallbacks, rng=self.rng)

    def _account(self, req: ChatRequest, principal: Principal, outcome: Outcome | None,
                 error: LLMRouteError | None, *, request_id: str, started: float, stream: bool,
                 ttft_s: float | None = None, response: str | None = None) -> None:
        """Hand the request's ledger entry to the recorder (never raises into the request)."""
        if self.recorder is None:
            return
        try:
            entry = self.accountant.entry(
                request_id=request_id, started=started, now=time.monotonic(), outcome=outcome,
                error=error, body=req.body, key_name=principal.name, stream=stream, ttft_s=ttft_s,
                response=response)
            self.recorder(entry)
        except Exception:  # accounting must never break serving; the failure is logged
            log.exception("could not record request %s in the ledger", request_id)

    def _finish(self, outcome: Outcome, usage: Usage | None, payload: JSON | None = None) -> None:
        """Fill in usage and cost; with `payload` (the answer, or the stream's usage chunk), also
        report the cost in its `usage.cost` (USD, as OpenRouter does) when the model is priced."""
        outcome.usage = usage
        spec = self.catalog.get(outcome.model)
        outcome.cost_usd = spec.cost(usage) if spec is not None and usage is not None else None
        outcome.finished = True
        if payload is not None and outcome.cost_usd is not None and isinstance(payload.get("usage"), dict):
            payload["usage"]["cost"] = float(outcome.cost_usd)

    async def complete(self, req: ChatRequest, principal: Principal = OPEN,
                       request_id: str | None = None) -> tuple[JSON, Outcome]:
        """A non-streaming completion; the response's `model` names the model that answered."""
        rid, started, outcome = request_id or new_request_id(), time.monotonic(), None
        try:
            outcome = Outcome(rid, await self.plan(req, principal))
            response = await self._complete(req, outcome)
        except LLMRouteError as exc:
            self._account(req, principal, outcome, exc, request_id=rid, started=started,
                          stream=False)
            raise
        self._account(req, principal, outcome, None, request_id=rid, started=started,
                      stream=False, response=_answer_text(response))
        return response, outcome

    async def _complete(self, req: ChatRequest, outcome: Outcome) -> JSON:
        """Call the plan's chain; fills in the outcome."""

        async def attempt(model: str, timeout_s: float) -> tuple[str, JSON]:
            provider, upstream = self.deployments.get(model)
            try:
                async with asyncio.timeout(timeout_s):
                    return model, await provider.complete(req.body, upstream)
            except TimeoutError:
                raise UpstreamError("timeout", f"{model}: no answer within the request deadline",
                                    provider=provider.name, model=upstream) from None

        (model, answer), outcome.attempts = await self._call(outcome.plan.chain, attempt)
        response: JSON = answer
        outcome.model = model
        response["model"] = model
        self._finish(outcome, usage_of(response), response)
        return response

    async def stream(self, req: ChatRequest, principal: Principal = OPEN,
                     request_id: str | None = None) -> tuple[Outcome, AsyncIterator[JSON]]:
        """A streaming completion. Fallbacks apply until the first chunk arrives; after that a
        failure raises from the iterator (the server turns it into an SSE error event)."""
        rid, started, outcome = request_id or new_request_id(), time.monotonic(), None
        try:
            outcome = Outcome(rid, await self.plan(req, principal))
            first, chunks = await self._open_stream(req, outcome)
        except LLMRouteError as exc:
            self._account(req, principal, outcome, exc, request_id=rid, started=started,
                          stream=True)
            raise
        meta = _StreamMeta(req, principal, started)
        return outcome, self._relay(outcome, first, chunks, meta)

    async def _open_stream(self, req: ChatRequest, outcome: Outcome
                           ) -> tuple[JSON, AsyncIterator[JSON]]:
        options = dict(req.body.get("stream_options") or {})
        body = {**req.body, "stream_options": {**options, "include_usage": True}}

        async def attempt(model: str, timeout_s: float) -> tuple[str, JSON, AsyncIterator[JSON]]:
            provider, upstream = self.deployments.get(model)
            chunks = provider.stream(body, upstream)
            try:
                async with asyncio.timeout(timeout_s):
                    first = await anext(aiter(chunks))
            except TimeoutError:
                await _close(chunks)
                raise UpstreamError("timeout", f"{model}: no first chunk within the deadline",
                                    provider=provider.name, model=upstream) from None
            except StopAsyncIteration:
                raise UpstreamError("connection", f"{model}: empty stream",
                                    provider=provider.name, model=upstream) from None
            except BaseException:
                await _close(chunks)
                raise
            return model, first, chunks

        (model, first, chunks), outcome.attempts = await self._call(outcome.plan.chain, attempt)
        outcome.model = model
        return first, chunks

    async def _relay(self, outcome: Outcome, first: JSON, chunks: AsyncIterator[JSON],
                     meta: _StreamMeta) -> AsyncIterator[JSON]:
        usage: Usage | None = None
        error: LLMRouteError | None = CLIENT_CLOSED
        ttft = time.monotonic() - meta.started
        try:
            chunk: JSON | None = first
            while chunk is not None:
                found = usage_of(chunk)
                usage = found or usage
                chunk["model"] = outcome.model
                meta.collect(chunk)
                if meta.req.include_usage:
                    if found is not None:  # the cost is known once usage is: say it in this chunk
                        self._finish(outcome, usage, chunk)
                    yield chunk
                elif found is None or chunk.get("choices"):
                    chunk.pop("usage", None)
                    yield chunk
                chunk = await anext(chunks, None)
            if not outcome.finished:  # else the usage chunk already settled usage and cost
                self._finish(outcome, usage)
            error = None
        except LLMRouteError as exc:
            error = exc
            raise
        finally:
            await _close(chunks)
            self._account(meta.req, meta.principal, outcome, error, request_id=outcome.request_id,
                          started=meta.started, stream=True, ttft_s=ttft,
                          response="".join(meta.text) if self.accountant.store_text else None)


@dataclass
class _StreamMeta:
    """What the relay of a stream needs for its ledger entry."""

    req: ChatRequest
    principal: Principal
    started: float
    text: list[str] = field(default_factory=list)

    def collect(self, chunk: Mapping[str, Any]) -> None:
        """Keep the streamed answer's text (for the ledger, when text is stored)."""
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                self.text.append(content)


#: A stream the client stopped reading before it ended.
CLIENT_CLOSED = LLMRouteError("The client closed the stream before it ended.",
                              code="client_closed_request")
CLIENT_CLOSED.status = 499


def _answer_text(response: Mapping[str, Any]) -> str | None:
    choices = response.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return None
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else None


async def _close(chunks: AsyncIterator[JSON]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


def new_request_id() -> str:
    """A unique, unguessable request id (`req_` + 32 hex digits of the OS's CSPRNG)."""
    return f"req_{os.urandom(16).hex()}"
