"""`server.coalesce.ready_batches` (issue 17): items ready at once go as one batch, no item waits
behind a wait for the next, and a cancellation or failure reaches the items where they wait, as
an awaited item's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


async def paced(plan: list[int | str], seen: list[str]) -> AsyncGenerator[int, None]:
    """`items`, noting each time it is asked for the item after one it yielded."""
    for step in plan:
        if isinstance(step, str):
            await asyncio.sleep(int(step) / 1000)
            continue
        yield step
        seen.append(f"asked after {step}")


@pytest.mark.asyncio
async def test_eager_sends_an_item_that_came_after_a_wait_before_asking_for_the_next() -> None:
    seen: list[str] = []

    async def flush(batch: list[int]) -> None:
        seen.append(f"sent {batch}")

    last = await ready_batches(paced([1, "5", 2, "5", 3], seen), flush, 8, 2, eager=True)
    assert last == []
    assert seen == ["asked after 1", "sent [1]", "sent [2]", "asked after 2", "sent [3]",
                    "asked after 3"]
    seen.clear()  # without `eager` the next item is asked for first (the batch waits for it)
    assert await ready_batches(paced([1, "5", 2, "5", 3], seen), flush, 8, 2) == [3]
    assert seen == ["asked after 1", "sent [1]", "asked after 2", "sent [2]", "asked after 3"]


@pytest.mark.asyncio
async def test_eager_still_batches_the_items_ready_at_once() -> None:
    batches: list[list[int]] = []

    async def flush(batch: list[int]) -> None:
        batches.append(list(batch))

    last = await ready_batches(items([1, 2, "5", 3, 4, 5, "5", 6], []), flush, 4, eager=True)
    assert batches == [[1, 2], [3], [4, 5], [6]] and last == []
    batches.clear()
    last = await ready_batches(items([1, 2, "5", 3, 4, 5, "5", 6], []), flush, 4)
    assert batches == [[1, 2], [3, 4, 5]] and last == [6]


@pytest.mark.asyncio
async def test_eager_a_cancel_while_sending_an_item_that_came_after_a_wait() -> None:
    seen: list[str] = []
    sending = asyncio.Event()

    async def flush(batch: list[int]) -> None:
        if batch == [2]:  # a send that waits (a paused socket)
            sending.set()
            await asyncio.sleep(1000)

    stream = items([1, "5", 2, "1000", 3], seen)
    task = asyncio.ensure_future(ready_batches(stream, flush, 16, eager=True))
    await sending.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == []  # the items wait at their yield: closed by the caller (asgi.send_stream)
    await stream.aclose()
    assert seen == ["closed"]


def model(plan: list[int | str], most: int, first: int | None, eager: bool
          ) -> tuple[list[list[int]], list[int]]:
    """What `ready_batches` flushes and returns for a plan, written out plainly."""
    batches: list[list[int]] = []
    batch: list[int] = []
    limit, waited = first or most, False
    for step in plan:
        if isinstance(step, str):  # a wait: what is batched goes first
            if batch:
                batches.append(batch)
                batch, limit = [], most
            waited = True
            continue
        if waited and eager:
            batches.append([step])
            limit, waited = most, False
            continue
        batch.append(step)
        if waited:  # the item a wait brought: its batch's bound is checked at the next item
            waited = False
            continue
        if len(batch) >= limit:
            batches.append(batch)
            batch, limit = [], most
    return batches, batch


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 99), st.just("0")), max_size=24),
       st.integers(1, 5), st.one_of(st.none(), st.integers(1, 5)))
def test_batches_as_the_model_says_and_eager_relays_the_same_items(
        plan: list[int | str], most: int, first: int | None) -> None:
    async def run(eager: bool) -> tuple[list[list[int]], list[int]]:
        batches: list[list[int]] = []

        async def flush(batch: list[int]) -> None:
            batches.append(list(batch))

        last = await ready_batches(items(plan, []), flush, most, first, eager=eager)
        return batches, last

    expected = [step for step in plan if isinstance(step, int)]
    for eager in (False, True):
        batches, last = asyncio.run(run(eager))
        assert (batches, last) == model(plan, most, first, eager)
        assert [i for batch in batches for i in batch] + last == expected
