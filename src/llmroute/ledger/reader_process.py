"""The ledger reader process (`python -m llmroute.ledger.reader_process`): runs the reads
`reads.ProcessReads` sends it, one at a time, on a store of its own, at the lowest CPU priority.
Its stdin brings frames (first the ledger URL, the niceness and where to import from, then
`(fn, args, kwargs)`), its
stdout takes one answer frame per request: ("ok", result) or ("error", exception). It exits at the
end of its stdin: when the gateway closes it, or dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
from typing import IO, Any

from . import open_store
from .reads import frame, read_frame
from .store import Store, StoreError


def _answer(result: tuple[str, Any]) -> bytes:
    try:
        return frame(result)
    except Exception as exc:  # a result or an error that does not pickle
        return frame(("error", StoreError(f"the ledger reader could not send its answer: "
                                          f"{type(exc).__name__}: {exc}")))


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer `requests` on `answers` until the requests end."""
    url, niceness, path = pickle.loads(read_frame(requests))
    sys.path[:] = path
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)
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
    try:
        fn, args, kwargs = pickle.loads(request)
    except Exception as exc:
        return "error", StoreError(f"the ledger reader could not read the request: "
                                   f"{type(exc).__name__}: {exc}")
    try:
        return "ok", loop.run_until_complete(fn(store, *args, **kwargs))
    except Exception as exc:  # the caller's to handle, as if it had read inline
        return "error", exc


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which stops us
    with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as answers:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr, not frames
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
