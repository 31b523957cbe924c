"""The one orchestrator of a chat request: answer from the response cache, or plan (`planner.py`:
route or take the requested model, check constraints and the caller's key), call the chain through
fallbacks/retries/cooldowns, and describe what happened.

Used by the HTTP server and by the in-process `Client` alike: there is no second implementation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from .accounting import Accountant
from .after_answer import AfterAnswer
from .cache.affinity_stage import Affinity
from .cache.hits import HitServer, replayed
from .cache.response import OFF, ResponseCache
from .chat import ChatRequest
from .consult import Consultant
from .control.admission import Admission
from .control.limits import Refused, Ticket
from .control.shadows import Shadows
from .control.state_memory import MemoryState
from .deadlines import Deadlines
from .deployments import Deployments
from .engine import Engine
from .errors import (
    ClientClosedError,
    LLMRouteError,
    UpstreamError,
)
from .ledger.aggregates import exact_sum
from .ledger.entry import LedgerEntry
from .observe import Observer
from .outcome import OPEN, Outcome, Plan, Principal, usage_of
from .planner import Planner
from .recording import record_entry
from .relay import StreamMeta, answer_message, answer_text, close_stream, usage_dict
from .resilience import Attempt, CooldownPolicy, Cooldowns, RetryPolicy, call_with_fallbacks
from .settings import Settings
from .tokens import TokenCounter
from .types import Usage, estimate_tokens

JSON = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger("llmroute.gateway")


class Gateway:
    """Routes and serves chat requests for one Settings object."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 deployments: Deployments | None = None, environ: Mapping[str, str] | None = None,
                 recorder: Callable[[LedgerEntry], None] | None = None,
                 admission: Admission | None = None,
                 durable: Callable[[], Awaitable[None]] | None = None,
                 observer: Observer | None = None,
                 follower: Callable[[LedgerEntry], None] | None = None):
        self.settings = settings
        self.engine = engine or Engine(settings)
        self.catalog = self.engine.catalog
        self.accountant = Accountant(self.catalog, self.engine.baseline_model, settings.ledger)
        #: Handed every finished request's entry before its answer completes (the ledger: its
        #: write-ahead log append is part of the answer's durability).
        self.recorder = recorder
        #: Handed the same entry after the recorder, with no guarantee to keep (metrics, the
        #: request log): with `complete(..., defer=True)`, once the answer is on its way.
        self.follower = follower
        #: Told about every finished request (the tracer; None: nothing per request for it).
        self.observer = observer
        #: A stream's text is joined for the ledger or for an observer that wants it.
        self.keep_text = self.accountant.store_text or bool(observer and observer.wants_text)
        #: Awaited after recording, before the answer completes (the ledger log's fsync, when
        #: configured so); None: nothing to wait for.
        self.durable = durable
        self.admission = admission or Admission(settings, self.catalog, MemoryState())
        self.tokens = TokenCounter()
        self.shadows = Shadows(self.engine, settings.experiments)
        self.deployments = deployments or Deployments.from_settings(settings, self.catalog, environ)
        res = settings.resilience
        self.retry = RetryPolicy(res.retry.max_attempts, res.retry.backoff_base_s,
                                 res.retry.backoff_max_s, res.retry.jitter,
                                 max_retry_after_s=res.retry.max_retry_after_s)
        self.cooldowns = Cooldowns(CooldownPolicy(res.cooldown.failures, res.cooldown.cooldown_s))
        self.rng = random.Random()  # backoff jitter; seeding one per request would cost ~14 µs
        self.deadlines = Deadlines()  # every try's deadline on one timer (not one per request)
        self.consultant = Consultant(self.deployments, self.catalog, self.retry, self.cooldowns,
                                     self.rng)
        #: Cache-aware routing (`cache.affinity`): the conversation's warm model.
        self.affinity = Affinity.from_settings(settings, self.catalog, self._available)
        self.planner = Planner(settings, self.engine, self.catalog, self.deployments,
                               self.consultant, self.affinity)
        self.cache = ResponseCache.from_settings(settings)
        self.after = AfterAnswer(self.admission, self.cache)
        self.hits = HitServer(self.admission, self.catalog, self.requested_policy, self._account,
                              self._durable)

    def _available(self, model: str) -> bool:
        return model in self.deployments and self.cooldowns.state(model) != "open"

    async def aclose(self) -> None:
        """Finish settling streams' limits, then close every upstream connection pool."""
        await self.after.aclose()
        await self.affinity.aclose()
        await self.deployments.aclose()
        await self.cache.aclose()

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
    def requested_policy(self, req: ChatRequest, principal: Principal) -> str | None:
        """The policy `auto` / `auto/<policy>` asks for (None: a concrete model), if the key may
        use it."""
        return self.planner.requested_policy(req, principal)

    def plan(self, req: ChatRequest, principal: Principal = OPEN, *,
             policy: str | None = None) -> Coroutine[Any, Any, Plan]:
        """Decide the chain (`planner.Planner.plan`): the planner's coroutine itself, to await
        (no coroutine of this method's around it, issue 17; errors raise where it is awaited)."""
        return self.planner.plan(req, principal, policy=policy)

    # -- calling ----------------------------------------------------------------------------
    def _call(self, chain: tuple[str, ...], attempt: Callable[[str, float], Awaitable[T]]
              ) -> Awaitable[tuple[T, list[Attempt]]]:
        """`call_with_fallbacks` with this gateway's resilience: its coroutine itself, to await
        (no coroutine of this method's around it)."""
        res = self.settings.resilience
        return call_with_fallbacks(
            chain, attempt, retry=self.retry, cooldowns=self.cooldowns, deadline_s=res.deadline_s,
            context_window=self._context_window,
            content_policy_chain=res.content_policy_fallbacks, rng=self.rng,
            deadlines=self.deadlines)

    def _context_window(self, model: str) -> int | None:
        """The model's context window, if the catalog knows the model and it."""
        spec = self.catalog.get(model)
        return spec.context_window if spec is not None else None

    def _account(self, req: ChatRequest, principal: Principal, outcome: Outcome | None,
                 error: LLMRouteError | None, *, request_id: str, started: float, stream: bool,
                 ttft_s: float | None = None, response: str | None = None) -> None:
        """Hand the request's ledger entry to the recorder, then to the follower and the
        observer (never raises into the request)."""
        tell = self._record(req, principal, outcome, error, request_id=request_id,
                            started=started, stream=stream, ttft_s=ttft_s, response=response)
        if tell is not None:
            tell()

    def _record(self, req: ChatRequest, principal: Principal, outcome: Outcome | None,
                error: LLMRouteError | None, *, request_id: str, started: float, stream: bool,
                ttft_s: float | None = None, response: str | None = None
                ) -> Callable[[], None] | None:
        """The entry to the recorder now; what tells the follower and observer (`recording`)."""
        return record_entry(self.accountant, self.recorder, self.follower, self.observer, req,
                            principal, outcome, error, request_id=request_id, started=started,
                            stream=stream, ttft_s=ttft_s, response=response)

    async def _durable(self) -> None:
        """Wait until what was recorded is as durable as configured (never raises)."""
        if self.durable is None:
            return
        try:
            await self.durable()
        except Exception:
            log.exception("the ledger's write-ahead log could not be made durable")

    def _finish(self, outcome: Outcome, usage: Usage | None, payload: JSON | None = None, *,
                estimated: bool = False) -> None:
        """Fill in usage and cost (the LLM router's calls included); with `payload` (the answer,
        or the stream's usage chunk), also report the cost in its `usage.cost` (USD, as
        OpenRouter does) when the model is priced."""
        outcome.usage = usage
        outcome.usage_estimated = estimated
        spec = self.catalog.get(outcome.model)
        cost = spec.cost(usage) if spec is not None and usage is not None else None
        routing = outcome.plan.routing_cost_usd  # the LLM router's calls are part of the cost
        outcome.cost_usd = exact_sum(cost, routing) if cost is not None and routing is not None \
            else cost
        outcome.finished = True
        if payload is not None and outcome.cost_usd is not None and isinstance(payload.get("usage"), dict):
            payload["usage"]["cost"] = float(outcome.cost_usd)

    def _count(self, outcome: Outcome, req: ChatRequest, text: str) -> Usage:
        """Usage counted here when the upstream reported none: with the model family's tokenizer
        (OpenAI models, `tokens` extra), else the routing estimate of the prompt and ≈4
        characters per token of the answer."""
        if self.tokens.exact(outcome.model):
            return self.tokens.usage(req.body.get("messages") or (), text, outcome.model)
        return Usage(outcome.plan.input_tokens, estimate_tokens(len(text)))

    # -- admission ---------------------------------------------------------------------------
    async def admit(self, req: ChatRequest, principal: Principal, request_id: str
                    ) -> tuple[Outcome, Ticket]:
        """Admission and planning: the experiment arm (its policy serves the request), the plan,
        then the reservation on every limit; a hard limit rejects (429) or downgrades."""
        requested = self.requested_policy(req, principal)
        # no experiment: `assign` would answer None (no coroutine for it)
        arm = await self.admission.assign(req, principal, requested) \
            if self.admission.experiments else None
        # without an arm, the policy asked for (computed above; `_plan` would compute it again)
        plan = await self.plan(req, principal, policy=arm.policy if arm else requested)
        # no limits: `reserve` would answer a fresh Ticket() (no coroutine for it)
        ticket = await self.admission.reserve(req, principal, plan) \
            if self.admission.limiter.limits else Ticket()
        if isinstance(ticket, Refused):
            plan, ticket = await self._downgrade(req, principal, ticket)
        outcome = Outcome(request_id, plan, extra_headers=dict(ticket.headers))
        if arm is not None:
            outcome.experiment_arm = arm.label
            outcome.extra_headers["x-llmroute-experiment"] = arm.label
            if arm.shadows:
                outcome.shadow = await self.shadows.decide(self.planner.route_request(req, principal), arm)
        return outcome, ticket

    async def _downgrade(self, req: ChatRequest, principal: Principal, refused: Refused
                         ) -> tuple[Plan, Ticket]:
        allowance = refused.limit.allowance
        if allowance.on_exceed != "downgrade" or allowance.downgrade_to is None:
            raise refused.error()
        plan = await self.plan(req, principal, policy=allowance.downgrade_to)
        ticket = await self.admission.reserve(req, principal, plan,
                                              unchecked=frozenset({refused.limit.name}))
        if isinstance(ticket, Refused):
            raise ticket.error()
        ticket.headers.update({"x-llmroute-limit": refused.limit.name,
                               "x-llmroute-limit-action": "downgraded",
                               "x-llmroute-downgraded-to": allowance.downgrade_to})
        return plan, ticket

    # -- serving -------------------------------------------------------------------------------
    async def complete(self, req: ChatRequest, principal: Principal = OPEN,
                       request_id: str | None = None, *, defer: bool = False
                       ) -> tuple[JSON, Outcome]:
        """A non-streaming completion; the response's `model` names the model that answered.

        Before it returns, the request's ledger entry is recorded (its write-ahead log append,
        and the fsync with `wal.fsync: always`). The rest of the bookkeeping (limits settled,
        metrics, request log, traces, the response cache's copy) is done
        before it returns too, unless `defer`: then in a task of its own, which runs once the
        caller yields to the event loop (the server sends the answer first, without yielding);
        limits keep the request's reservation until then."""
        rid, started = request_id or new_request_id(), time.monotonic()
        probe = await self.cache.probe(req, principal) if self.cache.config.enabled else OFF
        # OFF holds no answer (`servable` says False) and marks nothing (no state, no header)
        if probe is not OFF and self.hits.servable(req, principal, probe):
            return await self.hits.serve(req, principal, probe, rid, started, stream=False)
        outcome: Outcome | None = None
        ticket: Ticket | None = None
        try:
            outcome, ticket = await self.admit(req, principal, rid)
            if probe is not OFF:
                probe.mark(outcome)
            response = await self._complete(req, outcome)
        except BaseException as exc:
            self.cache.release(probe)
            if not isinstance(exc, LLMRouteError):
                raise
            await self.admission.settle(ticket, outcome)
            self._account(req, principal, outcome, exc, request_id=rid, started=started,
                          stream=False)
            await self._durable()
            raise
        tell = self._record(req, principal, outcome, None, request_id=rid, started=started,
                            stream=False,
                            response=answer_text(response) if self.keep_text else None)
        if self.affinity.enabled:  # before the answer: the conversation's next turn reads it
            self.affinity.remember(req, principal.name, outcome, answer_message(response))
        if ticket.meters or probe.key:  # limits to settle or a copy to keep: something to await
            if defer:
                self.after.spawn(self.after.finish(ticket, outcome, tell, probe, response))
            else:
                await self.after.finish(ticket, outcome, tell, probe, response)
        elif tell is not None:  # only the follower and observer (`finish` would only tell them)
            if defer:  # a callback is cheaper than a task
                asyncio.get_running_loop().call_soon(tell)
            else:
                tell()
        if self.durable is not None:  # `_durable` has nothing to wait for otherwise
            await self._durable()
        return response, outcome

    async def _complete(self, req: ChatRequest, outcome: Outcome) -> JSON:
        """Call the plan's chain; fills in the outcome."""

        async def attempt(model: str, timeout_s: float) -> tuple[str, JSON]:
            # The request's one deadline is armed around each attempt by call_with_fallbacks.
            provider, upstream = self.deployments.get(model)
            return model, await provider.complete(req.body, upstream)

        (model, answer), outcome.attempts = await self._call(outcome.plan.chain, attempt)
        response: JSON = answer
        outcome.model = model
        response["model"] = model
        usage = usage_of(response)
        estimated = usage is None
        if usage is None:  # the upstream reported none: count it, and say so in the answer
            usage = self._count(outcome, req, answer_text(response) or "")
            response["usage"] = {**usage_dict(usage), "estimated": True}
        self._finish(outcome, usage, response, estimated=estimated)
        return response

    async def stream(self, req: ChatRequest, principal: Principal = OPEN,
                     request_id: str | None = None, *, defer: bool = False
                     ) -> tuple[Outcome, AsyncIterator[JSON]]:
        """A streaming completion. Fallbacks apply until the first chunk arrives; after that a
        failure raises from the iterator (the server turns it into an SSE error event). At its
        end the ledger entry is recorded before the iterator ends; limits settle in a task; the
        follower and observer are told before it ends too, unless `defer` (at the loop's next
        turn: after the server has written the last frame)."""
        rid, started = request_id or new_request_id(), time.monotonic()
        probe = await self.cache.probe(req, principal) if self.cache.config.enabled else OFF
        # OFF holds no answer (`servable` says False) and marks nothing (no state, no header)
        if probe is not OFF and self.hits.servable(req, principal, probe):
            body, hit = await self.hits.serve(req, principal, probe, rid, started, stream=True)
            return hit, replayed(body, req.include_usage)
        outcome: Outcome | None = None
        ticket: Ticket | None = None
        try:
            outcome, ticket = await self.admit(req, principal, rid)
            if probe is not OFF:
                probe.mark(outcome)
            first, chunks = await self._open_stream(req, outcome)
        except BaseException as exc:
            self.cache.release(probe)
            if not isinstance(exc, LLMRouteError):
                raise
            await self.admission.settle(ticket, outcome)
            self._account(req, principal, outcome, exc, request_id=rid, started=started,
                          stream=True)
            await self._durable()
            raise
        meta = StreamMeta(req, principal, started, ticket, defer=defer)
        return outcome, self.cache.recording(probe, outcome,
                                             self._relay(outcome, first, chunks, meta))

    async def _open_stream(self, req: ChatRequest, outcome: Outcome
                           ) -> tuple[JSON, AsyncIterator[JSON]]:
        options = dict(req.body.get("stream_options") or {})
        body = {**req.body, "stream_options": {**options, "include_usage": True}}

        async def attempt(model: str, timeout_s: float) -> tuple[str, JSON, AsyncIterator[JSON]]:
            # The deadline (armed by call_with_fallbacks) cancels the wait for the first chunk;
            # the stream is closed on the way out.
            provider, upstream = self.deployments.get(model)
            chunks = provider.stream(body, upstream)
            try:
                first = await anext(aiter(chunks))
            except StopAsyncIteration:
                raise UpstreamError("connection", f"{model}: empty stream",
                                    provider=provider.name, model=upstream) from None
            except BaseException:
                await close_stream(chunks)
                raise
            return model, first, chunks

        (model, first, chunks), outcome.attempts = await self._call(outcome.plan.chain, attempt)
        outcome.model = model
        return first, chunks

    async def _relay(self, outcome: Outcome, first: JSON, chunks: AsyncIterator[JSON],
                     meta: StreamMeta) -> AsyncIterator[JSON]:
        """Relay the chunks; usage and cost are settled once (from the usage chunk, or counted
        here when the upstream sent none, when it failed, or when the client left)."""
        error: LLMRouteError | None = ClientClosedError(
            "The client closed the stream before it ended.")
        ttft = time.monotonic() - meta.started
        try:
            relayed = self._pass(outcome, meta, first)
            if relayed is not None:
                yield relayed
            async for chunk in chunks:
                relayed = self._pass(outcome, meta, chunk)
                if relayed is not None:
                    yield relayed
            if not outcome.finished:  # else the usage chunk already settled usage and cost
                self._settle_usage(outcome, meta)
                if meta.usage is None and meta.req.include_usage:  # the client asked for usage
                    yield meta.usage_chunk(outcome)
            error = None
        except LLMRouteError as exc:
            error = exc
            raise
        finally:
            if not outcome.finished:  # cut short: charge what was produced
                self._settle_usage(outcome, meta)
            tell = self._record(meta.req, meta.principal, outcome, error,
                                request_id=outcome.request_id, started=meta.started,
                                stream=True, ttft_s=ttft,
                                response="".join(meta.text) if self.keep_text else None)
            if tell is not None and meta.defer:
                asyncio.get_running_loop().call_soon(tell)
            elif tell is not None:
                tell()
            self.after.settle_later(meta.ticket, outcome)
            await close_stream(chunks)
            if error is None:
                self.affinity.remember(meta.req, meta.principal.name, outcome,
                                       {"content": "".join(meta.text)})
            if not isinstance(error, ClientClosedError):  # the end (or error event) follows
                await self._durable()

    def _pass(self, outcome: Outcome, meta: StreamMeta, chunk: JSON) -> JSON | None:
        """One upstream chunk as relayed (None: not sent), its usage and text kept in `meta`;
        a usage chunk the client asked for also settles usage and cost."""
        found = usage_of(chunk) if chunk.get("usage") is not None else None
        if found is not None:
            meta.usage = found
        chunk["model"] = outcome.model
        meta.collect(chunk)
        if meta.req.include_usage:
            if found is not None:  # the cost is known once usage is: say it in this chunk
                self._finish(outcome, found, chunk)
            return chunk
        if found is None or chunk.get("choices"):
            chunk.pop("usage", None)
            return chunk
        return None

    def _settle_usage(self, outcome: Outcome, meta: StreamMeta) -> None:
        """Usage and cost from the stream's usage chunk, else counted from its text."""
        usage = meta.usage
        self._finish(outcome, usage or self._count(outcome, meta.req, "".join(meta.text)),
                     estimated=usage is None)


def new_request_id() -> str:
    """A unique, unguessable request id: `req_` + 32 hex digits, the first 12 the time in
    milliseconds and 20 (80 bits) of the OS's CSPRNG. Ids sort by when they were made, so the
    ledger's primary-key index grows at its end: a batch's new ids share a few pages instead of
    dirtying a random page each (issue 17, sqlite17: about half the SQLite write per entry on a
    200,000-row ledger, see docs/benchmarks.md)."""
    return f"req_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
