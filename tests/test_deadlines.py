"""`Deadlines`: many tasks' deadlines on one timer cut each task at its own deadline, as
`asyncio.timeout` would, and never one that finished or was cancelled by someone else."""

from __future__ import annotations

import asyncio

import pytest

from llmroute import deadlines as deadlines_module
from llmroute.deadlines import Deadlines


async def _bounded(deadlines: Deadlines, delay: float, work: float) -> str:
    """`work` seconds of waiting under a deadline `delay` from now: "done" or "timeout"."""
    armed = deadlines.arm(asyncio.get_running_loop().time() + delay)
    if armed is None:
        try:
            async with asyncio.timeout(delay):
                await asyncio.sleep(work)
        except TimeoutError:
            return "timeout (asyncio)"
        return "done (asyncio)"
    try:
        try:
            await asyncio.sleep(work)
        except BaseException as exc:
            deadlines.disarm(armed, exc)
            raise
        deadlines.disarm(armed, None)
    except TimeoutError:
        assert armed.expired()
        return "timeout"
    return "done"


@pytest.mark.asyncio
async def test_each_task_is_cut_at_its_own_deadline() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    cases = [(0.05, 1.0), (0.30, 0.02), (0.10, 1.0), (0.20, 0.05), (0.15, 1.0), (0.50, 0.01)]
    started = loop.time()
    ended: dict[int, float] = {}

    async def one(i: int, delay: float, work: float) -> str:
        result = await _bounded(deadlines, delay, work)
        ended[i] = loop.time() - started
        return result

    results = await asyncio.gather(*(one(i, d, w) for i, (d, w) in enumerate(cases)))
    # the deadlines were armed out of order (0.05, 0.30, 0.10, ...): slotted in, not refused
    assert results == ["timeout", "done", "timeout", "done", "timeout", "done"]
    for i, (delay, work) in enumerate(cases):
        expected = min(delay, work)
        assert expected - 0.005 <= ended[i] < expected + 0.08, (i, ended[i])
    assert not deadlines._queue and deadlines._live == 0


@pytest.mark.asyncio
async def test_a_deadline_far_before_the_last_ones_falls_back_to_asyncio_timeout() -> None:
    deadlines = Deadlines()
    late = [asyncio.create_task(_bounded(deadlines, 5.0, 0.05))
            for _ in range(deadlines_module.REORDER + 1)]
    await asyncio.sleep(0)
    assert await _bounded(deadlines, 0.02, 1.0) == "timeout (asyncio)"
    assert await asyncio.gather(*late) == ["done"] * len(late)


@pytest.mark.asyncio
async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(_bounded(deadlines, 5.0, 5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._live == 0


@pytest.mark.asyncio
async def test_finished_calls_behind_a_slow_one_are_compacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadlines_module, "SLACK", 16)
    deadlines = Deadlines()
    slow = asyncio.create_task(_bounded(deadlines, 5.0, 0.3))
    await asyncio.sleep(0)
    for _ in range(200):
        assert await _bounded(deadlines, 5.0, 0) == "done"
    assert len(deadlines._queue) <= 16 + 4 * 1 + 1  # not 201
    assert await slow == "done"


def test_a_deadlines_serves_the_loop_it_was_first_used_on() -> None:
    deadlines = Deadlines()
    assert asyncio.run(_bounded(deadlines, 1.0, 0)) == "done"
    assert asyncio.run(_bounded(deadlines, 1.0, 0)) == "done (asyncio)"  # another loop
