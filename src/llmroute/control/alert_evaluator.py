"""`AlertEvaluator`: the background task that evaluates the alert rules off the request path.

Every `interval_s` each replica asks the shared state for the `alerts` lease; only the holder
evaluates. It gathers each rule's data (limit usage from the limiter, cooldowns from the shared
state; spend and feedback from the ledger's rollups; error and fallback rates, which need each
request's attempts, from tallies of the recent entries, each time slice read once per grouping in
batches; the experiment guardrails from the rollups by arm), all ledger reads where `reads` runs
them (the gateway's low-priority reader process),
claims every alert's dedup key in the shared state (so an alert fires once per rule, subject and
window, even when the lease changes hands), delivers the new ones and records them in the ledger
database's alert history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ..breakers import Cooldowns
from ..ledger.reads import InlineReads, Reads
from ..ledger.store import Store, StoreError
from ..settings import Settings
from .alert_delivery import Delivery, Receipt
from .alert_store import record_alert
from .alert_tallies import (
    SLICE_BATCH,
    FeedbackTally,
    Tally,
    arm_window,
    feedback_slice,
    slice_tallies,
    spend_slice,
)
from .alerts import (
    Alert,
    cooldown_alerts,
    limit_alerts,
    limit_subjects,
    quality_alerts,
    rate_alerts,
    spend_anomaly_alerts,
)
from .alerts_config import (
    AlertRule,
    AlertsConfig,
    CooldownRule,
    GroupBy,
    LimitRule,
    QualityRule,
    SpendAnomalyRule,
)
from .experiments import ExperimentConfig
from .guardrails import LOOKBACK, stop_arms
from .limits import Limiter, LimitUsage, Subject, limits_of
from .state import SharedState, StateUnavailable

log = logging.getLogger("llmroute.alerts")
#: The shared-state lease that elects the one evaluating replica.
LEASE = "alerts"
HOUR = timedelta(hours=1)
#: Where the cooldown rule reads the deployments out of rotation (model -> seconds left).
CooldownSource = Callable[[], Awaitable[Mapping[str, float]]]


def breaker_cooldowns(breakers: Cooldowns) -> CooldownSource:
    """This process's open breakers as a cooldown source (with a `memory://` state, where the
    breakers are not published to the shared state)."""

    async def read() -> dict[str, float]:
        return {model: b.open_for_s for model, b in breakers.snapshot().items() if b.state == "open"}

    return read


def holder_id() -> str:
    """A name for this process that no other replica shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _LedgerSlices:
    """Tallies of the ledger's time slices, each slice read once per evaluation and grouping,
    where `reads` runs them (the gateway's low-priority reader process by default)."""

    def __init__(self, reads: Reads, batch_size: int = SLICE_BATCH) -> None:
        self.reads = reads
        self.batch_size = batch_size
        self._seen: dict[tuple[datetime, datetime, GroupBy], dict[str, Tally]] = {}

    async def tallies(self, since: datetime, until: datetime, by: GroupBy) -> dict[str, Tally]:
        """One `Tally` per subject of the entries in [since, until), grouped `by`."""
        key = (since, until, by)
        if key not in self._seen:
            self._seen[key] = await self.reads.call(slice_tallies, since, until, by, self.batch_size)
        return self._seen[key]

    async def spend(self, since: datetime, until: datetime, by: GroupBy) -> dict[str, Decimal]:
        """Spend per subject in [since, until); subjects without entries are absent (from the
        rollups: a few hundred rows, however many entries the slice holds)."""
        return await self.reads.call(spend_slice, since, until, by)

    async def feedback(self, since: datetime, until: datetime) -> dict[str, FeedbackTally]:
        """Each policy's feedback counts in [since, until) (from the rollups)."""
        return await self.reads.call(feedback_slice, since, until)


