"""`Ok(usage=False)`: the fake upstream answers like a provider that reports no token usage (no
`usage` in a completion, no usage chunk in a stream even when `stream_options.include_usage` asks
for one); by default it reports usage as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}]}
STREAM: dict[str, Any] = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def events(response: httpx.Response) -> list[Any]:
    lines = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


@pytest.mark.parametrize("usage", [True, False])
def test_usage_is_reported_unless_turned_off(up: FakeUpstream, usage: bool) -> None:
    up.set_default("m", Ok(text="one two three", usage=usage))  # 13 chars: 13 // 4 + 1 = 4 tokens
    with httpx.Client(base_url=up.openai_base_url) as http:
        completion = http.post("/chat/completions", json=BODY).json()
        chunks = events(http.post("/chat/completions", json=STREAM))
    want = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert completion["choices"][0]["message"]["content"] == "one two three"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == "one two three"
    if usage:
        assert completion["usage"] == want
        assert [c["usage"] for c in chunks if c.get("usage")] == [want]
        assert chunks[-1]["choices"] == []
    else:
        assert "usage" not in completion
        assert all("usage" not in c for c in chunks)
        assert all(c["choices"] for c in chunks)
