"""The one factory for what serves requests: the gateway wired at construction to its recorder,
which feeds the ledger writer and the Prometheus metrics from the same entries, over the shared
state, with the replica's background work (alerts, cooldown sync, ledger pruning, learning
online). The HTTP server and the in-process `Client` both build their gateway here, so the two can
never be wired differently."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .control.admission import Admission
from .control.alert_evaluator import AlertEvaluator, breaker_cooldowns
from .control.alerts import Alert
from .control.cooldown_sync import CooldownSync
from .control.shared import Watched, open_state
from .control.state import StateUnavailable
from .deployments import Deployments
from .embeddings import Embeddings
from .engine import Engine
from .errors import ConfigError, ConfigProblem
from .gateway import Gateway
from .ledger.entry import LedgerEntry
from .ledger.pruner import prune_forever
from .ledger.service import LedgerService
from .metrics import GatewayMetrics
from .settings import Settings
from .telemetry.logs import RequestLog

if TYPE_CHECKING:  # the online learner (numpy, the posterior) loads only when learning is on
    from .control.online_sync import OnlineSync
    from .telemetry.tracing import Tracer  # the `otel` extra: only when traces are enabled

Recorder = Callable[[LedgerEntry], None]
#: How often a replica reads which experiment arms the guardrails stopped.
GUARDRAIL_REFRESH_S = 5.0
log = logging.getLogger("llmroute.runtime")


@dataclass
class Runtime:
    """A gateway with its ledger and metrics (either may be off). `start` before serving,
    `aclose` after."""

    settings: Settings
    gateway: Gateway
    ledger: LedgerService | None
    metrics: GatewayMetrics | None
    state: Watched
    sync: CooldownSync | None = None
    alerts: AlertEvaluator | None = None
    background: bool = True
    #: Learning online: applies feedback (one replica) or reloads its posterior (the others).
    online: OnlineSync | None = None
    #: OpenTelemetry traces (`telemetry.traces.enabled`), the gateway's observer.
    tracer: Tracer | None = None
    started: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: `POST /v1/embeddings`: the embedding models passed through (never routed).
    embeddings: Embeddings | None = None

    async def start(self) -> None:
        """Migrate the ledger and start its writer (and, with background work, the ledger's
        reader process, the cooldown sync, and pruning the ledger when `ledger.retention` is
        configured)."""
        self.started = True
        if self.ledger is not None:
            await self.ledger.start()
            if self.background:  # a server: its dashboard and alerts read through the reader
                self.ledger.reads.warm()
        if self.sync is not None:
            self.sync.start()
        if self.online is not None:
            self.online.start()
        if self.alerts is not None:
            self.alerts.start()
            self.state.listeners.append(self._state_alert)
        if self.background and self.ledger is not None and self.settings.ledger.retention.configured:
            self._keep(asyncio.get_running_loop().create_task(
                prune_forever(self.ledger.store, self.settings.ledger.retention)))
        if self.background and self.settings.experiments:  # arms the guardrails stopped
            self._keep(asyncio.get_running_loop().create_task(
                _every(GUARDRAIL_REFRESH_S, self.gateway.admission.refresh_stops)))

    async def aclose(self) -> None:
        """Flush the ledger, then close upstream connections and the shared state."""
        if self.alerts is not None:
            await self.alerts.aclose()
        if self.sync is not None:
            await self.sync.aclose()
        if self.online is not None:
            await self.online.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ledger is not None and self.started:
            stats = await self.ledger.aclose()
            log.info("ledger closed: %s", stats)
        await self.gateway.aclose()
        if self.embeddings is not None:
            await self.embeddings.aclose()
        await self.state.aclose()
        if self.tracer is not None:  # export the spans still buffered
            await asyncio.to_thread(self.tracer.shutdown)

    def _state_alert(self, up: bool, detail: str) -> None:
        """Alert (from this replica: no shared dedup without the state) when the shared state
        becomes unreachable, and when it is back."""
        if self.alerts is None:
            return
        now = datetime.now(UTC)
        alert = Alert(rule="shared-state", kind="state", severity="info" if up else "critical",
                      subject="state", message=("shared state reachable again " if up else
                                                "shared state unreachable: ") + detail,
                      data={"reachable": up}, ts=now, dedup_key=f"state:{up}:{now.timestamp()}")
        self._keep(asyncio.get_running_loop().create_task(self.alerts.delivery.deliver(alert)))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def state_report(self) -> dict[str, object]:
        """The shared state's reachability, for `/ready` (a ping when it is remote)."""
        url = self.settings.state.url
        kind = "memory" if url.startswith("memory://") else "redis"
        if kind != "memory":
            with suppress(StateUnavailable):  # `up` records the answer
                await self.state.ping()
        return {"kind": kind, "reachable": self.state.up}


