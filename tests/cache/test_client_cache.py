"""The in-process Client goes through the same response cache as the server: a repeat is served
without an upstream call, `extra_headers` carry the per-request directive, and a stream request
is replayed from an answer stored by a non-stream one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmroute
from llmroute.config import load
from llmroute.settings import Settings
from llmroute.testing.upstream import FakeUpstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def settings(upstream: FakeUpstream, tmp_path: Path) -> Settings:
    upstream.reset()
    config: dict[str, Any] = {
        "providers": {"fake": {"type": "openai", "base_url": upstream.openai_base_url}},
        "models": {"fake/small": {"deployment": "fake", "input_per_m": 0.5, "output_per_m": 1.5}},
        "tiers": {"simple": {"model": "fake/small"}, "medium": {"model": "fake/small"},
                  "complex": {"model": "fake/small"}},
        "routing": {"default_policy": "rules"},
        "ledger": {"enabled": False},
        "cache": {"response": {"enabled": True}},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    return load(path, environ={})


def test_the_client_shares_the_cache_path(settings: Settings, upstream: FakeUpstream) -> None:
    messages = [{"role": "user", "content": "hello there"}]
    with llmroute.Client(settings) as client:
        first = client.chat.completions.create(model="auto", messages=messages, temperature=0)
        again = client.chat.completions.create(model="auto", messages=messages, temperature=0)
        assert upstream.call_count() == 1
        client.chat.completions.create(model="auto", messages=messages, temperature=0,
                                       extra_headers={"Cache-Control": "no-cache"})
        assert upstream.call_count() == 2
        streamed = list(client.chat.completions.create(model="auto", messages=messages,
                                                       temperature=0, stream=True))
    assert upstream.call_count() == 2
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.usage is not None and again.usage.model_extra == {"cost": 0}
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == \
        first.choices[0].message.content
