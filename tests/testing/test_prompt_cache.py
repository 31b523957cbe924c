"""The fake upstream's simulated prompt caches: Anthropic breakpoints (write, read within the
TTL, expiry, 1-hour entries, the minimum prefix, the 20-block lookback) and OpenAI's automatic
prefix caching (1024 tokens, 128-token steps)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmroute.testing.upstream import FakeUpstream

EPH = {"type": "ephemeral"}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def up(clock: Clock) -> Iterator[FakeUpstream]:
    with FakeUpstream(clock=clock) as upstream:
        yield upstream


def messages_call(up: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    payload = {"model": "claude", "max_tokens": 5, **body}
    with httpx.Client(base_url=up.base_url) as http:
        response = http.post("/v1/messages", json=payload, headers={"anthropic-version": "x"})
    response.raise_for_status()
    usage: dict[str, Any] = response.json()["usage"]
    return usage


def system_marked(system_chars: int = 8000, ttl: str | None = None) -> dict[str, Any]:
    mark = EPH if ttl is None else {**EPH, "ttl": ttl}
    return {"system": [{"type": "text", "text": "s" * system_chars, "cache_control": mark}],
            "messages": [{"role": "user", "content": "hello"}]}


def cache(usage: dict[str, Any]) -> tuple[int, int, int]:
    """(input, cache write, cache read) tokens."""
    return (usage["input_tokens"], usage["cache_creation_input_tokens"],
            usage["cache_read_input_tokens"])


def test_a_breakpoint_writes_then_reads_within_its_ttl(up: FakeUpstream, clock: Clock) -> None:
    # 8000 + 5 characters: 2002 tokens, of which the system prefix is 8000 // 4 = 2000
    first = messages_call(up, system_marked())
    assert cache(first) == (2, 2000, 0)
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": 2000,
                                       "ephemeral_1h_input_tokens": 0}
    clock.now += 299
    assert cache(messages_call(up, system_marked())) == (2, 0, 2000)
    clock.now += 299  # the read refreshed the entry: still warm 598 s after the write
    assert cache(messages_call(up, system_marked())) == (2, 0, 2000)
    clock.now += 301
    assert cache(messages_call(up, system_marked())) == (2, 2000, 0)  # expired: written again


def test_one_hour_entries(up: FakeUpstream, clock: Clock) -> None:
    first = messages_call(up, system_marked(ttl="1h"))
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": 0,
                                       "ephemeral_1h_input_tokens": 2000}
    clock.now += 3000
    assert cache(messages_call(up, system_marked(ttl="1h"))) == (2, 0, 2000)


def test_prefixes_below_the_minimum_are_not_cached(up: FakeUpstream) -> None:
    short = system_marked(system_chars=4000)  # 1000 tokens < 1024
    assert cache(messages_call(up, short)) == (1002, 0, 0)
    assert cache(messages_call(up, short)) == (1002, 0, 0)


def test_no_breakpoint_no_cache_and_the_usual_usage(up: FakeUpstream) -> None:
    body = {"system": "s" * 8000, "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(2):
        assert cache(messages_call(up, body)) == (2002, 0, 0)


def test_a_later_breakpoint_reads_an_earlier_prefix_by_lookback(up: FakeUpstream) -> None:
    turn1 = {"system": "s" * 8000, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "u" * 400, "cache_control": EPH}]}]}
    assert cache(messages_call(up, turn1)) == (1, 2100, 0)
    turn2 = {"system": "s" * 8000, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "u" * 400}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a" * 8}]},
        {"role": "user", "content": [{"type": "text", "text": "v" * 400, "cache_control": EPH}]}]}
    # 8808 characters: 2203 tokens; read 2100 (turn 1's prefix), write 2202 - 2100
    assert cache(messages_call(up, turn2)) == (1, 102, 2100)


def test_caches_are_per_model(up: FakeUpstream) -> None:
    messages_call(up, system_marked())
    other = messages_call(up, {**system_marked(), "model": "claude-other"})
    assert cache(other) == (2, 2000, 0)


def chat_call(up: FakeUpstream, text: str) -> dict[str, Any]:
    body = {"model": "gpt", "messages": [{"role": "user", "content": text}]}
    with httpx.Client(base_url=up.openai_base_url) as http:
        usage: dict[str, Any] = http.post("/chat/completions", json=body).json()["usage"]
    return usage


def test_openai_caches_long_prompts_in_128_token_steps(up: FakeUpstream, clock: Clock) -> None:
    text = "x" * 6000                                           # 1501 tokens
    first = chat_call(up, text)
    assert first["prompt_tokens"] == 1501
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    assert chat_call(up, text)["prompt_tokens_details"]["cached_tokens"] == 1408  # 1024 + 3 * 128
    # a longer prompt with the same start reads the shared prefix
    assert chat_call(up, text + "y" * 2000)["prompt_tokens_details"]["cached_tokens"] == 1408
    clock.now += 301
    assert chat_call(up, text)["prompt_tokens_details"]["cached_tokens"] == 0


def test_openai_short_prompts_report_no_cache(up: FakeUpstream) -> None:
    for _ in range(2):
        assert "prompt_tokens_details" not in chat_call(up, "x" * 4000)   # 1001 tokens


def test_reset_forgets_the_caches(up: FakeUpstream) -> None:
    messages_call(up, system_marked())
    up.reset()
    assert cache(messages_call(up, system_marked())) == (2, 2000, 0)
