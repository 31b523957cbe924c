"""The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
ConverseStream sends it: encoding (for the fake upstream) and incremental decoding.

A message is: total length (4 bytes, big-endian), headers length (4), a CRC32 of those 8 bytes
(the prelude), the headers, the payload, and a CRC32 of everything before it. A header is its
name length (1 byte), name, a value type (1 byte; 7 = string, with a 2-byte length) and value.
Bedrock's headers are strings: `:message-type` ("event" or "exception"), `:event-type` or
`:exception-type`, `:content-type`.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_PRELUDE = struct.Struct(">II")
_PRELUDE_LEN = _PRELUDE.size + 4
#: Messages larger than this are refused (AWS's own limit is 16 MiB).
MAX_MESSAGE = 16 * 1024 * 1024
_STRING = 7
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}  # bool/byte/short/int/long/time/uuid


class EventStreamError(ValueError):
    """The bytes are not a well-formed event stream (bad length or checksum)."""


@dataclass(frozen=True)
class Message:
    """One decoded message: its string headers and its payload."""

    headers: Mapping[str, str]
    payload: bytes


def encode(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message with string `headers` and `payload`."""
    head = b"".join(struct.pack(">B", len(k.encode())) + k.encode() + struct.pack(">BH", _STRING,
                    len(v.encode())) + v.encode() for k, v in headers.items())
    total = _PRELUDE_LEN + len(head) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _headers(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    at = 0
    while at < len(raw):
        size = raw[at]
        name = raw[at + 1:at + 1 + size].decode()
        kind = raw[at + 1 + size]
        at += 2 + size
        if kind in (6, _STRING):  # bytes or string: 2-byte length, then the value
            (length,) = struct.unpack_from(">H", raw, at)
            if at + 2 + length > len(raw):
                raise EventStreamError(f"event-stream headers are malformed: {name!r} runs past "
                                       "the headers")
            value = raw[at + 2:at + 2 + length]
            at += 2 + length
            if kind == _STRING:
                out[name] = value.decode()
        elif kind in _FIXED:
            at += _FIXED[kind]
        else:
            raise EventStreamError(f"unknown header value type {kind}")
    return out


class Decoder:
    """Feed bytes as they arrive; iterate the complete messages found so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buffer += data
        while len(self._buffer) >= _PRELUDE_LEN:
            total, head_len = _PRELUDE.unpack_from(self._buffer)
            (prelude_crc,) = struct.unpack_from(">I", self._buffer, 8)
            if binascii.crc32(bytes(self._buffer[:8])) != prelude_crc:
                raise EventStreamError("event-stream prelude checksum mismatch")
            if total > MAX_MESSAGE or total < _PRELUDE_LEN + head_len + 4:
                raise EventStreamError(f"event-stream message length {total} is invalid")
            if len(self._buffer) < total:
                return
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (crc,) = struct.unpack_from(">I", frame, total - 4)
            if binascii.crc32(frame[:-4]) != crc:
                raise EventStreamError("event-stream message checksum mismatch")
            end = _PRELUDE_LEN + head_len
            try:
                headers = _headers(frame[_PRELUDE_LEN:end])
            except (IndexError, struct.error, UnicodeDecodeError) as exc:
                raise EventStreamError(f"event-stream headers are malformed: {exc}") from None
            yield Message(headers, frame[end:-4])

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)
