"""Where the gateway's heavy ledger reads run: the dashboard's windows and the alert evaluator's
slices.

Reading a window is CPU work in Python as well as in the database: folding rollup rows, exact money
sums (on SQLite, called back into Python per raw row), tallying entries. Done in the gateway's own
process it holds the GIL or the event loop for tens of milliseconds at a time, and the chat
completions that arrive meanwhile wait: a dashboard refreshing every second moved the p99 of a
300 requests/s load by 1.2-1.3 ms (`docs/benchmarks.md`). `ProcessReads` runs those reads in one
long-lived child process at the lowest CPU priority (nice 19), with its own connection to the
ledger: the kernel preempts it whenever the gateway has work, and on a machine with a spare core it
runs there. It starts with the ledger service (`warm`, in the background) or at the first read.
One read at a time; a read that crashes the child (an out-of-memory kill) fails with
`StoreError` and the next read starts a new child. `InlineReads` runs them in this process (an
in-memory SQLite ledger, which no other process can open, or `ledger.reads: inline`).

A read is a module-level coroutine function taking the store first (`fn(store, *args)`), so that
it can be named to the child; its arguments and result must pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from .store import Store, StoreError

P = ParamSpec("P")
T = TypeVar("T")
#: The niceness of the reader process: the lowest CPU priority a process can ask for.
NICENESS = 19


class Reads(Protocol):
    """Runs heavy ledger reads (`fn(store, *args)`) somewhere."""

    async def call(self, fn: Callable[Concatenate[Store, P], Awaitable[T]], /,
                   *args: P.args, **kwargs: P.kwargs) -> T: ...

    def warm(self) -> None:
        """Get ready for a first read soon (start what is slow to start), without waiting."""

    async def aclose(self) -> None: ...


class InlineReads:
    """Reads in this process, on `store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def call(self, fn: Callable[Concatenate[Store, P], Awaitable[T]], /,
                   *args: P.args, **kwargs: P.kwargs) -> T:
        return await fn(self.store, *args, **kwargs)

    def warm(self) -> None:
        return None

    async def aclose(self) -> None:
        return None  # the store is its owner's to close


@dataclass
class _Reader:
    """The child's side: its event loop and its own store (one per child process)."""

    loop: asyncio.AbstractEventLoop
    store: Store


#: The reader of this process, when it is a reader child (set once by `_start_child`).
_child: list[_Reader] = []


def _start_child(url: str, niceness: int) -> None:
    """The child's initializer: lowest priority, interrupts left to the parent, a store on `url`."""
    from . import open_store

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops us
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)
    _child.append(_Reader(asyncio.new_event_loop(), open_store(url)))


def _run_in_child(fn: Callable[..., Awaitable[T]], args: tuple[object, ...],
                  kwargs: dict[str, object]) -> T:
    reader = _child[0]
    return reader.loop.run_until_complete(fn(reader.store, *args, **kwargs))


def _ready() -> int:
    return os.getpid()


class ProcessReads:
    """Reads in a child process at the lowest CPU priority, on a store of its own for `url` (a
    file or server the child can open). The child starts at `warm` (or the first read) and lives
    until `aclose`."""

    def __init__(self, url: str, *, niceness: int = NICENESS) -> None:
        self.url = url
        self.niceness = niceness
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child, initargs=(self.url, self.niceness))
        return self._pool

    async def call(self, fn: Callable[Concatenate[Store, P], Awaitable[T]], /,
                   *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            future = loop.run_in_executor(pool, _run_in_child, fn, args, kwargs)
        except BrokenProcessPool:  # the child died while idle: a new one takes the read
            self._discard(pool)
            pool = self._executor()
            future = loop.run_in_executor(pool, _run_in_child, fn, args, kwargs)
        try:
            return await future
        except BrokenProcessPool:
            self._discard(pool)
            raise StoreError("the ledger reader process died (or could not start) during the "
                             "read; the next read starts a new one") from None

    def warm(self) -> None:
        """Start the child now (it takes a second to import), without waiting for it."""
        pool = self._executor()
        try:
            pool.submit(_ready)
        except BrokenProcessPool:
            self._discard(pool)
            self._executor().submit(_ready)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the child (a read in progress finishes first)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, cancel_futures=True))


def open_reads(url: str, where: str, store: Store) -> Reads:
    """Where the reads of a ledger at `url` run: `where` "process" (a child, unless the ledger is
    in this process's memory) or "inline" (on `store`)."""
    from .sqlite import MEMORY

    if where == "inline" or url.endswith(MEMORY):
        return InlineReads(store)
    return ProcessReads(url)
