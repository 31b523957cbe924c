"""Experiment guardrails at run time: the alert evaluator (on the replica holding the lease) finds
arms significantly worse than their control on error rate or quality (`stops_from_rollups` over
the ledger's rollups by arm: a few rows per arm, never the entries), marks them stopped in the
shared state and raises an alert; every replica reads the marks back, and admission then serves a
stopped arm's units with the control arm's policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ..ledger.rollup_read import RollupWindow
from .alerts import Alert
from .experiment_report import stops_from_rollups
from .experiments import ExperimentConfig, is_active
from .state import Charge, SharedState

#: How far back the guardrails look, and how long a stop mark lasts.
LOOKBACK = timedelta(days=30)
STOP_TTL_S = 90 * 86400.0


def stop_key(experiment: str, arm: str) -> str:
    """The shared-state counter that marks an arm stopped (non-zero: stopped)."""
    return f"guard:{experiment}:{arm}"


async def stop_arms(experiments: Sequence[ExperimentConfig], window: RollupWindow,
                    state: SharedState, now: datetime) -> list[Alert]:
    """Mark every arm the guardrails stop, judged on `window` (`Store.rollups("arm", ...)` over
    the `LOOKBACK`); one critical alert per stop (deduplicated by arm, so it is raised once while
    the mark lasts)."""
    alerts: list[Alert] = []
    for exp in experiments:
        if not is_active(exp, now):
            continue
        for stop in stops_from_rollups(exp, window):
            await state.adjust([Charge(stop_key(exp.name, stop.arm), 1, None, STOP_TTL_S)])
            diff = stop.difference
            alerts.append(Alert(
                rule="guardrail", kind="guardrail", severity="critical",
                subject=f"{exp.name}:{stop.arm}",
                message=(f"experiment {exp.name}: arm {stop.arm} stopped, its {stop.metric} is "
                         f"significantly worse than {exp.control}'s ({diff.estimate:+.4f}, "
                         f"interval [{_bound(diff.interval.low)}, {_bound(diff.interval.high)}])"),
                data={"experiment": exp.name, "arm": stop.arm, "metric": stop.metric,
                      "difference": diff.estimate},
                ts=now, dedup_key=f"guardrail:{exp.name}:{stop.arm}", dedup_ttl_s=STOP_TTL_S))
    return alerts


def _bound(value: float | None) -> str:
    return "…" if value is None else f"{value:+.4f}"


async def stopped_arms(experiments: Sequence[ExperimentConfig], state: SharedState
                       ) -> frozenset[tuple[str, str]]:
    """(experiment, arm) of every arm marked stopped."""
    pairs = [(e.name, arm) for e in experiments for arm in e.served_arms if arm != e.control]
    if not pairs:
        return frozenset()
    values = await state.read([stop_key(e, a) for e, a in pairs])
    return frozenset(pair for pair, value in zip(pairs, values, strict=True) if value > 0)
