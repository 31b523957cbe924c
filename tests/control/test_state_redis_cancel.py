"""A task cancelled while it talks to Redis stops: `RedisState` never swallows the cancellation.

redis-py writes commands under `asyncio.wait_for`, which on Python 3.11 returns the result of a
write that has just finished instead of raising the caller's cancellation (CPython gh-86296). A
background loop over the state (the cooldown sync, the guardrail refresh) then ran on after
`task.cancel()`, and the `llmroute serve` shutdown that awaited it never ended. Needs a real Redis
(`LLMROUTE_TEST_REDIS_URL`, default redis://127.0.0.1:6379/0); skips without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid

import pytest

from llmroute.control.state import StateUnavailable
from llmroute.control.state_redis import RedisState
from llmroute.testing.redis_tools import redis_unreachable

REDIS_URL = os.environ.get("LLMROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TRIALS = 200




async def _poll(state: RedisState) -> None:
    """A background loop like the cooldown sync's: read, skip outages, pause, again."""
    while True:
        with contextlib.suppress(StateUnavailable):
            await state.cooldowns()
        await asyncio.sleep(0.0005)


def test_a_loop_over_the_state_stops_when_cancelled() -> None:
    why = redis_unreachable(REDIS_URL)
    if why is not None:
        pytest.skip(why)
    rng = random.Random(11)

    async def run() -> int | None:
        """The first trial whose task ran on after `cancel()` (None: every one stopped)."""
        state = RedisState(REDIS_URL, prefix=f"llmroute-test:{uuid.uuid4().hex}:")
        try:
            for trial in range(TRIALS):
                task = asyncio.get_running_loop().create_task(_poll(state))
                await asyncio.sleep(rng.uniform(0, 0.003))  # cancel at any point of the loop
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=0.5)
                if not done:
                    while not task.done():  # stop it for good
                        task.cancel()
                        await asyncio.sleep(0.01)
                    return trial
                assert task.cancelled()
        finally:
            await state.aclose()
        return None

    assert asyncio.run(run()) is None
