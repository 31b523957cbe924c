"""Writing the ledger with the CPU the requests leave spare (issue 17's 1-client tail).

A batch of 256 entries keeps SQLite busy for milliseconds. On the event loop's core, at normal
priority, a request that arrives meanwhile shares the core with it and waits; at the lowest priority
(nice 19) the scheduler runs the request first. A thread at nice 19 gets almost nothing of a core
that something else keeps busy, so the writer paces a batch by its backlog (`LedgerWriter._send`,
`store.PacedWrites`): to the low-priority thread, rows built in slices between yields, only while it
keeps up (fewer than a batch of entries queued behind this one); otherwise at normal priority with
the rows built in one go, because under full load each yield waits for a whole round of requests
and a writer that yields falls behind. A batch that starves at nice 19 leaves the queue to grow,
and the next batches go the other way until it is short again.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Final

#: The nice value of the thread that writes batches while the writer keeps up (the lowest priority).
IDLE_NICE: Final = 19


def lower_this_thread(niceness: int = IDLE_NICE) -> None:
    """Give the calling thread `niceness` (Linux, where a thread has a nice value of its own; a
    no-op elsewhere, where `setpriority` would lower the whole process). Best effort."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
