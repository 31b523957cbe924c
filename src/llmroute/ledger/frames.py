"""The frames the gateway and its ledger reader process (`reads.ProcessReads`,
`reader_process`) exchange over a pipe: an 8-byte length, then a pickle. Kept apart from `reads`
(which imports asyncio) so that the reader process can read its first frame, the ledger URL,
before it imports anything else (`reader_process`: no TLS for a SQLite ledger)."""

from __future__ import annotations

import pickle
import struct
from typing import IO

#: A frame's length prefix.
LENGTH = struct.Struct("<Q")


def frame(value: object) -> bytes:
    """One frame: the pickle's length, then the pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


def read_frame(stream: IO[bytes]) -> bytes:
    """The next frame's pickle from a blocking stream (EOFError at its end)."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        raise EOFError
    size = LENGTH.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data
