"""What the gateway knows about one request as it moves through its stages: who is calling
(`Principal`), what it will try (`Plan`), and what happened (`Outcome`). Plain data shared by the
gateway, accounting and the control plane."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .frozen import quick_init
from .resilience import Attempt
from .types import Usage


@dataclass(frozen=True)
class Principal:
    """Who is calling: a gateway key's name, its team and what it may use (None: no restriction);
    `admin` may see every key's traffic and the metrics (an open gateway's caller is one)."""

    name: str | None = None
    models: tuple[str, ...] | None = None
    policies: tuple[str, ...] | None = None
    team: str | None = None
    admin: bool = False


OPEN = Principal(admin=True)


@quick_init
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
    #: Learning online: the plan came from exploration; the prompt's encoded latent.
    explored: bool = False
    latent: str | None = None
    #: The LLM router's classification calls (`consult`): their attempts and cost.
    router_attempts: tuple[Attempt, ...] = ()
    routing_cost_usd: Decimal | None = None
    #: Cache-aware routing (`cache.affinity`): stayed (on the conversation's warm model instead
    #: of the router's choice) | switched (the router's choice over a warm model) | warm (the
    #: router chose the warm model); None: no warm conversation known.
    affinity: str | None = None


@dataclass
class Outcome:
    """What happened to one request: the plan, the model that answered, attempts, usage and cost.
    For a stream, usage and cost are filled in when the stream ends. `usage_estimated` says the
    upstream reported no usage and the gateway counted the tokens itself."""

    request_id: str
    plan: Plan
    model: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage | None = None
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    #: Response headers added by stages before the call (admission: limits, experiment arm).
    extra_headers: dict[str, str] = field(default_factory=dict)
    experiment_arm: str | None = None
    #: What the experiment's shadow arms would have done (never called), for the ledger.
    shadow: list[dict[str, object]] = field(default_factory=list)
    #: The response cache (issue 15): hit | semantic | miss | bypass (None: the cache is off);
    #: on a hit, what the replaced upstream call cost, whose answer was served, and (semantic
    #: hits) how similar the prompts were.
    cache: str | None = None
    cache_saved_usd: Decimal | None = None
    cached_from: str | None = None
    cache_similarity: float | None = None

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
            **self.extra_headers,
        }
        if self.plan.policy:
            out["x-llmroute-policy"] = self.plan.policy
        if self.plan.affinity:
            out["x-llmroute-affinity"] = self.plan.affinity
        if self.plan.router_attempts:
            routed = [a for a in self.plan.router_attempts if not a.skipped]
            out["x-llmroute-router-attempts"] = str(len(routed))
        if self.finished:
            out["x-llmroute-cost-usd"] = "unpriced" if self.cost_usd is None else f"{self.cost_usd:f}"
        return out


def usage_of(payload: Mapping[str, Any]) -> Usage | None:
    """Our Usage from an OpenAI `usage` object. Cache reads (`prompt_tokens_details.cached_tokens`)
    and writes (`prompt_tokens_details.cache_write_tokens`, as the Anthropic translation and
    OpenRouter report them; or Anthropic's own `cache_creation_input_tokens` where a compatible
    upstream passes it) are part of the prompt tokens."""
    usage = payload.get("usage")
    if type(usage) is not dict and not isinstance(usage, Mapping):  # a dict: no ABC check
        return None
    details = usage.get("prompt_tokens_details")
    if details is None or (type(details) is not dict and not isinstance(details, Mapping)):
        details = {}  # None (mostly absent): not a Mapping, no ABC check for it
    written = details.get("cache_write_tokens") or usage.get("cache_creation_input_tokens") or 0
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                 int(details.get("cached_tokens") or 0), int(written),
                 int(details.get("cache_write_1h_tokens") or 0))
