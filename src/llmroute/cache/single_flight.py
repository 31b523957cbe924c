"""Stampede protection in one process: the first of identical concurrent misses leads (makes the
one upstream call); the others follow, waiting up to `wait_s` for its answer. A leader that fails
(or is cancelled) finishes with None and its followers fall through to their own calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .answer import CachedAnswer


@dataclass(frozen=True)
class Flight:
    """One key's pending answer; `leader` says whether this request must produce it."""

    key: str
    future: asyncio.Future[CachedAnswer | None]
    leader: bool


class Flights:
    """The pending misses of one gateway, by cache key."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[CachedAnswer | None]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def join(self, key: str) -> Flight:
        """Lead the key's flight, or follow the one in progress."""
        future = self._pending.get(key)
        if future is not None and not future.done():
            return Flight(key, future, leader=False)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        return Flight(key, future, leader=True)

    @staticmethod
    async def wait(flight: Flight, timeout_s: float) -> CachedAnswer | None:
        """A follower's wait: the leader's answer, or None (it failed, or took too long)."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight.future), timeout_s)
        except TimeoutError:
            return None

    def finish(self, flight: Flight, answer: CachedAnswer | None) -> None:
        """The leader is done (idempotent): hand its followers the answer, or None."""
        if not flight.leader:
            return
        if not flight.future.done():
            flight.future.set_result(answer)
        if self._pending.get(flight.key) is flight.future:
            del self._pending[flight.key]
