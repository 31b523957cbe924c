"""Embeddings passed through (`POST /v1/embeddings`): a concrete embedding model (`embeddings:` in
config; never routed), served by an OpenAI-compatible deployment, under the caller's key's model
rights and limits, ledgered with its usage and cost (input tokens at the model's price: config,
else the bundled LiteLLM map's embedding entry). Upstream errors are mapped at the edge as for
chat. The core: no HTTP-layer imports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from .catalog import ModelSpec
from .constraints import matches
from .control.limits import Amount, Limiter, Refused, Subject, Ticket, usd_units
from .embeddings_config import embedding_price, upstream_of
from .errors import (
    InvalidRequestError,
    LLMRouteError,
    PermissionDeniedError,
    UnknownModelError,
    UpstreamError,
)
from .ledger.entry import LedgerEntry
from .outcome import Principal
from .providers import openai_errors
from .providers.http import TRANSPORT_ERRORS, transport_error
from .providers.openai_compat import JSON_HEADERS, OpenAICompatProvider
from .settings import Settings
from .types import Usage

JSON = dict[str, Any]
_FORMATS = ("float", "base64")
_PASSED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


@dataclass(frozen=True)
class EmbeddingModel:
    """One servable embedding model."""

    spec: ModelSpec  # its name, provider and price (output: $0)
    provider: OpenAICompatProvider
    upstream: str


def check_body(data: Mapping[str, Any]) -> tuple[str, int]:
    """Validate an embeddings request; its model and estimated input tokens."""
    for key in data:
        if key not in _PASSED:
            raise InvalidRequestError(f"Unknown parameter: '{key}'.", param=key,
                                      code="unknown_parameter")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("You must provide a model parameter (an embedding model).",
                                  param="model")
    items = data.get("input")
    items = [items] if isinstance(items, str) else items
    if not (isinstance(items, list) and items and (_tokens(items) or all(
            (isinstance(i, str) and i) or _tokens(i) for i in items))):
        raise InvalidRequestError("Invalid value for 'input': expected a non-empty string, or a "
                                  "non-empty list of strings or of token arrays.", param="input")
    if data.get("encoding_format", "float") not in _FORMATS:
        raise InvalidRequestError("Invalid value for 'encoding_format': expected float or "
                                  "base64.", param="encoding_format")
    dimensions = data.get("dimensions")
    if dimensions is not None and not (type(dimensions) is int and dimensions > 0):
        raise InvalidRequestError("Invalid value for 'dimensions': expected a positive integer.",
                                  param="dimensions")
    estimate = (len(items) if _tokens(items) else
                sum(len(i) if isinstance(i, list) else len(i) // 4 + 1 for i in items))
    return model, estimate


def _tokens(value: Any) -> bool:
    """A non-empty list of token ids."""
    return isinstance(value, list) and bool(value) and all(type(t) is int for t in value)


class Embeddings:
    """The embedding models of one gateway, with their deployments, limits and ledger."""

    def __init__(self, models: Mapping[str, EmbeddingModel], limiter: Limiter,
                 recorder: Callable[[LedgerEntry], None] | None):
        self.models = dict(models)
        self.limiter = limiter
        self.recorder = recorder

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str], limiter: Limiter,
                      recorder: Callable[[LedgerEntry], None] | None) -> Embeddings:
        """One adapter per OpenAI-compatible deployment an embedding model names (others are
        skipped: `llmroute config check` reports them)."""
        built: dict[str, OpenAICompatProvider] = {}
        models: dict[str, EmbeddingModel] = {}
        for name, config in settings.embeddings.models.items():
            deployment = settings.providers.get(config.deployment)
            if deployment is None or deployment.type != "openai":
                continue
            if config.deployment not in built:
                key = environ.get(deployment.api_key_env) if deployment.api_key_env else None
                built[config.deployment] = OpenAICompatProvider(config.deployment, deployment, key)
            upstream = upstream_of(name, config)
            price = embedding_price(name, upstream, config.input_per_m)
            spec = ModelSpec(name, config.deployment, price, Decimal(0) if price is not None
                             else None, source="embeddings")
            models[name] = EmbeddingModel(spec, built[config.deployment], upstream)
        return cls(models, limiter, recorder)

    def model(self, name: str, principal: Principal) -> EmbeddingModel:
        """The served model `name` (404 when not served, 403 when the key may not use it)."""
        found = self.models.get(name)
        if found is None:
            served = ", ".join(sorted(self.models)) or "none are configured (`embeddings:`)"
            raise UnknownModelError(f"The model {name!r} is not a served embedding model "
                                    f"(embedding models are never routed). Served: {served}.",
                                    param="model")
        if principal.models is not None and not matches(found.spec, principal.models):
            raise PermissionDeniedError(f"This key may not use model {name!r}.", param="model")
        return found

    async def create(self, data: Mapping[str, Any], principal: Principal, request_id: str,
                     user: str | None = None) -> JSON:
        """Embed: check, reserve under the limits, call, settle and record."""
        started = time.monotonic()
        name, estimate = check_body(data)
        user = data.get("user") if isinstance(data.get("user"), str) else user
        model: EmbeddingModel | None = None
        ticket: Ticket | None = None
        usage: Usage | None = None
        cost: Decimal | None = None
        try:
            model = self.model(name, principal)
            ticket = await self._reserve(model, principal, user, estimate)
            answer = await self._call(model, data)
            reported = _prompt_tokens(answer)
            usage = Usage(estimate if reported is None else reported, 0)
            cost = model.spec.cost(usage)
            answer["model"] = name
            answer.setdefault("usage", {})["cost"] = None if cost is None else float(cost)
        except LLMRouteError as exc:
            await self._settle(ticket, usage, cost)
            self._record(request_id, started, principal, user, name, None, None, exc)
            raise
        await self._settle(ticket, usage, cost)
        self._record(request_id, started, principal, user, name, usage, cost, None,
                     estimated=_prompt_tokens(answer) is None)
        return answer

    async def _reserve(self, model: EmbeddingModel, principal: Principal, user: str | None,
                       estimate: int) -> Ticket | None:
        if not self.limiter.limits:
            return None
        cost = model.spec.cost(Usage(estimate, 0))
        amount = Amount(usd=usd_units(cost) if cost is not None else 0, tokens=estimate)
        who = Subject(key=principal.name, team=principal.team, user=user, model=model.spec.name)
        found = await self.limiter.admit(who, amount)
        if isinstance(found, Refused):
            raise found.error()
        return found

    async def _settle(self, ticket: Ticket | None, usage: Usage | None,
                      cost: Decimal | None) -> None:
        if ticket is not None and ticket.meters:
            await self.limiter.settle(ticket, Amount(
                usd=usd_units(cost) if cost is not None else 0,
                tokens=usage.input_tokens if usage else 0))

    async def _call(self, model: EmbeddingModel, data: Mapping[str, Any]) -> JSON:
        provider, upstream = model.provider, model.upstream
        payload = orjson.dumps({**data, "model": upstream})
        try:
            async with asyncio.timeout(provider.config.timeout.total_s):
                reply = await provider.http.post("/embeddings", payload, JSON_HEADERS)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider.name, upstream) from None
        if reply.status >= 400:
            raise openai_errors.from_response(reply.status, reply.content, reply.headers,
                                              provider.name, upstream)
        try:
            answer = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise UpstreamError("server", f"{provider.name} returned an invalid embeddings "
                                "answer", provider=provider.name, model=upstream)
        return answer

    def _record(self, request_id: str, started: float, principal: Principal, user: str | None,
                model: str, usage: Usage | None, cost: Decimal | None,
                error: LLMRouteError | None, *, estimated: bool = False) -> None:
        if self.recorder is None:
            return
        self.recorder(LedgerEntry(
            request_id=request_id, ts=datetime.now(UTC), status="ok" if error is None else "error",
            http_status=200 if error is None else error.status, key_name=principal.name,
            user=user, router="embeddings", model=model,
            error_type=error.type if error else None, error_code=error.code if error else None,
            latency_s=time.monotonic() - started,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=0 if usage else None, usage_estimated=estimated, cost_usd=cost))

    async def aclose(self) -> None:
        """Close the deployments' connection pools."""
        for provider in {id(m.provider): m.provider for m in self.models.values()}.values():
            await provider.aclose()


def _prompt_tokens(answer: Mapping[str, Any]) -> int | None:
    """The upstream's input tokens (None: it reported none)."""
    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
    return tokens if type(tokens) is int else None
