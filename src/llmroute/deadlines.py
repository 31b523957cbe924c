"""Many calls' deadlines on one event loop kept by one timer (issue 17: `asyncio.timeout` arms and
cancels a loop timer per call, ~27 k instructions each under uvloop, once per request attempt).

`Deadlines.arm(when)` registers the running task's deadline (on the loop's clock) and returns its
`Deadline`, or None when the deadline is well before the last ones armed (a retry within an older
request's deadline): the caller then uses `asyncio.timeout`. The deadlines form a queue in time
order (a new one is nearly always the latest: each request's is its start plus the same budget;
one a little earlier is slotted in a few places back); one timer, set no later than the queue's
head, fires, cancels the tasks whose deadlines have passed and moves itself to the next live one.
`Deadlines.disarm` applies `asyncio.Timeout.__aexit__`'s rule: the cancellation the deadline
caused (and no other request to cancel the task since) becomes a `TimeoutError`. A finished
call's entry leaves the queue once it reaches the head (or in a compaction when finished ones pile
up behind a slow one). One `Deadlines` serves the loop it was first used on; on any other loop
`arm` returns None.
"""

from __future__ import annotations

import asyncio
from collections import deque

#: Finished entries tolerated in the queue, beyond 3 per live one, before it is compacted.
SLACK = 1024
#: How far back from the queue's end a deadline is slotted in; one earlier than that: None.
REORDER = 8


class Deadline:
    """One armed deadline of one task."""

    __slots__ = ("cancelling", "done", "expiring", "task", "when")

    def __init__(self, when: float, task: asyncio.Task[object]) -> None:
        self.when = when
        self.task = task
        self.cancelling = task.cancelling()
        self.done = False
        self.expiring = False

    def expired(self) -> bool:
        """Whether this deadline cancelled its task."""
        return self.expiring

    def exit(self, error: BaseException | None) -> None:
        """The call left its deadline's scope with `error` (None: normally): raise TimeoutError
        when the deadline's cancellation is what ended it, as `asyncio.timeout` does."""
        self.done = True
        if self.expiring and self.task.uncancel() <= self.cancelling \
                and isinstance(error, asyncio.CancelledError):
            raise TimeoutError from error


class Deadlines:
    """Deadlines armed in order on one loop, one timer for all (see the module's docstring)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[Deadline] = deque()
        self._live = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def arm(self, when: float) -> Deadline | None:
        """The running task's deadline at `when` (the loop's time), or None: use asyncio.timeout."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                return None
            self._loop = loop
        queue = self._queue
        at = len(queue)
        while at and queue[at - 1].when > when:  # keep the queue in time order
            at -= 1
            if len(queue) - at > REORDER:
                return None
        task = asyncio.current_task()
        if task is None:
            return None
        deadline = Deadline(when, task)
        if at == len(queue):
            queue.append(deadline)
        else:
            queue.insert(at, deadline)
        self._live += 1
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = loop.call_at(when, self._fire), when
        return deadline

    def disarm(self, deadline: Deadline, error: BaseException | None) -> None:
        """The call is over (`error`: what ended it, None when it returned): drop the deadline;
        raises TimeoutError when it expired (`Deadline.exit`). Once per `arm`."""
        self._live -= 1
        queue = self._queue
        try:
            deadline.exit(error)
        finally:
            while queue and queue[0].done:
                queue.popleft()
            if len(queue) > SLACK + 4 * self._live:
                self._queue = deque(d for d in queue if not d.done)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        queue = self._queue
        while queue:
            head = queue[0]
            if not head.done and head.when > now:
                self._timer, self._timer_at = loop.call_at(head.when, self._fire), head.when
                return
            queue.popleft()
            if not head.done:  # due: cancel its task (its exit turns that into TimeoutError)
                head.expiring = True
                head.task.cancel()
