"""Opening the configured shared state (`memory://` or `redis://`), and `Watched`: the state as the
gateway uses it, which notices when the backing store goes away and comes back, logs each change
once, and says which it is (`/ready`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ..settings import StateConfig
from .state import Charge, Refusal, SharedState, StateUnavailable
from .state_memory import MemoryState

T = TypeVar("T")
log = logging.getLogger("llmroute.state")


def open_state(config: StateConfig) -> SharedState:
    """The state named by `config.url`."""
    if config.url.startswith("memory://"):
        return MemoryState()
    from .state_redis import RedisState

    return RedisState(config.url, prefix=config.prefix, timeout_s=config.timeout_s)


class Watched:
    """A SharedState that tracks its own reachability: `up` is False from the first failed call
    until the next one that succeeds; each change is logged once."""

    def __init__(self, inner: SharedState, *, name: str = "shared state",
                 clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self.name = name
        self.up = True
        self.down_since: float | None = None
        self._clock = clock
        #: Called with the new reachability at each change (e.g. to raise an alert).
        self.listeners: list[Callable[[bool, str], None]] = []

    def _changed(self, up: bool, detail: str) -> None:
        for listener in self.listeners:
            try:
                listener(up, detail)
            except Exception:  # a listener must not break the call that noticed the change
                log.exception("state listener failed")

    async def _watch(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except StateUnavailable as exc:
            if self.up:
                self.up, self.down_since = False, self._clock()
                log.error("%s unreachable (%s): routing state fails open, hard budgets follow "
                          "`state.budgets_when_down`", self.name, exc,
                          extra={"event": "state_outage", "up": False})
                self._changed(False, str(exc))
            raise
        if not self.up:
            down_for = self._clock() - (self.down_since or self._clock())
            self.up, self.down_since = True, None
            log.warning("%s reachable again after %.1fs", self.name, down_for,
                        extra={"event": "state_outage", "up": True})
            self._changed(True, f"after {down_for:.1f}s")
        return result

    async def reserve(self, charges: Sequence[Charge]) -> Refusal | None:
        return await self._watch(self.inner.reserve(charges))

    async def adjust(self, charges: Sequence[Charge]) -> None:
        await self._watch(self.inner.adjust(charges))

    async def read(self, keys: Sequence[str]) -> list[int]:
        return await self._watch(self.inner.read(keys))

    async def first_value(self, key: str, value: str, ttl_s: float | None = None) -> str:
        return await self._watch(self.inner.first_value(key, value, ttl_s))

    async def claim(self, key: str, ttl_s: float) -> bool:
        return await self._watch(self.inner.claim(key, ttl_s))

    async def lead(self, name: str, holder: str, ttl_s: float) -> bool:
        return await self._watch(self.inner.lead(name, holder, ttl_s))

    async def open_cooldown(self, model: str, seconds: float) -> None:
        await self._watch(self.inner.open_cooldown(model, seconds))

    async def cooldowns(self) -> dict[str, float]:
        return await self._watch(self.inner.cooldowns())

    async def get_text(self, key: str) -> str | None:
        return await self._watch(self.inner.get_text(key))

    async def set_text(self, key: str, value: str) -> None:
        await self._watch(self.inner.set_text(key, value))

    async def ping(self) -> None:
        await self._watch(self.inner.ping())

    async def aclose(self) -> None:
        await self.inner.aclose()