class AlertEvaluator:
    """Evaluates `config`'s rules every `config.interval_s` while this replica holds the lease.

    `store` is the ledger (None: the ledger-based rules raise nothing and no history is kept),
    `reads` where its windows are read (default: inline, on `store`),
    `limiter` and `subjects` the limits and whose use to read (None: no limit alerts), `cooldowns`
    where deployments out of rotation are read (default: the shared state's cooldowns)."""

    def __init__(self, config: AlertsConfig, state: SharedState, *, store: Store | None = None,
                 limiter: Limiter | None = None, subjects: Sequence[Subject] = (Subject(),),
                 cooldowns: CooldownSource | None = None, delivery: Delivery | None = None,
                 holder: str | None = None, experiments: Sequence[ExperimentConfig] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 reads: Reads | None = None) -> None:
        self.config = config
        self.state = state
        self.store = store
        self.reads = reads or (InlineReads(store) if store is not None else None)
        self.limiter = limiter
        self.subjects = tuple(subjects)
        self.cooldowns = cooldowns or state.cooldowns
        self.delivery = delivery or Delivery(config)
        self.holder = holder or holder_id()
        self.clock = clock
        self.experiments = tuple(experiments)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, state: SharedState, store: Store | None,
                      limiter: Limiter | None = None, cooldowns: CooldownSource | None = None,
                      reads: Reads | None = None) -> AlertEvaluator:
        """An evaluator for `settings.alerts`, reading the use of every enumerable limit subject
        (a limiter over the settings' limits is built when none is given)."""
        zone = ZoneInfo(settings.control.timezone)
        limiter = limiter or Limiter(limits_of(settings), state, zone)
        return cls(settings.alerts, state, store=store, limiter=limiter,
                   subjects=limit_subjects(settings), cooldowns=cooldowns,
                   experiments=settings.experiments, reads=reads)

    # -- one round ---------------------------------------------------------------------------
    async def run_once(self) -> list[Receipt]:
        """If this replica holds the lease: evaluate, deliver the alerts not raised before, record
        them. Returns what was delivered (nothing when another replica leads)."""
        try:
            if not await self.state.lead(LEASE, self.holder, self.config.interval_s * 2.5):
                return []
            fresh = [a for a in await self.evaluate() if await self._claim(a)]
        except StateUnavailable as exc:
            log.warning("alerts not evaluated: shared state unavailable (%s)", exc)
            return []
        receipts = await self.delivery.deliver_all(fresh)
        if self.config.history and self.store is not None:
            for receipt in receipts:
                await self._record(self.store, receipt)
        return receipts

    async def _claim(self, alert: Alert) -> bool:
        return await self.state.claim(alert.dedup_key, alert.dedup_ttl_s)

    @staticmethod
    async def _record(store: Store, receipt: Receipt) -> None:
        try:
            await record_alert(store, receipt.alert, receipt.delivered)
        except (StoreError, TypeError) as exc:
            log.warning("alert %s not kept in the history: %s", receipt.alert.rule, exc)

    async def evaluate(self) -> list[Alert]:
        """Every alert the rules raise now, before dedup (a rule whose data cannot be read is
        skipped with a warning; the others still run)."""
        now = self.clock()
        ledger = _LedgerSlices(self.reads) if self.reads is not None else None
        found: list[Alert] = []
        for rule in self.config.active_rules:
            try:
                found += await self._rule_alerts(rule, now, ledger)
            except (StoreError, StateUnavailable) as exc:
                log.warning("alert rule %s skipped: %s", rule.name, exc)
        if self.experiments and self.reads is not None:
            try:  # guardrails: stop arms significantly worse than their control (and say so)
                window = await self.reads.call(arm_window, now - LOOKBACK, now)
                found += await stop_arms(self.experiments, window, self.state, now)
            except (StoreError, StateUnavailable) as exc:
                log.warning("experiment guardrails skipped: %s", exc)
        return found

    async def _rule_alerts(self, rule: AlertRule, now: datetime,
                           ledger: _LedgerSlices | None) -> list[Alert]:
        if isinstance(rule, LimitRule):
            return limit_alerts(rule, await self._usages(), now)
        if isinstance(rule, CooldownRule):
            return cooldown_alerts(rule, await self.cooldowns(), now)
        if ledger is None:
            return []
        if isinstance(rule, SpendAnomalyRule):
            return await self._spend_anomalies(rule, now, ledger)
        since = now - timedelta(seconds=rule.window_s)
        if isinstance(rule, QualityRule):
            return quality_alerts(rule, await ledger.feedback(since, now), now)
        return rate_alerts(rule, await ledger.tallies(since, now, rule.by), now)

    async def _spend_anomalies(self, rule: SpendAnomalyRule, now: datetime,
                               ledger: _LedgerSlices) -> list[Alert]:
        """The last hour against the same hour of each of the previous `days` days (one ledger
        query per hour slice, never whole days)."""
        last = await ledger.spend(now - HOUR, now, rule.by)
        past = [await ledger.spend(now - HOUR - timedelta(days=d), now - timedelta(days=d), rule.by)
                for d in range(1, rule.days + 1)]
        return spend_anomaly_alerts(rule, last, past, now)

    async def _usages(self) -> list[LimitUsage]:
        """Each limit's use for every enumerable subject, once per (limit, subject)."""
        if self.limiter is None:
            return []
        seen: dict[tuple[str, str], LimitUsage] = {}
        for who in self.subjects:
            for usage in await self.limiter.usage(who):
                seen.setdefault((usage.limit.name, usage.subject), usage)
        return list(seen.values())

    # -- the background task -----------------------------------------------------------------
    def start(self) -> None:
        """Start evaluating in the background (once; needs a running event loop)."""
        if self._task is None and self.config.enabled:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="llmroute-alerts")

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # one bad round must not end alerting
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.config.interval_s)

    async def aclose(self) -> None:
        """Stop the task and close the webhook session."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.delivery.aclose()
