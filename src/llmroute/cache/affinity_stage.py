"""Cache-aware routing as a gateway stage (`cache.affinity`): after the router's verdict on an
`auto` request, stay on the conversation's warm model when that is cheaper and no less capable
(`affinity.weigh`), and say so in the plan's reason; after each answer, remember which model now
holds the conversation's prompt cache. Routers stay pure: this runs after them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..catalog import Catalog
from ..chat import ChatRequest
from ..outcome import Outcome, Plan
from ..settings import Settings
from ..types import Usage
from .affinity import (
    Warm,
    Warmth,
    answered_keys,
    cached_prefix,
    merged,
    picked,
    prefix_key,
    session_key,
    session_of,
    weigh,
)
from .affinity_store import AffinityStore, open_affinity
from .config import AffinityConfig

#: Whether a model can be called now (served here, its breaker not open).
Available = Callable[[str], bool]


def router_pick(plan: Plan) -> str | None:
    """The model the router chose for `plan`: its first, or where affinity stayed (putting the
    warm model first and keeping the router's chain after it), its second."""
    if plan.affinity == "stayed":
        return plan.chain[1] if len(plan.chain) > 1 else None
    return plan.chain[0] if plan.chain else None


class Affinity:
    """The stage for one gateway; `enabled` False makes both steps no-ops."""

    def __init__(self, config: AffinityConfig, catalog: Catalog, ladder: Sequence[str],
                 store: AffinityStore, available: Available,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.enabled = config.enabled
        self.catalog = catalog
        self.ladder = tuple(ladder)
        self.store = store
        self.available = available
        self.clock = clock
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, catalog: Catalog, available: Available) -> Affinity:
        """The stage over the store `cache.affinity` names (Redis with a Redis shared state)."""
        config = settings.cache.affinity
        store = open_affinity(config, settings.state)
        return cls(config, catalog, settings.tier_names, store, available)

    def key(self, req: ChatRequest, scope: str | None) -> str | None:
        """The conversation's key to look up: its session, else its prefix hash."""
        session = session_of(req.metadata, req.body)
        if session is not None:
            return session_key(scope, session)
        return prefix_key(scope, req.body.get("messages") or ())

    async def steer(self, plan: Plan, req: ChatRequest, scope: str | None,
                    excluded: Mapping[str, str], expected: Usage) -> Plan:
        """The router's plan, or the plan that stays on the conversation's warm model."""
        if not self.enabled or not plan.chain:
            return plan
        key = self.key(req, scope)
        warmth = self.live(await self.store.get(key)) if key is not None else ()
        return self.decide(plan, warmth, excluded, expected)

    def live(self, warmth: Warmth) -> Warmth:
        """The models seen within the cache's life (`ttl_s`)."""
        oldest = self.clock() - self.config.ttl_s
        return tuple(w for w in warmth if w.at >= oldest)

    def horizon(self, warmth: Warmth, chosen: str) -> int:
        """Calls to weigh, this one included: `horizon_turns`, or where that is 0, derived from
        how often the router chose `chosen` in this conversation: chosen k times so far (this
        call included), it is as likely to be chosen fewer than k more times as more (the
        median of a count seen without knowing how far along the conversation is), so this call
        and k more."""
        if self.config.horizon_turns:
            return self.config.horizon_turns
        return 2 + next((w.picks for w in warmth if w.model == chosen), 0)

    def decide(self, plan: Plan, warmth: Warmth, excluded: Mapping[str, str],
               expected: Usage) -> Plan:
        """Apply a conversation's models (newest first; the warm one is the newest whose cache
        holds `min_prefix_tokens`) to the router's plan (pure; microseconds)."""
        least = self.config.min_prefix_tokens
        warm = next((w for w in warmth if w.tokens >= least), None)
        if warm is None or not plan.chain:
            return plan
        chosen = plan.chain[0]
        tokens = min(warm.tokens, expected.input_tokens)
        if warm.model == chosen:
            return replace(plan, affinity="warm", reason=f"{plan.reason}; {chosen}'s prompt "
                                                         f"cache is warm (≈{tokens:,} tokens)")
        why_not = self._ineligible(warm.model, excluded)
        warm_spec, chosen_spec = self.catalog.get(warm.model), self.catalog.get(chosen)
        if why_not is None and (warm_spec is None or chosen_spec is None):
            why_not = "not in the catalog"
        if why_not is not None or warm_spec is None or chosen_spec is None:
            return replace(plan, affinity="switched", reason=f"{plan.reason}; {warm.model}'s "
                           f"warm cache (≈{tokens:,} tokens) not used: {why_not}")
        theirs = next((w.tokens for w in warmth if w.model == chosen and w.tokens >= least), 0)
        weighed = weigh(warm, warm_spec, chosen_spec, plan.tier, self.ladder, expected, theirs,
                        self.horizon(warmth, chosen))
        if not weighed.stay:
            return replace(plan, affinity="switched", reason=f"{plan.reason}; {weighed.note}")
        chain = (warm.model, *(m for m in plan.chain if m != warm.model))
        return replace(plan, chain=chain, tier=warm_spec.tier or plan.tier, affinity="stayed",
                       reason=f"{weighed.note}; the router said: {plan.reason}")

    def _ineligible(self, model: str, excluded: Mapping[str, str]) -> str | None:
        if model not in self.catalog:
            return "not in the routing pool"
        if model in excluded:
            return f"ineligible ({excluded[model]})"
        if not self.available(model):
            return "not available (unserved or cooling down)"
        return None

    def remember(self, req: ChatRequest, scope: str | None, outcome: Outcome,
                 answer: Mapping[str, Any]) -> None:
        """Record which model holds the conversation's cache after `answer` (the assistant
        message: content, tool_calls), and the router's pick; the store is written in the
        background."""
        if not self.enabled or outcome.usage is None or not outcome.model:
            return
        tokens = cached_prefix(self.catalog.get(outcome.model), outcome.usage)
        now = self.clock()
        session = session_of(req.metadata, req.body)
        earlier: str | None
        if session is not None:
            earlier = key = session_key(scope, session)
        else:
            earlier, key = answered_keys(scope, req.body.get("messages") or (), answer)
        fresh = Warm(outcome.model, now, tokens) if tokens >= self.config.min_prefix_tokens \
            else None
        task = asyncio.get_running_loop().create_task(
            self._write(key, earlier, fresh, router_pick(outcome.plan), now))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, earlier: str | None, warm: Warm | None, pick: str | None,
                     now: float) -> None:
        """The conversation's models after this turn: this turn's model first, then those seen
        before (their caches keep the shorter prefix they were given); the router's pick
        counted."""
        before = self.live(await self.store.get(earlier)) if earlier is not None else ()
        warmth = merged(warm, before)
        if pick is not None:
            warmth = picked(warmth, pick, now)
        if warmth:
            await self.store.put(key, warmth)

    async def aclose(self) -> None:
        """Finish pending writes, then close the store."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.store.aclose()
