"""Serving a response-cache hit: the gateway's fastest path. No routing and no upstream call;
auth has run, the key must still be allowed the policy or model asked for and the model that
answered, request-count limits count the hit (its spend and tokens settle at 0), and the ledger
gets an entry marked `hit` (or `semantic`) with cost 0, the saved cost and the original request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

from ..catalog import Catalog
from ..chat import ChatRequest
from ..constraints import matches
from ..control.admission import Admission
from ..control.limits import Amount, Refused, Ticket
from ..errors import LLMRouteError, PermissionDeniedError
from ..outcome import Outcome, Plan, Principal
from ..relay import answer_text
from ..types import Usage
from .replay import chunks
from .response import Probe

JSON = dict[str, Any]
#: A hit's use of every limit: one request, no spend, no tokens.
HIT_AMOUNT = Amount(usd=0, tokens=0, requests=1)


class Account(Protocol):
    """The gateway's `_account`: hand one request's ledger entry to the recorder."""

    def __call__(self, req: ChatRequest, principal: Principal, outcome: Outcome | None,
                 error: LLMRouteError | None, *, request_id: str, started: float, stream: bool,
                 ttft_s: float | None = None, response: str | None = None) -> None: ...


class HitServer:
    """Serves the hits of one gateway."""

    def __init__(self, admission: Admission, catalog: Catalog,
                 requested_policy: Callable[[ChatRequest, Principal], str | None],
                 account: Account, durable: Callable[[], Awaitable[None]]):
        self.admission = admission
        self.catalog = catalog
        self.requested_policy = requested_policy
        self.account = account
        self.durable = durable

    def servable(self, req: ChatRequest, principal: Principal, probe: Probe) -> bool:
        """Whether the probe found an answer this key may be served. An answer it may not be
        served (the policy or model asked for, or the model that answered, is not allowed to
        this key) turns the probe into a bypass: the request goes the usual way, which refuses
        what the key may not use."""
        if probe.answer is None:
            return False
        if self._allowed(req, principal, probe):
            return True
        probe.decline()
        return False

    def _allowed(self, req: ChatRequest, principal: Principal, probe: Probe) -> bool:
        try:
            self.requested_policy(req, principal)
        except PermissionDeniedError:
            return False
        if principal.models is None or probe.answer is None:
            return True
        spec = self.catalog.get(probe.answer.model)
        return spec is not None and matches(spec, principal.models)

    async def serve(self, req: ChatRequest, principal: Principal, probe: Probe, request_id: str,
                    started: float, *, stream: bool) -> tuple[JSON, Outcome]:
        """The hit's answer (a copy that says it cost 0) and its outcome, accounted."""
        outcome = self.outcome(req, principal, probe, request_id)
        try:
            ticket = await self._admit(req, principal, outcome)
        except LLMRouteError as exc:  # a request-count limit is reached
            outcome.finished = False
            self.account(req, principal, outcome, exc, request_id=request_id, started=started,
                         stream=stream)
            await self.durable()
            raise
        outcome.extra_headers.update(ticket.headers)
        body = probe.answer.fresh_body() if probe.answer is not None else {}
        if ticket.meters:
            await self.admission.limiter.settle(ticket, HIT_AMOUNT)
        self.account(req, principal, outcome, None, request_id=request_id, started=started,
                     stream=stream, ttft_s=time.monotonic() - started if stream else None,
                     response=answer_text(body))
        await self.durable()
        return body, outcome

    def outcome(self, req: ChatRequest, principal: Principal, probe: Probe,
                request_id: str) -> Outcome:
        """A hit's outcome: the answer's model, tier and token counts; cost 0; what it saved."""
        answer = probe.answer
        assert answer is not None
        plan = Plan((answer.model,), answer.tier, "cache", self.requested_policy(req, principal),
                    1.0, f"response cache: the answer of {answer.request_id}",
                    answer.usage.input_tokens)
        # the served answer's tokens, but none read from or written to the provider's prompt
        # cache: no provider was called (else reports would count the original's cache use twice)
        usage = Usage(answer.usage.input_tokens, answer.usage.output_tokens)
        outcome = Outcome(request_id, plan, model=answer.model, usage=usage,
                          cost_usd=Decimal(0), finished=True, cache=probe.state,
                          cache_saved_usd=answer.cost_usd, cached_from=answer.request_id,
                          cache_similarity=probe.similarity)
        outcome.extra_headers.update(probe.headers())
        return outcome

    async def _admit(self, req: ChatRequest, principal: Principal, outcome: Outcome) -> Ticket:
        if not self.admission.limiter.limits:
            return Ticket()
        subject = self.admission.subject(req, principal, outcome.plan)
        ticket = await self.admission.limiter.admit(subject, HIT_AMOUNT)
        if isinstance(ticket, Refused):
            raise ticket.error()
        return ticket


async def replayed(body: JSON, include_usage: bool) -> AsyncIterator[JSON]:
    """A hit's answer as the chunks of a stream."""
    for chunk in chunks(body, include_usage=include_usage):
        yield chunk
