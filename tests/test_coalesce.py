"""`server.coalesce.ready_batches` (issue 17): items ready at once go as one batch, no item waits
behind a wait for the next, and a cancellation or failure reaches the items where they wait, as
an awaited item's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from llmroute.server.coalesce import ready_batches


async def items(plan: list[int | str], seen: list[str]) -> AsyncGenerator[int, None]:
    """Yields the ints; a str means "wait this long (ms)" ("fail" raises); notes how it ended."""
    try:
        for step in plan:
            if step == "fail":
                raise ValueError("the upstream broke")
            if isinstance(step, str):
                await asyncio.sleep(int(step) / 1000)
            else:
                yield step
        seen.append("ended")
    except asyncio.CancelledError:
        seen.append("cancelled where it waited")
        raise
    finally:
        seen.append("closed")


@pytest.mark.asyncio
async def test_ready_items_go_together_and_nothing_is_held_over_a_wait() -> None:
    loop = asyncio.get_running_loop()
    flushed: list[tuple[list[int], float]] = []

    async def flush(batch: list[int]) -> None:
        flushed.append((list(batch), loop.time()))

    seen: list[str] = []
    started = loop.time()
    last = await ready_batches(items([1, 2, 3, "30", 4, "0", 5, 6, 7, 8, 9], seen), flush, 4)
    assert [batch for batch, _ in flushed] == [[1, 2, 3], [4], [5, 6, 7, 8]]
    assert last == [9]
    assert flushed[0][1] - started < 0.02  # sent before the 30 ms wait, not after it
    assert seen == ["ended", "closed"]


@pytest.mark.asyncio
async def test_the_first_batch_has_its_own_bound() -> None:
    batches: list[list[int]] = []

    async def flush(batch: list[int]) -> None:
        batches.append(list(batch))

    last = await ready_batches(items([1, 2, 3, 4, 5, 6, 7, "5", 8], []), flush, 4, first=2)
    assert batches == [[1, 2], [3, 4, 5, 6], [7]] and last == [8]


@pytest.mark.asyncio
async def test_the_items_end_after_a_wait() -> None:
    batches: list[list[int]] = []

    async def flush(batch: list[int]) -> None:
        batches.append(list(batch))

    assert await ready_batches(items([1, "5"], []), flush, 16) == []
    assert batches == [[1]]


@pytest.mark.asyncio
async def test_a_failure_sends_what_came_before_then_raises() -> None:
    batches: list[list[int]] = []

    async def flush(batch: list[int]) -> None:
        batches.append(list(batch))

    with pytest.raises(ValueError, match="broke"):
        await ready_batches(items([1, 2, "fail"], []), flush, 16)
    assert batches == [[1, 2]]
    with pytest.raises(ValueError, match="broke"):
        await ready_batches(items([3, "5", "fail"], []), flush, 16)
    assert batches == [[1, 2], [3]]


@pytest.mark.asyncio
async def test_a_cancel_while_waiting_for_an_item_reaches_the_items_where_they_wait() -> None:
    seen: list[str] = []
    batches: list[list[int]] = []

    async def flush(batch: list[int]) -> None:
        batches.append(list(batch))

    stream = items([1, "1000", 2], seen)
    task = asyncio.ensure_future(ready_batches(stream, flush, 16))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert batches == [[1]] and seen == ["cancelled where it waited", "closed"]
    await stream.aclose()  # finished: no "already running"


@pytest.mark.asyncio
async def test_a_cancel_while_sending_reaches_the_parked_items_too() -> None:
    seen: list[str] = []
    sending = asyncio.Event()

    async def flush(batch: list[int]) -> None:  # a send that waits (a paused socket)
        sending.set()
        await asyncio.sleep(1000)

    stream = items([1, "1000", 2], seen)
    task = asyncio.ensure_future(ready_batches(stream, flush, 16))
    await sending.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled where it waited", "closed"]
    await stream.aclose()


@pytest.mark.asyncio
async def test_a_send_that_fails_while_items_are_parked_ends_them() -> None:
    seen: list[str] = []

    async def flush(batch: list[int]) -> None:
        raise OSError("the client's socket broke")

    stream = items([1, "1000", 2], seen)
    with pytest.raises(OSError, match="socket"):
        await ready_batches(stream, flush, 16)
    assert seen[-1] == "closed"
    await stream.aclose()