def build_runtime(settings: Settings, *, environ: Mapping[str, str] | None = None,
                  metrics: bool = True, background: bool = True, served: bool = True) -> Runtime:
    """The gateway for `settings`, recording every finished request to the ledger (when enabled)
    and to Prometheus metrics (when `metrics`); with `background`, the replica's background work
    too (the alert evaluator, the cooldown sync with other replicas). `served`: requests come
    over HTTP (their spans are SERVER spans; in-process, INTERNAL)."""
    ledger = LedgerService(settings.ledger) if settings.ledger.enabled else None
    gauges = GatewayMetrics(ledger.stats if ledger else lambda: None) if metrics else None
    followers: list[Recorder] = []  # told after the ledger, maybe after the answer is sent
    if gauges is not None:
        followers.append(gauges.observe)
    if settings.telemetry.logs.requests:
        followers.append(RequestLog().record)
    # first: the entry is in the write-ahead log whatever follows, and before the answer
    recorders = [ledger.record, *followers] if ledger is not None else followers
    engine = Engine(settings)
    deployments = Deployments.from_settings(settings, engine.catalog, environ)
    tracer = _tracer(settings, deployments, served) if settings.telemetry.traces.enabled else None
    state = Watched(open_state(settings.state))
    admission = Admission(settings, engine.catalog, state)
    # the writer's own `record` (what `LedgerService.record` calls: one call fewer a request)
    gateway = Gateway(settings, engine=engine, deployments=deployments,
                      recorder=ledger.writer.record if ledger else None, follower=fan_out(followers),
                      admission=admission, durable=ledger.durable if ledger else None,
                      observer=tracer)
    shared = not settings.state.url.startswith("memory://")  # one process: nothing to share
    sync = CooldownSync(gateway.cooldowns, state) if shared and background else None
    alerts = None
    if background and settings.alerts.enabled:
        alerts = AlertEvaluator.from_settings(
            settings, state, ledger.store if ledger else None, limiter=admission.limiter,
            cooldowns=None if shared else breaker_cooldowns(gateway.cooldowns),
            reads=ledger.reads if ledger else None)
    online = None
    if engine.online is not None and settings.learning.online and ledger is not None:
        from .control.online_sync import OnlineSync

        online = OnlineSync(engine.online, ledger.store, state, reload_s=settings.learning.reload_s,
                            raters=settings.learning.raters)
    embeddings = Embeddings.from_settings(settings, os.environ if environ is None else environ,
                                          admission.limiter, fan_out(recorders))
    return Runtime(settings, gateway, ledger, gauges, state, sync, alerts, background, online,
                   tracer, embeddings=embeddings)


def _tracer(settings: Settings, deployments: Deployments, served: bool) -> Tracer:
    """The OpenTelemetry tracer (imports the SDK: only called when traces are enabled)."""
    try:
        from opentelemetry.trace import SpanKind

        from .telemetry.tracing import Tracer
    except ImportError as exc:
        raise ConfigError([ConfigProblem(
            "telemetry.traces.enabled", f"traces need the OpenTelemetry SDK ({exc})",
            "pip install 'llmroute[otel]', or set telemetry.traces.enabled: false")]) from None

    return Tracer(settings, deployments, kind=SpanKind.SERVER if served else SpanKind.INTERNAL)


async def _every(interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` now and then every `interval_s` seconds, until cancelled."""
    while True:
        await work()
        await asyncio.sleep(interval_s)


def fan_out(recorders: Sequence[Recorder]) -> Recorder | None:
    """One recorder feeding each of `recorders` the same entry (None when there are none)."""
    if not recorders:
        return None
    if len(recorders) == 1:
        return recorders[0]
    first, *rest = recorders

    def record(entry: LedgerEntry) -> None:
        first(entry)
        for recorder in rest:
            recorder(entry)

    return record
