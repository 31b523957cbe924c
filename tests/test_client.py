"""The in-process Client / AsyncClient: same Gateway as the server, OpenAI SDK types and errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import llmroute
from llmroute.config import load
from llmroute.settings import Settings
from llmroute.testing.behaviours import bad_request, server_error
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
        "models": {
            "fake/small": {"deployment": "fake", "input_per_m": 0.5, "output_per_m": 1.5},
            "fake/big": {"deployment": "fake", "input_per_m": 10, "output_per_m": 30},
        },
        "tiers": {
            "simple": {"model": "fake/small", "fallbacks": ["fake/big"]},
            "medium": {"model": "fake/small"},
            "complex": {"model": "fake/big"},
        },
        "resilience": {"retry": {"max_attempts": 1}},
        # the Client's mechanics, with routing its prompts were written for: the keyword rules
        # (the shipped default's classifier knows fake/small and fake/big only by a tier prior)
        "routing": {"default_policy": "rules"},
        "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}",
                   "spool_path": str(tmp_path / "spool.jsonl"), "flush_interval_s": 0.05},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    return load(path, environ={})


def test_sync_client_routes_and_returns_sdk_types(settings: Settings,
                                                   upstream: FakeUpstream) -> None:
    with llmroute.Client(settings) as client:
        reply = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hello there"}])
        assert isinstance(reply, ChatCompletion)
        assert reply.model == "fake/small"
        assert reply.choices[0].message.content == "echo from small: hello there"
        usage = reply.usage
        assert usage is not None
        expected = (Decimal(usage.prompt_tokens) * Decimal("0.5")
                    + Decimal(usage.completion_tokens) * Decimal("1.5")) / 1_000_000
        assert reply.llmroute_outcome.cost_usd == expected  # type: ignore[attr-defined]
        code = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "refactor this python function"}])
        assert code.model == "fake/big"
    assert [r.model for r in upstream.requests] == ["small", "big"]


def test_sync_stream_is_an_iterator_of_chunks(settings: Settings) -> None:
    with llmroute.Client(settings) as client:
        chunks = list(client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True}))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert {c.model for c in chunks} == {"fake/small"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from small: hi"
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_fallback_and_sdk_errors(settings: Settings, upstream: FakeUpstream) -> None:
    upstream.script("small", server_error(500))
    with llmroute.Client(settings) as client:
        reply = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "fake/big"  # the simple tier's fallback answered
        upstream.script("small", bad_request("bad field"))
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="fake/small",
                                           messages=[{"role": "user", "content": "hi"}])
        assert bad.value.status_code == 400 and "bad field" in str(bad.value.body)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.BadRequestError) as invalid:
            client.chat.completions.create(model="auto", messages=[])
        assert invalid.value.body["param"] == "messages"  # type: ignore[index]


@pytest.mark.asyncio
async def test_async_client_with_extra_body_plugins(settings: Settings,
                                                    upstream: FakeUpstream) -> None:
    async with llmroute.AsyncClient(settings) as client:
        reply = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}],
            extra_body={"plugins": [{"id": "auto-router", "allowed_models": ["fake/big"]}]})
        assert reply.model == "fake/big"
        stream = await client.chat.completions.create(
            model="auto/quality", messages=[{"role": "user", "content": "hi"}], stream=True)
        models = {chunk.model async for chunk in stream}
        assert models == {"fake/big"}
    sent = upstream.requests[0].body
    assert sent is not None and "plugins" not in sent


def test_the_in_process_client_writes_the_ledger(settings: Settings, upstream: FakeUpstream) -> None:
    import asyncio

    from llmroute.ledger import open_store

    with llmroute.Client(settings) as client:
        ok = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        upstream.script("small", bad_request("nope"))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="fake/small",
                                           messages=[{"role": "user", "content": "hi"}])
        list(client.chat.completions.create(model="auto", stream=True,
                                            messages=[{"role": "user", "content": "hi"}]))

    async def read() -> list[tuple[str, str | None]]:
        store = open_store(settings.ledger.url)
        try:
            return [(e.status, e.model) for e in await store.query()]
        finally:
            await store.close()

    rows = asyncio.run(read())
    assert sorted(rows, key=str) == sorted([("ok", ok.model), ("error", None), ("ok", "fake/small")],
                                           key=str)
