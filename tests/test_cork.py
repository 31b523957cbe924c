"""`server/cork.py`: a response's head and the body written right after it go out in one write;
a head nothing follows goes out on the loop's next turn (or at close); bytes keep their order."""

from __future__ import annotations

import asyncio

from llmroute.server.cork import CorkedTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def corked() -> tuple[CorkedTransport, Recording]:
    inner = Recording()
    return CorkedTransport(inner, asyncio.get_running_loop()), inner


def test_a_head_and_its_body_are_one_write() -> None:
    async def run() -> list[bytes]:
        cork, inner = corked()
        cork.write(HEAD)
        assert inner.writes == []  # held
        cork.write(b"{}")
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(run()) == [HEAD + b"{}"]


def test_a_head_nothing_follows_goes_out_at_the_next_turn_in_order() -> None:
    async def run() -> list[bytes]:
        cork, inner = corked()
        cork.write(HEAD)
        await asyncio.sleep(0)  # a stream waiting for its first item
        assert inner.writes == [HEAD]
        cork.write(b"data: 1\n\n")
        return inner.writes

    assert asyncio.run(run()) == [HEAD, b"data: 1\n\n"]


def test_other_bytes_pass_at_once_and_close_flushes_a_held_head() -> None:
    async def run() -> Recording:
        cork, inner = corked()
        cork.write(b"HTTP/1.1 in a body, no blank line")
        assert inner.writes == [b"HTTP/1.1 in a body, no blank line"]
        cork.write(HEAD)
        cork.close()  # e.g. a HEAD request on a closing connection: no body write
        assert cork.is_closing()
        return inner

    inner = asyncio.run(run())
    assert inner.writes == [b"HTTP/1.1 in a body, no blank line", HEAD] and inner.closed
