"""Items of an async iterator taken as they are ready (issue 17): `ready_batches` hands over, in
order, every item that is there without waiting (several chunks of one upstream read) as one
batch, and never holds an item while it waits for the next one.

How it knows: the next item's first step is run by hand (`__anext__().__await__().send(None)`). An
item that is ready completes that step; one that is not yields the future it waits on. Then the
batch so far is handed over (`flush`) before the wait, and the wait is finished by `parked`, which
hands the same future to the task as `await` would have, then resumes the step under `yield from`
(a cancellation thrown in at the wait goes on to the step). Should `flush` fail or be cancelled
while a step is parked, the step gets the same exception where it waits, as an awaited item
would have: a stream cancelled while it waits for the upstream ends the same way, whichever
await the cancel hit.

`eager` (the hot routes' streams, issue 17's TTFT): the item a wait brought is handed over at
once, on its own, before the next item's step is run. Without it, that step (the whole item chain
down to the upstream socket's wait, ~17 µs on a CPU woken cold after a model's pause, measured
in docs/benchmarks.md) ran before the frame was sent, on every token of a paced stream; the items
ready right after it are still batched."""

from __future__ import annotations

import contextlib
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
Step = Generator[Any, Any, T]


@types.coroutine
def parked(step: Step[T], signal: Any, error: BaseException | None = None
           ) -> Generator[Any, Any, T]:
    """The rest of an awaitable whose first step ran and yielded `signal` (with `error`: thrown
    into it first). Once the task is woken for `signal` (asyncio resumes with None), the step
    goes on under `yield from`, as under `await`: no exception per item."""
    if error is not None:
        try:
            signal = step.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
    while True:
        try:
            yield signal
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:  # a cancellation: thrown in where the step waits
            try:
                signal = step.throw(exc)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            continue
        return (yield from step)


async def ready_batches(items: AsyncIterator[T], flush: Callable[[list[T]], Awaitable[None]],
                        most: int, first: int | None = None, *, eager: bool = False) -> list[T]:
    """Call `flush` with each batch of items (never empty; the first of at most `first` items,
    or `most`, the others of at most `most`) before waiting for the next item; the last batch (maybe empty)
    is returned, not flushed. When the items raise, the batch before is flushed first. With
    `eager`, an item that came after a wait is flushed on its own at once, before the next
    item is asked for (the items ready right after it are batched as before)."""
    batch: list[T] = []
    limit = most if first is None else first
    take = items.__anext__
    while True:
        step: Step[T] = take().__await__()
        try:
            signal = step.send(None)
        except StopIteration as ready:
            batch.append(ready.value)
            if len(batch) >= limit:
                await flush(batch)
                batch, limit = [], most
            continue
        except StopAsyncIteration:
            return batch
        except BaseException:  # the items failed: what came before goes first
            if batch:
                await flush(batch)
            raise
        if batch:
            try:
                await flush(batch)
            except BaseException as exc:
                with contextlib.suppress(BaseException):
                    await parked(step, signal, exc)
                raise
            batch, limit = [], most
        try:
            item = await parked(step, signal)
        except StopAsyncIteration:  # the items ended after a wait
            return batch
        if eager:  # sent before the next item's step runs (the batch is empty after a wait)
            await flush([item])
            limit = most
        else:
            batch.append(item)
