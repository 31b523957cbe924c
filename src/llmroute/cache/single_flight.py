"""Stampede protection in one process: the first of identical concurrent misses leads (makes the
one upstream call); the others follow, waiting up to `wait_s` for its answer. A leader that fails
(or is cancelled) finishes with None and its followers fall through to their own calls; a leader
that never finishes (a stream nobody read) is replaced once `wait_s` has passed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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

    def __init__(self, wait_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s = wait_s
        self._clock = clock
        self._pending: dict[str, tuple[asyncio.Future[CachedAnswer | None], float]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def join(self, key: str) -> Flight:
        """Lead the key's flight, or follow the one in progress."""
        now = self._clock()
        pending = self._pending.get(key)
        if pending is not None and not pending[0].done() and now - pending[1] < self.wait_s:
            return Flight(key, pending[0], leader=False)
        future: asyncio.Future[CachedAnswer | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = (future, now)
        return Flight(key, future, leader=True)

    async def wait(self, flight: Flight) -> CachedAnswer | None:
        """A follower's wait: the leader's answer, or None (it failed, or took too long)."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight.future), self.wait_s)
        except TimeoutError:
            return None

    def finish(self, flight: Flight, answer: CachedAnswer | None) -> None:
        """The leader is done (idempotent): hand its followers the answer, or None."""
        if not flight.leader:
            return
        if not flight.future.done():
            flight.future.set_result(answer)
        pending = self._pending.get(flight.key)
        if pending is not None and pending[0] is flight.future:
            del self._pending[flight.key]
