"""Where conversations' warm models are kept (`cache.affinity`): an in-process LRU bounded by
entries, with a TTL, or Redis (shared by replicas; one GET per routed request, one SET per answer,
each bounded by `timeout_s`). An unreachable Redis means no affinity for a while, never a failed
request: a failed call is logged once and Redis is left alone for `RETRY_S` seconds."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from ..control.state import StateUnavailable
from ..settings import StateConfig
from .affinity import Warmth, dumps_all, loads_all
from .config import AffinityConfig

T = TypeVar("T")
log = logging.getLogger("llmroute.cache.affinity")
#: After a failed Redis call, how long the store answers "nothing known" without trying Redis.
RETRY_S = 5.0


class AffinityStore(Protocol):
    """Conversation key -> its warm models (newest first); models whose cache is older than the
    TTL are never returned; () when nothing is known."""

    async def get(self, key: str) -> Warmth: ...

    async def put(self, key: str, warmth: Warmth) -> None: ...

    async def aclose(self) -> None: ...


class MemoryAffinity:
    """This process's conversations: an LRU of at most `max_entries`, each kept `ttl_s`."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.time):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, Warmth] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Warmth:
        warmth = self._entries.get(key)
        if warmth is None:
            return ()
        oldest = self.clock() - self.ttl_s
        live = tuple(w for w in warmth if w.at >= oldest)
        if not live:
            del self._entries[key]
            return ()
        self._entries.move_to_end(key)
        return live

    async def put(self, key: str, warmth: Warmth) -> None:
        self._entries[key] = warmth
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisAffinity:
    """Conversations in Redis under `<prefix>aff:<key>`, expiring after `ttl_s` (PX)."""

    def __init__(self, url: str, *, prefix: str, ttl_s: float, timeout_s: float,
                 clock: Callable[[], float] = time.monotonic):
        from ..control.state_redis import redis_client

        self._redis = redis_client(url, timeout_s=timeout_s)
        self.prefix = f"{prefix}aff:"
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self.clock = clock
        self._down_until = 0.0

    async def get(self, key: str) -> Warmth:
        if self.clock() < self._down_until:
            return ()
        try:
            text = await self._call(self._redis.get(self.prefix + key))
        except StateUnavailable:
            return ()
        return loads_all(text) if isinstance(text, str) else ()

    async def put(self, key: str, warmth: Warmth) -> None:
        if self.clock() < self._down_until or not warmth:
            return
        try:
            await self._call(self._redis.set(self.prefix + key, dumps_all(warmth), px=self.ttl_ms))
        except StateUnavailable:
            return

    async def _call(self, call: Awaitable[T]) -> T:
        from ..control.state_redis import reachable

        try:
            with reachable():
                result = await call
        except StateUnavailable as exc:
            if self._down_until == 0.0:
                log.warning("affinity store unreachable (%s): routing without cache affinity", exc)
            self._down_until = self.clock() + RETRY_S
            raise
        if self._down_until:
            log.warning("affinity store reachable again")
            self._down_until = 0.0
        return result

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_affinity(config: AffinityConfig, state: StateConfig) -> AffinityStore:
    """The store `config.backend` names (auto: Redis when the shared state is Redis)."""
    redis = state.url.startswith(("redis://", "rediss://"))
    if redis and config.backend != "memory":
        return RedisAffinity(state.url, prefix=state.prefix, ttl_s=config.ttl_s,
                             timeout_s=config.timeout_s)
    if config.backend == "redis":
        log.warning("cache.affinity.backend is redis but state.url is %s: using this process's "
                    "memory", state.url)
    return MemoryAffinity(config.ttl_s, config.max_entries)
