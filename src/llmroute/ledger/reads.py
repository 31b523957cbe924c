"""Where the gateway's heavy ledger reads run: the dashboard's windows and the alert evaluator's
slices.

Reading a window is CPU work in Python as well as in the database: folding rollup rows, exact money
sums (on SQLite, called back into Python per raw row), tallying entries. Done in the gateway's own
process it holds the GIL or the event loop for tens of milliseconds at a time, and the chat
completions that arrive meanwhile wait: a dashboard refreshing every second moved the p99 of a
300 requests/s load by 1.2-1.3 ms, and the alert rules' entry streams made spikes of 17-26 ms
(`docs/benchmarks.md`). `ProcessReads` runs those reads in one long-lived child process
(`python -m llmroute.ledger.reader_process`) at the lowest CPU priority (nice 19), with its own
connection to the ledger: the kernel preempts it whenever the gateway has work, and on a machine
with a spare core it runs there. It imports the ledger only (about 22 MiB; a SQLite ledger's reader
loads no TLS: `reader_process`), starts with the server
(`warm`) or at the first read, reads one thing at a time, and exits when the gateway closes
its pipe (or dies). A read during which it dies fails with `StoreError`; the next read starts a new
child. `InlineReads` runs the reads in this process (an in-memory SQLite ledger, which no other
process can open, or `ledger.reads: inline`).

A read is a module-level coroutine function taking the store first (`fn(store, *args)`), so that
it can be named to the child; its arguments and result must pickle. The child speaks over its
stdin and stdout: frames of an 8-byte length and a pickle, the first one its (url, niceness,
sys.path) (not its command line, which `ps` shows: the URL may hold a password), then one request
and one answer at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from .frames import LENGTH as _LENGTH
from .frames import frame as frame
from .frames import read_frame as read_frame
from .store import Store, StoreError

P = ParamSpec("P")
T = TypeVar("T")
#: The niceness of the reader process: the lowest CPU priority a process can ask for.
NICENESS = 19
#: How long a closing reader gets to exit before it is killed.
CLOSE_TIMEOUT_S = 5.0


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


async def _receive(stream: asyncio.StreamReader) -> Any:
    size = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))[0]
    return pickle.loads(await stream.readexactly(size))


class _Died(Exception):
    """The reader process went away (`sent`: after it was handed the request)."""

    def __init__(self, sent: bool) -> None:
        super().__init__("reader process died")
        self.sent = sent


class ProcessReads:
    """Reads in a child process at the lowest CPU priority, on a store of its own for `url` (a
    file or server the child can open)."""

    def __init__(self, url: str, *, niceness: int = NICENESS) -> None:
        self.url = url
        self.niceness = niceness
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _child(self) -> asyncio.subprocess.Process:
        """The running child, started if there is none (under the lock)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "llmroute.ledger.reader_process",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            self._proc = proc
            assert proc.stdin is not None  # where to find the reads' modules: as here
            proc.stdin.write(frame((self.url, self.niceness, list(sys.path))))
        return proc

    async def _exchange(self, request: tuple[object, ...]) -> tuple[str, Any]:
        async with self._lock:
            proc = await self._child()
            try:
                return await self._ask(proc, request)
            except _Died as died:
                await self._reap(proc)
                if died.sent:
                    raise
            return await self._ask(await self._child(), request)  # it died while idle: again

    @staticmethod
    async def _ask(proc: asyncio.subprocess.Process, request: tuple[object, ...]) -> tuple[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(frame(request))
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise _Died(sent=False) from exc
        try:
            answer: tuple[str, Any] = await _receive(proc.stdout)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise _Died(sent=True) from exc
        return answer

    async def call(self, fn: Callable[Concatenate[Store, P], Awaitable[T]], /,
                   *args: P.args, **kwargs: P.kwargs) -> T:
        # the exchange runs to its end even when this caller is cancelled (a client gone), so
        # the next request never reads this one's answer
        task = asyncio.get_running_loop().create_task(self._exchange((fn, args, kwargs)))
        self._keep(task)
        try:
            status, value = await asyncio.shield(task)
        except _Died:
            raise StoreError("the ledger reader process died during the read; the next read "
                             "starts a new one") from None
        if status == "error":
            raise value
        result: T = value
        return result

    def warm(self) -> None:
        """Start the child now (it takes a moment to import), without waiting for it."""
        async def start() -> None:
            async with self._lock:
                await self._child()

        self._keep(asyncio.get_running_loop().create_task(start()))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._settle)

    def _settle(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished task; its error, if nobody awaited it (a caller gone, `warm`), was
        the next read's to meet, not the event loop's to log."""
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        if self._proc is proc:
            self._proc = None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def aclose(self) -> None:
        """Stop the child (a read in progress finishes first)."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.returncode is not None:
                return
            assert proc.stdin is not None
            proc.stdin.close()  # end of requests: it closes its store and exits
            try:
                await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                await self._reap(proc)

    @property
    def pid(self) -> int | None:
        """The child's process id (None when none runs)."""
        return None if self._proc is None or self._proc.returncode is not None else self._proc.pid


def open_reads(url: str, where: str, store: Store) -> Reads:
    """Where the reads of a ledger at `url` run: `where` "process" (a child, unless the ledger is
    in this process's memory) or "inline" (on `store`)."""
    from .sqlite import MEMORY

    if where == "inline" or url.endswith(MEMORY):
        return InlineReads(store)
    return ProcessReads(url)
