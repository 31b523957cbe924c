"""The LLM router's classification calls, made like any other upstream call (issue 14): through
the retry policy and the per-deployment breakers (`resilience.call_with_fallbacks`, one model, the
call's `timeout_s` as its deadline), each try recorded as a router attempt of the request, and the
answer's cost counted. While the router model's breaker is open the call is skipped at once, so the
router gives its default verdict (a cascade moves on to its next stage) without waiting."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .catalog import Catalog
from .deployments import Deployments
from .errors import LLMRouteError
from .ledger.aggregates import exact_sum
from .outcome import usage_of
from .resilience import Attempt, Cooldowns, RetryPolicy, attempt_log, call_with_fallbacks
from .routers.base import LLMCall

JSON = dict[str, Any]


@dataclass
class Consulted:
    """One request's classification calls: their attempts (marked `router`) and what they cost
    (None: no priced call answered)."""

    attempts: list[Attempt] = field(default_factory=list)
    cost_usd: Decimal | None = None

    def add(self, log: list[Attempt]) -> None:
        self.attempts.extend(replace(a, router=True) for a in log)

    def charge(self, cost: Decimal | None) -> None:
        if cost is not None:
            self.cost_usd = cost if self.cost_usd is None else exact_sum(self.cost_usd, cost)


class Consultant:
    """Performs classification calls for one gateway, with its deployments, retry policy and
    breakers (the same breakers as the model's answers: a dead model is dead for both)."""

    def __init__(self, deployments: Deployments, catalog: Catalog, retry: RetryPolicy,
                 cooldowns: Cooldowns, rng: random.Random):
        self.deployments = deployments
        self.catalog = catalog
        self.retry = retry
        self.cooldowns = cooldowns
        self.rng = rng

    async def call(self, call: LLMCall, into: Consulted) -> str:
        """The classifier's reply text; raises (the router then defaults) when every try failed
        or the breaker skipped the model. Attempts and cost go `into` the request's tally."""
        body = {"messages": list(call.messages), "max_tokens": call.max_tokens,
                "temperature": call.temperature}

        async def attempt(model: str, timeout_s: float) -> JSON:
            provider, upstream = self.deployments.get(model)
            return await provider.complete(body, upstream)

        try:
            response, log = await call_with_fallbacks(
                (call.model,), attempt, retry=self.retry, cooldowns=self.cooldowns,
                deadline_s=call.timeout_s, rng=self.rng)
        except LLMRouteError as exc:
            into.add(attempt_log(exc))
            raise
        into.add(log)
        usage = usage_of(response)
        into.charge(None if usage is None else self.catalog.cost(call.model, usage))
        content = response["choices"][0]["message"].get("content")
        return content if isinstance(content, str) else ""
