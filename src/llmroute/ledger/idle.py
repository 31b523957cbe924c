"""Writing the ledger with the CPU the requests leave spare (issue 17's 1-client tail).

A batch of 256 entries keeps SQLite busy for tens of milliseconds. On the event loop's core, at normal
priority, a request that arrives meanwhile shares the core with it and waits; at the lowest priority
(nice 19) the scheduler runs the request first. But a thread at nice 19 gets almost nothing of a busy
core, so that is only right while the loop leaves CPU spare: `SpareCpu` says whether it does (the
loop thread's CPU share since it last asked), and the writer sends a batch to the low-priority thread
only then. Under load the batches keep their normal priority, so the ledger keeps up as before.
Other processes can take the CPU too (a shared host): `Starved` notices an idle write that mostly
waited for a CPU and sends the writes back to normal priority for a while.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

A = TypeVar("A")
T = TypeVar("T")

#: The nice value of the thread that writes batches while the CPU has room (the lowest priority).
IDLE_NICE: Final = 19
#: The loop's CPU share below which a batch goes to that thread. A batch costs about half the CPU
#: of the requests that made it, so at a share of 0.5 the idle thread still has twice what it needs.
SPARE_BELOW: Final = 0.5
#: An idle write whose wall time exceeds this many times its CPU time (plus `STARVED_SLACK_S`, for
#: the disk) was starved by other work on its core ...
STARVED_FACTOR: Final = 4.0
STARVED_SLACK_S: Final = 0.005
#: ... and the writes go to normal priority for this long.
STARVED_PAUSE_S: Final = 10.0


def lower_this_thread(niceness: int = IDLE_NICE) -> None:
    """Give the calling thread `niceness` (Linux, where a thread has a nice value of its own; a
    no-op elsewhere, where `setpriority` would lower the whole process). Best effort."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class SpareCpu:
    """Whether the calling thread used less than `below` of a CPU since the previous `spare()`.

    The first call has no interval to look at and says no (normal priority until it knows)."""

    def __init__(self, below: float = SPARE_BELOW, *,
                 cpu: Callable[[], float] = time.thread_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < below <= 1:
            raise ValueError("below must be in (0, 1]")
        self._below, self._cpu, self._clock = below, cpu, clock
        self._last: tuple[float, float] | None = None

    def spare(self) -> bool:
        now = (self._cpu(), self._clock())
        last, self._last = self._last, now
        if last is None:
            return False
        wall = now[1] - last[1]
        return wall > 0 and (now[0] - last[0]) < self._below * wall


class Starved:
    """Whether an idle write was starved lately (see `STARVED_FACTOR`): `timed(fn)` runs `fn` on the
    idle thread and notes its wall and CPU time; `lately()` is asked on the event loop's thread."""

    def __init__(self, factor: float = STARVED_FACTOR, slack_s: float = STARVED_SLACK_S,
                 pause_s: float = STARVED_PAUSE_S, *, cpu: Callable[[], float] = time.thread_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factor, self._slack_s, self._pause_s = factor, slack_s, pause_s
        self._cpu, self._clock = cpu, clock
        self._until = float("-inf")

    def lately(self) -> bool:
        return self._clock() < self._until

    def timed(self, fn: Callable[[A], T]) -> Callable[[A], T]:
        def run(arg: A) -> T:
            cpu, start = self._cpu(), self._clock()
            try:
                return fn(arg)
            finally:
                end = self._clock()
                if end - start > self._factor * (self._cpu() - cpu) + self._slack_s:
                    self._until = end + self._pause_s
        return run
