"""The answer store in Redis, shared by every replica pointing at `state.url` (the client is made
as the shared state makes its own: `state_redis.redis_client`). Values are the serialized answers
under `<prefix>rc:<key>` with a PX time to live; the cross-replica stampede lock is
`<prefix>rc-lock:<key>` (SET NX PX). A failure raises `StateUnavailable`: the caller serves the
request uncached."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from ..control.state import StateUnavailable
from ..control.state_redis import ms, reachable, redis_client


@contextmanager
def _guard() -> Iterator[None]:
    """Unreachable (the shared state's mapping) or any other Redis error (out of memory, a
    refused command): `StateUnavailable`, so the request is served uncached."""
    try:
        with reachable():
            yield
    except RedisError as exc:
        raise StateUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc


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
        with _guard():
            value: bytes | str | None = await self._redis.get(self._key(key))
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        with _guard():
            await self._redis.set(self._key(key), value, px=ms(ttl_s))

    async def lock(self, key: str, ttl_s: float) -> bool:
        with _guard():
            won = await self._redis.set(self._lock(key), b"1", nx=True, px=ms(ttl_s))
        return bool(won)

    async def locked(self, key: str) -> bool:
        with _guard():
            held: int = await self._redis.exists(self._lock(key))
        return bool(held)

    async def unlock(self, key: str) -> None:
        with _guard():
            await self._redis.delete(self._lock(key))

    async def aclose(self) -> None:
        await self._redis.aclose()
