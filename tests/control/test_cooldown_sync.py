"""Cooldowns shared by replicas: a breaker one replica opens is held by another after one sync."""

from __future__ import annotations

import asyncio

from llmroute.breakers import CooldownPolicy, Cooldowns
from llmroute.control.cooldown_sync import CooldownSync
from llmroute.control.state import StateUnavailable
from llmroute.control.state_memory import MemoryState
from llmroute.errors import UpstreamError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_breaker_opened_on_one_replica_is_held_on_the_other() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    policy = CooldownPolicy(failures=1, cooldown_s=30)
    a, b = Cooldowns(policy, clock=clock), Cooldowns(policy, clock=clock)
    sync_a, sync_b = CooldownSync(a, state), CooldownSync(b, state)

    async def go() -> None:
        a.record_failure("m", UpstreamError("server", "boom"))
        assert a.state("m") == "open" and b.state("m") == "closed"
        await sync_a.once()
        await sync_b.once()
        assert b.state("m") == "open" and not b.available("m")
        clock.now += 29
        await sync_b.once()
        assert b.state("m") == "open"
        clock.now += 2  # the cooldown is over everywhere: one probe at a time again
        await sync_b.once()
        assert b.state("m") == "half_open" and b.available("m")

    asyncio.run(go())


def test_an_unreachable_state_leaves_local_breakers_alone() -> None:
    class Down(MemoryState):
        async def cooldowns(self) -> dict[str, float]:
            raise StateUnavailable("down")

    local = Cooldowns(CooldownPolicy(failures=1, cooldown_s=30))
    sync = CooldownSync(local, Down(), interval_s=0.01)

    async def go() -> None:
        sync.start()
        await asyncio.sleep(0.05)  # the loop keeps running through the failures
        assert sync._task is not None and not sync._task.done()
        await sync.aclose()
        assert local.state("m") == "closed"

    asyncio.run(go())
