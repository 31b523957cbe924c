"""Writing the ledger with the CPU the requests leave spare (issue 17's 1-client tail).

A batch of 256 entries keeps SQLite busy for milliseconds. On the event loop's core, at normal
priority, a request that arrives meanwhile shares the core with it and waits; at the lowest priority
(nice 19) the scheduler runs the request first. A thread at nice 19 gets almost nothing of a core
that something else keeps busy, so the writer paces a batch by its backlog (`LedgerWriter._send`,
`store.PacedWrites`): to the low-priority thread, rows built in slices between yields, only while it
keeps up (fewer than a batch of entries queued behind this one); otherwise at normal priority with
the rows built in one go, because under full load each yield waits for a whole round of requests
and a writer that yields falls behind. A batch that starves at nice 19 (full load, or other
processes on the core) leaves the queue to grow, and the next batches go the other way until it is
short again; `Starved` notices such a batch (its wall time far beyond its CPU time) and keeps the
batches at normal priority for a while, so a loaded writer does not cycle between starving at nice
19 and catching up (measured: up to 3,114 entries queued without it, 581 with it, at 64 clients).
The while starts short and doubles with each starved batch in a row, up to `STARVED_PAUSE_S`: a
burst that starved a batch or two (a few seconds at 16 clients) is followed by idle writes again
within a second or two, where a fixed 10 s pause kept the next 10 s of 1-client traffic behind
batches built in one go at normal priority (run.py's 1-client p99 4.3 ms, 2.2 ms with a 1 s pause,
on a VM where the 1-client load keeps the core ~90% busy); sustained load reaches the full pause
after a few batches (0.5 + 1 + 2 + 4 + 8 s).
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

#: The nice value of the thread that writes batches while the writer keeps up (the lowest priority).
IDLE_NICE: Final = 19
#: An idle write whose wall time exceeds this many times its CPU time (plus `STARVED_SLACK_S`, for
#: the disk) was starved: at 1 client it runs while the loop waits, 3-5 times its CPU; at full load
#: ~60 times ...
STARVED_FACTOR: Final = 20.0
STARVED_SLACK_S: Final = 0.005
#: ... and the batches keep normal priority for this long after the first starved batch, doubling
#: with each starved batch in a row (one that is not starved starts it again) ...
STARVED_PAUSE_FIRST_S: Final = 0.5
#: ... up to this long.
STARVED_PAUSE_S: Final = 10.0


def lower_this_thread(niceness: int = IDLE_NICE) -> None:
    """Give the calling thread `niceness` (Linux, where a thread has a nice value of its own; a
    no-op elsewhere, where `setpriority` would lower the whole process). Best effort."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class Starved:
    """Whether an idle write was starved lately (see `STARVED_FACTOR`): `timed(fn)` runs `fn` on the
    idle thread and notes its wall and CPU time; `lately()` is asked on the event loop's thread.
    The pause after a starved write is `first_pause_s`, doubled for each starved write in a row,
    at most `pause_s`."""

    def __init__(self, factor: float = STARVED_FACTOR, slack_s: float = STARVED_SLACK_S,
                 pause_s: float = STARVED_PAUSE_S, *, first_pause_s: float = STARVED_PAUSE_FIRST_S,
                 cpu: Callable[[], float] = time.thread_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factor, self._slack_s, self._pause_s = factor, slack_s, pause_s
        self._first_pause_s = min(first_pause_s, pause_s)
        self._next_pause_s = self._first_pause_s
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
                    self._until = end + self._next_pause_s
                    self._next_pause_s = min(2.0 * self._next_pause_s, self._pause_s)
                else:
                    self._next_pause_s = self._first_pause_s
        return run
