"""The admission stage of a chat request, between auth and the call: which experiment arm (and so
which policy) serves it, the decisions its shadow arms would have taken, and the reservation of its
estimated cost against every spend and rate limit, settled with the real amount when it ends."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog
from ..chat import ChatRequest
from ..outcome import Outcome, Plan, Principal
from ..settings import Settings
from ..types import Usage
from .experiments import ExperimentConfig, arm_label, assign, is_active
from .guardrails import stopped_arms
from .limits import Amount, Limiter, Refused, Subject, Ticket, limits_of, usd_units
from .state import SharedState, StateUnavailable

log = logging.getLogger("llmroute.admission")
#: How long a sticky assignment is kept when the experiment has no end date.
ASSIGNMENT_TTL_S = 90 * 86400.0


@dataclass(frozen=True)
class Assignment:
    """The experiment arm serving a request: its policy, its ledger label, and shadow arms."""

    experiment: ExperimentConfig
    arm: str
    shadows: tuple[tuple[str, str], ...]  # (arm, policy) of the shadow arms

    @property
    def policy(self) -> str:
        return self.experiment.arms[self.arm].policy

    @property
    def label(self) -> str:
        return arm_label(self.experiment.name, self.arm)


def session_of(body: Mapping[str, Any]) -> str | None:
    """The request's session id (`metadata.session_id`), as the ledger keeps it."""
    metadata = body.get("metadata")
    value = metadata.get("session_id") if isinstance(metadata, Mapping) else None
    return str(value) if value else None


class Admission:
    """Experiments and limits for one gateway, over one shared state."""

    def __init__(self, settings: Settings, catalog: Catalog, state: SharedState):
        self.state = state
        self.catalog = catalog
        self.default_policy = settings.routing.default_policy
        self.expected_output = settings.routing.expected_output_tokens
        self.experiments = tuple(settings.experiments)
        #: (experiment, arm) pairs the guardrails stopped (refreshed by `refresh_stops`).
        self.stopped: frozenset[tuple[str, str]] = frozenset()
        self.limiter = Limiter(limits_of(settings), state, ZoneInfo(settings.control.timezone),
                               budgets_when_down=settings.state.budgets_when_down)

    # -- experiments ------------------------------------------------------------------------
    async def assign(self, req: ChatRequest, principal: Principal, policy: str | None
                     ) -> Assignment | None:
        """The arm of the first active experiment whose control policy is the request's routing
        policy (`policy`: None for a concrete model), sticky for its unit."""
        if policy is None or not self.experiments:
            return None
        now = datetime.now(UTC)
        for exp in self.experiments:
            if exp.arms[exp.control].policy != policy or not is_active(exp, now):
                continue
            unit = {"key": principal.name, "user": req.user,
                    "session": session_of(req.body)}[exp.sticky_by]
            if not unit:
                return None
            arm = await self._sticky(exp, unit, now)
            if (exp.name, arm) in self.stopped:  # a guardrail stopped it: back to the control
                arm = exp.control
            shadows = tuple((n, a.policy) for n, a in exp.arms.items() if a.shadow)
            return Assignment(exp, arm, shadows)
        return None

    async def refresh_stops(self) -> None:
        """Read which arms the guardrails stopped (kept as it was when the state is down)."""
        if self.experiments:
            with suppress(StateUnavailable):
                self.stopped = await stopped_arms(self.experiments, self.state)

    async def _sticky(self, exp: ExperimentConfig, unit: str, now: datetime) -> str:
        """The unit's arm: the one first stored for it (so a later weight change does not move
        it), else the stable hash's; the hash alone when the state is unreachable (fail open)."""
        hashed = assign(exp, unit)
        ttl = (exp.ends - now).total_seconds() if exp.ends else ASSIGNMENT_TTL_S
        try:
            stored = await self.state.first_value(f"exp:{exp.name}:{unit}", hashed, max(ttl, 1.0))
        except StateUnavailable:
            return hashed
        return stored if stored in exp.served_arms else hashed

    # -- limits -----------------------------------------------------------------------------
    def subject(self, req: ChatRequest, principal: Principal, plan: Plan) -> Subject:
        """The request as limit scopes see it (the plan's first model is its model)."""
        return Subject(key=principal.name, team=principal.team, user=req.user,
                       model=plan.chain[0] if plan.chain else None, policy=plan.policy)

    def estimate(self, req: ChatRequest, plan: Plan) -> Amount:
        """What admission reserves: the counted prompt tokens plus `max_tokens` (else the
        expected output), priced at the dearest model of the chain (a fallback may answer)."""
        output = req.max_output_tokens or self.expected_output
        usd = 0
        usage = Usage(plan.input_tokens, output)
        for model in plan.chain:
            cost = self.catalog.cost(model, usage)
            if cost is not None:
                usd = max(usd, usd_units(cost))
        return Amount(usd=usd, tokens=plan.input_tokens + output, requests=1)

    async def reserve(self, req: ChatRequest, principal: Principal, plan: Plan, *,
                      unchecked: frozenset[str] = frozenset()) -> Ticket | Refused:
        """Reserve the request's estimate on every limit that applies to it."""
        if not self.limiter.limits:
            return Ticket()
        return await self.limiter.admit(self.subject(req, principal, plan), self.estimate(req, plan),
                                        unchecked=unchecked)

    async def settle(self, ticket: Ticket | None, outcome: Outcome | None) -> None:
        """Replace the reservation with what the request really used (nothing if it failed
        before any usage; the request itself still counts)."""
        if ticket is None or not ticket.meters:
            return
        usage = outcome.usage if outcome is not None else None
        cost = outcome.cost_usd if outcome is not None else None
        actual = Amount(usd=usd_units(cost) if cost is not None else 0,
                        tokens=usage.input_tokens + usage.output_tokens if usage else 0, requests=1)
        await self.limiter.settle(ticket, actual)


def shadow_json(records: list[dict[str, object]]) -> str | None:
    """Shadow decisions as the ledger's JSON text (None when there are none)."""
    return json.dumps(records, separators=(",", ":")) if records else None
