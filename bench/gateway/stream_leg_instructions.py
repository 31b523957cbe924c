"""The OpenAI-compatible adapter's stream leg alone (issue 17, str17): `OpenAICompatProvider.stream`
over a fake transport (one 160-byte content chunk per read, one secret to scrub), N chunks, run
to the end. Run it under callgrind at two N and divide the difference:

    PYTHONHASHSEED=0 PYTHONPATH=<tree> valgrind --tool=callgrind \
        .venv/bin/python bench/gateway/stream_leg_instructions.py 100   # then 10100
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import orjson

from llmroute.providers.openai_compat import OpenAICompatProvider
from llmroute.settings import ProviderConfig

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CHUNK = b"data: " + orjson.dumps({
    "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
    "choices": [{"index": 0, "delta": {"content": "tok"}, "finish_reason": None}]}) + b"\n\n"


class Body:
    def __init__(self) -> None:
        self.it = iter([CHUNK] * N + [b"data: [DONE]\n\n"])

    async def chunk(self) -> bytes | None:
        return next(self.it, None)


class Reply:
    status = 200
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, scrub: Any):
        self.response, self.scrub = Body(), scrub


PROVIDER = OpenAICompatProvider("o", ProviderConfig(type="openai", base_url="http://127.0.0.1:9/"),
                                "sk-secret-key-123456")


@asynccontextmanager
async def stream(*_: Any) -> AsyncIterator[Reply]:
    yield Reply(PROVIDER.http.scrub)


async def main() -> None:
    PROVIDER.http.stream = stream
    n = 0
    async for _ in PROVIDER.stream({"messages": []}, "m"):
        n += 1
    assert n == N


if __name__ == "__main__":
    asyncio.run(main())
