"""`RedisState`: the `SharedState` every replica pointing at one Redis shares, on `redis.asyncio`.
Each operation is one round trip: a Lua script (loaded once, run by EVALSHA) or a single command,
so check-and-reserve is atomic across replicas. Sockets time out quickly and are never retried (a
retried INCRBY could count twice): an unreachable or slow Redis raises `StateUnavailable` at once,
and the connection pool reconnects by itself on the next call once Redis is back.

Keys (under `prefix`): counters `c:<key>`, first values `v:<key>`, claims `claim:<key>`, leases
`lease:<name>`, texts `t:<key>`, and one hash `cooldowns` (model -> until, Redis-server epoch ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmroute.control import state_redis_lua as lua
from llmroute.control.state import Charge, Refusal, StateUnavailable

#: Failures that mean "Redis cannot be reached (or written) now", not a bug in a request (the
#: built-in TimeoutError, asyncio's too, is an OSError).
_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError,
)


@contextmanager
def reachable() -> Iterator[None]:
    """Turn connection failures and timeouts into `StateUnavailable`, and never lose a
    cancellation: redis-py sends with `asyncio.wait_for`, which on Python 3.11 returns the result
    of a send that had just finished instead of raising the caller's cancellation (CPython
    gh-86296), so a background loop over the state could not be stopped."""
    try:
        yield
    except _DOWN as exc:
        _raise_if_cancelled()
        raise StateUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
    _raise_if_cancelled()


def _raise_if_cancelled() -> None:
    """Raise the CancelledError of a cancellation requested during the call and swallowed by it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _ms(seconds: float) -> int:
    """A positive whole number of milliseconds (Redis refuses 0 and deletes on negatives)."""
    return max(1, round(seconds * 1000))


def _charge_args(charges: Sequence[Charge]) -> list[str | int]:
    args: list[str | int] = []
    for charge in charges:
        args += [charge.amount, "" if charge.limit is None else charge.limit, _ms(charge.ttl_s)]
    return args


def _refusal(reply: object) -> Refusal | None:
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 2:
        raise TypeError(f"unexpected reserve reply {reply!r}")
    return Refusal(index=int(reply[0]), current=int(reply[1]))


def _seconds_left(reply: object) -> dict[str, float]:
    if not isinstance(reply, list):
        raise TypeError(f"unexpected cooldowns reply {reply!r}")
    return {str(reply[i]): int(reply[i + 1]) / 1000 for i in range(0, len(reply), 2)}


#: For the other users of Redis (the response cache): the same failure mapping and milliseconds.
ms = _ms


def redis_client(url: str, *, timeout_s: float, connect_timeout_s: float | None = None,
                 max_connections: int | None = None, decode_responses: bool = True
                 ) -> aioredis.Redis:
    """A client as the shared state (and the response cache) use Redis: short socket timeouts,
    no retries (a retried INCRBY could count twice)."""
    return aioredis.Redis.from_url(
        url, decode_responses=decode_responses, socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s if connect_timeout_s is None else connect_timeout_s,
        retry=Retry(NoBackoff(), 0), max_connections=max_connections,
        # RESP2: redis-py then checks a pooled connection for EOF before reusing it (with RESP3
        # it skips that check for its maintenance notifications), so a connection that Redis
        # closed while idle is replaced instead of failing one call after Redis comes back.
        protocol=2,
    )


class RedisState:
    """`SharedState` in Redis. `timeout_s` bounds each socket read/write, `connect_timeout_s` each
    connection attempt (default: `timeout_s`)."""

    def __init__(self, url: str, *, prefix: str = "llmroute:", timeout_s: float = 0.5,
                 connect_timeout_s: float | None = None, max_connections: int | None = None) -> None:
        self.prefix = prefix
        self._redis = redis_client(url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                                   max_connections=max_connections)
        self._reserve = self._redis.register_script(lua.RESERVE)
        self._adjust = self._redis.register_script(lua.ADJUST)
        self._first_value = self._redis.register_script(lua.FIRST_VALUE)
        self._lead = self._redis.register_script(lua.LEAD)
        self._open_cooldown = self._redis.register_script(lua.OPEN_COOLDOWN)
        self._cooldowns = self._redis.register_script(lua.COOLDOWNS)

    def _counter(self, key: str) -> str:
        return f"{self.prefix}c:{key}"

    async def reserve(self, charges: Sequence[Charge]) -> Refusal | None:
        if not charges:
            return None
        keys = [self._counter(c.key) for c in charges]
        with reachable():
            reply: object = await self._reserve(keys=keys, args=_charge_args(charges))
        return _refusal(reply)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        if not charges:
            return
        keys = [self._counter(c.key) for c in charges]
        with reachable():
            await self._adjust(keys=keys, args=_charge_args(charges))

    async def read(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        with reachable():
            values: list[bytes | str | None] = await self._redis.mget([self._counter(k) for k in keys])
        return [0 if v is None else int(v) for v in values]

    async def first_value(self, key: str, value: str, ttl_s: float | None = None) -> str:
        ttl = "" if ttl_s is None else _ms(ttl_s)
        with reachable():
            stored: object = await self._first_value(keys=[f"{self.prefix}v:{key}"], args=[value, ttl])
        return str(stored)

    async def get_text(self, key: str) -> str | None:
        with reachable():
            value: bytes | str | None = await self._redis.get(f"{self.prefix}t:{key}")
        return value.decode() if isinstance(value, bytes) else value

    async def set_text(self, key: str, value: str) -> None:
        with reachable():
            await self._redis.set(f"{self.prefix}t:{key}", value)

    async def claim(self, key: str, ttl_s: float) -> bool:
        with reachable():
            won = await self._redis.set(f"{self.prefix}claim:{key}", "1", nx=True, px=_ms(ttl_s))
        return bool(won)

    async def lead(self, name: str, holder: str, ttl_s: float) -> bool:
        with reachable():
            held: object = await self._lead(keys=[f"{self.prefix}lease:{name}"], args=[holder, _ms(ttl_s)])
        return held == 1

    async def open_cooldown(self, model: str, seconds: float) -> None:
        with reachable():
            await self._open_cooldown(keys=[f"{self.prefix}cooldowns"], args=[model, _ms(seconds)])

    async def cooldowns(self) -> dict[str, float]:
        with reachable():
            reply: object = await self._cooldowns(keys=[f"{self.prefix}cooldowns"])
        return _seconds_left(reply)

    async def ping(self) -> None:
        with reachable():
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
