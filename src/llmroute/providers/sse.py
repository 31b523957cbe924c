"""A stream's server-sent events read straight from the body's bytes (issue 17): each event's
`data` as bytes, for adapters whose upstream names no events (OpenAI-compatible APIs).

The same events as `base.sse_events` over `StreamReply.lines` (lines split on LF, a trailing CR
dropped, `data:` lines joined by LF, comments and other fields ignored, an event ends at an empty
line or at the body's end), in one generator instead of three and without a `str` per line or an
object per event: a streamed chunk's data goes to `orjson.loads` as the bytes that arrived. Bodies
with LF line ends (most) are cut into whole events at once (`split(b"\n\n")`; an event of one
`data:` line, the usual chunk, is sliced, not parsed line by line); CR LF bodies line by line. Secrets
are scrubbed from each event's data (a secret holds no line break, so no line's secret is missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

#: The next body bytes as they arrive; None at the end.
Read = Callable[[], Awaitable[bytes | None]]


async def sse_data(read: Read, scrub: Callable[[bytes], bytes], total_s: float | None = None
                   ) -> AsyncIterator[bytes]:
    """Each event's data (scrubbed). With `total_s`, raise TimeoutError once the stream has run
    that long (checked per read; a stalled read is bounded by the client's read timeout)."""
    loop = asyncio.get_running_loop()
    deadline = None if total_s is None else loop.time() + total_s
    buffer = b""
    parts: list[bytes] = []  # the data lines of an event read line by line, so far
    while (data := await read()) is not None:
        if deadline is not None and loop.time() > deadline:
            raise TimeoutError(f"stream ran past its total timeout of {total_s:g}s")
        buffer += data
        if data.find(b"\n") < 0:  # not `in`: bytes' `in` first tries an int, and raises
            continue
        if not parts and buffer.find(b"\r") < 0:  # LF line ends: whole events at once
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if event[:5] == b"data:" and event.find(b"\n") < 0:  # one data line (a slice:
                    # cheaper than `startswith`, whose arguments are parsed by format string)
                    yield scrub(event[5:].lstrip(b" "))
                    continue
                for line in event.split(b"\n"):
                    if line.startswith(b"data:"):
                        parts.append(line[5:].lstrip(b" "))
                if parts:
                    yield scrub(b"\n".join(parts))
                    parts = []
            continue
        crlf = buffer.find(b"\r") >= 0  # lines end in CR LF: drop the CRs
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if crlf:
                line = line.rstrip(b"\r")
            if not line:
                if parts:
                    yield scrub(parts[0] if len(parts) == 1 else b"\n".join(parts))
                    parts = []
            elif line.startswith(b"data:"):
                parts.append(line[5:].lstrip(b" "))
    for line in buffer.split(b"\n"):  # the body ended without an empty line
        line = line.rstrip(b"\r")
        if line.startswith(b"data:"):
            parts.append(line[5:].lstrip(b" "))
    if parts:
        yield scrub(b"\n".join(parts))
