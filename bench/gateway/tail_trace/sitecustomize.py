"""The tail bench's trace hook, loaded by the gateway's interpreter at start (`sitecustomize`,
found because bench/gateway/tail.py puts this folder on the gateway's PYTHONPATH). Nothing is
installed unless LLMROUTE_TAIL_TRACE names a file; the gateway's own code is not changed.

What it records, as (kind, start_ns, end_ns, detail) on CLOCK_MONOTONIC (the client's clock too):
- gc: every collection (`gc.callbacks`), detail = generation;
- flush: the ledger writer's batches (`LedgerWriter._flush`, event loop side, with awaits),
  detail = entries;
- sqlite: the SQLite store's calls on its thread (`SQLiteStore._locked`);
- thread: any `asyncio.to_thread` call (the WAL's fsync, spool appends), detail = function name;
- rows: the ledger rows built on the event loop (`rows.to_rows`, awaited in slices).
The events are kept in memory and written as JSON lines when the interpreter exits (or when
SIGTERM reaches the handler installed here, which uvicorn re-raises after its shutdown).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

Event = tuple[str, int, int, object]


def set_slice(ns: int, tid: int = 0) -> None:
    """Ask the kernel for a scheduler slice of `ns` for thread `tid` (0: this one), keeping its
    policy (SCHED_OTHER) and nice: sched_setattr's sched_runtime, honoured by EEVDF kernels
    (6.12+: a task with a shorter slice than the running one's preempts it on wakeup)."""
    import ctypes

    class Attr(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                    ("nice", ctypes.c_int32), ("prio", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                    ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]

    attr = Attr(size=ctypes.sizeof(Attr), nice=os.getpriority(os.PRIO_PROCESS, tid), runtime=ns)
    if ctypes.CDLL(None, use_errno=True).syscall(314, tid, ctypes.byref(attr), 0) != 0:
        raise OSError(ctypes.get_errno(), "sched_setattr")


def _install(path: str) -> None:
    events: list[Event] = []
    now = time.monotonic_ns
    started: dict[int, int] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        gen = int(info["generation"])
        if phase == "start":
            started[gen] = now()
        else:
            events.append(("gc", started.pop(gen, now()), now(), gen))

    gc.callbacks.append(on_gc)

    def timed_sync(kind: str, fn: Callable[..., Any], detail: object = None) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = now()
            try:
                return fn(*args, **kwargs)
            finally:
                events.append((kind, t0, now(), detail))
        return wrapper

    def timed_async(kind: str, fn: Callable[..., Any], size: Callable[..., object]) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = now()
            try:
                return await fn(*args, **kwargs)
            finally:
                events.append((kind, t0, now(), size(*args, **kwargs)))
        return wrapper

    import asyncio

    from llmroute.ledger import rows, sqlite, writer

    writer.LedgerWriter._flush = timed_async(  # type: ignore[method-assign]
        "flush", writer.LedgerWriter._flush, lambda _self, batch: len(batch))
    locked = timed_sync("sqlite", sqlite.SQLiteStore._locked)
    nice = os.environ.get("LLMROUTE_TAIL_HELPER_NICE")
    helper_slice = os.environ.get("LLMROUTE_TAIL_HELPER_SLICE_NS")
    helper_cpus = os.environ.get("LLMROUTE_TAIL_HELPER_CPUS")
    if nice or helper_slice or helper_cpus:  # the bench's A/B knobs for the SQLite thread
        import threading

        niced: set[int] = set()
        plain_locked = locked

        def locked(*args: Any, **kwargs: Any) -> Any:
            tid = threading.get_native_id()
            if tid not in niced:
                niced.add(tid)
                if nice:
                    os.setpriority(os.PRIO_PROCESS, tid, int(nice))
                if helper_slice:
                    set_slice(int(helper_slice))
                if helper_cpus:  # e.g. "1": off the main thread's core
                    os.sched_setaffinity(tid, {int(c) for c in helper_cpus.split("+")})
            return plain_locked(*args, **kwargs)

    sqlite.SQLiteStore._locked = locked  # type: ignore[method-assign]
    if os.environ.get("LLMROUTE_TAIL_CHILD_NICE"):  # the knob for `ledger.writes: process`'s child
        from llmroute.ledger import write_process

        write_process.WRITER_NICENESS = int(os.environ["LLMROUTE_TAIL_CHILD_NICE"])
    if os.environ.get("LLMROUTE_TAIL_CHILD_CPUS"):  # the ledger children's CPUs (e.g. "1")
        from llmroute.ledger import reads

        cpus = {int(c) for c in os.environ["LLMROUTE_TAIL_CHILD_CPUS"].split("+")}
        plain_child = reads.ProcessReads._child

        async def child(self: reads.ProcessReads) -> Any:
            proc = await plain_child(self)
            os.sched_setaffinity(proc.pid, cpus)
            return proc

        reads.ProcessReads._child = child  # type: ignore[method-assign]
    sqlite.to_rows = timed_async(  # type: ignore[attr-defined]
        "rows", rows.to_rows, lambda entries, _d, **_options: len(entries))
    plain_to_thread = asyncio.to_thread

    async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        name = getattr(func, "__qualname__", type(func).__name__)
        return await plain_to_thread(timed_sync("thread", func, name), *args, **kwargs)

    asyncio.to_thread = to_thread

    group_nice = os.environ.get("LLMROUTE_TAIL_CHILD_GROUP_NICE")
    if group_nice:  # the ledger children in a session (so an autogroup) of their own, at this nice
        plain_exec = asyncio.create_subprocess_exec

        async def exec_apart(*args: Any, **kwargs: Any) -> Any:
            proc = await plain_exec(*args, start_new_session=True, **kwargs)
            with open(f"/proc/{proc.pid}/autogroup", "w") as f:
                f.write(group_nice)
            return proc

        asyncio.create_subprocess_exec = exec_apart

    def dump() -> None:
        with open(path, "w") as f:
            for kind, t0, t1, detail in events:
                f.write(json.dumps([kind, t0, t1, detail]) + "\n")

    atexit.register(dump)

    def on_term(signum: int, _frame: object) -> None:
        # uvicorn restores the handler it found and raises SIGTERM again once it has shut down
        dump()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


if os.environ.get("LLMROUTE_TAIL_SWITCH_S"):  # the bench's A/B knob for the GIL's switch interval
    import sys

    sys.setswitchinterval(float(os.environ["LLMROUTE_TAIL_SWITCH_S"]))
if os.environ.get("LLMROUTE_TAIL_MAIN_SLICE_NS"):  # the knob for the main thread's slice
    set_slice(int(os.environ["LLMROUTE_TAIL_MAIN_SLICE_NS"]))
if os.environ.get("LLMROUTE_TAIL_TRACE"):
    _install(os.environ["LLMROUTE_TAIL_TRACE"])
