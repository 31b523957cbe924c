"""The one factory for what serves requests: the gateway wired at construction to its recorder,
which feeds the ledger writer and the Prometheus metrics from the same entries. The HTTP server and
the in-process `Client` both build their gateway here, so the two can never be wired differently."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

from .control.admission import Admission
from .control.cooldown_sync import CooldownSync
from .control.shared import Watched, open_state
from .control.state import StateUnavailable
from .engine import Engine
from .gateway import Gateway
from .ledger.entry import LedgerEntry
from .ledger.service import LedgerService
from .metrics import GatewayMetrics
from .settings import Settings

Recorder = Callable[[LedgerEntry], None]
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
    started: bool = False

    async def start(self) -> None:
        """Migrate the ledger and start its writer (and the cooldown sync)."""
        self.started = True
        if self.ledger is not None:
            await self.ledger.start()
        if self.sync is not None:
            self.sync.start()

    async def aclose(self) -> None:
        """Flush the ledger, then close upstream connections and the shared state."""
        if self.sync is not None:
            await self.sync.aclose()
        if self.ledger is not None and self.started:
            stats = await self.ledger.aclose()
            log.info("ledger closed: %s", stats)
        await self.gateway.aclose()
        await self.state.aclose()

    async def state_report(self) -> dict[str, object]:
        """The shared state's reachability, for `/ready` (a ping when it is remote)."""
        url = self.settings.state.url
        kind = "memory" if url.startswith("memory://") else "redis"
        if kind != "memory":
            with suppress(StateUnavailable):  # `up` records the answer
                await self.state.ping()
        return {"kind": kind, "reachable": self.state.up}


def build_runtime(settings: Settings, *, environ: Mapping[str, str] | None = None,
                  metrics: bool = True) -> Runtime:
    """The gateway for `settings`, recording every finished request to the ledger (when enabled)
    and to Prometheus metrics (when `metrics`)."""
    ledger = LedgerService(settings.ledger) if settings.ledger.enabled else None
    gauges = GatewayMetrics(ledger.stats if ledger else lambda: None) if metrics else None
    recorders: list[Recorder] = []
    if gauges is not None:
        recorders.append(gauges.observe)
    if ledger is not None:
        recorders.append(ledger.record)
    engine = Engine(settings)
    state = Watched(open_state(settings.state))
    gateway = Gateway(settings, engine=engine, environ=environ, recorder=fan_out(recorders),
                      admission=Admission(settings, engine.catalog, state))
    shared = not settings.state.url.startswith("memory://")  # one process: nothing to share
    sync = CooldownSync(gateway.cooldowns, state) if shared else None
    return Runtime(settings, gateway, ledger, gauges, state, sync)


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
