"""`OpenAICompatProvider.stream` (str17: a chunk that parses to a dict without "error" is taken
without `_chunk` and `_keep` calls) yields, and raises, what the loop it replaces did: every event's
data through `_chunk`, then `_keep` — for any sequence of events (valid chunks, error events,
lenient and invalid data, non-dict JSON, an early end), plain and with Azure's `_keep`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.errors import UpstreamError
from llmroute.providers.azure import AzureOpenAIProvider
from llmroute.providers.openai_compat import OpenAICompatProvider
from llmroute.settings import ProviderConfig

EVENTS = st.one_of(
    st.builds(lambda text: orjson.dumps({"choices": [{"delta": {"content": text}}]}), st.text()),
    st.builds(lambda: orjson.dumps({"choices": [], "prompt_filter_results": [{"x": 1}]})),
    st.builds(lambda msg: orjson.dumps({"error": {"message": msg, "code": "rate_limit"}}),
              st.text(max_size=8)),
    st.builds(lambda: orjson.dumps({"error": "plain"})),
    st.sampled_from([b"[1, 2]", b"3", b'"s"', b"null", b"{not json", b"{'a': 1}", b"\xff",
                     b'{"a": NaN}', b"{}"]),
)


class _Response:
    def __init__(self, pieces: list[bytes]):
        self.pieces = iter(pieces)

    async def chunk(self) -> bytes | None:
        return next(self.pieces, None)


class _Reply:
    status = 200
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, pieces: list[bytes]):
        self.response = _Response(pieces)
        self.scrub = type("S", (), {"data": staticmethod(lambda data: data)})()


def _raised(exc: Exception) -> tuple[str, str, str]:
    if isinstance(exc, UpstreamError):
        return ("raised", exc.kind, exc.message)
    return ("raised", type(exc).__name__, str(exc))


def _fake(provider: OpenAICompatProvider, events: list[bytes], done: bool) -> None:
    body = [b"data: " + event + b"\n\n" for event in events] + ([b"data: [DONE]\n\n"] if done else [])

    @asynccontextmanager
    async def stream(*_: Any) -> AsyncIterator[_Reply]:
        yield _Reply(body)

    provider.http.stream = stream  # type: ignore[method-assign,assignment]


async def _old(provider: OpenAICompatProvider, events: list[bytes], done: bool) -> list[Any]:
    """The loop before str17, over the same data."""
    got: list[Any] = []
    try:
        for data in events:
            chunk = provider._chunk(data, "m")
            if provider._keep(chunk):
                got.append(chunk)
        if not done:
            raise UpstreamError("connection", f"{provider.name} stream ended before [DONE]",
                                provider=provider.name, model="m")
    except Exception as exc:  # Azure's `_keep` fails on non-dict JSON, both ways
        got.append(_raised(exc))
    return got


async def _new(provider: OpenAICompatProvider, events: list[bytes], done: bool) -> list[Any]:
    _fake(provider, events, done)
    got: list[Any] = []
    try:
        async for chunk in provider.stream({"messages": []}, "m"):
            got.append(chunk)
    except Exception as exc:  # Azure's `_keep` fails on non-dict JSON, both ways
        got.append(_raised(exc))
    return got


def _providers() -> list[OpenAICompatProvider]:
    config = ProviderConfig(type="openai", base_url="http://127.0.0.1:9/")
    azure = ProviderConfig(type="azure", base_url="https://x.openai.azure.com/")
    return [OpenAICompatProvider("o", config, "sk-k"), AzureOpenAIProvider("a", azure, "sk-k")]


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, max_size=8), st.booleans())
@pytest.mark.asyncio
async def test_the_stream_yields_and_raises_what_chunk_then_keep_did(events: list[bytes],
                                                                    done: bool) -> None:
    for provider in _providers():
        assert await _new(provider, events, done) == await _old(provider, events, done)


@pytest.mark.asyncio
async def test_the_comparison_can_fail() -> None:
    provider = _providers()[1]  # Azure drops a filter-results-only chunk: the old loop does too
    event = orjson.dumps({"choices": [], "prompt_filter_results": [{"x": 1}]})
    assert await _new(provider, [event], True) == []
    assert await _old(provider, [event], True) == []
    assert await _new(_providers()[0], [event], True) == [orjson.loads(event)]
