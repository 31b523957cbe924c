"""Token counts for upstreams that report no usage: OpenAI models through cl100k_base (the `tokens`
extra, shipped offline), everything else by the ≈4-characters estimate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmroute
from llmroute.config import load
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream
from llmroute.tokens import TokenCounter
from llmroute.types import Usage

tiktoken = pytest.importorskip("tiktoken", reason="the `tokens` extra is not installed")
QUESTION = "hello world, what is 2+2?"  # cl100k_base: hello| world|,| what| is| |2|+|2|?


def test_openai_models_are_counted_with_cl100k_base() -> None:
    counter = TokenCounter()
    assert counter.exact("openai/gpt-4-0613") and counter.exact("gpt-3.5-turbo")
    assert counter.text(QUESTION, "openai/gpt-4-0613") == 10
    assert counter.text("<|endoftext|>", "gpt-4") == 7  # special tokens counted as text
    # the chat format: 3 around each message, 3 priming the answer (OpenAI's cookbook)
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    assert counter.messages(messages, "gpt-4") == 3 + (3 + 3) + (3 + 10)
    assert counter.usage(messages[1:], "hello world", "gpt-4") == Usage(16, 2)


def test_other_models_and_a_missing_extra_use_the_estimate() -> None:
    counter = TokenCounter()
    assert not counter.exact("anthropic/claude-sonnet-4-5")
    assert counter.text(QUESTION, "anthropic/claude-sonnet-4-5") == 7  # 25 characters / 4, up
    loads: list[int] = []

    def missing() -> None:
        loads.append(1)

    bare = TokenCounter(loader=missing)
    assert not bare.exact("gpt-4") and bare.text(QUESTION, "gpt-4") == 7
    assert not bare.exact("gpt-4o") and loads == [1]  # tried once, not per request


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def test_the_gateway_counts_an_openai_model_exactly(upstream: FakeUpstream, tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "providers": {"fake": {"type": "openai", "base_url": upstream.openai_base_url}},
        "models": {"fake/gpt-4-test": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2}},
        "tiers": {t: {"model": "fake/gpt-4-test"} for t in ("simple", "medium", "complex")},
        "ledger": {"enabled": False},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    upstream.set_default("*", Ok(text="hello world", usage=False))
    with llmroute.Client(load(path, environ={})) as client:
        reply = client.chat.completions.create(
            model="fake/gpt-4-test", messages=[{"role": "user", "content": QUESTION}])
        chunks = list(client.chat.completions.create(
            model="fake/gpt-4-test", messages=[{"role": "user", "content": QUESTION}],
            stream=True, stream_options={"include_usage": True}))
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (16, 2)
    last = chunks[-1]
    assert last.usage is not None and not last.choices
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (16, 2)
    assert last.llmroute_outcome.usage_estimated  # type: ignore[attr-defined]
