"""Shadow arms of experiments: the decision each shadow policy would take on a live request,
its estimated cost and the router's predicted quality, for the ledger. A shadow never calls
anything (LLM-router consultations are not made), and its quality estimate is the policy's own
classifier score, else the learned router's P(good) for the model it chose."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Engine
from ..types import RouteRequest
from .admission import Assignment
from .experiments import ExperimentConfig
from .replay_offline import Estimate, estimator_for


class Shadows:
    """Decides for the shadow arms; each shadow policy's estimate is built once, at start-up."""

    def __init__(self, engine: Engine, experiments: Sequence[ExperimentConfig]):
        self.engine = engine
        policies = {a.policy for e in experiments for a in e.arms.values() if a.shadow}
        self._estimates: dict[str, Estimate] = {p: estimator_for(engine, p) for p in policies}

    async def decide(self, route: RouteRequest, arm: Assignment) -> list[dict[str, object]]:
        """One record per shadow arm of `arm`'s experiment."""
        out: list[dict[str, object]] = []
        for name, policy in arm.shadows:
            decision = await self.engine.decide(route, policy=policy)
            cost = decision.estimated_cost_usd
            quality = decision.scores.get(decision.model)
            estimate = self._estimates.get(policy)
            if quality is None and estimate is not None:  # no per-model scores (rules)
                quality = estimate([route.last_user_text], [decision.model])[0].get(decision.model)
            out.append({"experiment": arm.experiment.name, "arm": name, "policy": policy,
                        "model": decision.model, "tier": decision.tier,
                        "estimated_cost_usd": None if cost is None else str(cost),
                        "predicted_quality": None if quality is None else round(quality, 4)})
        return out
