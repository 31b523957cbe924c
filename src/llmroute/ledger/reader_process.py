"""The ledger reader process (`python -m llmroute.ledger.reader_process`): runs the reads
`reads.ProcessReads` sends it, one at a time, on a store of its own, at the lowest CPU priority.
Its stdin brings frames (first the ledger URL, the niceness and where to import from, then
`(fn, args, kwargs)`), its
stdout takes one answer frame per request: ("ok", result) or ("error", exception). It exits at the
end of its stdin: when the gateway closes it, or dies.

It imports what the store needs after its first frame (`frames` alone before it): for a SQLite
ledger, a file on this machine, it never speaks TLS, so `ssl` (which asyncio imports when it can:
OpenSSL, ~4 MiB of the process's RSS, issue 6) is marked absent first, as Python's own modules
allow (asyncio, http.client and urllib then run without TLS)."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from typing import IO, TYPE_CHECKING, Any

from .frames import frame, read_frame

if TYPE_CHECKING:
    import asyncio

    from .store import Store

_SQLITE_PREFIX = "sqlite:///"


def _without_tls(url: str) -> bool:
    """For a SQLite ledger, make `import ssl` fail (ImportError) in this process, before asyncio
    is imported; True when it did. A server's ledger (PostgreSQL) keeps TLS."""
    if not url.startswith(_SQLITE_PREFIX) or "ssl" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # the documented way to block an import
    return True


def _needed_tls(exc: BaseException) -> bool:
    """Whether `exc` is the blocked `import ssl`; if so, TLS is importable again (a read whose
    module needs it then runs as it would have: asyncio, already loaded, keeps running without)."""
    if not (isinstance(exc, ModuleNotFoundError) and exc.name == "ssl" and "ssl" in sys.modules
            and sys.modules["ssl"] is None):
        return False
    del sys.modules["ssl"]
    return True


def _answer(result: tuple[str, Any]) -> bytes:
    try:
        return frame(result)
    except Exception as exc:  # a result or an error that does not pickle
        from .store import StoreError

        return frame(("error", StoreError(f"the ledger reader could not send its answer: "
                                          f"{type(exc).__name__}: {exc}")))


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer `requests` on `answers` until the requests end."""
    url, niceness, path = pickle.loads(read_frame(requests))
    sys.path[:] = path
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)
    _without_tls(url)
    import asyncio

    from . import open_store

    loop = asyncio.new_event_loop()
    store = open_store(url)
    try:
        while True:
            try:
                request = read_frame(requests)
            except EOFError:
                break
            answers.write(_answer(_run(loop, store, request)))
            answers.flush()
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(store.close())
        loop.close()


def _run(loop: asyncio.AbstractEventLoop, store: Store, request: bytes) -> tuple[str, Any]:
    """One request's answer: ("ok", what `fn(store, *args, **kwargs)` returned) or ("error", the
    exception it raised, or why the request could not be read)."""
    from .store import StoreError

    for _ in range(2):   # twice when a read's module needs the TLS this process went without
        try:
            fn, args, kwargs = pickle.loads(request)
        except Exception as exc:
            if _needed_tls(exc):
                continue
            return "error", StoreError(f"the ledger reader could not read the request: "
                                       f"{type(exc).__name__}: {exc}")
        try:
            return "ok", loop.run_until_complete(fn(store, *args, **kwargs))
        except Exception as exc:  # the caller's to handle, as if it had read inline
            if _needed_tls(exc):
                continue
            return "error", exc
    raise AssertionError("unreachable: TLS is blocked at most once")


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops us
    with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as answers:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr, not frames
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
