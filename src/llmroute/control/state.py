"""The one interface behind which every piece of state that replicas must agree on lives: windowed
counters with atomic check-and-reserve (budgets, rate limits), first-writer-wins values (sticky
experiment assignment), claims with a lifetime (alert dedup), a lease (one alert evaluator),
deployment cooldowns, and texts one writer publishes for all (the online learner's state).
`MemoryState` (in `state_memory`) is the in-process default; `RedisState` (in `state_redis`) is
shared by every replica pointing at the same Redis.

Amounts are integers: money in nano-USD (`NANO_USD` per dollar), requests and tokens as counts, so
sums are exact in every implementation. Every method may raise `StateUnavailable` (the backing store
cannot be reached); callers decide whether to fail open or closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Integer units per US dollar in counters (nano-USD).
NANO_USD = 1_000_000_000


class StateUnavailable(Exception):
    """The shared state cannot be reached (e.g. Redis is down)."""


@dataclass(frozen=True)
class Charge:
    """Add `amount` to counter `key`; with `limit`, only if the counter stays at or below it.
    A counter that does not exist starts at 0 and expires `ttl_s` seconds after it is created."""

    key: str
    amount: int
    limit: int | None
    ttl_s: float


@dataclass(frozen=True)
class Refusal:
    """Why `reserve` applied nothing: `charges[index]` would have taken its counter from `current`
    past its limit."""

    index: int
    current: int


class SharedState(Protocol):
    """State shared by every replica (or, in-process, by one)."""

    async def reserve(self, charges: Sequence[Charge]) -> Refusal | None:
        """Atomically: if every limited charge fits (current + amount <= limit), apply them all and
        return None; else apply none and return the first that does not fit."""
        ...

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Add each amount (may be negative: settling a reservation) with no limit check; a missing
        counter is created with its ttl."""
        ...

    async def read(self, keys: Sequence[str]) -> list[int]:
        """Current values of counters (0 for missing or expired ones)."""
        ...

    async def first_value(self, key: str, value: str, ttl_s: float | None = None) -> str:
        """Store `value` under `key` unless one is there; return the stored one (first writer wins)."""
        ...

    async def claim(self, key: str, ttl_s: float) -> bool:
        """True for the first caller within `ttl_s` seconds, False for everyone after (dedup)."""
        ...

    async def lead(self, name: str, holder: str, ttl_s: float) -> bool:
        """Acquire or renew the lease `name` for `holder`; True while `holder` holds it."""
        ...

    async def open_cooldown(self, model: str, seconds: float) -> None:
        """Take `model` out of rotation on every replica for `seconds` (a longer one already set
        is kept)."""
        ...

    async def cooldowns(self) -> dict[str, float]:
        """Every model in cooldown, with the seconds it has left."""
        ...

    async def get_text(self, key: str) -> str | None:
        """The text last stored under `key` by `set_text` (None when there is none)."""
        ...

    async def set_text(self, key: str, value: str) -> None:
        """Store `value` under `key` (last writer wins; no expiry): a document one writer
        publishes and every replica reads (the online learner's posterior)."""
        ...

    async def ping(self) -> None:
        """Return when the state is reachable; raise `StateUnavailable` otherwise."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
