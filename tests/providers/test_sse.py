"""`sse.sse_data` (issue 17's one-generator SSE reader) yields, whatever the packet boundaries, the
data that `base.sse_events` over `StreamReply.lines` yielded (the reader it replaces for
OpenAI-compatible streams), scrubbed, and stops a stream that runs past its total time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmroute.providers.base import sse_events
from llmroute.providers.http import Scrubber
from llmroute.providers.sse import Read, sse_data

BODY = (b'data: {"a":1}\n\n'
        b"data: {\"b\":\"\xc3\xa9t\xc3\xa9\"}\r\n\r\n"
        b": a comment\n\n"
        b"event: ping\ndata: first line\ndata:second line\n\n"
        b"data:    spaced\nid: 7\nretry: 10\n\n"
        b"\n\n\n"
        b"data: with the key sk-secret-123456 inside\n\n"
        b"data: [DONE]\n\n"
        b"data: unterminated")


def reader(pieces: list[bytes], *, pause_s: float = 0.0) -> Read:
    todo = list(pieces)

    async def read() -> bytes | None:
        if pause_s:
            await asyncio.sleep(pause_s)
        return todo.pop(0) if todo else None

    return read


def splits(body: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(body)), rng.randint(0, 12)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


async def old_reader(pieces: list[bytes], scrub: Scrubber) -> list[bytes]:
    """What `sse_events(StreamReply.lines())` yielded, re-encoded."""

    async def lines() -> AsyncIterator[str]:  # StreamReply.lines, over the same pieces
        buffer = b""
        for data in pieces:
            buffer += data
            if b"\n" not in data:
                continue
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield scrub.text(line.rstrip(b"\r").decode("utf-8", "replace"))
        if buffer:
            yield scrub.text(buffer.rstrip(b"\r").decode("utf-8", "replace"))

    return [event.data.encode() async for event in sse_events(lines())]


@pytest.mark.asyncio
async def test_the_same_events_as_the_line_reader_whatever_the_boundaries() -> None:
    scrub = Scrubber.of({"authorization": "Bearer sk-secret-123456"})
    rng = random.Random(17)
    lf_only = BODY.replace(b"\r", b"") + b"\ndata: and more"  # read an event at a time
    for _ in range(200):
        for body in (lf_only, BODY):
            pieces = splits(body, rng)
            got = [data async for data in sse_data(reader(pieces), scrub.data)]
            assert got == await old_reader(pieces, scrub)
    assert got == [b'{"a":1}', '{"b":"été"}'.encode(), b"first line\nsecond line", b"spaced",
                   b"data: with the key [redacted] inside".removeprefix(b"data: "), b"[DONE]",
                   b"unterminated"]


@pytest.mark.asyncio
async def test_a_stream_past_its_total_time_raises() -> None:
    events = sse_data(reader([b"data: 1\n\n"] * 50, pause_s=0.01), lambda data: data,
                      total_s=0.05)
    with pytest.raises(TimeoutError):
        async for _ in events:
            pass


def old_scrub_data(secrets: tuple[str, ...], value: bytes) -> bytes:
    """`Scrubber.data` before issue 17's str17: each secret encoded per call."""
    for secret in secrets:
        raw = secret.encode()
        if value.find(raw) >= 0:
            value = value.replace(raw, b"[redacted]")
    return value


@given(st.lists(st.text(min_size=1, max_size=12), max_size=4),
       st.lists(st.sampled_from([0, 1, 2, 3]) | st.binary(max_size=6) | st.text(max_size=6),
                max_size=12))
def test_the_scrubber_redacts_what_it_did_before_the_secrets_were_encoded_once(
        secrets: list[str], pieces: list[int | bytes | str]) -> None:
    scrub = Scrubber(tuple(secrets))
    value = b"".join(piece if isinstance(piece, bytes) else piece.encode() if isinstance(piece, str)
                     else secrets[piece].encode() if piece < len(secrets) else b"x"
                     for piece in pieces)
    assert scrub.data(value) == old_scrub_data(scrub.secrets, value)
    assert scrub.raw == tuple(secret.encode() for secret in secrets)
    assert scrub == Scrubber(tuple(secrets)) and "raw" not in repr(scrub)
