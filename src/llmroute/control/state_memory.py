"""`MemoryState`: the in-process `SharedState` (one replica, or tests). Every method runs to its end
without awaiting, so each is atomic under asyncio. Entries carry an expiry time on an injectable
monotonic clock; expired ones are dropped when read and, a bounded number per call, from a heap of
expiry times, so per-window keys do not make memory grow forever.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from llmroute.control.state import Charge, Refusal

V = TypeVar("V")

#: At most this many expired entries are dropped per call (plus one per entry the call adds).
PURGE_BATCH = 256


class _Expiring(Generic[V]):
    """A dict whose entries expire at a time of `clock`; a heap of (expiry, key) finds old ones."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._items: dict[str, tuple[V, float]] = {}
        self._heap: list[tuple[float, str]] = []

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    def expires_at(self, key: str) -> float | None:
        """When `key` expires (None when it is missing or expired)."""
        return None if self.get(key) is None else self._items[key][1]

    def put(self, key: str, value: V, expires_at: float) -> None:
        self._items[key] = (value, expires_at)
        if expires_at != math.inf:
            heapq.heappush(self._heap, (expires_at, key))

    def replace(self, key: str, value: V) -> None:
        """Change a live entry's value, keeping its expiry."""
        self._items[key] = (value, self._items[key][1])

    def live(self) -> dict[str, tuple[V, float]]:
        """Every entry not yet expired, with its expiry time."""
        now = self._clock()
        return {key: item for key, item in self._items.items() if item[1] > now}

    def purge(self, budget: int) -> None:
        """Drop up to `budget` expired entries, oldest first. A heap entry whose key was since
        renewed (its expiry moved) is discarded without touching the key."""
        now = self._clock()
        while budget > 0 and self._heap and self._heap[0][0] <= now:
            expires_at, key = heapq.heappop(self._heap)
            item = self._items.get(key)
            if item is not None and item[1] == expires_at:
                del self._items[key]
            budget -= 1

    def __len__(self) -> int:
        return len(self._items)


class MemoryState:
    """`SharedState` in this process: counters, values, claims, leases and cooldowns in dicts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counters: _Expiring[int] = _Expiring(clock)
        self._values: _Expiring[str] = _Expiring(clock)
        self._claims: _Expiring[bool] = _Expiring(clock)
        self._leases: _Expiring[str] = _Expiring(clock)
        self._cooldowns: _Expiring[bool] = _Expiring(clock)
        self._texts: dict[str, str] = {}

    def _purge(self, added: int = 0) -> None:
        budget = PURGE_BATCH + added
        for table in (self._counters, self._values, self._claims, self._leases, self._cooldowns):
            table.purge(budget)

    def entries(self) -> int:
        """How many entries are held (expired ones not yet purged included); for tests and metrics."""
        return sum(len(t) for t in (self._counters, self._values, self._claims, self._leases,
                                    self._cooldowns))

    async def reserve(self, charges: Sequence[Charge]) -> Refusal | None:
        self._purge(len(charges))
        pending: dict[str, int] = {}
        for index, charge in enumerate(charges):
            current = pending.get(charge.key, self._counters.get(charge.key) or 0)
            if charge.limit is not None and current + charge.amount > charge.limit:
                return Refusal(index=index, current=current)
            pending[charge.key] = current + charge.amount
        self._apply(charges)
        return None

    async def adjust(self, charges: Sequence[Charge]) -> None:
        self._purge(len(charges))
        self._apply(charges)

    def _apply(self, charges: Sequence[Charge]) -> None:
        for charge in charges:
            current = self._counters.get(charge.key)
            if current is None:
                self._counters.put(charge.key, charge.amount, self._clock() + charge.ttl_s)
            else:
                self._counters.replace(charge.key, current + charge.amount)

    async def read(self, keys: Sequence[str]) -> list[int]:
        return [self._counters.get(key) or 0 for key in keys]

    async def first_value(self, key: str, value: str, ttl_s: float | None = None) -> str:
        self._purge(1)
        stored = self._values.get(key)
        if stored is not None:
            return stored
        self._values.put(key, value, math.inf if ttl_s is None else self._clock() + ttl_s)
        return value

    async def get_text(self, key: str) -> str | None:
        return self._texts.get(key)

    async def set_text(self, key: str, value: str) -> None:
        self._texts[key] = value

    async def claim(self, key: str, ttl_s: float) -> bool:
        self._purge(1)
        if self._claims.get(key) is not None:
            return False
        self._claims.put(key, True, self._clock() + ttl_s)
        return True

    async def lead(self, name: str, holder: str, ttl_s: float) -> bool:
        self._purge(1)
        current = self._leases.get(name)
        if current is not None and current != holder:
            return False
        self._leases.put(name, holder, self._clock() + ttl_s)
        return True

    async def open_cooldown(self, model: str, seconds: float) -> None:
        self._purge(1)
        until = self._clock() + seconds
        current = self._cooldowns.expires_at(model)
        if current is None or current < until:
            self._cooldowns.put(model, True, until)

    async def cooldowns(self) -> dict[str, float]:
        now = self._clock()
        return {model: until - now for model, (_, until) in self._cooldowns.live().items()}

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
