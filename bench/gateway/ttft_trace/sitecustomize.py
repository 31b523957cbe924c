"""The trace hook of `bench/gateway/ttft_legs.py`, loaded by a gateway's interpreter at start
(`sitecustomize`, found because ttft_legs.py puts this folder first on the gateway's PYTHONPATH).
Nothing is installed unless TTFT_TRACE names a file; the gateway's code is not changed.

Marks (kind, monotonic ns, bytes), written at exit: `d` when llmroute's upstream client
(`providers/h1.py`) is handed bytes by the event loop (`_Conn.data_received`), `b` when a
response body message has been sent (uvicorn's `RequestResponseCycle.send` returned: its socket
write is done). Works for llmroute and for the floor (`floor_app.py`), which share both.
"""

from __future__ import annotations

import os


def _install(path: str) -> None:
    import atexit
    import signal
    import time
    from typing import Any

    from uvicorn.protocols.http import httptools_impl

    from llmroute.providers import h1

    marks: list[tuple[str, int, int]] = []
    now = time.monotonic_ns
    received = h1._Conn.data_received

    def data_received(self: Any, data: bytes) -> None:
        marks.append(("d", now(), len(data)))
        received(self, data)

    h1._Conn.data_received = data_received  # type: ignore[method-assign]
    cycle = httptools_impl.RequestResponseCycle
    plain_send = cycle.send

    async def send(self: Any, message: Any) -> None:
        await plain_send(self, message)
        if message["type"] == "http.response.body":
            marks.append(("b", now(), len(message.get("body", b""))))

    cycle.send = send  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "w") as f:
            f.writelines(f"{kind} {ns} {size}\n" for kind, ns, size in marks)

    atexit.register(dump)

    def on_term(signum: int, _frame: object) -> None:
        dump()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


if os.environ.get("TTFT_TRACE"):
    _install(os.environ["TTFT_TRACE"])
