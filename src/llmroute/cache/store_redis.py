"""The answer store in Redis, shared by every replica pointing at `state.url` (the client is made
as the shared state makes its own: `state_redis.redis_client`). Values are the serialized answers
under `<prefix>rc:<key>` with a PX time to live; the cross-replica stampede lock is
`<prefix>rc-lock:<key>` (SET NX PX). A failure raises `StateUnavailable`: the caller serves the
request uncached."""

from __future__ import annotations

from ..control.state_redis import ms, reachable, redis_client


class RedisStore:
    """Answers in Redis with PX TTLs, and the leader lock of identical misses."""

    shared = True

    def __init__(self, url: str, *, prefix: str, timeout_s: float):
        self.prefix = prefix
        self._redis = redis_client(url, timeout_s=timeout_s, decode_responses=False)

    def _key(self, key: str) -> str:
        return f"{self.prefix}rc:{key}"

    def _lock(self, key: str) -> str:
        return f"{self.prefix}rc-lock:{key}"

    async def get(self, key: str) -> bytes | None:
        with reachable():
            value: bytes | str | None = await self._redis.get(self._key(key))
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        with reachable():
            await self._redis.set(self._key(key), value, px=ms(ttl_s))

    async def lock(self, key: str, ttl_s: float) -> bool:
        with reachable():
            won = await self._redis.set(self._lock(key), b"1", nx=True, px=ms(ttl_s))
        return bool(won)

    async def locked(self, key: str) -> bool:
        with reachable():
            held: int = await self._redis.exists(self._lock(key))
        return bool(held)

    async def unlock(self, key: str) -> None:
        with reachable():
            await self._redis.delete(self._lock(key))

    async def aclose(self) -> None:
        await self._redis.aclose()
