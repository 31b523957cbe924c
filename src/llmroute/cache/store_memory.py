"""The in-process answer store (the default): an LRU of serialized answers with a TTL per entry,
bounded by `max_entries` and by `max_bytes` (the stored values' size). One replica only: the
stampede protection of one process is `single_flight.Flights`, so its lock always succeeds."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryStore:
    """LRU + TTL. `get` moves an entry to the young end; `put` evicts from the old end."""

    shared = False

    def __init__(self, max_entries: int, max_bytes: int, *,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, value)
        self.bytes += len(value)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes -= len(value)

    async def lock(self, key: str, ttl_s: float) -> bool:
        return True

    async def locked(self, key: str) -> bool:
        return False

    async def unlock(self, key: str) -> None:
        return None

    async def aclose(self) -> None:
        self._entries.clear()
        self.bytes = 0
