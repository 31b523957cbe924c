"""`POST /v1/embeddings` through a served gateway with the official `openai` SDK: passed through to
the embedding model's OpenAI-compatible deployment (never routed), priced (config, or the bundled
LiteLLM embedding prices), ledgered, under the key's model rights and limits, errors mapped."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing._embeddings_wire import vector
from llmroute.testing.behaviours import server_error
from llmroute.testing.upstream import FakeUpstream

from .support import Serve
from .test_ledger import ledger_config, wait_for_entries

EMBEDDINGS: dict[str, Any] = {"embeddings": {"models": {
    # priced from the bundled LiteLLM map: $0.02 per 1M input tokens
    "text-embedding-3-small": {"deployment": "fake", "upstream_name": "embed-up"},
    "fake/embed-big": {"deployment": "fake", "input_per_m": "0.13"},
}}}


def test_single_and_batch_inputs_ledgered_with_cost(serve: Serve, up: FakeUpstream,
                                                    tmp_path: Path) -> None:
    gw = serve({**EMBEDDINGS, **ledger_config(tmp_path)})
    with gw.client() as client:
        one = client.embeddings.with_raw_response.create(model="text-embedding-3-small",
                                                         input="hello world")
        batch = client.embeddings.create(model="fake/embed-big", input=["a", "bb", "a"],
                                         encoding_format="float", dimensions=4)
    single = one.parse()
    assert single.model == "text-embedding-3-small"
    # the SDK asks for base64 by default and decodes it: the fake's float32 vector
    assert single.data[0].embedding == vector("hello world", "embed-up")
    assert up.requests[-2].body["model"] == "embed-up"
    assert up.requests[-2].body["encoding_format"] == "base64"
    assert [d.index for d in batch.data] == [0, 1, 2]
    assert batch.data[0].embedding == batch.data[2].embedding == vector("a", "embed-big", 4)
    assert batch.data[1].embedding != batch.data[0].embedding
    assert up.requests[-1].body["model"] == "embed-big"
    found = {e.request_id: e for e in wait_for_entries(tmp_path, 2)}
    first = found[one.headers["x-llmroute-request-id"]]
    assert first.model == "text-embedding-3-small" and first.router == "embeddings"
    assert first.input_tokens == single.usage.prompt_tokens == len("hello world") // 4 + 1
    assert first.cost_usd == Decimal(single.usage.prompt_tokens) * Decimal("0.02") / 1_000_000
    other = next(e for e in found.values() if e.model == "fake/embed-big")
    assert other.input_tokens == batch.usage.prompt_tokens == 3
    assert other.cost_usd == Decimal(3) * Decimal("0.13") / 1_000_000
    assert other.status == "ok" and other.output_tokens == 0


def test_errors_are_mapped(serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    gw = serve({**EMBEDDINGS, **ledger_config(tmp_path)})
    with gw.client() as client:
        with pytest.raises(openai.NotFoundError) as caught:
            client.embeddings.create(model="auto", input="x")
        assert "never routed" in caught.value.message
        with pytest.raises(openai.NotFoundError):  # a chat model is no embedding model
            client.embeddings.create(model="fake/mini", input="x")
        with pytest.raises(openai.BadRequestError) as bad:
            client.embeddings.create(model="fake/embed-big", input=[])
        assert bad.value.param == "input"
        up.script("embed-big", server_error(500))
        with pytest.raises(openai.APIStatusError) as upstream:
            client.embeddings.create(model="fake/embed-big", input="x")
        assert upstream.value.status_code >= 500
    # as for chat, a malformed request (the 400) is refused before it is a request: unledgered
    entries = wait_for_entries(tmp_path, 3)
    assert sorted(e.http_status for e in entries) == [404, 404, upstream.value.status_code]
    assert all(e.status == "error" and e.cost_usd is None for e in entries)


def test_key_rights_and_limits_apply(serve: Serve, up: FakeUpstream) -> None:
    keys = {"keys": [
        {"name": "small-only", "hash": hash_key("lr-small"), "models": ["text-embedding-*"],
         "limits": [{"window": "minute", "requests": 1}]}]}
    gw = serve({**EMBEDDINGS, **keys})
    with gw.client("lr-small") as client:
        with pytest.raises(openai.PermissionDeniedError):
            client.embeddings.create(model="fake/embed-big", input="x")
        assert client.embeddings.create(model="text-embedding-3-small", input="x").data
        with pytest.raises(openai.RateLimitError):
            client.embeddings.create(model="text-embedding-3-small", input="x")


def test_models_lists_the_embedding_models_a_key_may_use(serve: Serve) -> None:
    keys = {"keys": [{"name": "full", "hash": hash_key("lr-full")},
                     {"name": "small-only", "hash": hash_key("lr-small"),
                      "models": ["text-embedding-*", "fake/mini"]}]}
    gw = serve({**EMBEDDINGS, **keys})
    with gw.client("lr-full") as full, gw.client("lr-small") as small:
        everything = [m.id for m in full.models.list()]
        some = [m.id for m in small.models.list()]
    assert {"text-embedding-3-small", "fake/embed-big", "fake/mini"} <= set(everything)
    assert "text-embedding-3-small" in some and "fake/embed-big" not in some
